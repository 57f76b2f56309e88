#pragma once
// Non-differentiable building blocks shared by the engine and the ops: copies between layouts,
// fills, in-place accumulation and reductions. They never record on the tape.
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

// A view of base's storage with the given geometry (offset in elements from base's first element).
Tensor as_strided(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset = 0);
// dst[i] = src[i] for every index; same shape, any strides, dtypes may differ. A conversion to an
// integer dtype checks every element first (convert.hpp) and, if one does not fit, throws
// std::invalid_argument naming `op` before anything is written.
void copy_into(const Tensor& dst, const Tensor& src, const char* op = "copy");
// t's values laid out densely in `format`: t itself when it already is, else a copy. Never
// recorded, so kernels use it to get the layout they need (Tensor::contiguous is the recorded op).
Tensor as_contiguous(const Tensor& t, MemoryFormat format = MemoryFormat::Contiguous);
// Every element of t = value, converted with checked_cast (naming `op`) before anything is written.
void fill_tensor(const Tensor& t, double value, const char* op = "fill");
// acc += g elementwise; same shape and dtype, any strides.
void add_into(const Tensor& acc, const Tensor& g);
// Sums over the axes marked in `reduce` (one flag per dimension); accumulates in double.
Tensor sum_kernel(const Tensor& x, const std::vector<bool>& reduce, bool keepdim);
// True if the tensor's elements occupy one dense block (in any dimension order).
bool is_dense(const Tensor& t);

}  // namespace tapegrad
