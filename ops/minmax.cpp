#include "ops/minmax.hpp"

#include <stdexcept>
#include <type_traits>

#include "engine/autograd.hpp"
#include "ops/arithmetic.hpp"
#include "ops/compare.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/elementwise.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

template <class T>
bool is_nan(T v) {
    if constexpr (std::is_floating_point_v<T>) return v != v;
    else return false;
}

// The larger of x and y (the smaller, with Smaller), NaN if either is.
template <bool Smaller>
struct Extreme {
    template <class T>
    T operator()(T x, T y) const {
        if (is_nan(x)) return x;
        if (is_nan(y)) return y;
        return (Smaller ? y < x : x < y) ? y : x;
    }
};

template <bool Smaller>
Tensor extreme(const char* name, const Tensor& a, const Tensor& b) {
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
    return dispatch_all(a.dtype(), [&]<class T>() { return kernels::map_binary<T>(a, b, shape, Extreme<Smaller>{}); });
}

// g where a wins, g/2 where a and b tie, 0 where b wins (PyTorch's maximum and minimum backward).
Tensor winner_share(const Tensor& g, const Tensor& a, const Tensor& b, bool smaller) {
    return masked_fill(where(eq(a, b), g * 0.5, g), smaller ? gt(a, b) : lt(a, b), 0.0);
}

// y = max(a, b): da = g [a > b] + g/2 [a = b], db = g [b > a] + g/2 [a = b] (min: < for >).
template <bool Smaller>
struct MaxMin {
    static constexpr const char* name = Smaller ? "minimum" : "maximum";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Masks and selection",
        .op = "maximum / minimum",
        .forward = "y = max(a, b) (min), NaN if either is; a, b promoted",
        .gradient = "da = g [a > b] + g/2 [a = b], db = g [b > a] + g/2 [a = b] (min: < for >)",
        .shapes = "a, b broadcast to y"};
    static constexpr DTypes dtypes = DTypes::Promote;
    SavedTensor a, b;
    Tensor forward(const OpContext& ctx, const Tensor& x, const Tensor& y) {
        if (ctx.recording) {
            a = x;
            b = y;
        }
        return extreme<Smaller>(name, x, y);
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        const Tensor x = a.unpack().detach(), y = b.unpack().detach();
        return {needs[0] ? winner_share(g, x, y, Smaller) : Tensor(), needs[1] ? winner_share(g, y, x, Smaller) : Tensor()};
    }
};

// y = min(max(x, lo), hi): dx = g [lo <= x <= hi], dlo = g [x < lo < hi], dhi = g [x > hi or hi < lo]
// (PyTorch's clamp_backward_min_max); with one bound, dx = g [x >= lo], dlo = g [x < lo] (and so for hi).
struct ClampTensors {
    static constexpr const char* name = "clamp";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Masks and selection",
        .op = "clamp (tensor bounds lo, hi)",
        .forward = "y = min(max(x, lo), hi); either bound may be absent; lo > hi gives hi",
        .gradient = "dx = g [lo ≤ x ≤ hi], dlo = g [x < lo < hi], dhi = g [x > hi or hi < lo]; one bound: dx = g [x ≥ "
                    "lo], dlo = g [x < lo] (so for hi)",
        .shapes = "x, lo, hi broadcast to y"};
    static constexpr DTypes dtypes = DTypes::Promote;
    static constexpr std::size_t required_inputs = 1;
    SavedTensor x, lo, hi;
    Tensor forward(const OpContext& ctx, const Tensor& v, const Tensor& low, const Tensor& high) {
        if (v.dtype() == kBool)
            throw std::invalid_argument("clamp: this op does not take bool tensors (" + describe(v) + "); convert with .to(tg::kInt64)");
        if (ctx.recording) {
            x = v;
            lo = low;
            hi = high;
        }
        Tensor out = v;
        if (low.defined()) out = extreme<false>(name, out, low);
        if (high.defined()) out = extreme<true>(name, out, high);
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        const Tensor v = x.unpack().detach();
        const Tensor low = lo.defined() ? lo.unpack().detach() : Tensor(), high = hi.defined() ? hi.unpack().detach() : Tensor();
        auto keep = [&](const Tensor& where_true) { return masked_fill(g, logical_not(where_true), 0.0); };
        std::vector<Tensor> grads(3);
        if (low.defined() && high.defined()) {
            if (needs[0]) grads[0] = keep(logical_and(ge(v, low), le(v, high)));
            if (needs[1]) grads[1] = keep(logical_and(lt(v, low), lt(low, high)));
            if (needs[2]) grads[2] = keep(logical_or(gt(v, high), lt(high, low)));
        } else if (low.defined()) {
            if (needs[0]) grads[0] = keep(ge(v, low));
            if (needs[1]) grads[1] = keep(lt(v, low));
        } else {
            if (needs[0]) grads[0] = keep(le(v, high));
            if (needs[2]) grads[2] = keep(gt(v, high));
        }
        return grads;
    }
};

// dsign/dx = 0.
struct Sign {
    static constexpr const char* name = "sign";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Masks and selection",
        .op = "sign",
        .forward = "y = −1, 0, 1 (0 for ±0 and NaN)",
        .gradient = "dx = 0",
        .shapes = "same"};
    static constexpr DTypes dtypes = DTypes::KeepAll;  // the sign of a bool is itself, as PyTorch
    Tensor forward(const OpContext&, const Tensor& v) {
        return dispatch_all(v.dtype(), [&]<class T>() {
            return kernels::map_unary<T>(v, [](T e) { return static_cast<T>(e > T(0) ? 1 : e < T(0) ? -1 : 0); });
        });
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {zeros_like(g)}; }
};

}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b, SourceLocation loc) { return detail::run_op(MaxMin<false>{}, loc, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b, SourceLocation loc) { return detail::run_op(MaxMin<true>{}, loc, a, b); }

Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max, SourceLocation loc) {
    if (!min.defined() && !max.defined())
        throw std::invalid_argument("clamp: at least one of min and max must be defined (input " + describe(x) + ")");
    return detail::run_op(ClampTensors{}, loc, x, min, max);
}

Tensor sign(const Tensor& x, SourceLocation loc) { return detail::run_op(Sign{}, loc, x); }

}  // namespace tapegrad
