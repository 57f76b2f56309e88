#include "nn/losses.hpp"

#include <stdexcept>

namespace tapegrad::nn {

Tensor Loss::forward_inputs(const std::vector<Tensor>& inputs) {
    if (inputs.size() != 2)
        throw std::invalid_argument(type_name() + ": takes two inputs, (input, target), got " + std::to_string(inputs.size()));
    return forward(inputs[0], inputs[1]);
}

namespace {

// The module's buffer under `name` when the tensor is defined, so that options and buffer are one
// tensor (Module::to rewrites it in place).
Tensor registered(Module& module, const char* name, const Tensor& t) {
    return t.defined() ? module.register_buffer(name, t) : t;
}

}  // namespace

BCELoss::BCELoss(BCELossOptions o) : Loss("BCELoss"), options(std::move(o)) {
    options.weight = registered(*this, "weight", options.weight);
}
Tensor BCELoss::forward(const Tensor& input, const Tensor& target) { return binary_cross_entropy(input, target, options); }

BCEWithLogitsLoss::BCEWithLogitsLoss(BCEWithLogitsLossOptions o) : Loss("BCEWithLogitsLoss"), options(std::move(o)) {
    options.weight = registered(*this, "weight", options.weight);
    options.pos_weight = registered(*this, "pos_weight", options.pos_weight);
}
Tensor BCEWithLogitsLoss::forward(const Tensor& input, const Tensor& target) {
    return binary_cross_entropy_with_logits(input, target, options);
}

CrossEntropyLoss::CrossEntropyLoss(CrossEntropyLossOptions o) : Loss("CrossEntropyLoss"), options(std::move(o)) {
    options.weight = registered(*this, "weight", options.weight);
}
Tensor CrossEntropyLoss::forward(const Tensor& input, const Tensor& target) { return cross_entropy(input, target, options); }

NLLLoss::NLLLoss(NLLLossOptions o) : Loss("NLLLoss"), options(std::move(o)) {
    options.weight = registered(*this, "weight", options.weight);
}
Tensor NLLLoss::forward(const Tensor& input, const Tensor& target) { return nll_loss(input, target, options); }

Tensor KLDivLoss::forward(const Tensor& input, const Tensor& target) { return kl_div(input, target, options); }
Tensor MSELoss::forward(const Tensor& input, const Tensor& target) { return mse_loss(input, target, reduction); }
Tensor L1Loss::forward(const Tensor& input, const Tensor& target) { return l1_loss(input, target, reduction); }
Tensor SmoothL1Loss::forward(const Tensor& input, const Tensor& target) { return smooth_l1_loss(input, target, options); }
Tensor HuberLoss::forward(const Tensor& input, const Tensor& target) { return huber_loss(input, target, options); }

}  // namespace tapegrad::nn
