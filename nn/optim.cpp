#include "nn/optim.hpp"

#include <cmath>
#include <stdexcept>
#include <utility>

#include "engine/autograd.hpp"
#include "nn/optim_update.hpp"

namespace tapegrad::nn {

using detail::update_parameter;

namespace {
// A single parameter list as one group with its options.
template <class Options>
std::vector<ParamGroup<Options>> one_group(std::vector<Tensor> params, const Options& options) {
    std::vector<ParamGroup<Options>> groups;
    groups.push_back({std::move(params), options});
    return groups;
}
}  // namespace

// ---------------------------------------------------------------- SGD

void SGDOptions::check(const OptionChecker& checker) const {
    checker.require(lr >= 0.0, "learning rate", lr);
    checker.require(momentum >= 0.0, "momentum", momentum);
    checker.require(weight_decay >= 0.0, "weight_decay", weight_decay);
    checker.require(dampening >= 0.0, "dampening", dampening);
    if (nesterov && (momentum <= 0.0 || dampening != 0.0))
        checker.fail("nesterov momentum requires a momentum > 0 and zero dampening");
}

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : SGD(one_group(std::move(params), options), options) {}

SGD::SGD(std::vector<Group> groups, SGDOptions defaults)
    : OptimizerWithOptions("SGD", std::move(groups), defaults, {"momentum_buffer"}) {}

std::vector<std::optional<double>> SGD::slot_start_values(std::size_t group) const {
    if (options(group).momentum == 0.0) return {std::nullopt};
    return {0.0};
}

Tensor SGD::step(LossClosure closure) {
    Tensor loss = evaluate(closure);
    const std::vector<ParamStep> steps = prepare_step();
    NoGradGuard no_grad;
    for (const ParamStep& step : steps) {
        const SGDOptions& o = options(step.group);
        const double lr = o.lr, mu = o.momentum, damp = o.dampening, wd = o.weight_decay;
        const bool nesterov = o.nesterov;
        // A new buffer takes the gradient as it is, without dampening (PyTorch's clone on first use).
        const bool first = step.new_state;
        dispatch(step.param.dtype(), [&]<class T>() {
            const T tlr = static_cast<T>(lr), twd = static_cast<T>(wd), tmu = static_cast<T>(mu),
                    tdamp = static_cast<T>(1.0 - damp);
            if (mu == 0.0) {
                update_parameter<T, 2>({step.param, step.grad}, [=](T& p, const T& gk) { p -= tlr * (gk + twd * p); });
                return;
            }
            update_parameter<T, 3>({step.param, step.grad, step.state[0]}, [=](T& p, const T& gk, T& b) {
                const T d = gk + twd * p;
                b = first ? d : tmu * b + tdamp * d;
                p -= tlr * (nesterov ? d + tmu * b : b);
            });
        });
    }
    commit_step(steps);
    return loss;
}

// ---------------------------------------------------------------- Adam, AdamW

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam(one_group(std::move(params), options), options) {}

Adam::Adam(std::vector<Group> groups, AdamOptions defaults) : Adam("Adam", std::move(groups), defaults, false) {}

Adam::Adam(const char* name, std::vector<Group> groups, AdamOptions defaults, bool decoupled)
    : OptimizerWithOptions(name, std::move(groups), defaults, {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
      decoupled_(decoupled) {}

namespace {
std::vector<ParamGroup<AdamOptions>> as_adam_groups(std::vector<ParamGroup<AdamWOptions>> groups) {
    std::vector<ParamGroup<AdamOptions>> out;
    for (auto& g : groups) {
        std::optional<AdamOptions> options;
        if (g.options) options = static_cast<AdamOptions>(*g.options);
        out.push_back({std::move(g.params), options});
    }
    return out;
}
}  // namespace

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(one_group(std::move(params), options), options) {}

AdamW::AdamW(std::vector<ParamGroup<AdamWOptions>> groups, AdamWOptions defaults)
    : Adam("AdamW", as_adam_groups(std::move(groups)), static_cast<AdamOptions>(defaults), true) {}

std::vector<std::optional<double>> Adam::slot_start_values(std::size_t group) const {
    return {0.0, 0.0, options(group).amsgrad ? std::optional<double>(0.0) : std::nullopt};
}

Tensor Adam::step(LossClosure closure) {
    Tensor loss = evaluate(closure);
    const std::vector<ParamStep> steps = prepare_step();
    NoGradGuard no_grad;
    for (const ParamStep& step : steps) {
        const AdamOptions& o = options(step.group);
        const double lr = o.lr, b1 = o.beta1, b2 = o.beta2, wd = o.weight_decay;
        const auto t = static_cast<double>(step.step);
        // torch.optim's single-tensor Adam: step_size = lr / (1 - b1^t),
        // denom = sqrt(v) / sqrt(1 - b2^t) + eps, with v the running maximum under amsgrad.
        const double step_size = lr / (1.0 - std::pow(b1, t));
        const double sqrt_bc2 = std::sqrt(1.0 - std::pow(b2, t));
        const double decay = decoupled_ ? 1.0 - lr * wd : 1.0;
        const double l2 = decoupled_ ? 0.0 : wd;
        dispatch(step.param.dtype(), [&]<class T>() {
            const T tb1 = static_cast<T>(b1), tb2 = static_cast<T>(b2), tdecay = static_cast<T>(decay),
                    tl2 = static_cast<T>(l2), tstep = static_cast<T>(step_size), tbc2 = static_cast<T>(sqrt_bc2),
                    teps = static_cast<T>(o.eps);
            auto moments = [=](T& p, const T& gk, T& mk, T& vk) {
                const T grad = gk + tl2 * p;
                mk = tb1 * mk + (T(1) - tb1) * grad;
                vk = tb2 * vk + (T(1) - tb2) * grad * grad;
                p = p * tdecay;
            };
            if (!o.amsgrad) {
                update_parameter<T, 4>({step.param, step.grad, step.state[0], step.state[1]},
                                       [=](T& p, const T& gk, T& mk, T& vk) {
                                           moments(p, gk, mk, vk);
                                           p -= tstep * (mk / (std::sqrt(vk) / tbc2 + teps));
                                       });
                return;
            }
            update_parameter<T, 5>({step.param, step.grad, step.state[0], step.state[1], step.state[2]},
                                   [=](T& p, const T& gk, T& mk, T& vk, T& vmax) {
                                       moments(p, gk, mk, vk);
                                       vmax = std::max(vmax, vk);
                                       p -= tstep * (mk / (std::sqrt(vmax) / tbc2 + teps));
                                   });
        });
    }
    commit_step(steps);
    return loss;
}

// ---------------------------------------------------------------- RMSprop

void RMSpropOptions::check(const OptionChecker& checker) const {
    checker.require(lr >= 0.0, "learning rate", lr);
    checker.require(eps >= 0.0, "epsilon value", eps);
    checker.require(momentum >= 0.0, "momentum value", momentum);
    checker.require(weight_decay >= 0.0, "weight_decay value", weight_decay);
    checker.require(alpha >= 0.0, "alpha value", alpha);
}

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : RMSprop(one_group(std::move(params), options), options) {}

RMSprop::RMSprop(std::vector<Group> groups, RMSpropOptions defaults)
    : OptimizerWithOptions("RMSprop", std::move(groups), defaults, {"square_avg", "momentum_buffer", "grad_avg"}) {}

std::vector<std::optional<double>> RMSprop::slot_start_values(std::size_t group) const {
    const RMSpropOptions& o = options(group);
    return {0.0, o.momentum > 0.0 ? std::optional<double>(0.0) : std::nullopt,
            o.centered ? std::optional<double>(0.0) : std::nullopt};
}

Tensor RMSprop::step(LossClosure closure) {
    Tensor loss = evaluate(closure);
    const std::vector<ParamStep> steps = prepare_step();
    NoGradGuard no_grad;
    for (const ParamStep& step : steps) {
        const RMSpropOptions& o = options(step.group);
        const bool centered = o.centered, with_momentum = o.momentum > 0.0;
        dispatch(step.param.dtype(), [&]<class T>() {
            const T lr = static_cast<T>(o.lr), alpha = static_cast<T>(o.alpha), eps = static_cast<T>(o.eps),
                    wd = static_cast<T>(o.weight_decay), mu = static_cast<T>(o.momentum);
            // A slot the options leave unused is walked as the square average again and not written.
            const Tensor& buffer = with_momentum ? step.state[1] : step.state[0];
            const Tensor& grad_avg = centered ? step.state[2] : step.state[0];
            update_parameter<T, 5>({step.param, step.grad, step.state[0], buffer, grad_avg},
                                   [=](T& p, const T& gk, T& square_avg, T& buf, T& gavg) {
                                       const T grad = gk + wd * p;
                                       square_avg = alpha * square_avg + (T(1) - alpha) * grad * grad;
                                       T avg;
                                       if (centered) {
                                           gavg = alpha * gavg + (T(1) - alpha) * grad;
                                           avg = std::sqrt(square_avg - gavg * gavg) + eps;
                                       } else {
                                           avg = std::sqrt(square_avg) + eps;
                                       }
                                       if (with_momentum) {
                                           buf = mu * buf + grad / avg;
                                           p -= lr * buf;
                                       } else {
                                           p -= lr * (grad / avg);
                                       }
                                   });
        });
    }
    commit_step(steps);
    return loss;
}

// ---------------------------------------------------------------- Adagrad

void AdagradOptions::check(const OptionChecker& checker) const {
    checker.require(lr >= 0.0, "learning rate", lr);
    checker.require(lr_decay >= 0.0, "lr_decay value", lr_decay);
    checker.require(weight_decay >= 0.0, "weight_decay value", weight_decay);
    checker.require(initial_accumulator_value >= 0.0, "initial_accumulator_value value", initial_accumulator_value);
    checker.require(eps >= 0.0, "epsilon value", eps);
}

Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions options)
    : Adagrad(one_group(std::move(params), options), options) {}

Adagrad::Adagrad(std::vector<Group> groups, AdagradOptions defaults)
    : OptimizerWithOptions("Adagrad", std::move(groups), defaults, {"sum"}) {}

std::vector<std::optional<double>> Adagrad::slot_start_values(std::size_t) const {
    // As torch.optim.Adagrad, which fills every sum in its constructor from its own argument: a
    // group's initial_accumulator_value is stored but not used.
    return {default_options().initial_accumulator_value};
}

Tensor Adagrad::step(LossClosure closure) {
    Tensor loss = evaluate(closure);
    const std::vector<ParamStep> steps = prepare_step();
    NoGradGuard no_grad;
    for (const ParamStep& step : steps) {
        const AdagradOptions& o = options(step.group);
        const double clr = o.lr / (1.0 + static_cast<double>(step.step - 1) * o.lr_decay);
        dispatch(step.param.dtype(), [&]<class T>() {
            const T tclr = static_cast<T>(clr), wd = static_cast<T>(o.weight_decay), eps = static_cast<T>(o.eps);
            update_parameter<T, 3>({step.param, step.grad, step.state[0]}, [=](T& p, const T& gk, T& sum) {
                const T grad = gk + wd * p;
                sum += grad * grad;
                p -= tclr * (grad / (std::sqrt(sum) + eps));
            });
        });
    }
    commit_step(steps);
    return loss;
}

}  // namespace tapegrad::nn
