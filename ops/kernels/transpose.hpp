#pragma once
// The layout change between NCHW and NHWC for float32: each image is a [rows, cols] matrix
// ([C, H*W] one way, [H*W, C] the other) transposed in 8 x 8 register tiles. Exact (it moves bits),
// and 3-4x faster than oneDNN 2.6's reorder on these shapes (docs/performance.md).
#include <cstdint>

namespace tapegrad::kernels {

// dst[p][j][i] = src[p][i][j] for `planes` dense [rows, cols] planes; dst holds [cols, rows]
// planes. Planes run in parallel when there is enough work.
void transpose_planes(const float* src, float* dst, int64_t planes, int64_t rows, int64_t cols);

}  // namespace tapegrad::kernels
