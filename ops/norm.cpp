#include "ops/norm.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/compare.hpp"
#include "ops/detail/op.hpp"
#include "ops/detail/scalar_dims.hpp"
#include "ops/kernels/norm.hpp"
#include "ops/minmax.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// y = ||x||_p over the reduced dimensions, with y and g read in keepdim form (ŷ, ĝ):
//   p = 0: dx = 0;  p = 1: dx = ĝ sign(x);  p = 2: dx = ĝ x / ŷ;
//   p = ±inf: dx = ĝ sign(x) m / Σ m, m = [|x| = ŷ or |x| is NaN];
//   p < 2: dx = ĝ sign(x) |x|^(p−1) / ŷ^(p−1) (0 where x = 0 for p < 1);  p > 2: dx = ĝ x |x|^(p−2) / ŷ^(p−1);
// everything 0 where ŷ = 0 (PyTorch's norm_backward).
struct Norm {
    static constexpr const char* name = "norm";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Masks and selection",
        .op = "norm (p, dims)",
        .forward = "y = (Σ |x|^p)^{1/p} over dims (all by default); p = 0: count of x ≠ 0; p = ±inf: max (min) |x|",
        .gradient = "p = 1: ĝ sign x; p = 2: ĝ x / ŷ; ±inf: ĝ sign(x) m / Σ m, m = [|x| = ŷ]; other p: ĝ sign(x) "
                    "|x|^{p−1} / ŷ^{p−1}; p = 0: 0; 0 wherever ŷ = 0 (PyTorch's norm_backward; ĝ, ŷ in keepdim form)",
        .shapes = "y: x without dims (keepdim: 1 there)"};
    static constexpr DTypes dtypes = DTypes::Floating;
    double p;
    std::vector<bool> reduce;
    std::vector<int64_t> reduced_axes;
    bool keepdim;
    SavedTensor input, result;
    Tensor forward(const OpContext& ctx, const Tensor& x) {
        Tensor out = dispatch(x.dtype(), [&]<class T>() { return kernels::vector_norm<T>(x, p, reduce, keepdim); });
        if (ctx.recording) {
            input = x;
            result = SavedTensor::output(out);
        }
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const {
        const Tensor x = input.unpack();
        if (p == 0) return {zeros_like(x)};
        Shape kept;
        for (std::size_t d = 0; d < x.dim(); ++d) kept.push_back(reduce[d] ? 1 : x.shape()[d]);
        const Tensor gk = reshape(g, kept), yk = reshape(result.unpack(), kept);
        const Tensor y_is_zero = eq(yk, 0.0);
        if (p == 1) return {gk * sign(x)};
        if (p == 2) return {gk * masked_fill(x / yk, y_is_zero, 0.0)};
        if (std::isinf(p)) {
            const Tensor ax = abs(x);
            const Tensor m = logical_or(eq(ax, yk.detach()), ne(ax, ax)).to(x.dtype());
            return {sign(x) * (gk / sum(m, reduced_axes, true)) * m};
        }
        const Tensor scale = masked_fill(gk / pow(yk, p - 1), y_is_zero, 0.0);
        if (p < 2) {
            Tensor scaled = pow(abs(x), p - 1);
            if (p < 1) scaled = masked_fill(scaled, eq(x, 0.0), 0.0);
            return {sign(x) * scaled * scale};
        }
        return {x * pow(abs(x), p - 2) * scale};
    }
};

}  // namespace

Tensor norm(const Tensor& x, double p, const std::vector<int64_t>& dims, bool keepdim, SourceLocation loc) {
    if (std::isnan(p)) throw std::invalid_argument("norm: p is NaN; pass a number, inf or -inf");
    if (detail::is_scalar_along(x, dims, "norm")) return reshape(norm(reshape(x, {1}), p, {0}, keepdim, loc), {});
    Norm def{.p = p, .keepdim = keepdim};
    if (x.defined()) {
        def.reduce.assign(x.dim(), dims.empty());
        for (int64_t a : dims) {
            const std::size_t d = normalize_axis(a, x.dim(), "norm");
            if (def.reduce[d]) throw std::invalid_argument("norm: dimension " + std::to_string(a) + " appears twice");
            def.reduce[d] = true;
        }
        for (std::size_t d = 0; d < x.dim(); ++d)
            if (def.reduce[d]) def.reduced_axes.push_back(static_cast<int64_t>(d));
    }
    return detail::run_op(std::move(def), loc, x);
}

Tensor Tensor::norm(double p) const { return tapegrad::norm(*this, p); }
Tensor Tensor::norm(double p, const std::vector<int64_t>& dims, bool keepdim) const { return tapegrad::norm(*this, p, dims, keepdim); }

}  // namespace tapegrad
