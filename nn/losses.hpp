#pragma once
// The losses as modules, with PyTorch's names and options: loss_fn(input, target), or
// forward(input, target). A weight (and BCEWithLogitsLoss's pos_weight) is registered as a buffer,
// as in PyTorch, so that it is in the state_dict and Module::to converts it.
#include "nn/module.hpp"
#include "ops/loss.hpp"

namespace tapegrad::nn {

using BCELossOptions = BinaryCrossEntropyOptions;
using BCEWithLogitsLossOptions = BinaryCrossEntropyWithLogitsOptions;
using CrossEntropyLossOptions = CrossEntropyOptions;
using NLLLossOptions = NllLossOptions;
using KLDivLossOptions = KlDivOptions;

// A module of two inputs: module(input, target) calls forward(input, target).
class Loss : public Module {
public:
    using Module::forward;
    virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
    Tensor forward_inputs(const std::vector<Tensor>& inputs) override;
    void pretty_print(std::ostream& stream) const override;

protected:
    using Module::Module;
};

class BCELoss : public Loss {
public:
    explicit BCELoss(BCELossOptions options = {});
    Tensor forward(const Tensor& input, const Tensor& target) override;
    BCELossOptions options;
};

class BCEWithLogitsLoss : public Loss {
public:
    explicit BCEWithLogitsLoss(BCEWithLogitsLossOptions options = {});
    Tensor forward(const Tensor& input, const Tensor& target) override;
    BCEWithLogitsLossOptions options;
};

// The target is class indices (an integer tensor) or class probabilities of the input's shape.
class CrossEntropyLoss : public Loss {
public:
    explicit CrossEntropyLoss(CrossEntropyLossOptions options = {});
    Tensor forward(const Tensor& input, const Tensor& target) override;
    CrossEntropyLossOptions options;
};

class NLLLoss : public Loss {
public:
    explicit NLLLoss(NLLLossOptions options = {});
    Tensor forward(const Tensor& input, const Tensor& target) override;
    NLLLossOptions options;
};

class KLDivLoss : public Loss {
public:
    explicit KLDivLoss(KLDivLossOptions options = {}) : Loss("KLDivLoss"), options(options) {}
    Tensor forward(const Tensor& input, const Tensor& target) override;
    KLDivLossOptions options;
};

class MSELoss : public Loss {
public:
    explicit MSELoss(Reduction reduction = Reduction::Mean) : Loss("MSELoss"), reduction(reduction) {}
    Tensor forward(const Tensor& input, const Tensor& target) override;
    Reduction reduction;
};

class L1Loss : public Loss {
public:
    explicit L1Loss(Reduction reduction = Reduction::Mean) : Loss("L1Loss"), reduction(reduction) {}
    Tensor forward(const Tensor& input, const Tensor& target) override;
    Reduction reduction;
};

class SmoothL1Loss : public Loss {
public:
    explicit SmoothL1Loss(SmoothL1LossOptions options = {}) : Loss("SmoothL1Loss"), options(options) {}
    Tensor forward(const Tensor& input, const Tensor& target) override;
    SmoothL1LossOptions options;
};

class HuberLoss : public Loss {
public:
    explicit HuberLoss(HuberLossOptions options = {}) : Loss("HuberLoss"), options(options) {}
    Tensor forward(const Tensor& input, const Tensor& target) override;
    HuberLossOptions options;
};

}  // namespace tapegrad::nn
