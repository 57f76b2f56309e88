#include "ops/dropout.hpp"

#include <memory>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/profiler.hpp"
#include "engine/strided.hpp"
#include "engine/tensor_math.hpp"
#include "ops/detail/op.hpp"

namespace tapegrad {
namespace {

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

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen, SourceLocation loc) {
    detail::OpScope scope("dropout", loc);
    if (!x.defined()) throw std::invalid_argument("dropout: the input is undefined");
    if (!(p >= 0.0 && p <= 1.0))
        throw std::invalid_argument("dropout: probability must be in [0, 1], got " + std::to_string(p));
    if (!training || p == 0.0) return x;
    detail::check_op_inputs("dropout", detail::DTypes::Floating, {&x});
    // A byte per element: a quarter of a float mask.
    auto mask = std::make_shared<std::vector<uint8_t>>(static_cast<std::size_t>(x.numel()));
    {
        const auto guard = gen.lock();
        for (auto& keep : *mask) keep = gen.uniform() >= p;
    }
    // p == 1 drops everything (as PyTorch): the output and the gradient are all zeros.
    const double scale = p == 1.0 ? 0.0 : 1.0 / (1.0 - p);
    Tensor out = apply_mask(x.detach(), *mask, scale);
    // y = x m / (1 - p): dx = g m / (1 - p), same shape as x
    return record("dropout", out, {x}, [mask, scale](const Tensor& g, const GradMask&) {
        // create_graph: g times the scaled mask as a constant tensor, recorded.
        if (is_grad_enabled()) return std::vector<Tensor>{g * apply_mask(ones_like(g), *mask, scale)};
        return std::vector<Tensor>{apply_mask(g, *mask, scale)};
    });
}

}  // namespace tapegrad
