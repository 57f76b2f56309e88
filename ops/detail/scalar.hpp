#pragma once
#include "engine/tensor.hpp"

namespace tapegrad::detail {

// An integer scalar as the 0-dim tensor it is next to `a` (see IntegerScalar in engine/tensor.hpp):
// shared by the arithmetic operators and their in-place twins.
Tensor scalar_for(IntegerScalar s, const Tensor& a);

}  // namespace tapegrad::detail
