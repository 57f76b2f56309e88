#pragma once
// Fast float32 sums over a dense tensor (any dimension order), at memory bandwidth: a full sum,
// the per-channel sums of a [1,C,1,1] broadcast's gradient or a bias gradient (over N, H and W,
// row-major or channels-last), row and column sums.
//
// In memory order, a dense tensor summed over some of its dimensions is x[K0, R1, K, R2], summed
// over R1 and R2 into out[K0, K]. Loads are float, at most 8 values are added in float before
// their sum goes into a double accumulator, and the work is cut into pieces fixed by the geometry
// (never by the thread count) whose double partial sums are added in piece order: the result is
// the same bits at any thread count, and within a few float roundings of the exact sum.
#include <cstdint>
#include <optional>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad::kernels {

struct DenseSum {
    int64_t K0 = 1, R1 = 1, K = 1, R2 = 1;
};

// x summed over the dimensions marked in `reduce` in the form above, when it has it: x float32,
// dense, not empty, at least one element summed, and its kept dimensions in memory in their own
// order (so that out[k0 * K + k] is the row-major output). Otherwise nullopt: sum_kernel does it.
std::optional<DenseSum> dense_sum_geometry(const Tensor& x, const std::vector<bool>& reduce);

// out[k0 * K + k] = sum over r1, r2 of x[((k0 * R1 + r1) * K + k) * R2 + r2].
void sum_dense(const float* x, const DenseSum& g, float* out);

}  // namespace tapegrad::kernels
