#pragma once
#include "engine/generator.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {

// Zeroes each element with probability p and scales the rest by 1/(1-p), drawing from `gen`.
// The identity when !training or p == 0.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
