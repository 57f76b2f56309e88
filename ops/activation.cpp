#include "ops/activation.hpp"

#include <cmath>
#include <optional>
#include <type_traits>

#include "engine/autograd.hpp"
#include "ops/detail/fusion.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/activation_fast.hpp"
#include "ops/kernels/activation_reference.hpp"
#include "ops/kernels/elementwise.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// Which tensor the backward needs: the input (log, pow) or the output (relu, sigmoid, tanh, exp,
// sqrt, whose derivatives are cheapest in terms of y).
enum class Saves { Input, Output };

// An op's double parameter (a bound, a slope) in the element type. Converting a captured double
// inside the per-element lambda kept GCC from vectorising the loop: relu6 ran 30x slower than
// relu (4.6 against 0.15 ms forward on [32,96,16,16]).
struct TypedScalar {
    double value;
    float as_float = static_cast<float>(value);
    template <class T>
    T as() const {
        if constexpr (std::is_same_v<T, float>)
            return as_float;
        else
            return static_cast<T>(value);
    }
};

// The definition of an elementwise op y = f(x), from its formulas `Math`:
//   name, dtypes, saves;
//   value(x)            f, per element;
//   grad(g, s)          g f'(x) per element from the saved tensor s: the fused backward;
//   derivative(g, s)    the same in differentiable ops: the spec, which create_graph records;
//   vectorised()        optional: the xsimd kernel that float32's fast path runs, forward and
//                       backward, for ops built on exp, log or tanh.
// The fast path keeps x's dense layout (row-major or channels-last) for the output and, through
// map_binary, for the gradient.
template <class Math>
struct Elementwise {
    static constexpr const char* name = Math::name;
    static constexpr const char* gradient = detail::gradient_of<Math>();
    static constexpr DTypes dtypes = Math::dtypes;
    Math math;
    SavedTensor saved;  // x or y, as Math::saves says
    std::optional<kernels::ActivationKernel> vector_kernel;

    Tensor forward(const OpContext& ctx, const Tensor& x) {
        if constexpr (requires { math.vectorised(); })
            if (!is_reference(ctx.kernels) && x.dtype() == kFloat32) vector_kernel = math.vectorised();
        Tensor out = vector_kernel ? kernels::activation_forward_fast(*vector_kernel, x) : map(ctx.kernels, x);
        if (ctx.recording) saved = Math::saves == Saves::Input ? SavedTensor(x) : SavedTensor::output(out);
        return out;
    }

    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {math.derivative(g, saved.unpack())}; }

    std::vector<SavedField> saved_state() const { return {detail::saved(Math::saves == Saves::Input ? "input" : "result", saved)}; }

    std::vector<Tensor> fused_backward(Kernels kernels, const Tensor& g, const GradMask&) const {
        const Tensor s = saved.unpack();
        if (vector_kernel && g.dtype() == kFloat32) return {kernels::activation_backward_fast(*vector_kernel, g, s)};
        return {dispatch(g.dtype(), [&]<class T>() {
            auto f = [m = math](T gv, T sv) { return static_cast<T>(m.grad(gv, sv)); };
            return is_reference(kernels) ? kernels::map_pair_reference<T>(g, s, f) : kernels::map_binary<T>(g, s, g.shape(), f);
        })};
    }

private:
    Tensor map(Kernels kernels, const Tensor& x) const {
        auto each = [&]<class T>() {
            auto f = [m = math](T v) { return static_cast<T>(m.value(v)); };
            return is_reference(kernels) ? kernels::map_unary_reference<T>(x, f) : kernels::map_unary<T>(x, f);
        };
        if constexpr (Math::dtypes == DTypes::KeepIntegers) return dispatch_all(x.dtype(), each);
        else return dispatch(x.dtype(), each);
    }
};

template <class Math>
Tensor elementwise(Math math, const SourceLocation& loc, const Tensor& x) {
    return detail::run_op(Elementwise<Math>{std::move(math)}, loc, x);
}

// A derivative that is piecewise constant (relu's step, abs's sign): f(s) per element, with no
// history, since its own derivative is 0 almost everywhere (also f'' in FirstDerivative).
template <class F>
Tensor piecewise_constant(const Tensor& s, F f) {
    const Tensor v = s.detach();
    return dispatch(v.dtype(), [&]<class T>() { return kernels::map_unary<T>(v, [f](T e) { return static_cast<T>(f(e)); }); });
}

