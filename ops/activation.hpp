#pragma once
// Elementwise activations and maths: relu (gradient 0 at 0), sigmoid, tanh, exp, log, and
// pow with a scalar exponent, sqrt, abs.
#include "engine/tensor.hpp"

namespace tapegrad {

Tensor relu(const Tensor& x, std::source_location loc = std::source_location::current());
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor abs(const Tensor& x);

}  // namespace tapegrad
