#pragma once
// float32 forward and weight gradient of a convolution with a short window sum (C x KH x KW <= 32:
// a network's first layer on 1 or 3 image channels), a register-blocked loop of our own. Such a
// layer is a poor GEMM (K = 27 for the SmallCNN's conv1) and oneDNN 2.6 runs it well below its
// speed on wider layers (numbers in conv_gemm.hpp). Each image is copied once into a zero-padded
// buffer, so the inner loops have no bounds tests; the products are then summed straight from it
// (no im2col matrix), with output pixels x 16-filter vectors in registers.
#include "engine/tensor.hpp"
#include "ops/kernels/conv_geometry.hpp"

namespace tapegrad::kernels {

// Whether these kernels can run the shape: one group, C x KH x KW <= 32, F a multiple of 16 up to
// 64 (whole vectors), a build whose loops have AVX-512's 32 vector registers (the accumulators
// would spill on AVX2's 16). The rule that picks them is conv2d_forward_uses_few_channels
// (conv_gemm.hpp).
bool conv2d_few_channels_supported(const ConvGeometry& g);

// x channels-last; w [F,C,KH,KW] in any layout; bias [F] or undefined. Returns the output,
// channels-last. Each output is bias + the products in (kh, kw, c) order, whatever the threads.
Tensor conv2d_forward_few_channels(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g);

// x, dout channels-last. dW [F,C,KH,KW] and, with `with_bias`, db: a partial sum per chunk of
// images (the chunks fixed by the batch size), added in chunk order, so the bits do not depend on
// the thread count.
ConvWeightGrads conv2d_backward_weights_few_channels(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias);

}  // namespace tapegrad::kernels
