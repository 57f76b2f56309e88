#pragma once
// Optimizers with exactly PyTorch's update rules (torch.optim, single-tensor path): SGD, Adam,
// AdamW, RMSprop, Adagrad here, LBFGS in nn/lbfgs.hpp. Each takes one parameter list with its
// options, or param groups with their own options and the defaults for the groups given without:
//   nn::SGD opt({{backbone, nn::SGDOptions{.lr = 1e-3}}, {head}}, {.lr = 1e-2, .momentum = 0.9});
// The base class (groups, state_dict) is in nn/optimizer.hpp.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "nn/lbfgs.hpp"
#include "nn/optimizer.hpp"

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
    Adagrad(std::vector<Group> groups, AdagradOptions defaults);
    Tensor step(LossClosure closure = nullptr) override;

protected:
    std::vector<std::optional<double>> slot_start_values(std::size_t group) const override;
};

}  // namespace tapegrad::nn
