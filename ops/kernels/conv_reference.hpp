#pragma once
// Reference 2-D convolution: naive loops written straight from the derivation (docs/derivatives.md,
// the conv2d row), for any stride, padding, dilation and groups. They read inputs in any layout and return
// row-major tensors; accumulation is in double. Slow on purpose: they are what the oneDNN
// kernels are tested against, and what float64 gradcheck runs on.
#include "engine/tensor.hpp"
#include "ops/kernels/conv_geometry.hpp"

namespace tapegrad::kernels {

// out[n,f,oh,ow] = b[f] + sum_{c,kh,kw} x[n, c, oh*s - p + kh*d, ow*s - p + kw*d] * w[f,c,kh,kw]
// (c runs over f's group; positions in the padding read 0). bias may be undefined.
template <class T>
Tensor conv2d_forward_reference(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g);

// dx[n,c,ih,iw] = sum_{f,kh,kw} dout[n,f,oh,ow] * w[f,c,kh,kw] over the (oh,ow) with
// oh*s - p + kh*d = ih (and likewise for w): for stride 1 the full convolution of dout with the
// 180-degree-rotated kernel.
template <class T>
Tensor conv2d_backward_data_reference(const Tensor& dout, const Tensor& w, const ConvGeometry& g);

// dw[f,c,kh,kw] = sum_{n,oh,ow} dout[n,f,oh,ow] * x[n, c, oh*s - p + kh*d, ow*s - p + kw*d]:
// the input correlated with dout.
template <class T>
Tensor conv2d_backward_weights_reference(const Tensor& x, const Tensor& dout, const ConvGeometry& g);

}  // namespace tapegrad::kernels

namespace tapegrad::kernels {

// out[n,c,h,w] += bias[c], in place, for a 4-D tensor in any layout (conv_transpose2d's bias).
void add_channel_bias(const Tensor& out, const Tensor& bias);

}  // namespace tapegrad::kernels
