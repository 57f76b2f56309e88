#pragma once
// any and all, as PyTorch's: whether some (every) element is nonzero, NaN counting as nonzero, over
// the whole tensor (a 0-dim result) or along one dimension; the result is bool, for inputs of any
// dtype, and has no gradient. Over no elements any is false and all is true.
#include "engine/source_location.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {

Tensor any(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor all(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor any(const Tensor& x, int64_t dim, bool keepdim = false, SourceLocation loc = SourceLocation::current());
Tensor all(const Tensor& x, int64_t dim, bool keepdim = false, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
