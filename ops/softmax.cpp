#include "ops/softmax.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/tensor_math.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/detail/op.hpp"
#include "ops/detail/scalar_dims.hpp"
#include "ops/kernels/loss.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// x seen as row-major [outer, K, inner] around `axis`.
kernels::SoftmaxShape rows_around(const Shape& shape, int64_t axis) {
    kernels::SoftmaxShape s{1, shape[static_cast<std::size_t>(axis)], 1};
    for (int64_t i = 0; i < axis; ++i) s.outer *= shape[static_cast<std::size_t>(i)];
    for (auto i = static_cast<std::size_t>(axis) + 1; i < shape.size(); ++i) s.inner *= shape[i];
    return s;
}

// softmax: y = e^x / sum_k e^x, dx = y (g - sum_k g y); log_softmax: y = x - log sum_k e^x,
// dx = g - e^y sum_k g; the sums along `axis`, kept. The fast kernels take rows of K contiguous
// values (inner == 1); other layouts take the reference loop.
template <bool Log>
struct Softmax {
    static constexpr const char* name = Log ? "log_softmax" : "softmax";
    static constexpr detail::DerivativeDoc doc =
        Log ? detail::DerivativeDoc{
            .section = "Softmax and losses",
            .op = "log_softmax (dim)",
            .forward = "y_k = x_k − m − ln Σ_j e^{x_j − m}",
            .gradient = "dx = g − softmax(x) Σ_k g_k",
            .shapes = "same"}
        : detail::DerivativeDoc{
            .section = "Softmax and losses",
            .op = "softmax (dim)",
            .forward = "y_k = e^{x_k − m} / Σ_j e^{x_j − m}, m = max_j x_j",
            .gradient = "dx = y ⊙ (g − Σ_k g_k y_k)",
            .shapes = "same; reduction along dim"};
    static constexpr DTypes dtypes = DTypes::Floating;
    int64_t axis;  // normalised by the caller
    SavedTensor result{};

    Tensor forward(const OpContext& ctx, const Tensor& x_in) {
        const Tensor x = as_contiguous(x_in);
        const kernels::SoftmaxShape s = rows_around(x.shape(), axis);
        Tensor out = empty(x.shape(), {.dtype = x.dtype()});
        const bool reference = is_reference(ctx.kernels) || s.inner != 1;
        if (x.numel() > 0)  // a tensor without elements has no row to read
            dispatch(x.dtype(), [&]<class T>() {
                if (reference) kernels::softmax_forward_reference<T>(x.data<T>(), out.data<T>(), s, Log);
                else kernels::softmax_forward_fast(x.data<float>(), out.data<float>(), s, Log);
            });
        if (ctx.recording) result = SavedTensor::output(out);
        return out;
    }

    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const {
        const Tensor y = result.unpack();
        if (Log) return {g - exp(y) * g.sum({axis}, true)};
        return {y * (g - (g * y).sum({axis}, true))};
    }

    std::vector<Tensor> fused_backward(Kernels kernels, const Tensor& g_in, const GradMask&) const {
        const Tensor y = result.unpack();
        const Tensor g = as_contiguous(g_in);
        const kernels::SoftmaxShape s = rows_around(y.shape(), axis);
        Tensor dx = empty(y.shape(), {.dtype = y.dtype()});
        const bool reference = is_reference(kernels) || s.inner != 1;
        if (y.numel() > 0)
            dispatch(y.dtype(), [&]<class T>() {
                if (reference) kernels::softmax_backward_reference<T>(g.data<T>(), y.data<T>(), dx.data<T>(), s, Log);
                else kernels::softmax_backward_fast(g.data<float>(), y.data<float>(), dx.data<float>(), s, Log);
            });
        return {dx};
    }

    std::vector<SavedField> saved_state() const { return {detail::saved("result", result), detail::saved("dim", axis)}; }
};

template <bool Log>
Tensor softmax_along(const Tensor& x, int64_t dim, const SourceLocation& loc) {
    const char* op = Softmax<Log>::name;
    detail::check_op_inputs(op, DTypes::Floating, {&x});
    if (detail::is_scalar_along(x, {dim}, op)) return reshape(softmax_along<Log>(reshape(x, {1}), 0, loc), {});
    const auto d = static_cast<int64_t>(normalize_axis(dim, x.dim(), op));
    // The fast kernels take rows of K contiguous values: another axis is moved last and back (a
    // copy each way, through differentiable views), which beats the strided reference loop.
    const auto last = static_cast<int64_t>(x.dim()) - 1;
    if (d != last && x.numel() > 0 && !is_reference(choose_kernels(x.dtype())))
        return detail::run_op(Softmax<Log>{.axis = last}, loc, x.transpose(d, last)).transpose(d, last).contiguous();
    return detail::run_op(Softmax<Log>{.axis = d}, loc, x);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim, SourceLocation loc) { return softmax_along<false>(x, dim, loc); }
Tensor log_softmax(const Tensor& x, int64_t dim, SourceLocation loc) { return softmax_along<true>(x, dim, loc); }

}  // namespace tapegrad
