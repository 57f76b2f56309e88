#pragma once
// softmax and log_softmax along one dimension, with PyTorch 1.13's numerics (max-subtracted, so
// finite for any finite input). Float32 or float64; integer inputs are refused by the op's name.
#include <cstdint>

#include "engine/source_location.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {

Tensor softmax(const Tensor& x, int64_t dim = -1, SourceLocation loc = SourceLocation::current());
Tensor log_softmax(const Tensor& x, int64_t dim = -1, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
