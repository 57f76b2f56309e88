#pragma once
// LayerNorm and GroupNorm layers: weight ones and bias zeros, eps 1e-5, as in PyTorch.
#include "nn/module.hpp"
#include "nn/options.hpp"

namespace tapegrad::nn {

class LayerNorm : public Module {
public:
    explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
    explicit LayerNorm(const LayerNormOptions& options)
        : LayerNorm(options.normalized_shape(), options.eps(), options.elementwise_affine()) {}
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    Shape normalized_shape;
    double eps;
    Tensor weight, bias;  // normalized_shape, or undefined without elementwise_affine
};

class GroupNorm : public Module {
public:
    GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
    explicit GroupNorm(const GroupNormOptions& options)
        : GroupNorm(options.num_groups(), options.num_channels(), options.eps(), options.affine()) {}
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    int64_t num_groups;
    int64_t num_channels;
    double eps;
    Tensor weight, bias;  // [num_channels], or undefined without affine
};

}  // namespace tapegrad::nn
