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
// wins those) and at least 256 products per output element (C x KH x KW). Measured at one and two
// threads on a Zen 3 (AVX2), best of 7: x[8,64,56,56] w[64,64,3,3] 24-28 against oneDNN's 32-44
// ms at one thread, x[32,64,16,16] w[128,64,3,3] s2 3.9 against 5.5-5.7, x[32,64,32,32] with 3 to
// 32 filters 0.67-0.71x oneDNN's time; with 32 input channels (288 products) level (1.00-1.05x),
// with 16 or fewer 1.2-2.5x slower, with one 10x.
bool conv2d_forward_uses_gemm(const ConvGeometry& g);
// The input gradient as the forward convolution of dout with the flipped, transposed weights
// (stride 1 only, where that identity holds without zero-stuffing). Here the GEMM's reduction is
// F x KH x KW and its output width C: at least 512 and 16, and at least 1024 pixels in dx (the
// flipped copy of the weights costs as much as the GEMM below that: ResNet's last stage on 32x32
// images, x[32,512,1,1] w[512,512,3,3], took 10-14 ms against oneDNN's 3-6). x[8,64,56,56]
// w[64,64,3,3] 27-29 against oneDNN's 33 ms; x[32,C,32,32] w[64,C,3,3] 0.80-0.94x oneDNN's time
// for C = 16 and 32, level for C = 3 and 8; with 32 filters (288 products) 1.07-1.16x slower,
// with 3 to 16 1.3-2.5x.
bool conv2d_backward_data_uses_gemm(const ConvGeometry& g);
// The weight gradient: one group and C x KH x KW >= 64, on AVX2. x[8,64,56,56] w[64,64,3,3]
// 28 against oneDNN's 62 ms at one thread, 13 against 24 at two; x[64,32,16,16] w[64,32,3,3]
// 8.3-10.8 against 11.5-16.5 and 4.2-5.2 against 5.7-8.4; 1x1 with 64 and 256 channels 0.8-0.95x
// oneDNN's time. With 3 input channels and a 3x3 window (27 products) the two are level within
// the noise (0.77-1.27x), with one channel and 5x5 oneDNN is 2.3-2.6x faster.
// On AVX-512 oneDNN's brgconv kernels keep every pass: these rules were measured on AVX2 only.
bool conv2d_weight_grad_uses_gemm(const ConvGeometry& g);

// The passes on the kernel the rules above pick (a depthwise weight gradient on AVX2 takes
// ops/kernels/conv_depthwise.hpp's loop). x and dout channels-last; w [F,C/groups,KH,KW] in
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
// Weight gradient: dW[F, KH*KW*C] = dout^T [F, P] x cols[P, KH*KW*C], a partial sum per chunk of
// slabs (the same bits at any thread count where there are two chunks or more; see the .cpp).
ConvWeightGrads conv2d_backward_weights_im2col(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias);

}  // namespace tapegrad::kernels
