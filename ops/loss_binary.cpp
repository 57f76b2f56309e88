// binary_cross_entropy and binary_cross_entropy_with_logits: elementwise losses
// (ops/detail/loss.hpp) with PyTorch 1.13's formulas, its saturation guards and its second
// derivatives.
#include <cmath>

#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/detail/loss.hpp"
#include "ops/loss.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

constexpr double kEpsilon = 1e-12;  // PyTorch's EPSILON in binary_cross_entropy's derivatives

// binary_cross_entropy's input derivative as an op of its own, gw (x - t) / max(x (1 - x), 1e-12),
// so that its derivatives are PyTorch's binary_cross_entropy double backward, which bounds the
// denominators differently (by adding 1e-12) and so stays finite at x = 0 and 1:
//   d/dgw = (x - t) / ((x + ε)(1 - x + ε)),  d/dx = gw (x² - 2xt + t) / ((x + ε)² (1 - x + ε)²),
//   d/dt = -gw / max(x (1 - x), ε).
struct BinaryCrossEntropyInputGradient {
    static constexpr const char* name = "binary_cross_entropy_backward";
    static constexpr DTypes dtypes = DTypes::Floating;
    SavedTensor grad, input, target;

    Tensor forward(const OpContext& ctx, const Tensor& gw, const Tensor& x, const Tensor& t) {
        const kernels::BinaryCrossEntropyFormula formula;
        const Tensor derivative = dispatch(x.dtype(), [&]<class T>() {
            return kernels::map_binary<T>(x.detach(), t.detach(), x.shape(), [formula](T a, T b) { return formula.d_input(a, b, T(1)); });
        });
        if (ctx.recording) {
            grad = SavedTensor(gw);
            input = SavedTensor(x);
            target = SavedTensor(t);
        }
        return gw.detach() * derivative;
    }

    std::vector<Tensor> backward(const Tensor& gg, const GradMask& needs) const {
        const Tensor gw = grad.unpack(), x = input.unpack(), t = target.unpack();
        const Tensor x_eps = x + kEpsilon, one_minus_x_eps = 1.0 - x + kEpsilon;
        Tensor d_grad, d_input, d_target;
        if (needs[0]) d_grad = gg * (x - t) / (x_eps * one_minus_x_eps);
        if (needs[1]) d_input = gg * gw * (x * x - 2.0 * x * t + t) / (pow(x_eps, 2.0) * pow(one_minus_x_eps, 2.0));
        if (needs[2]) d_target = -(gg * gw) / clamp((1.0 - x) * x, kEpsilon, std::nullopt);
        return {d_grad, d_input, d_target};
    }
};

// dx = gw (x - t) / max(x (1 - x), 1e-12) (the op above), dt = -logit(x) gw.
struct BinaryCrossEntropy {
    static constexpr const char* name = "binary_cross_entropy";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "binary_cross_entropy (weight w)",
        .forward = "ℓ = −w (t max(ln x, −100) + (1 − t) max(ln(1 − x), −100)); x must lie in [0, 1]",
        .gradient = "dx = w gw (x − t) / max(x (1 − x), 10⁻¹²) (finite at x = 0 and 1); dt = −w gw ln(x / (1 − x))",
        .shapes = "x, t same shape; w broadcasts to x"};
    kernels::BinaryCrossEntropyFormula formula;

    // PyTorch refuses probabilities outside [0, 1], NaN included.
    void validate(const Tensor& x) const {
        const int64_t bad = dispatch(x.dtype(), [&]<class T>() { return kernels::first_outside_unit_interval(x.data<T>(), x.numel()); });
        if (bad < 0) return;
        throw std::invalid_argument("binary_cross_entropy: every element of the input must be a probability in [0, 1], but element " +
                                    std::to_string(bad) + " is " + std::to_string(x.detach().reshape({-1}).at({bad})) + " (input " +
                                    describe(x) + "); apply sigmoid first, or pass the logits to binary_cross_entropy_with_logits");
    }
    Tensor input_derivative(const Tensor& gw, const Tensor& x, const Tensor& t, const Tensor&) const {
        return detail::run_op(BinaryCrossEntropyInputGradient{}, SourceLocation::current(), gw, x, t);
    }
    Tensor target_derivative(const Tensor& gw, const Tensor& x, const Tensor&, const Tensor&) const {
        return (log(1.0 - x) - log(x)) * gw;  // -logit(x): +0 at x = 1/2, and its derivative -inf at 0 and 1, as PyTorch's
    }
};

// With p = pos_weight: dx = ((p t + 1 - t) sigmoid(x) - p t) gw, dt = (p softplus(-x) - softplus(x)) gw
// (PyTorch's log_sigmoid(-x) - p log_sigmoid(x)); without: dx = (sigmoid(x) - t) gw, dt = -x gw.
struct BinaryCrossEntropyWithLogits {
    static constexpr const char* name = "binary_cross_entropy_with_logits";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "binary_cross_entropy_with_logits (weight w, pos_weight p)",
        .forward = "m = max(−x, 0); ℓ = w ((1 − t) x + (1 + (p − 1) t)(ln(e^{−m} + e^{−x−m}) + m))",
        .gradient = "dx = w gw ((p t + 1 − t) σ(x) − p t); dt = w gw (p softplus(−x) − softplus(x)), −x gw w without p",
        .shapes = "x, t same shape; w, p broadcast to x"};
    kernels::BinaryCrossEntropyWithLogitsFormula formula;

    Tensor input_derivative(const Tensor& gw, const Tensor& x, const Tensor& t, const Tensor& p) const {
        if (!p.defined()) return (sigmoid(x) - t) * gw;
        const Tensor pt = p * t;
        return (sigmoid(x) * (pt + 1.0 - t) - pt) * gw;
    }
    Tensor target_derivative(const Tensor& gw, const Tensor& x, const Tensor&, const Tensor& p) const {
        if (!p.defined()) return -x * gw;
        return (p * softplus(-x, 1.0, INFINITY) - softplus(x, 1.0, INFINITY)) * gw;
    }
};

}  // namespace

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BinaryCrossEntropyOptions& o, SourceLocation loc) {
    return detail::elementwise_loss(BinaryCrossEntropy{}, loc, input, target, o.reduction, false, o.weight);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BinaryCrossEntropyWithLogitsOptions& o, SourceLocation loc) {
    return detail::elementwise_loss(BinaryCrossEntropyWithLogits{.formula = {o.pos_weight.defined()}}, loc, input, target,
                                    o.reduction, false, o.weight, o.pos_weight);
}

}  // namespace tapegrad
