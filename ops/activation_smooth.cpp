// The smooth elementwise ops: sigmoid, tanh, exp, log, sqrt, pow, elu, gelu and silu.
#include "ops/activation.hpp"

#include <cmath>

#include "ops/detail/elementwise_op.hpp"
#include "ops/kernels/loss_elementwise.hpp"

namespace tapegrad {
namespace {

// The machinery of ops/detail/elementwise_op.hpp (Elementwise, Saves, TypedScalar, ...).
using namespace detail;

// sigmoid' = y (1 - y)
struct Sigmoid {
    static constexpr const char* name = "sigmoid";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "sigmoid",
        .forward = "y = 1 / (1 + e^{−x})",
        .gradient = "dx = g ⊙ y ⊙ (1 − y)",
        .shapes = "same"};
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
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "tanh",
        .forward = "y = tanh x",
        .gradient = "dx = g ⊙ (1 − y²)",
        .shapes = "same"};
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
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "exp",
        .forward = "y = e^x",
        .gradient = "dx = g ⊙ y",
        .shapes = "same"};
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
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "log",
        .forward = "y = ln x",
        .gradient = "dx = g / x",
        .shapes = "same"};
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
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "sqrt",
        .forward = "y = √x",
        .gradient = "dx = g / (2 y)",
        .shapes = "same"};
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Output;
    template <class T> T value(T v) const { return std::sqrt(v); }
    template <class T> T grad(T g, T y) const { return g / (T(2) * y); }
    Tensor derivative(const Tensor& g, const Tensor& y) const { return g / (2.0 * y); }
};

// The three forms of pow with a scalar exponent below share one row.
constexpr detail::DerivativeDoc kPowDoc = {
    .section = "Activations (elementwise)",
    .op = "pow (scalar p)",
    .forward = "y = x^p",
    .gradient = "dx = g ⊙ p x^{p−1}; 0 for p = 0 (also at x = 0)",
    .shapes = "same"};

// (x^p)' = p x^(p-1), and 0 for p = 0 everywhere, 0 included (as PyTorch), where p x^(p-1) is 0 * inf.
Tensor pow_derivative(double exponent, const Tensor& g, const Tensor& v) {
    if (exponent == 0) return zeros_like(g);
    return g * (exponent * pow(v, exponent - 1));
}

// The square as a product, as PyTorch computes it: the exact square rounded once, in a loop
// that vectorises (std::pow per element does not: 10 against 0.1 ms on 786k floats).
struct Square {
    static constexpr const char* name = "pow";
    static constexpr detail::DerivativeDoc doc = kPowDoc;
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
    static constexpr detail::DerivativeDoc doc = kPowDoc;
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
    static constexpr detail::DerivativeDoc doc = kPowDoc;
    static constexpr DTypes dtypes = DTypes::PromoteIntegers;
    static constexpr Saves saves = Saves::Input;
    double exponent;
    TypedScalar p{exponent}, p_minus_1{exponent - 1};
    template <class T> T value(T v) const { return std::pow(v, p.as<T>()); }
    template <class T> T grad(T g, T v) const { return exponent == 0 ? T(0) : g * p.as<T>() * std::pow(v, p_minus_1.as<T>()); }
    Tensor derivative(const Tensor& g, const Tensor& v) const { return pow_derivative(exponent, g, v); }
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
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "elu (α)",
        .forward = "y = x for x > 0, α (eˣ − 1) otherwise (+0 at −0.0, as PyTorch)",
        .gradient = "dx = g α eˣ for x ≤ 0, g otherwise (NaN included)",
        .shapes = "same"};
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
    static constexpr detail::DerivativeDoc doc = Form::doc;
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    template <class T> T value(T v) const { return Form::value(v); }
    template <class T> T grad(T g, T v) const { return g * Form::first(v); }
    Tensor derivative(const Tensor& g, const Tensor& v) const { return g * first_derivative(Form{}, v); }
    kernels::ActivationKernel vectorised() const { return {Form::kernel}; }
};

