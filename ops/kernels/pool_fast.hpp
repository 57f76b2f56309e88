#pragma once
// Fast float32 pooling on raw pointers, for both dense layouts: row-major kernels vectorize over
// the output width, channels-last kernels over C. Outputs keep the input's memory format.
// OpenMP runs over planes (row-major) or images and rows (channels-last) above a size threshold.
#include "ops/kernels/pool_geometry.hpp"

namespace tapegrad::kernels {

// x: dense, row-major or channels-last. out and argmax take x's layout.
MaxPoolResult max_pool2d_forward_fast(const Tensor& x, const PoolGeometry& g);
// dout: any layout. dx takes the argmax's layout.
Tensor max_pool2d_backward_fast(const Tensor& dout, const Argmax& argmax, const PoolGeometry& g);

// x: dense, row-major or channels-last; out takes x's layout.
Tensor avg_pool2d_forward_fast(const Tensor& x, const AvgPoolBins& b);
// dout: any layout. dx takes dout's layout when dout is dense.
Tensor avg_pool2d_backward_fast(const Tensor& dout, const AvgPoolBins& b);

}  // namespace tapegrad::kernels
