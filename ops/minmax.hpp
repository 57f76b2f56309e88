#pragma once
// maximum, minimum, clamp with tensor bounds and sign, as PyTorch's. NaN propagates through
// maximum, minimum and clamp (a NaN bound gives NaN); sign(NaN) is 0, as PyTorch 1.13's.
#include "engine/source_location.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {

// The larger (smaller) of a and b per element, broadcast, in their promoted dtype. The gradient
// goes to the larger (smaller) one, and half to each where they are equal.
Tensor maximum(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor minimum(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());

// min(max(x, min), max) with tensor bounds, either of which may be undefined (Tensor()) but not both;
// x and the bounds broadcast and promote. min > max gives max, as PyTorch.
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max, SourceLocation loc = SourceLocation::current());

// -1, 0 or 1 per element (0 for ±0 and NaN); integers keep their dtype. The gradient is 0.
Tensor sign(const Tensor& x, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