struct GeluExactForm {
    static constexpr const char* name = "gelu";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "gelu (exact)",
        .forward = "y = x Φ(x), Φ(x) = (1 + erf(x/√2))/2",
        .gradient = "dx = g (Φ(x) + x φ(x)), φ(x) = e^{−x²/2}/√(2π)",
        .shapes = "same"};
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
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "gelu (tanh)",
        .forward = "u = √(2/π)(x + 0.044715 x³), y = x (1 + tanh u)/2",
        .gradient = "dx = g ((1 + tanh u)/2 + x (1 − tanh² u) √(2/π)(1 + 3·0.044715 x²)/2)",
        .shapes = "same"};
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
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "silu",
        .forward = "y = x σ(x)",
        .gradient = "dx = g σ(x)(1 + x (1 − σ(x)))",
        .shapes = "same"};
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

// softplus' = e^(beta x) / (e^(beta x) + 1) = sigmoid(beta x), and 1 where beta x > threshold (as
// PyTorch's softplus_backward); softplus'' = beta s (1 - s) below the threshold, 0 above, which the
// spec's sigmoid gives. Both pieces are computed without overflow (-log_sigmoid(-beta x) for
// ln(1 + e^(beta x))), so that an infinite threshold gives the exact function for every x.
struct Softplus {
    static constexpr const char* name = "softplus";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "softplus (β, threshold)",
        .forward = "y = ln(1 + e^{βx})/β; y = x where βx > threshold",
        .gradient = "dx = g σ(βx) = g e^{βx}/(e^{βx} + 1); dx = g where βx > threshold",
        .shapes = "same"};
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    double beta, threshold;
    TypedScalar typed_beta{beta}, typed_threshold{threshold};
    template <class T> T value(T v) const {
        const T b = typed_beta.as<T>();
        // + 0 turns the -0 of an underflowed tail (v = -inf, or beta v below float's range) into
        // PyTorch's +0.
        return v * b > typed_threshold.as<T>() ? v : -kernels::log_sigmoid(-v * b) / b + T(0);
    }
    template <class T> T grad(T g, T v) const {
        const T b = typed_beta.as<T>();
        return v * b > typed_threshold.as<T>() ? g : g / (T(1) + std::exp(-v * b));
    }
    // At beta x = threshold exactly the first derivative is sigmoid's value, held constant: PyTorch's
    // double backward differentiates only where beta x < threshold.
    Tensor derivative(const Tensor& g, const Tensor& v) const {
        const Tensor s = sigmoid(v * beta);
        const Tensor above = side_of_threshold(v, 1), below = side_of_threshold(v, -1);
        return g * (above + below * s + (1.0 - above - below) * s.detach());
    }

private:
    // 1 where beta x is above (side 1) or below (side -1) the threshold, in x's precision; else 0.
    Tensor side_of_threshold(const Tensor& v, int side) const {
        return piecewise_constant(v, [b = beta, t = threshold, side](auto e) {
            using T = decltype(e);
            const T bx = e * static_cast<T>(b);
            return (side > 0 ? bx > static_cast<T>(t) : bx < static_cast<T>(t)) ? 1.0 : 0.0;
        });
    }
};

}  // namespace

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
Tensor elu(const Tensor& x, double alpha, SourceLocation loc) { return elementwise(Elu{alpha}, loc, x); }
Tensor gelu(const Tensor& x, GeluApproximate approximate, SourceLocation loc) {
    return approximate == GeluApproximate::Tanh ? elementwise(GeluTanh{}, loc, x) : elementwise(GeluExact{}, loc, x);
}
Tensor silu(const Tensor& x, SourceLocation loc) { return elementwise(Silu{}, loc, x); }
Tensor softplus(const Tensor& x, double beta, double threshold, SourceLocation loc) {
    return elementwise(Softplus{beta, threshold}, loc, x);
}

// Tensor's member spellings.
Tensor Tensor::pow(double exponent) const { return tapegrad::pow(*this, exponent); }
Tensor Tensor::exp() const { return tapegrad::exp(*this); }
Tensor Tensor::log() const { return tapegrad::log(*this); }
Tensor Tensor::sqrt() const { return tapegrad::sqrt(*this); }
Tensor Tensor::sigmoid() const { return tapegrad::sigmoid(*this); }
Tensor Tensor::tanh() const { return tapegrad::tanh(*this); }

}  // namespace tapegrad
