#include "ops/activation.hpp"

#include <cmath>

#include "engine/autograd.hpp"
#include "engine/profiler.hpp"
#include "ops/kernels/activation_reference.hpp"
#include "ops/kernels/elementwise.hpp"

namespace tapegrad {
namespace {

bool reference_path(const Tensor& x) { return x.dtype() == kFloat64 || use_reference_kernels(); }

// Which tensor the backward needs: the input (log, pow) or the output (relu, sigmoid, tanh, exp,
// sqrt, whose derivatives are cheapest in terms of y).
enum class Saves { Input, Output };

// An elementwise op: out = fwd(x). Its backward is one fused pass dx = bwd(g, s) over grad_output
// and the saved tensor s, never a chain of ops. The fast path keeps x's dense layout (row-major or
// channels-last) for the output and, through map_binary, for the gradient.
template <class Fwd, class Bwd>
Tensor unary_op(const char* op, const Tensor& x, Saves saves, Fwd fwd, Bwd bwd) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    Tensor out = dispatch(x.dtype(), [&]<class T>() {
        auto f = [fwd](T v) { return static_cast<T>(fwd(v)); };
        return reference_path(x) ? kernels::map_unary_reference<T>(x, f) : kernels::map_unary<T>(x, f);
    });
    if (!needs_grad({x})) return out;
    Tensor saved = saves == Saves::Input ? x.detach() : out.detach();
    return record(op, out, {x}, [saved, bwd](const Tensor& g, const GradMask&) {
        Tensor dx = dispatch(g.dtype(), [&]<class T>() {
            auto f = [bwd](T gv, T sv) { return static_cast<T>(bwd(gv, sv)); };
            return reference_path(g) ? kernels::map_pair_reference<T>(g, saved, f)
                                     : kernels::map_binary<T>(g, saved, g.shape(), f);
        });
        return std::vector<Tensor>{dx};
    }, {saved});
}

}  // namespace

// relu'(x) = [x > 0], so 0 at 0 (as PyTorch); y > 0 exactly when x > 0.
Tensor relu(const Tensor& x, std::source_location loc) {
    detail::OpScope scope("relu", loc);
    return unary_op(
        "relu", x, Saves::Output, [](auto v) { return v > 0 ? v : decltype(v)(0); },
        [](auto g, auto y) { return y > 0 ? g : decltype(g)(0); });
}

// sigmoid' = y (1 - y)
Tensor sigmoid(const Tensor& x) {
    return unary_op(
        "sigmoid", x, Saves::Output, [](auto v) { return decltype(v)(1) / (decltype(v)(1) + std::exp(-v)); },
        [](auto g, auto y) { return g * y * (decltype(y)(1) - y); });
}

// tanh' = 1 - y^2
Tensor tanh(const Tensor& x) {
    return unary_op(
        "tanh", x, Saves::Output, [](auto v) { return std::tanh(v); },
        [](auto g, auto y) { return g * (decltype(y)(1) - y * y); });
}

// exp' = y
Tensor exp(const Tensor& x) {
    return unary_op(
        "exp", x, Saves::Output, [](auto v) { return std::exp(v); }, [](auto g, auto y) { return g * y; });
}

// log' = 1 / x
Tensor log(const Tensor& x) {
    return unary_op(
        "log", x, Saves::Input, [](auto v) { return std::log(v); }, [](auto g, auto v) { return g / v; });
}

// sqrt' = 1 / (2 y)
Tensor sqrt(const Tensor& x) {
    return unary_op(
        "sqrt", x, Saves::Output, [](auto v) { return std::sqrt(v); },
        [](auto g, auto y) { return g / (decltype(y)(2) * y); });
}

// (x^p)' = p x^(p-1)
Tensor pow(const Tensor& x, double exponent) {
    return unary_op(
        "pow", x, Saves::Input, [exponent](auto v) { return std::pow(v, static_cast<decltype(v)>(exponent)); },
        [exponent](auto g, auto v) {
            using T = decltype(v);
            return g * static_cast<T>(exponent) * std::pow(v, static_cast<T>(exponent - 1));
        });
}

}  // namespace tapegrad
