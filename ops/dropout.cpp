#include "ops/dropout.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/profiler.hpp"
#include "engine/strided.hpp"
#include "engine/tensor_math.hpp"
#include "ops/arithmetic.hpp"
#include "ops/detail/op.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// out = src * scale where mask is 1, else src * 0 (so NaN stays NaN, as in PyTorch). The mask is indexed in row-major (logical) order, so
// the same seed gives the same mask whatever the memory layout; out keeps src's dense layout.
Tensor apply_mask(const Tensor& src, const std::vector<uint8_t>& mask, double scale) {
    Tensor out = empty_like(src);  // row-major, or channels-last for a channels-last src
    dispatch(src.dtype(), [&]<class T>() {
        const T* sp = src.data<T>();
        T* op = out.data<T>();
        const T s = static_cast<T>(scale);
        const uint8_t* m = mask.data();
        for_each_run<2>(src.shape(), {out.strides(), src.strides()}, [&](auto off, int64_t n, auto st) {
            for (int64_t i = 0; i < n; ++i) op[off[0] + i * st[0]] = sp[off[1] + i * st[1]] * (m[i] ? s : T(0));
            m += n;
        });
    });
    return out;
}

void check_probability(const char* op, double p) {
    if (!(p >= 0.0 && p <= 1.0))
        throw std::invalid_argument(std::string(op) + ": probability must be in [0, 1], got " + std::to_string(p));
}

// 1 with probability p_i, else 0: one uniform draw per element, in row-major order. Not
// differentiable. The generator is held for the whole draw.
struct Bernoulli {
    static constexpr const char* name = "bernoulli";
    static constexpr DTypes dtypes = DTypes::KeepAll;
    Generator* gen;
    std::optional<double> p;  // else the probabilities are the input's elements
    Tensor forward(const OpContext&, const Tensor& x) {
        Tensor out = empty(x.shape(), {.dtype = x.dtype()});
        std::vector<double> probs;
        if (p) {
            check_probability(name, *p);
        } else {
            if (!is_floating_point(x.dtype()))
                throw std::invalid_argument("bernoulli: the probabilities must be a floating-point tensor, got " + describe(x) +
                                            "; convert with .to(tg::kFloat32)");
            probs = x.to_vector<double>();
            for (double q : probs)
                if (!(q >= 0.0 && q <= 1.0))
                    throw std::invalid_argument("bernoulli: every probability must be in [0, 1], got " + std::to_string(q) +
                                                " in the " + describe(x) + " tensor");
        }
        dispatch_all(x.dtype(), [&]<class T>() {
            T* o = out.data<T>();
            const auto guard = gen->lock();
            for (int64_t i = 0, n = out.numel(); i < n; ++i)
                o[i] = static_cast<T>(gen->uniform() < (p ? *p : probs[static_cast<std::size_t>(i)]));
        });
        return out;
    }
};

// y = x m / (1 - p) with m one draw per element, in row-major order: dx = g m / (1 - p). The mask
// is a byte per element (a quarter of a float mask), drawn by the forward from the generator held
// for the whole draw.
struct Dropout {
    static constexpr const char* name = "dropout";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "dropout (train, p)",
        .forward = "y = x ⊙ m / (1 − p), m_i ~ Bernoulli(1 − p) from the generator (p = 1: y = 0)",
        .gradient = "dx = g ⊙ m / (1 − p)",
        .shapes = "same; identity when eval or p = 0"};
    static constexpr DTypes dtypes = DTypes::Floating;
    Generator* gen;
    double p;
    std::vector<uint8_t> mask{};  // 1 where the element is kept
    double scale = 0;             // 1 / (1 - p); 0 for p == 1, which drops everything (as PyTorch)

    Tensor forward(const OpContext&, const Tensor& x) {
        mask.resize(static_cast<std::size_t>(x.numel()));
        {
            const auto guard = gen->lock();
            for (auto& keep : mask) keep = gen->uniform() >= p;
        }
        scale = p == 1.0 ? 0.0 : 1.0 / (1.0 - p);
        return apply_mask(x, mask, scale);
    }
    // g times the scaled mask as a constant tensor.
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {g * apply_mask(ones_like(g), mask, scale)}; }
    std::vector<Tensor> fused_backward(Kernels, const Tensor& g, const GradMask&) const { return {apply_mask(g, mask, scale)}; }
    std::vector<SavedField> saved_state() const {
        const auto n = static_cast<int64_t>(mask.size());
        return {SavedField{"mask", {}, SavedTensorInfo{{n}, kBool, mask.size()}}, detail::saved("scale", scale)};
    }
};

