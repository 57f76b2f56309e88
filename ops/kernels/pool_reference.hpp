#pragma once
// Reference pooling kernels: naive loops over each window, written from the definitions (seed
// 003, section 2.3), for float and double. They read inputs in any layout and return row-major
// tensors.
#include "ops/kernels/pool_geometry.hpp"

namespace tapegrad::kernels {

// out[n,c,oh,ow] = max over the window (padding never wins); the argmax is the first maximum in
// row-major window order. NaN propagates, as in PyTorch.
template <class T>
MaxPoolResult max_pool2d_forward_reference(const Tensor& x, const PoolGeometry& g);
// dx[n,c,argmax[j]] += dout[n,c,j] for every output j.
template <class T>
Tensor max_pool2d_backward_reference(const Tensor& dout, const Argmax& argmax, const PoolGeometry& g);

// out[n,c,i,j] = sum over rows bin i and cols bin j of x, / (rows.count[i] * cols.count[j]).
template <class T>
Tensor avg_pool2d_forward_reference(const Tensor& x, const AvgPoolBins& b);
// dx[n,c,h,w] = sum over the bins (i,j) that hold (h,w) of dout[n,c,i,j] / (rows.count[i] * cols.count[j]).
template <class T>
Tensor avg_pool2d_backward_reference(const Tensor& dout, const AvgPoolBins& b);

}  // namespace tapegrad::kernels
