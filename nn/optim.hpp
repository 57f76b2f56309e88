#pragma once
// Optimizers with exactly PyTorch's update rules (torch.optim, single-tensor path). step() updates
// the parameters in place, outside autograd, with one fused loop per parameter that walks the
// parameter, its gradient and its state in logical index order, whatever their strides (a
// transposed or channels-last parameter gets the same update as its contiguous copy). Parameters
// without a gradient are skipped, so a frozen parameter (requires_grad false) may be listed.
// A step checks everything first (hyper-parameters, and every gradient and state slot against its
// parameter) and changes nothing when it throws. A parameter converted with Module::to() after
// the optimizer stepped no longer matches its state: build the optimizer after .to(), or convert
// the state with load_state_dict(state_dict()).
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace tapegrad::nn {

class Optimizer {
public:
    virtual ~Optimizer() = default;
    virtual void step() = 0;
    // Drops every parameter's gradient (PyTorch's set_to_none).
    void zero_grad();

    double lr() const { return lr_; }
    void set_lr(double lr);
    const std::vector<Tensor>& params() const { return params_; }
    const std::string& name() const { return name_; }

    // Per-parameter state as named tensors ("state.<i>.<slot>" with i the parameter's position,
    // "state.<i>.step" a float64 scalar) plus "param_groups.0.lr", for checkpoints.
    NamedTensors state_dict() const;
    // Restores what state_dict() wrote, each slot converted to its parameter's dtype and layout (as
    // PyTorch does); a missing lr, an undefined entry or a slot whose shape differs from its
    // parameter's throws std::invalid_argument naming it, and the optimizer is left as it was.
    void load_state_dict(const NamedTensors& dict);

    // load_state_dict in two steps, so that a caller loading several objects (load_checkpoint) can
    // check all of them before changing any: prepare_load checks and converts without changing the
    // optimizer; commit_load installs what it returned and cannot fail.
    struct PreparedState {
        double lr = 0;
        std::vector<int64_t> steps;
        std::vector<std::vector<Tensor>> state;
    };
    PreparedState prepare_load(const NamedTensors& dict) const;
    void commit_load(PreparedState prepared);

protected:
    Optimizer(std::string name, std::vector<Tensor> params, double lr, std::vector<std::string> slots);
    // Throws std::invalid_argument("<name>: invalid <what>: <value>") unless ok and value is finite.
    void require(bool ok, const std::string& what, double value) const;

    // What step() does to one parameter, decided before any parameter changes.
    struct ParamStep {
        std::size_t index = 0;      // the parameter's position in params()
        Tensor param;
        Tensor grad;                // with the parameter's dtype and strides
        std::vector<Tensor> state;  // the first `slots` state slots; new ones are zeros
        bool new_state = false;     // whether they were created for this step (PyTorch's empty state)
        int64_t step = 0;           // the parameter's step count after this step
    };
    // Checks every parameter that has a gradient (the gradient's and the state's dtype and shape
    // against the parameter's) and returns one ParamStep each, changing nothing: a step() that
    // throws leaves every parameter and the optimizer (step counts included) as they were.
    std::vector<ParamStep> prepare_step(std::size_t slots) const;
    // Records the state and step counts of a step whose updates are done; cannot fail.
    void commit_step(const std::vector<ParamStep>& steps);

private:
    // "parameter 2 [16,3,3,3] float64", as errors name it.
    std::string describe_param(std::size_t i) const;
    // The gradient of parameter i with the parameter's strides; it has the parameter's dtype and shape.
    Tensor grad_like_param(std::size_t i) const;

    std::string name_;
    std::vector<Tensor> params_;
    double lr_;
    std::vector<std::string> slots_;
    std::vector<std::vector<Tensor>> state_;  // [param][slot]
    std::vector<int64_t> steps_;
};

struct SGDOptions {
    double lr = 1e-3;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
};

class SGD : public Optimizer {
public:
    SGD(std::vector<Tensor> params, SGDOptions options);
    void step() override;
    // Checked again by every step(), so that a value changed here is refused before anything moves.
    SGDOptions options;

private:
    void check_options() const;
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
};
using AdamOptions = AdamFamilyOptions<AdamDefaults>;
using AdamWOptions = AdamFamilyOptions<AdamWDefaults>;

// weight_decay adds weight_decay * p to the gradient (L2), as torch.optim.Adam.
class Adam : public Optimizer {
public:
    Adam(std::vector<Tensor> params, AdamOptions options = {});
    void step() override;
    // Checked again by every step(), so that a value changed here is refused before anything moves.
    AdamOptions options;

protected:
    Adam(const char* name, std::vector<Tensor> params, AdamOptions options, bool decoupled);

private:
    void check_options() const;
    bool decoupled_;
};

// Decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay before the Adam step.
class AdamW : public Adam {
public:
    static AdamWOptions defaults() { return {}; }
    AdamW(std::vector<Tensor> params, AdamWOptions options = {});
};

}  // namespace tapegrad::nn
