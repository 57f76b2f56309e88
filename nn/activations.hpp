#pragma once
// Activation layers, with PyTorch's names and defaults, over the functional ops of
// ops/activation.hpp. (ReLU is in nn/layers.hpp.)
#include "nn/module.hpp"
#include "nn/options.hpp"
#include "ops/activation.hpp"

namespace tapegrad::nn {

class ReLU6 : public Module {
public:
    ReLU6() : Module("ReLU6") {}
    Tensor forward(const Tensor& x) override { return relu6(x); }
    void pretty_print(std::ostream& stream) const override;
};

class Hardtanh : public Module {
public:
    explicit Hardtanh(double min_val = -1.0, double max_val = 1.0) : Module("Hardtanh"), min_val(min_val), max_val(max_val) {}
    explicit Hardtanh(const HardtanhOptions& options) : Hardtanh(options.min_val(), options.max_val()) {}
    Tensor forward(const Tensor& x) override { return hardtanh(x, min_val, max_val); }
    void pretty_print(std::ostream& stream) const override;
    double min_val, max_val;
};

class LeakyReLU : public Module {
public:
    explicit LeakyReLU(double negative_slope = 0.01) : Module("LeakyReLU"), negative_slope(negative_slope) {}
    explicit LeakyReLU(const LeakyReLUOptions& options) : LeakyReLU(options.negative_slope()) {}
    Tensor forward(const Tensor& x) override { return leaky_relu(x, negative_slope); }
    void pretty_print(std::ostream& stream) const override;
    double negative_slope;
};

class ELU : public Module {
public:
    explicit ELU(double alpha = 1.0) : Module("ELU"), alpha(alpha) {}
    explicit ELU(const ELUOptions& options) : ELU(options.alpha()) {}
    Tensor forward(const Tensor& x) override { return elu(x, alpha); }
    void pretty_print(std::ostream& stream) const override;
    double alpha;
};

class GELU : public Module {
public:
    explicit GELU(GeluApproximate approximate = GeluApproximate::None) : Module("GELU"), approximate(approximate) {}
    Tensor forward(const Tensor& x) override { return gelu(x, approximate); }
    void pretty_print(std::ostream& stream) const override;
    GeluApproximate approximate;
};

class SiLU : public Module {
public:
    SiLU() : Module("SiLU") {}
    Tensor forward(const Tensor& x) override { return silu(x); }
    void pretty_print(std::ostream& stream) const override;
};

class Hardswish : public Module {
public:
    Hardswish() : Module("Hardswish") {}
    Tensor forward(const Tensor& x) override { return hardswish(x); }
    void pretty_print(std::ostream& stream) const override;
};

class Hardsigmoid : public Module {
public:
    Hardsigmoid() : Module("Hardsigmoid") {}
    Tensor forward(const Tensor& x) override { return hardsigmoid(x); }
    void pretty_print(std::ostream& stream) const override;
};

class Softplus : public Module {
public:
    explicit Softplus(double beta = 1.0, double threshold = 20.0) : Module("Softplus"), beta(beta), threshold(threshold) {}
    explicit Softplus(const SoftplusOptions& options) : Softplus(options.beta(), options.threshold()) {}
    Tensor forward(const Tensor& x) override { return softplus(x, beta, threshold); }
    void pretty_print(std::ostream& stream) const override;
    double beta, threshold;
};

class Sigmoid : public Module {
public:
    Sigmoid() : Module("Sigmoid") {}
    Tensor forward(const Tensor& x) override { return sigmoid(x); }
    void pretty_print(std::ostream& stream) const override;
};

class Tanh : public Module {
public:
    Tanh() : Module("Tanh") {}
    Tensor forward(const Tensor& x) override { return tanh(x); }
    void pretty_print(std::ostream& stream) const override;
};

}  // namespace tapegrad::nn
