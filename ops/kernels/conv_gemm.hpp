#pragma once
// The float32 weight gradient of a convolution, on whichever of two kernels is faster for its
// shape: oneDNN's backward-weights primitive, or an explicit im2col + GEMM through kernels::gemm.
#include "engine/tensor.hpp"
#include "ops/kernels/conv_geometry.hpp"

namespace tapegrad::kernels {

// True where im2col + GEMM is the faster kernel: on AVX2 (oneDNN's effective ISA, so
// DNNL_MAX_CPU_ISA=AVX2 counts), for one group and at least 64 products per output element
// (C/groups x KH x KW). On AVX-512 oneDNN's brgconv kernels keep the job: the rule was measured
// on AVX2 only. Measured at one thread on a Zen 3 (AVX2), each kernel timed
// alternately: x[8,64,56,56] w[64,64,3,3] 38-43 ms against oneDNN's 71-95, x[64,32,16,16]
// w[64,32,3,3] 9-12 against 14-16; with 3 input channels (27 products) oneDNN wins, 3.7 against
// 5.4-6.6 ms. A fixed rule, so that a result never depends on a timing taken at run time.
bool conv2d_weight_grad_uses_gemm(const ConvGeometry& g);

// x, dout: channels-last. dW and, with `with_bias`, db = sum of dout over N, OH, OW.
ConvWeightGrads conv2d_backward_weights_fast(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias);

// The im2col + GEMM kernel itself, for any geometry with one group (tests compare it with the
// oneDNN kernel and the reference): dW[F, KH*KW*C] = dout^T [F, P] x cols[P, KH*KW*C], P = N*OH*OW,
// where row p of cols holds the input values output pixel p sees, in (kh, kw, c) order (zero in
// the padding). cols is built for a slab of pixels at a time, so it stays in cache.
ConvWeightGrads conv2d_backward_weights_im2col(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias);

}  // namespace tapegrad::kernels
