#pragma once
// Optimizers with exactly PyTorch's update rules (torch.optim, single-tensor path): SGD, Adam,
// AdamW, RMSprop, Adagrad here, LBFGS in nn/lbfgs.hpp. Each takes one parameter list with its
// options, or param groups with their own options and the defaults for the groups given without:
//   nn::SGD opt({{backbone, nn::SGDOptions{.lr = 1e-3}}, {head}}, {.lr = 1e-2, .momentum = 0.9});
// The base class (groups, state_dict) is in nn/optimizer.hpp.
//
// libtorch's spellings work too (the chained options at the end of this file, the names in tg::optim):
//   tg::optim::SGD opt(model.parameters(), 0.1);
//   tg::optim::Adam opt(model.parameters(), tg::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
#include <array>
#include <concepts>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "nn/arg.hpp"
#include "nn/lbfgs.hpp"
#include "nn/optimizer.hpp"

namespace tapegrad::optim {
class SGDOptions;
template <class Aggregate>
class AdamFamilyOptions;
class RMSpropOptions;
class AdagradOptions;
}  // namespace tapegrad::optim

namespace tapegrad::nn {

struct SGDOptions {
    double lr = 1e-3;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;

    template <class F>
    void for_each_field(F&& f) {
        f("lr", lr);
        f("momentum", momentum);
        f("dampening", dampening);
        f("weight_decay", weight_decay);
        f("nesterov", nesterov);
    }
    void check(const OptionChecker& checker) const;
};

class SGD : public OptimizerWithOptions<SGDOptions> {
public:
    SGD(std::vector<Tensor> params, SGDOptions options);
    // libtorch's SGD(params, lr) and SGD(params, optim::SGDOptions(lr)...). The chained class is a
    // template parameter here and below so that the conversion is checked where a constructor is
    // used, once that class is complete (clang checks a non-dependent one where it is written).
    template <std::convertible_to<optim::SGDOptions> Options, class Chained = optim::SGDOptions>
    SGD(std::vector<Tensor> params, const Options& options) : SGD(std::move(params), static_cast<SGDOptions>(Chained(options))) {}
    SGD(std::vector<Group> groups, SGDOptions defaults);
    Tensor step(LossClosure closure = nullptr) override;

protected:
    std::vector<std::optional<double>> slot_start_values(std::size_t group) const override;
};

// Adam and AdamW take the same hyper-parameters with torch.optim's defaults; only the default
// weight decay differs (Adam 0, AdamW 1e-2), so each has its own options type and
// AdamW(params, {.lr = 3e-4}) keeps the decay of 1e-2, as in PyTorch.
// (The default comes from a type, not a double template argument, which clang 14 cannot take.)
struct AdamDefaults {
    static constexpr double weight_decay = 0.0;
};
struct AdamWDefaults {
    static constexpr double weight_decay = 1e-2;
};
template <class Defaults>
struct AdamFamilyOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = Defaults::weight_decay;  // Adam: L2 added to the gradient; AdamW: decoupled
    // AMSGrad (Reddi et al.): the denominator uses the largest second moment seen so far.
    bool amsgrad = false;

    template <class F>
    void for_each_field(F&& f) {
        f("lr", lr);
        std::array<double, 2> betas{beta1, beta2};  // stored as PyTorch's pair
        f("betas", betas);
        beta1 = betas[0];
        beta2 = betas[1];
        f("eps", eps);
        f("weight_decay", weight_decay);
        f("amsgrad", amsgrad);
    }
    void check(const OptionChecker& checker) const {
        checker.require(lr >= 0.0, "learning rate", lr);
        checker.require(eps >= 0.0, "epsilon value", eps);
        checker.require(beta1 >= 0.0 && beta1 < 1.0, "beta parameter at index 0", beta1);
        checker.require(beta2 >= 0.0 && beta2 < 1.0, "beta parameter at index 1", beta2);
        checker.require(weight_decay >= 0.0, "weight_decay value", weight_decay);
    }
    // The same values in the other family member's type.
    template <class Other>
    explicit operator AdamFamilyOptions<Other>() const {
        return {.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = weight_decay, .amsgrad = amsgrad};
    }
};
using AdamOptions = AdamFamilyOptions<AdamDefaults>;
using AdamWOptions = AdamFamilyOptions<AdamWDefaults>;

