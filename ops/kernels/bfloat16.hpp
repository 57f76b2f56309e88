#pragma once
// Rounding float32 tensors to bfloat16 values, for autocast: the reference path's inputs and
// every autocast op's results (ops/detail/autocast.hpp).
#include "engine/tensor.hpp"

namespace tapegrad::kernels {

// A copy of the float32 tensor t in its suggested layout, each element rounded to bfloat16
// (round-to-nearest-even, NaN stays NaN).
Tensor rounded_to_bfloat16(const Tensor& t);
// Rounds each element of t, a dense float32 tensor (row-major or channels-last), in place.
void round_to_bfloat16_inplace(const Tensor& t);
// dst[0, n) = src[0, n) converted to bfloat16, in parallel for large n: the bf16 kernels' inputs.
void convert_to_bfloat16(const float* src, BFloat16* dst, int64_t n);

}  // namespace tapegrad::kernels
