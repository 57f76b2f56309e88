#pragma once
// Non-differentiable building blocks shared by the engine and the ops: copies between layouts,
// fills, in-place accumulation and reductions. They never record on the tape.
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

// A view of base's storage with the given geometry (offset in elements from base's first element).
Tensor as_strided(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset = 0);
// dst[i] = src[i] for every index; same shape, any strides, dtypes may differ.
void copy_into(const Tensor& dst, const Tensor& src);
void fill_tensor(const Tensor& t, double value);
// acc += g elementwise; same shape and dtype, any strides.
void add_into(const Tensor& acc, const Tensor& g);
// Sums over the axes marked in `reduce` (one flag per dimension); accumulates in double.
Tensor sum_kernel(const Tensor& x, const std::vector<bool>& reduce, bool keepdim);
// True if the tensor's elements occupy one dense block (in any dimension order).
bool is_dense(const Tensor& t);

}  // namespace tapegrad