// weight_decay adds weight_decay * p to the gradient (L2), as torch.optim.Adam.
class Adam : public OptimizerWithOptions<AdamOptions> {
public:
    Adam(std::vector<Tensor> params, AdamOptions options = {});
    // libtorch's Adam(params, lr) and Adam(params, optim::AdamOptions(lr)...).
    template <std::convertible_to<optim::AdamFamilyOptions<AdamOptions>> Options, class Chained = optim::AdamFamilyOptions<AdamOptions>>
    Adam(std::vector<Tensor> params, const Options& options)
        : Adam(std::move(params), static_cast<AdamOptions>(Chained(options))) {}
    Adam(std::vector<Group> groups, AdamOptions defaults);
    Tensor step(LossClosure closure = nullptr) override;

protected:
    Adam(const char* name, std::vector<Group> groups, AdamOptions defaults, bool decoupled);
    std::vector<std::optional<double>> slot_start_values(std::size_t group) const override;

private:
    bool decoupled_;
};

// Decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay before the Adam step.
// Its groups hold AdamOptions (the same fields).
class AdamW : public Adam {
public:
    static AdamWOptions defaults() { return {}; }
    AdamW(std::vector<Tensor> params, AdamWOptions options = {});
    // libtorch's AdamW(params, lr) and AdamW(params, optim::AdamWOptions(lr)...).
    template <std::convertible_to<optim::AdamFamilyOptions<AdamWOptions>> Options, class Chained = optim::AdamFamilyOptions<AdamWOptions>>
    AdamW(std::vector<Tensor> params, const Options& options)
        : AdamW(std::move(params), static_cast<AdamWOptions>(Chained(options))) {}
    AdamW(std::vector<ParamGroup<AdamWOptions>> groups, AdamWOptions defaults);
};

struct RMSpropOptions {
    double lr = 1e-2;
    double alpha = 0.99;  // smoothing constant of the squared-gradient average
    double eps = 1e-8;
    double weight_decay = 0.0;
    double momentum = 0.0;
    // Divides by the estimated variance (square average less the squared gradient average).
    bool centered = false;

    template <class F>
    void for_each_field(F&& f) {
        f("lr", lr);
        f("alpha", alpha);
        f("eps", eps);
        f("weight_decay", weight_decay);
        f("momentum", momentum);
        f("centered", centered);
    }
    void check(const OptionChecker& checker) const;
};

class RMSprop : public OptimizerWithOptions<RMSpropOptions> {
public:
    RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
    // libtorch's RMSprop(params, lr) and RMSprop(params, optim::RMSpropOptions(lr)...).
    template <std::convertible_to<optim::RMSpropOptions> Options, class Chained = optim::RMSpropOptions>
    RMSprop(std::vector<Tensor> params, const Options& options) : RMSprop(std::move(params), static_cast<RMSpropOptions>(Chained(options))) {}
    RMSprop(std::vector<Group> groups, RMSpropOptions defaults);
    Tensor step(LossClosure closure = nullptr) override;

protected:
    std::vector<std::optional<double>> slot_start_values(std::size_t group) const override;
};

struct AdagradOptions {
    double lr = 1e-2;
    double lr_decay = 0.0;  // step t uses lr / (1 + (t - 1) * lr_decay)
    double weight_decay = 0.0;
    // The sum every parameter starts with. As in PyTorch, the optimizer's (the defaults') value
    // applies to every group; a group's own is kept but not used.
    double initial_accumulator_value = 0.0;
    double eps = 1e-10;

    template <class F>
    void for_each_field(F&& f) {
        f("lr", lr);
        f("lr_decay", lr_decay);
        f("weight_decay", weight_decay);
        f("initial_accumulator_value", initial_accumulator_value);
        f("eps", eps);
    }
    void check(const OptionChecker& checker) const;
};

