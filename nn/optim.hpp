#pragma once
// Optimizers with exactly PyTorch's update rules (torch.optim, single-tensor path). step() updates
// the parameters in place, outside autograd, with one fused loop per parameter; parameters without
// a gradient are skipped.
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
    // Restores what state_dict() wrote; a slot whose shape differs from its parameter's throws
    // std::invalid_argument naming it.
    void load_state_dict(const NamedTensors& dict);

protected:
    Optimizer(std::string name, std::vector<Tensor> params, double lr, std::vector<std::string> slots);
    // Throws std::invalid_argument("<name>: invalid <what> ...") when !ok.
    void require(bool ok, const std::string& what, double value) const;
    // The gradient laid out like the parameter (dense, same strides), or undefined when there is none.
    Tensor grad_like_param(std::size_t i) const;
    // The state slot `slot` of parameter i, created as zeros on first use.
    Tensor& state(std::size_t i, std::size_t slot);
    int64_t& step_count(std::size_t i) { return steps_[i]; }

private:
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
    SGDOptions options;
};

struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled (default 1e-2)
};

// weight_decay adds weight_decay * p to the gradient (L2), as torch.optim.Adam.
class Adam : public Optimizer {
public:
    Adam(std::vector<Tensor> params, AdamOptions options = {});
    void step() override;
    AdamOptions options;

protected:
    Adam(const char* name, std::vector<Tensor> params, AdamOptions options, bool decoupled);

private:
    bool decoupled_;
};

// Decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay before the Adam step.
class AdamW : public Adam {
public:
    static AdamOptions defaults() { return {.weight_decay = 1e-2}; }
    AdamW(std::vector<Tensor> params, AdamOptions options = defaults());
};

}  // namespace tapegrad::nn
