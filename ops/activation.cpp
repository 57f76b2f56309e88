// The piecewise activations: relu, abs, clamp, hardtanh and relu6, leaky_relu, hardswish and
// hardsigmoid, with PyTorch's subgradients at the kinks.
#include "ops/activation.hpp"

#include <cmath>

#include "engine/autograd.hpp"
#include "ops/detail/fusion.hpp"
#include "ops/detail/elementwise_op.hpp"

namespace tapegrad {
namespace {

// The machinery of ops/detail/elementwise_op.hpp (Elementwise, Saves, TypedScalar, ...).
using namespace detail;

// relu'(x) = [x > 0], so 0 at 0 (as PyTorch); y > 0 exactly when x > 0. NaN passes through, and
// so does its gradient (PyTorch's threshold_backward zeroes only where y <= 0).
struct Relu {
    static constexpr const char* name = "relu";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "relu",
        .forward = "y = max(x, 0), NaN stays NaN",
        .gradient = "dx = g ⊙ [x > 0] (so relu'(0) = 0), computed as g ⊙ [y > 0]; where y is NaN, dx = g (as PyTorch)",
        .shapes = "same; layout kept"};
    static constexpr DTypes dtypes = DTypes::KeepIntegers;
    static constexpr Saves saves = Saves::Output;
    template <class T> T value(T v) const { return v < 0 ? T(0) : v; }
    template <class T> T grad(T g, T y) const { return y <= 0 ? T(0) : g; }
    Tensor derivative(const Tensor& g, const Tensor& y) const { return g * piecewise_constant(y, [](auto v) { return v <= 0 ? 0 : 1; }); }
};

// |x|' = sign(x), 0 at 0 (as PyTorch's sgn).
struct Abs {
    static constexpr const char* name = "abs";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "abs",
        .forward = "y = |x|",
        .gradient = "dx = g ⊙ sign(x), 0 at x = 0",
        .shapes = "same"};
    static constexpr DTypes dtypes = DTypes::KeepIntegers;
    static constexpr Saves saves = Saves::Input;
    template <class T> T value(T v) const { return std::abs(v); }
    template <class T> T grad(T g, T v) const { return v > 0 ? g : (v < 0 ? -g : T(0)); }
    Tensor derivative(const Tensor& g, const Tensor& v) const {
        return g * piecewise_constant(v, [](auto e) { return e > 0 ? 1 : (e < 0 ? -1 : 0); });
    }
};

// clamp and hardtanh: the same forward; the gradient passes on the closed interval (clamp, as
// PyTorch's clamp_backward) or the open one (hardtanh_backward: 0 on the bounds themselves).
// Closed as a template argument, not a captured flag: a flag tested per element kept the
// backward loop from vectorising. NaN stays NaN, with gradient 0 from clamp and g from hardtanh
// (whose backward zeroes only x <= lo and x >= hi, as PyTorch's).
template <bool Closed>
struct Clamp {
    static constexpr const char* name = Closed ? "clamp" : "hardtanh";
    static constexpr detail::DerivativeDoc doc =
        Closed ? detail::DerivativeDoc{
            .section = "Activations (elementwise)",
            .op = "clamp (lo, hi optional)",
            .forward = "y = min(max(x, lo), hi); NaN stays NaN",
            .gradient = "dx = g ⊙ [lo ≤ x ≤ hi] (bounds included, as PyTorch's clamp)",
            .shapes = "same"}
        : detail::DerivativeDoc{
            .section = "Activations (elementwise)",
            .op = "hardtanh (lo = −1, hi = 1) / relu6 (lo = 0, hi = 6)",
            .forward = "y = min(max(x, lo), hi)",
            .gradient = "dx = g ⊙ [lo < x < hi] (0 on the bounds, g at NaN, as PyTorch's hardtanh)",
            .shapes = "same"};
    // clamp's bounds are doubles: an integer tensor is promoted, as PyTorch's type promotion does;
    // hardtanh keeps integers, as PyTorch's does.
    static constexpr DTypes dtypes = Closed ? DTypes::PromoteIntegers : DTypes::KeepIntegers;
    static constexpr Saves saves = Saves::Input;
    double lo, hi;
    TypedScalar low{lo}, high{hi};
    template <class T> T value(T v) const {
        const T l = low.as<T>(), h = high.as<T>();
        return v < l ? l : (v > h ? h : v);
    }
    template <class T> T grad(T g, T v) const {
        const T l = low.as<T>(), h = high.as<T>();
        const bool passes = Closed ? (v >= l) & (v <= h) : !((v <= l) | (v >= h));
        return passes ? g : T(0);
    }
    Tensor derivative(const Tensor& g, const Tensor& v) const {
        return g * piecewise_constant(v, [lo = lo, hi = hi](auto e) { return (Closed ? e >= lo && e <= hi : !(e <= lo || e >= hi)) ? 1 : 0; });
    }
};

// leaky_relu' = 1 for x > 0, negative_slope otherwise (so negative_slope at 0, as PyTorch).
struct LeakyRelu {
    static constexpr const char* name = "leaky_relu";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "leaky_relu (slope a)",
        .forward = "y = x for x > 0, a x otherwise",
        .gradient = "dx = g for x > 0, a g otherwise (a at 0)",
        .shapes = "same"};
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    double negative_slope;
    TypedScalar slope{negative_slope};
    template <class T> T value(T v) const { return v > 0 ? v : v * slope.as<T>(); }
    template <class T> T grad(T g, T v) const { return v > 0 ? g : g * slope.as<T>(); }
    Tensor derivative(const Tensor& g, const Tensor& v) const {
        return g * piecewise_constant(v, [s = negative_slope](auto e) { return e > 0 ? 1.0 : s; });
    }
};