class Adagrad : public OptimizerWithOptions<AdagradOptions> {
public:
    Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
    // libtorch's Adagrad(params, lr) and Adagrad(params, optim::AdagradOptions(lr)...).
    template <std::convertible_to<optim::AdagradOptions> Options, class Chained = optim::AdagradOptions>
    Adagrad(std::vector<Tensor> params, const Options& options) : Adagrad(std::move(params), static_cast<AdagradOptions>(Chained(options))) {}
    Adagrad(std::vector<Group> groups, AdagradOptions defaults);
    Tensor step(LossClosure closure = nullptr) override;

protected:
    std::vector<std::optional<double>> slot_start_values(std::size_t group) const override;
};

}  // namespace tapegrad::nn

// libtorch's torch::optim: the optimizers by their names there, and their chained options, each
// converting to the aggregate above (nn::SGDOptions{.lr = 0.1} and optim::SGDOptions(0.1) are the
// same options). A setter returns the options; the same name without an argument reads it back.
namespace tapegrad::optim {

using nn::Adagrad;
using nn::Adam;
using nn::AdamW;
using nn::LossClosure;
using nn::Optimizer;
using nn::RMSprop;
using nn::SGD;

class SGDOptions {
public:
    SGDOptions(double lr) : lr_(lr) {}  // implicit: SGD(params, 0.1)
    operator nn::SGDOptions() const {
        return {.lr = lr_, .momentum = momentum_, .dampening = dampening_, .weight_decay = weight_decay_, .nesterov = nesterov_};
    }
    TAPEGRAD_ARG(double, lr);
    TAPEGRAD_ARG(double, momentum) = 0.0;
    TAPEGRAD_ARG(double, dampening) = 0.0;
    TAPEGRAD_ARG(double, weight_decay) = 0.0;
    TAPEGRAD_ARG(bool, nesterov) = false;
};

// Adam's and AdamW's options, which differ only in the default weight decay.
template <class Aggregate>
class AdamFamilyOptions {
public:
    using Betas = std::tuple<double, double>;
    AdamFamilyOptions(double lr = 1e-3) : lr_(lr) {}
    operator Aggregate() const {
        return {.lr = lr_, .beta1 = std::get<0>(betas_), .beta2 = std::get<1>(betas_), .eps = eps_, .weight_decay = weight_decay_,
                .amsgrad = amsgrad_};
    }
    TAPEGRAD_ARG(double, lr);
    TAPEGRAD_ARG(Betas, betas) = {0.9, 0.999};
    TAPEGRAD_ARG(double, eps) = 1e-8;
    TAPEGRAD_ARG(double, weight_decay) = Aggregate{}.weight_decay;
    TAPEGRAD_ARG(bool, amsgrad) = false;
};
using AdamOptions = AdamFamilyOptions<nn::AdamOptions>;
using AdamWOptions = AdamFamilyOptions<nn::AdamWOptions>;

class RMSpropOptions {
public:
    RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
    operator nn::RMSpropOptions() const {
        return {.lr = lr_, .alpha = alpha_, .eps = eps_, .weight_decay = weight_decay_, .momentum = momentum_, .centered = centered_};
    }
    TAPEGRAD_ARG(double, lr);
    TAPEGRAD_ARG(double, alpha) = 0.99;
    TAPEGRAD_ARG(double, eps) = 1e-8;
    TAPEGRAD_ARG(double, weight_decay) = 0.0;
    TAPEGRAD_ARG(double, momentum) = 0.0;
    TAPEGRAD_ARG(bool, centered) = false;
};

class AdagradOptions {
public:
    AdagradOptions(double lr = 1e-2) : lr_(lr) {}
    operator nn::AdagradOptions() const {
        return {.lr = lr_, .lr_decay = lr_decay_, .weight_decay = weight_decay_, .initial_accumulator_value = initial_accumulator_value_,
                .eps = eps_};
    }
    TAPEGRAD_ARG(double, lr);
    TAPEGRAD_ARG(double, lr_decay) = 0.0;
    TAPEGRAD_ARG(double, weight_decay) = 0.0;
    TAPEGRAD_ARG(double, initial_accumulator_value) = 0.0;
    TAPEGRAD_ARG(double, eps) = 1e-10;
};

}  // namespace tapegrad::optim