// f'(x) as an elementwise op whose own derivative is f''(x): the first derivative of an activation
// that the public differentiable ops cannot spell (gelu needs erf), so that the activation's spec
// can be differentiated once more. `Form` gives derivative_name, first(x) and second(x); f'' is
// taken as a constant (no third derivative).
template <class Form>
struct FirstDerivative {
    static constexpr const char* name = Form::derivative_name;
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    Form form;
    template <class T> T value(T v) const { return form.first(v); }
    template <class T> T grad(T g, T v) const { return g * form.second(v); }
    Tensor derivative(const Tensor& g, const Tensor& v) const {
        return g * piecewise_constant(v, [f = form](auto e) { return f.second(e); });
    }
};

template <class Form>
Tensor first_derivative(Form form, const Tensor& x) {
    return elementwise(FirstDerivative<Form>{std::move(form)}, SourceLocation::current(), x);
}

// ---------------------------------------------------------------- the formulas

// relu'(x) = [x > 0], so 0 at 0 (as PyTorch); y > 0 exactly when x > 0. NaN passes through, and
// so does its gradient (PyTorch's threshold_backward zeroes only where y <= 0).
struct Relu {
    static constexpr const char* name = "relu";
    static constexpr const char* gradient = "dx = g ⊙ [x > 0] (so relu'(0) = 0), computed as g ⊙ [y > 0]; where y is NaN, dx = "
        "g (as PyTorch)";
    static constexpr DTypes dtypes = DTypes::KeepIntegers;
    static constexpr Saves saves = Saves::Output;
    template <class T> T value(T v) const { return v < 0 ? T(0) : v; }
    template <class T> T grad(T g, T y) const { return y <= 0 ? T(0) : g; }
    Tensor derivative(const Tensor& g, const Tensor& y) const { return g * piecewise_constant(y, [](auto v) { return v <= 0 ? 0 : 1; }); }
};

// sigmoid' = y (1 - y)
struct Sigmoid {
    static constexpr const char* name = "sigmoid";
    static constexpr const char* gradient = "dx = g ⊙ y ⊙ (1 − y)";
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Output;
    template <class T> T value(T v) const { return T(1) / (T(1) + std::exp(-v)); }
    template <class T> T grad(T g, T y) const { return g * y * (T(1) - y); }
    Tensor derivative(const Tensor& g, const Tensor& y) const { return g * (y * (1.0 - y)); }
    kernels::ActivationKernel vectorised() const { return {kernels::Activation::Sigmoid}; }
};

// tanh' = 1 - y^2
struct Tanh {
    static constexpr const char* name = "tanh";
    static constexpr const char* gradient = "dx = g ⊙ (1 − y²)";
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Output;
    template <class T> T value(T v) const { return std::tanh(v); }
    template <class T> T grad(T g, T y) const { return g * (T(1) - y * y); }
    Tensor derivative(const Tensor& g, const Tensor& y) const { return g * (1.0 - y * y); }
    kernels::ActivationKernel vectorised() const { return {kernels::Activation::Tanh}; }
};

// exp' = y
struct Exp {
    static constexpr const char* name = "exp";
    static constexpr const char* gradient = "dx = g ⊙ y";
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Output;
    template <class T> T value(T v) const { return std::exp(v); }
    template <class T> T grad(T g, T y) const { return g * y; }
    Tensor derivative(const Tensor& g, const Tensor& y) const { return g * y; }
    kernels::ActivationKernel vectorised() const { return {kernels::Activation::Exp}; }
};

// log' = 1 / x
struct Log {
    static constexpr const char* name = "log";
    static constexpr const char* gradient = "dx = g / x";
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Input;
    template <class T> T value(T v) const { return std::log(v); }
    template <class T> T grad(T g, T v) const { return g / v; }
    Tensor derivative(const Tensor& g, const Tensor& v) const { return g / v; }
    kernels::ActivationKernel vectorised() const { return {kernels::Activation::Log}; }
};

// sqrt' = 1 / (2 y)
struct Sqrt {
    static constexpr const char* name = "sqrt";
    static constexpr const char* gradient = "dx = g / (2 y)";
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Output;
    template <class T> T value(T v) const { return std::sqrt(v); }
    template <class T> T grad(T g, T y) const { return g / (T(2) * y); }
    Tensor derivative(const Tensor& g, const Tensor& y) const { return g / (2.0 * y); }
};

