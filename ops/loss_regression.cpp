// The regression losses and kl_div: elementwise losses of an input and a target of one shape
// (ops/detail/loss.hpp), each with its formulas and its derivatives in differentiable ops.
#include <cmath>

#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/detail/loss.hpp"
#include "ops/loss.hpp"

namespace tapegrad {
namespace {

using detail::constant_map;
using detail::elementwise_loss;

// The losses of the difference d = x - t leave their target derivative out: dt is dx with x and
// t swapped (their derivatives are odd in d), as PyTorch computes it.

// mse: dx = 2 (x - t) gw
struct Mse {
    static constexpr const char* name = "mse_loss";
    static constexpr bool promotes = true;
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "mse_loss",
        .forward = "ℓ = d²",
        .gradient = "dx = 2 d gw, dt = −dx",
        .shapes = "x, t same shape"};
    kernels::MseFormula formula;
    Tensor input_derivative(const Tensor& gw, const Tensor& x, const Tensor& t, const Tensor&) const { return 2.0 * (x - t) * gw; }
};

// l1: dx = sign(x - t) gw, dt = -dx; second derivatives 0. As PyTorch's abs(x - t), it keeps
// d = x - t and not its operands.
struct L1 {
    static constexpr const char* name = "l1_loss";
    static constexpr bool promotes = true;
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "l1_loss",
        .forward = "ℓ = |d|",
        .gradient = "dx = sign(d) gw (0 at d = 0), dt = −dx",
        .shapes = "x, t same shape"};
    kernels::L1Formula formula;
    Tensor difference_derivative(const Tensor& gw, const Tensor& d) const {
        return gw * constant_map(d, [](auto v) { return kernels::sign_of(v); });
    }
};

// smooth_l1_loss's row, for both its definitions.
constexpr detail::DerivativeDoc kSmoothL1Doc = {
    .section = "Softmax and losses",
    .op = "smooth_l1_loss (β > 0; β = 0 is l1_loss)",
    .forward = "ℓ = d²/(2β) for |d| < β, |d| − β/2 elsewhere",
    .gradient = "dx = gw d/β for |d| < β, gw sign(d) elsewhere; dt = −dx",
    .shapes = "x, t same shape"};

// smooth_l1_loss with beta = 0 is l1_loss, as PyTorch, under its own name.
struct SmoothL1Beta0 : L1 {
    static constexpr const char* name = "smooth_l1_loss";
    static constexpr detail::DerivativeDoc doc = kSmoothL1Doc;
};

// The smooth losses share their shape: with d = x - t and m = [|d| < c] (a constant), dx = gw (m d
// scale + (1 - m) sign(d) c scale), so that the second derivative is gw m scale, PyTorch's
// smooth_l1_loss_double_backward (c = beta, scale = 1/beta) and huber_loss_double_backward
// (c = delta, scale = 1).
Tensor smooth_derivative(const Tensor& gw, const Tensor& x, const Tensor& t, double c, double scale) {
    const Tensor d = x - t;
    const Tensor inside = constant_map(d, [c](auto v) { return std::abs(v) < c ? 1.0 : 0.0; });
    const Tensor outside = constant_map(d, [c, scale](auto v) { return std::abs(v) < c ? 0.0 : kernels::sign_of(v) * c * scale; });
    return gw * (d * inside * scale + outside);
}

struct SmoothL1 {
    static constexpr const char* name = "smooth_l1_loss";
    static constexpr bool promotes = true;
    static constexpr detail::DerivativeDoc doc = kSmoothL1Doc;
    kernels::SmoothL1Formula formula;
    Tensor input_derivative(const Tensor& gw, const Tensor& x, const Tensor& t, const Tensor&) const {
        return smooth_derivative(gw, x, t, formula.beta, 1.0 / formula.beta);
    }
};

struct Huber {
    static constexpr const char* name = "huber_loss";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "huber_loss (δ > 0)",
        .forward = "ℓ = d²/2 for |d| < δ, δ (|d| − δ/2) elsewhere",
        .gradient = "dx = gw d for |d| < δ, gw δ sign(d) elsewhere; dt = −dx",
        .shapes = "x, t same shape"};
    kernels::HuberFormula formula;
    Tensor input_derivative(const Tensor& gw, const Tensor& x, const Tensor& t, const Tensor&) const {
        return smooth_derivative(gw, x, t, formula.delta, 1.0);
    }
};

// kl_div: dx = -t gw (-e^t gw with log_target); dt = (log t + 1 - x) gw, written log t + t/t - x
// so that it is NaN where t = 0 as PyTorch's (xlogy's derivative), or e^t (t - x + 1) gw.
struct KlDiv {
    static constexpr const char* name = "kl_div";
    static constexpr bool promotes = true;
    static constexpr bool input_for_target_only = true;  // dx = -t gw: x is kept only for dt
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "kl_div",
        .forward = "ℓ = t (ln t − x) (0 where t = 0); log_target: ℓ = eᵗ (t − x)",
        .gradient = "dx = −t gw (−eᵗ gw); dt = (ln t + 1 − x) gw, NaN where t = 0 as PyTorch's xlogy (eᵗ (t − x + 1) "
                    "gw)",
        .shapes = "x, t same shape"};
    kernels::KlDivFormula formula;
    Tensor input_derivative(const Tensor& gw, const Tensor&, const Tensor& t, const Tensor&) const {
        return -(formula.log_target ? exp(t) : t) * gw;
    }
    Tensor target_derivative(const Tensor& gw, const Tensor& x, const Tensor& t, const Tensor&) const {
        if (formula.log_target) return exp(t) * (t - x + 1.0) * gw;
        return (log(t) + t / t - x) * gw;
    }
};

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction, SourceLocation loc) {
    return elementwise_loss(Mse{}, loc, input, target, reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, SourceLocation loc) {
    return elementwise_loss(L1{}, loc, input, target, reduction);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossOptions& o, SourceLocation loc) {
    if (!(o.beta >= 0))
        throw std::invalid_argument("smooth_l1_loss: beta must be >= 0 (0 is l1_loss), got " + std::to_string(o.beta));
    if (o.beta == 0) return elementwise_loss(SmoothL1Beta0{}, loc, input, target, o.reduction);
    return elementwise_loss(SmoothL1{.formula = {o.beta}}, loc, input, target, o.reduction);
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossOptions& o, SourceLocation loc) {
    if (!(o.delta > 0)) throw std::invalid_argument("huber_loss: delta must be > 0, got " + std::to_string(o.delta));
    return elementwise_loss(Huber{.formula = {o.delta}}, loc, input, target, o.reduction);
}

Tensor kl_div(const Tensor& input, const Tensor& target, const KlDivOptions& o, SourceLocation loc) {
    for (const Tensor* t : {&input, &target})
        if (t->defined() && !is_floating_point(t->dtype()))
            throw std::invalid_argument("kl_div: integer inputs are not supported (" + describe(*t) + "), as in PyTorch; convert with .to(tg::kFloat32)");
    return elementwise_loss(KlDiv{.formula = {o.log_target}}, loc, input, target, o.reduction, /*takes_batchmean=*/true);
}

}  // namespace tapegrad
