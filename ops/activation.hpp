#pragma once
// Elementwise activations and maths: relu (gradient 0 at 0), sigmoid, tanh, exp, log, and
// pow with a scalar exponent, sqrt, abs; the activations of modern CNNs (clamp, hardtanh, relu6,
// leaky_relu, elu, gelu, silu, hardswish) with PyTorch's defaults and subgradients.
#include <optional>

#include "engine/tensor.hpp"

namespace tapegrad {

Tensor relu(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor abs(const Tensor& x);

// min(max(x, min), max) with either bound optional; the gradient passes where min <= x <= max.
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max);
// clamp to [min_val, max_val], but the gradient passes only strictly inside (PyTorch's hardtanh).
Tensor hardtanh(const Tensor& x, double min_val = -1.0, double max_val = 1.0);
// hardtanh(x, 0, 6), MobileNetV2's activation.
Tensor relu6(const Tensor& x);
// x for x > 0, negative_slope * x otherwise.
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
// x for x > 0, alpha (e^x - 1) otherwise.
Tensor elu(const Tensor& x, double alpha = 1.0);
enum class GeluApproximate { None, Tanh };
// x Phi(x) with the exact normal CDF (erf), or its tanh approximation.
Tensor gelu(const Tensor& x, GeluApproximate approximate = GeluApproximate::None);
// x sigmoid(x) (swish).
Tensor silu(const Tensor& x);
// x relu6(x + 3) / 6, MobileNetV3's activation.
Tensor hardswish(const Tensor& x);

}  // namespace tapegrad
