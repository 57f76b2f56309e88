#pragma once
// float32 convolution passes on whichever of two kernels is faster for their shape: oneDNN's NHWC
// primitives (ops/kernels/conv_onednn.hpp), or an explicit im2col + GEMM through kernels::gemm.
// The choice is a fixed rule per instruction set, so that a result never depends on a timing taken
// at run time. All tensors here are channels-last.
#include "engine/tensor.hpp"
#include "ops/kernels/conv_geometry.hpp"

namespace tapegrad::kernels {

// True where im2col + GEMM is the faster forward: on AVX2 (oneDNN's effective ISA, so
// DNNL_MAX_CPU_ISA=AVX2 counts), for one group, a window larger than 1x1 (oneDNN's 1x1 kernel
// wins those) and at least 64 products per output element (C x KH x KW). Measured at one and two
// threads on a Zen 3 (AVX2), best of 7 (README, speed section): x[8,64,56,56] w[64,64,3,3] 24-28
// against oneDNN's 32-44 ms at one thread, x[32,64,16,16] w[128,64,3,3] s2 3.9 against 5.5-5.7,
// x[32,128,4,4] w[256,128,3,3] 4.2 against 6.3-6.6; the SmallCNN's x[64,32,16,16] w[64,32,3,3]
// level (9.4-10.0 against 9.9-10.6); with 3 input channels (27 products) oneDNN is 3-4x faster.
// On AVX-512 oneDNN's brgconv kernels keep every pass: the rule was measured on AVX2 only.
bool conv2d_forward_uses_gemm(const ConvGeometry& g);
// The input gradient as the forward convolution of dout with the flipped, transposed weights
// (stride 1 only, where that identity holds without zero-stuffing), under the same rule with F in
// place of C: x[8,64,56,56] w[64,64,3,3] 27-29 against 33 ms, x[64,32,16,16] w[64,32,3,3] 9.9
// against 11.7-12.4.
bool conv2d_backward_data_uses_gemm(const ConvGeometry& g);
// The weight gradient: one group and C x KH x KW >= 64, on AVX2. x[8,64,56,56] w[64,64,3,3]
// 38-43 ms against oneDNN's 71-95, x[64,32,16,16] w[64,32,3,3] 9-12 against 14-16; with 3 input
// channels oneDNN wins, 3.7 against 5.4-6.6 ms.
bool conv2d_weight_grad_uses_gemm(const ConvGeometry& g);

// The passes on the kernel the rules above pick. x and dout channels-last; w [F,C/groups,KH,KW] in
// any layout; bias [F] or undefined. Outputs are channels-last; dW and, with `with_bias`,
// db = sum of dout over N, OH, OW.
Tensor conv2d_forward_fast(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g);
Tensor conv2d_backward_data_fast(const Tensor& dout, const Tensor& w, const ConvGeometry& g);
ConvWeightGrads conv2d_backward_weights_fast(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias);

// The im2col + GEMM kernels themselves, for any geometry with one group (tests compare them with
// the oneDNN kernels and the reference). Row p of cols holds the input values output pixel p sees,
// in (kh, kw, c) order (zero in the padding), built a slab of pixels at a time so that it stays in
// cache.
// Forward: out[P, F] = cols[P, KH*KW*C] x W^T, P = N*OH*OW, with W as [F, KH*KW*C]. Each slab is
// one single-threaded GEMM and the slabs depend on the shape alone, so the bits do not depend on
// the thread count.
Tensor conv2d_forward_im2col(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g);
// Input gradient, stride 1 and padding at most dilation x (kernel - 1): the forward kernel run on
// dout with weights W'[c, kh, kw, f] = W[f, c, KH-1-kh, KW-1-kw] and padding dilation x (kernel - 1)
// - padding.
Tensor conv2d_backward_data_im2col(const Tensor& dout, const Tensor& w, const ConvGeometry& g);
// Weight gradient: dW[F, KH*KW*C] = dout^T [F, P] x cols[P, KH*KW*C].
ConvWeightGrads conv2d_backward_weights_im2col(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias);

}  // namespace tapegrad::kernels