// (x^p)' = p x^(p-1), and 0 for p = 0 everywhere, 0 included (as PyTorch), where p x^(p-1) is 0 * inf.
Tensor pow_derivative(double exponent, const Tensor& g, const Tensor& v) {
    if (exponent == 0) return zeros_like(g);
    return g * (exponent * pow(v, exponent - 1));
}

// The square as a product, as PyTorch computes it: the exact square rounded once, in a loop
// that vectorises (std::pow per element does not: 10 against 0.1 ms on 786k floats).
struct Square {
    static constexpr const char* name = "pow";
    static constexpr const char* gradient = "dx = g ⊙ p x^{p−1}; 0 for p = 0 (also at x = 0)";
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Input;
    template <class T> T value(T v) const { return v * v; }
    template <class T> T grad(T g, T v) const { return g * T(2) * v; }
    Tensor derivative(const Tensor& g, const Tensor& v) const { return pow_derivative(2.0, g, v); }
};

// x^0.5 and x^-0.5 are the square root and its reciprocal, as PyTorch computes them: sqrt(-0.0)
// is -0.0 and 1/sqrt(-0.0) is -inf, both NaN at -inf, where std::pow gives +0, +inf and 0.
template <bool Reciprocal>
struct SquareRoot {
    static constexpr const char* name = "pow";
    static constexpr const char* gradient = "dx = g ⊙ p x^{p−1}; 0 for p = 0 (also at x = 0)";
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Input;
    template <class T> T value(T v) const { return Reciprocal ? T(1) / std::sqrt(v) : std::sqrt(v); }
    template <class T> T grad(T g, T v) const {
        return Reciprocal ? g * T(-0.5) * std::pow(v, T(-1.5)) : g * T(0.5) / std::sqrt(v);
    }
    Tensor derivative(const Tensor& g, const Tensor& v) const { return pow_derivative(Reciprocal ? -0.5 : 0.5, g, v); }
};

struct Power {
    static constexpr const char* name = "pow";
    static constexpr const char* gradient = "dx = g ⊙ p x^{p−1}; 0 for p = 0 (also at x = 0)";
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Input;
    double exponent;
    TypedScalar p{exponent}, p_minus_1{exponent - 1};
    template <class T> T value(T v) const { return std::pow(v, p.as<T>()); }
    template <class T> T grad(T g, T v) const { return exponent == 0 ? T(0) : g * p.as<T>() * std::pow(v, p_minus_1.as<T>()); }
    Tensor derivative(const Tensor& g, const Tensor& v) const { return pow_derivative(exponent, g, v); }
};