// min(max(x + 3, 0), 6), the ramp hardswish and hardsigmoid are built on.
template <class T>
T relu6_shifted(T v) {
    return v + T(3) < T(0) ? T(0) : (v + T(3) > T(6) ? T(6) : v + T(3));
}

// hardswish' = 0 for x < -3, x/3 + 1/2 for -3 <= x < 3, 1 from 3 on (PyTorch's hardswish_backward);
// hardswish'' = 1/3 on (-3, 3), 0 elsewhere (PyTorch's double backward).
struct HardswishDerivative {
    static constexpr const char* derivative_name = "hardswish_derivative";
    template <class T> T first(T v) const { return v < T(-3) ? T(0) : (v < T(3) ? v / T(3) + T(0.5) : T(1)); }
    template <class T> T second(T v) const { return v > T(-3) && v < T(3) ? T(1) / T(3) : T(0); }
};

struct Hardswish {
    static constexpr const char* name = "hardswish";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "hardswish",
        .forward = "y = x · min(max(x + 3, 0), 6)/6",
        .gradient = "dx = 0 for x < −3, g (x/3 + 1/2) for −3 ≤ x < 3, g from 3 on (PyTorch's subgradients)",
        .shapes = "same"};
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    template <class T> T value(T v) const { return v * relu6_shifted(v) / T(6); }
    template <class T> T grad(T g, T v) const {
        if (v < T(-3)) return T(0);
        if (v < T(3)) return g * (v / T(3) + T(0.5));
        return g;
    }
    Tensor derivative(const Tensor& g, const Tensor& v) const { return g * first_derivative(HardswishDerivative{}, v); }
};

// hardsigmoid(x) = relu6(x + 3) / 6; its derivative is 1/6 strictly inside (-3, 3) and 0 elsewhere,
// the bounds included (PyTorch's hardsigmoid_backward), g times 1/6 rounded to float in every dtype
// (PyTorch's float constant: 0.1666666716337204 in float64 too).
struct Hardsigmoid {
    static constexpr const char* name = "hardsigmoid";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "hardsigmoid",
        .forward = "y = min(max(x + 3, 0), 6)/6",
        .gradient = "dx = g/6 for −3 < x < 3, 0 elsewhere, the bounds included (PyTorch's hardsigmoid_backward)",
        .shapes = "same"};
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    template <class T> T value(T v) const { return relu6_shifted(v) / T(6); }
    static constexpr float kSixth = 1.0f / 6.0f;
    template <class T> T grad(T g, T v) const { return v > T(-3) && v < T(3) ? g * T(kSixth) : T(0); }
    Tensor derivative(const Tensor& g, const Tensor& v) const {
        return g * piecewise_constant(v, [](auto e) { return e > -3 && e < 3 ? double{kSixth} : 0.0; });
    }
};

}  // namespace

Tensor relu(const Tensor& x, SourceLocation loc) { return elementwise(Relu{}, loc, x); }
bool detail::made_by_relu(const Tensor& x) { return producer<Elementwise<Relu>>(x) != nullptr; }

Tensor relu(Tensor&& x, SourceLocation loc) {
    if (Tensor fused = detail::relu_of_batch_norm(x, loc); fused.defined()) return fused;
    return elementwise(Relu{}, loc, x);
}
Tensor abs(const Tensor& x, SourceLocation loc) { return elementwise(Abs{}, loc, x); }

Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max, SourceLocation loc) {
    if (min && max && *min > *max)
        throw std::invalid_argument("clamp: min " + std::to_string(*min) + " is larger than max " + std::to_string(*max));
    return elementwise(Clamp<true>{min.value_or(-INFINITY), max.value_or(INFINITY)}, loc, x);
}

Tensor hardtanh(const Tensor& x, double min_val, double max_val, SourceLocation loc) {
    if (min_val > max_val)
        throw std::invalid_argument("hardtanh: min_val " + std::to_string(min_val) + " is larger than max_val " + std::to_string(max_val));
    return elementwise(Clamp<false>{min_val, max_val}, loc, x);
}

Tensor relu6(const Tensor& x, SourceLocation loc) { return hardtanh(x, 0.0, 6.0, loc); }
Tensor leaky_relu(const Tensor& x, double negative_slope, SourceLocation loc) {
    return elementwise(LeakyRelu{negative_slope}, loc, x);
}
Tensor hardswish(const Tensor& x, SourceLocation loc) { return elementwise(Hardswish{}, loc, x); }
Tensor hardsigmoid(const Tensor& x, SourceLocation loc) { return elementwise(Hardsigmoid{}, loc, x); }

// Tensor's member spellings.
Tensor Tensor::abs() const { return tapegrad::abs(*this); }
Tensor Tensor::relu() const { return tapegrad::relu(*this); }
Tensor Tensor::clamp(std::optional<double> min, std::optional<double> max) const { return tapegrad::clamp(*this, min, max); }
Tensor Tensor::clamp_min(double min) const { return tapegrad::clamp(*this, min, std::nullopt); }
Tensor Tensor::clamp_max(double max) const { return tapegrad::clamp(*this, std::nullopt, max); }

}  // namespace tapegrad
