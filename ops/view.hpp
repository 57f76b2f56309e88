#pragma once
// Views and copies: reshape, view, flatten, transpose, permute, squeeze, unsqueeze, expand,
// contiguous, clone and dtype conversion. Tensor's member functions of the same names call these.
// Each view shares its input's storage and version counter; its node refuses to run once the input
// was written in place. reshape, flatten and transpose are made of the others (their profiler rows
// time them; the nodes are those of view, contiguous and permute).
#include "engine/tensor.hpp"

namespace tapegrad {

// A view when possible, else a copy.
Tensor reshape(const Tensor& x, const Shape& shape, SourceLocation loc = SourceLocation::current());
// A view, or an error saying to use reshape.
Tensor view(const Tensor& x, const Shape& shape, SourceLocation loc = SourceLocation::current());
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1, SourceLocation loc = SourceLocation::current());
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1, SourceLocation loc = SourceLocation::current());
Tensor permute(const Tensor& x, const Shape& dims, SourceLocation loc = SourceLocation::current());
Tensor unsqueeze(const Tensor& x, int64_t dim, SourceLocation loc = SourceLocation::current());
// Without dim: every dimension of size 1 dropped; with it, only dim, and only when its size is 1.
Tensor squeeze(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor squeeze(const Tensor& x, int64_t dim, SourceLocation loc = SourceLocation::current());
// Broadcasts x to `shape` without copying (stride 0 along broadcast dimensions); a size of -1
// keeps x's size there (not in new leading dimensions).
Tensor expand(const Tensor& x, const Shape& shape, SourceLocation loc = SourceLocation::current());
Tensor contiguous(const Tensor& x, MemoryFormat format = MemoryFormat::Contiguous, SourceLocation loc = SourceLocation::current());
Tensor clone(const Tensor& x, SourceLocation loc = SourceLocation::current());
Tensor to_dtype(const Tensor& x, DType dtype, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