// |x|' = sign(x), 0 at 0 (as PyTorch's sgn).
struct Abs {
    static constexpr const char* name = "abs";
    static constexpr const char* gradient = "dx = g ⊙ sign(x), 0 at x = 0";
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
    static constexpr const char* gradient = Closed ? "dx = g ⊙ [lo ≤ x ≤ hi] (bounds included, as PyTorch's clamp)"
                                                  : "dx = g ⊙ [lo < x < hi] (0 on the bounds, g at NaN, as PyTorch's hardtanh)";
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
    static constexpr const char* gradient = "dx = g for x > 0, a g otherwise (a at 0)";
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

// elu' = alpha e^x for x <= 0, 1 otherwise (NaN included: its gradient passes, as PyTorch's
// elu_backward); elu'' = alpha e^x for x < 0, 0 otherwise (0 at 0, as PyTorch's double backward).
struct EluDerivative {
    static constexpr const char* derivative_name = "elu_derivative";
    double alpha;
    template <class T> T first(T v) const { return v <= 0 ? T(alpha) * std::exp(v) : T(1); }
    template <class T> T second(T v) const { return v < 0 ? T(alpha) * std::exp(v) : T(0); }
};

// elu(-0.0) is +0, as PyTorch's (alpha expm1(-0) is -0; adding +0 turns only that zero).
struct Elu {
    static constexpr const char* name = "elu";
    static constexpr const char* gradient = "dx = g α eˣ for x ≤ 0, g otherwise (NaN included)";
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    double alpha;
    template <class T> T value(T v) const { return v <= 0 ? T(alpha) * std::expm1(v) + T(0) : v; }
    template <class T> T grad(T g, T v) const { return v <= 0 ? g * T(alpha) * std::exp(v) : g; }
    Tensor derivative(const Tensor& g, const Tensor& v) const { return g * first_derivative(EluDerivative{alpha}, v); }
    kernels::ActivationKernel vectorised() const { return {kernels::Activation::Elu, static_cast<float>(alpha)}; }
};

// Exact: y = x Phi(x), y' = Phi(x) + x phi(x), y'' = 2 phi(x) - x^2 phi(x) (so +0 where phi
// underflows, as PyTorch's gelu double backward). float32's y is +0 wherever it is 0 (x = -0.0,
// x <= -10), as PyTorch's float32 kernel gives; float64's keeps the sign, as PyTorch's does.
// Tanh: u = sqrt(2/pi) (x + 0.044715 x^3), y = x (1 + tanh u) / 2,
// y' = (1 + tanh u) / 2 + x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 0.044715 x^2) / 2,
// y'' = (1 - t^2) u' + x (1 - t^2) (u'' - 2 t u'^2) / 2, u' = c (1 + 3 k x^2), u'' = 6 c k x.
constexpr double kSqrt1_2 = 0.70710678118654752440, kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588, kCubic = 0.044715;

// An activation whose derivative the public ops cannot spell (gelu needs erf), from its form's
// value and its first and second derivatives per element: the fused backward is g f'(x), and the
// spec is g times first_derivative, which is itself differentiable once more.
template <class Form>
struct ByDerivatives {
    static constexpr const char* name = Form::name;
    static constexpr const char* gradient = Form::gradient;
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    template <class T> T value(T v) const { return Form::value(v); }
    template <class T> T grad(T g, T v) const { return g * Form::first(v); }
    Tensor derivative(const Tensor& g, const Tensor& v) const { return g * first_derivative(Form{}, v); }
    kernels::ActivationKernel vectorised() const { return {Form::kernel}; }
};

struct GeluExactForm {
    static constexpr const char* name = "gelu";
    static constexpr const char* gradient = "dx = g (Φ(x) + x φ(x)), φ(x) = e^{−x²/2}/√(2π)";
    static constexpr const char* derivative_name = "gelu_derivative";
    static constexpr kernels::Activation kernel = kernels::Activation::Gelu;
    template <class T> static T value(T v) {
        const T y = T(0.5) * v * (T(1) + std::erf(v * T(kSqrt1_2)));
        if constexpr (std::is_same_v<T, float>) return y + T(0);
        else return y;
    }
    template <class T> static T first(T v) {
        return T(0.5) * (T(1) + std::erf(v * T(kSqrt1_2))) + v * T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
    }
    template <class T> static T second(T v) {
        const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
        return T(2) * pdf - v * v * pdf;
    }
};

struct GeluTanhForm {
    static constexpr const char* name = "gelu";
    static constexpr const char* gradient = "dx = g ((1 + tanh u)/2 + x (1 − tanh² u) √(2/π)(1 + 3·0.044715 x²)/2)";
    static constexpr const char* derivative_name = "gelu_derivative";
    static constexpr kernels::Activation kernel = kernels::Activation::GeluTanh;
    template <class T> static T inner_tanh(T v) { return std::tanh(T(kSqrt2OverPi) * (v + T(kCubic) * v * v * v)); }
    template <class T> static T value(T v) { return T(0.5) * v * (T(1) + inner_tanh(v)); }
    template <class T> static T first(T v) {
        const T t = inner_tanh(v);
        return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * T(kSqrt2OverPi) * (T(1) + T(3 * kCubic) * v * v);
    }
    template <class T> static T second(T v) {
        const T t = inner_tanh(v);
        const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kCubic) * v * v);
        const T ddu = T(6 * kSqrt2OverPi * kCubic) * v;
        return (T(1) - t * t) * du + T(0.5) * v * (T(1) - t * t) * (ddu - T(2) * t * du * du);
    }
};

using GeluExact = ByDerivatives<GeluExactForm>;
using GeluTanh = ByDerivatives<GeluTanhForm>;