// y = x m / (1 - p) with m one draw per [n, c], broadcast over the rest: dx = g m / (1 - p).
struct Dropout2d {
    static constexpr const char* name = "dropout2d";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "dropout2d (train, p)",
        .forward = "y = x ⊙ m / (1 − p), one m_{n,c} ~ Bernoulli(1 − p) per channel of each sample, broadcast over "
                   "[H,W] (or [L])",
        .gradient = "dx = g ⊙ m / (1 − p)",
        .shapes = "x [N,C,H,W] or [N,C,L]; identity when eval or p = 0"};
    static constexpr DTypes dtypes = DTypes::Floating;
    Tensor scaled_mask;  // [N, C, 1, ...], constant
    Tensor forward(const OpContext&, const Tensor& x) { return x.detach() * scaled_mask; }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {g * scaled_mask}; }
    std::vector<SavedField> saved_state() const {
        const std::size_t bytes = static_cast<std::size_t>(scaled_mask.numel()) * element_size(scaled_mask.dtype());
        return {SavedField{"scaled_mask", {}, SavedTensorInfo{scaled_mask.shape(), scaled_mask.dtype(), bytes}}};
    }
};

}  // namespace

Tensor bernoulli(const Tensor& p, Generator& gen, SourceLocation loc) { return detail::run_op(Bernoulli{.gen = &gen}, loc, p); }
Tensor bernoulli(const Tensor& p, SourceLocation loc) { return bernoulli(p, default_generator(), loc); }
Tensor bernoulli(const Tensor& x, double p, Generator& gen, SourceLocation loc) {
    return detail::run_op(Bernoulli{.gen = &gen, .p = p}, loc, x);
}
Tensor bernoulli(const Tensor& x, double p, SourceLocation loc) { return bernoulli(x, p, default_generator(), loc); }

Tensor dropout2d(const Tensor& x, double p, bool training, Generator& gen, SourceLocation loc) {
    check_probability("dropout2d", p);
    if (x.defined() && x.dim() != 3 && x.dim() != 4)
        throw std::invalid_argument("dropout2d: expects a 4-D [N,C,H,W] or 3-D [N,C,L] input, got " + describe(x) +
                                    "; use dropout for other ranks");
    if (x.defined() && (!training || p == 0.0)) return x;
    detail::check_op_inputs("dropout2d", DTypes::Floating, {&x});
    Shape mask_shape{x.shape()[0], x.shape()[1]};
    while (mask_shape.size() < x.dim()) mask_shape.push_back(1);
    // p == 1 drops everything (as PyTorch): the output and the gradient are all zeros.
    const double scale = p == 1.0 ? 0.0 : 1.0 / (1.0 - p);
    const Tensor scaled_mask = bernoulli(empty(mask_shape, {.dtype = x.dtype()}), 1.0 - p, gen) * scale;
    return detail::run_op(Dropout2d{.scaled_mask = scaled_mask}, loc, x);
}
Tensor dropout2d(const Tensor& x, double p, bool training, SourceLocation loc) {
    return dropout2d(x, p, training, default_generator(), loc);
}
Tensor dropout(const Tensor& x, double p, bool training, SourceLocation loc) { return dropout(x, p, training, default_generator(), loc); }

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen, SourceLocation loc) {
    if (!x.defined()) throw std::invalid_argument("dropout: the input is undefined");
    check_probability("dropout", p);
    if (!training || p == 0.0) {
        const detail::OpScope scope("dropout", loc);  // the identity, still seen by the profiler (as PyTorch's)
        return x;
    }
    return detail::run_op(Dropout{.gen = &gen, .p = p}, loc, x);
}

}  // namespace tapegrad
