#include "nn/normalization.hpp"

#include <stdexcept>
#include <string>

#include "ops/normalization.hpp"

namespace tapegrad::nn {

LayerNorm::LayerNorm(Shape shape, double eps, bool elementwise_affine) : Module("LayerNorm"), normalized_shape(shape), eps(eps) {
    if (shape.empty() || checked_numel(shape, "LayerNorm") == 0)
        throw std::invalid_argument("LayerNorm: normalized_shape " + tapegrad::to_string(shape) + " must be non-empty");
    if (elementwise_affine) {
        weight = register_parameter("weight", ones(shape));
        bias = register_parameter("bias", zeros(shape));
    }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, normalized_shape, weight, bias, eps); }

GroupNorm::GroupNorm(int64_t groups, int64_t num_channels, double eps, bool affine) : Module("GroupNorm"), num_groups(groups), num_channels(num_channels), eps(eps) {
    if (groups <= 0 || num_channels <= 0 || num_channels % groups != 0)
        throw std::invalid_argument("GroupNorm: num_groups (" + std::to_string(groups) + ") must be positive and divide num_channels (" +
                                    std::to_string(num_channels) + ")");
    if (affine) {
        weight = register_parameter("weight", ones({num_channels}));
        bias = register_parameter("bias", zeros({num_channels}));
    }
}

Tensor GroupNorm::forward(const Tensor& x) { return group_norm(x, num_groups, weight, bias, eps); }

}  // namespace tapegrad::nn