// silu' = s (1 + x (1 - s)), s = sigmoid(x).
struct Silu {
    static constexpr const char* name = "silu";
    static constexpr const char* gradient = "dx = g σ(x)(1 + x (1 − σ(x)))";
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    template <class T> T value(T v) const { return v / (T(1) + std::exp(-v)); }
    template <class T> T grad(T g, T v) const {
        const T s = T(1) / (T(1) + std::exp(-v));
        return g * s * (T(1) + v * (T(1) - s));
    }
    Tensor derivative(const Tensor& g, const Tensor& v) const {
        const Tensor s = sigmoid(v);
        return g * (s * (1.0 + v * (1.0 - s)));
    }
    kernels::ActivationKernel vectorised() const { return {kernels::Activation::Silu}; }
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
    static constexpr const char* gradient = "dx = 0 for x < −3, g (x/3 + 1/2) for −3 ≤ x < 3, g from 3 on (PyTorch's subgradients)";
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
    static constexpr const char* gradient = "dx = g/6 for −3 < x < 3, 0 elsewhere, the bounds included (PyTorch's "
        "hardsigmoid_backward)";
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

// ---------------------------------------------------------------- the ops

Tensor relu(const Tensor& x, SourceLocation loc) { return elementwise(Relu{}, loc, x); }
bool detail::made_by_relu(const Tensor& x) { return producer<Elementwise<Relu>>(x) != nullptr; }

Tensor relu(Tensor&& x, SourceLocation loc) {
    if (Tensor fused = detail::relu_of_batch_norm(x, loc); fused.defined()) return fused;
    return elementwise(Relu{}, loc, x);
}
Tensor sigmoid(const Tensor& x, SourceLocation loc) { return elementwise(Sigmoid{}, loc, x); }
Tensor tanh(const Tensor& x, SourceLocation loc) { return elementwise(Tanh{}, loc, x); }
Tensor exp(const Tensor& x, SourceLocation loc) { return elementwise(Exp{}, loc, x); }
Tensor log(const Tensor& x, SourceLocation loc) { return elementwise(Log{}, loc, x); }
Tensor sqrt(const Tensor& x, SourceLocation loc) { return elementwise(Sqrt{}, loc, x); }
Tensor pow(const Tensor& x, double exponent, SourceLocation loc) {
    if (exponent == 2) return elementwise(Square{}, loc, x);
    if (exponent == 0.5) return elementwise(SquareRoot<false>{}, loc, x);
    if (exponent == -0.5) return elementwise(SquareRoot<true>{}, loc, x);
    return elementwise(Power{exponent}, loc, x);
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
Tensor elu(const Tensor& x, double alpha, SourceLocation loc) { return elementwise(Elu{alpha}, loc, x); }
Tensor gelu(const Tensor& x, GeluApproximate approximate, SourceLocation loc) {
    return approximate == GeluApproximate::Tanh ? elementwise(GeluTanh{}, loc, x) : elementwise(GeluExact{}, loc, x);
}
Tensor silu(const Tensor& x, SourceLocation loc) { return elementwise(Silu{}, loc, x); }
Tensor hardswish(const Tensor& x, SourceLocation loc) { return elementwise(Hardswish{}, loc, x); }
Tensor hardsigmoid(const Tensor& x, SourceLocation loc) { return elementwise(Hardsigmoid{}, loc, x); }

// Tensor's member spellings.
Tensor Tensor::pow(double exponent) const { return tapegrad::pow(*this, exponent); }
Tensor Tensor::abs() const { return tapegrad::abs(*this); }
Tensor Tensor::exp() const { return tapegrad::exp(*this); }
Tensor Tensor::log() const { return tapegrad::log(*this); }
Tensor Tensor::sqrt() const { return tapegrad::sqrt(*this); }
Tensor Tensor::sigmoid() const { return tapegrad::sigmoid(*this); }
Tensor Tensor::tanh() const { return tapegrad::tanh(*this); }
Tensor Tensor::relu() const { return tapegrad::relu(*this); }
Tensor Tensor::clamp(std::optional<double> min, std::optional<double> max) const { return tapegrad::clamp(*this, min, max); }
Tensor Tensor::clamp_min(double min) const { return tapegrad::clamp(*this, min, std::nullopt); }
Tensor Tensor::clamp_max(double max) const { return tapegrad::clamp(*this, std::nullopt, max); }

}  // namespace tapegrad
