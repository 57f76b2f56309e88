#pragma once
// Views and copies: reshape, view, flatten, transpose, permute, squeeze, unsqueeze, expand,
// contiguous, clone and dtype conversion. Tensor's member functions of the same names call these.
#include "engine/tensor.hpp"

namespace tapegrad {

Tensor reshape(const Tensor& x, const Shape& shape);  // a view when possible, else a copy
Tensor view(const Tensor& x, const Shape& shape);     // a view, or an error saying to use reshape
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& x, const Shape& dims);
Tensor unsqueeze(const Tensor& x, int64_t dim);
// Without dim: every dimension of size 1 dropped; with it, only dim, and only when its size is 1.
Tensor squeeze(const Tensor& x);
Tensor squeeze(const Tensor& x, int64_t dim);
// Broadcasts x to `shape` without copying (stride 0 along broadcast dimensions); a size of -1
// keeps x's size there (not in new leading dimensions).
Tensor expand(const Tensor& x, const Shape& shape);
Tensor contiguous(const Tensor& x, MemoryFormat format = MemoryFormat::Contiguous);
Tensor clone(const Tensor& x);
Tensor to_dtype(const Tensor& x, DType dtype);

}  // namespace tapegrad
