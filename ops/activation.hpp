#pragma once
// Elementwise activations and maths: relu (gradient 0 at 0), sigmoid, tanh, exp, log, and
// pow with a scalar exponent, sqrt, abs; the activations of modern CNNs (clamp, hardtanh, relu6,
// leaky_relu, elu, gelu, silu, softplus, hardswish, hardsigmoid) with PyTorch's defaults and subgradients.
#include <optional>

#include "engine/tensor.hpp"

namespace tapegrad {

Tensor relu(const Tensor& x, SourceLocation loc = SourceLocation::current());
// relu of a result the caller gives up (relu(batch_norm(x)), relu(std::move(y))): where nobody
// else can read it, a fused op may take its place, with the fused op's values and gradients
// (batch_norm then relu runs as batch_norm_relu: docs/architecture.md, "Fusion").
Tensor relu(Tensor&& x, SourceLocation loc = SourceLocation::current());
Tensor sigmoid(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor tanh(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor exp(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor log(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor sqrt(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor pow(const Tensor& x, double exponent, SourceLocation loc = SourceLocation::current());
Tensor abs(const Tensor& x, SourceLocation loc = SourceLocation::current());

Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max,
             SourceLocation loc = SourceLocation::current());
Tensor hardtanh(const Tensor& x, double min_val = -1.0, double max_val = 1.0, SourceLocation loc = SourceLocation::current());
Tensor relu6(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01, SourceLocation loc = SourceLocation::current());
Tensor elu(const Tensor& x, double alpha = 1.0, SourceLocation loc = SourceLocation::current());
enum class GeluApproximate { None, Tanh };
Tensor gelu(const Tensor& x, GeluApproximate approximate = GeluApproximate::None, SourceLocation loc = SourceLocation::current());
Tensor silu(const Tensor& x, SourceLocation loc = SourceLocation::current());
// ln(1 + e^(beta x)) / beta, and x itself where beta x > threshold (as PyTorch's softplus).
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0, SourceLocation loc = SourceLocation::current());
Tensor hardswish(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor hardsigmoid(const Tensor& x, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
