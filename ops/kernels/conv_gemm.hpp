#pragma once
// float32 convolution passes on whichever of two kernels is faster for their shape: oneDNN's NHWC
// primitives (ops/kernels/conv_onednn.hpp), or an explicit im2col + GEMM through kernels::gemm.
// The choice is a fixed rule per instruction set, so that a result never depends on a timing taken
// at run time. All tensors here are channels-last.
#include "engine/tensor.hpp"
#include "ops/kernels/conv_geometry.hpp"
#include "ops/kernels/kernel_choice.hpp"

namespace tapegrad::kernels {

// True where im2col + GEMM is the faster forward: on AVX2 (oneDNN's effective ISA, so
// DNNL_MAX_CPU_ISA=AVX2 counts), for one group, a window larger than 1x1 (oneDNN's 1x1 kernel
// wins those) and at least 256 products per output element (C x KH x KW). Measured at one and two
// threads on a Zen 3 (AVX2), best of 7: x[8,64,56,56] w[64,64,3,3] 24-28 against oneDNN's 32-44
// ms at one thread, x[32,64,16,16] w[128,64,3,3] s2 3.9 against 5.5-5.7, x[32,64,32,32] with 3 to
// 32 filters 0.67-0.71x oneDNN's time; with 32 input channels (288 products) level (1.00-1.05x),
// with 16 or fewer 1.2-2.5x slower, with one 10x.
// On AVX-512: one group, at most 4 output pixels an image, C x KH x KW >= 128 and at least 128
// output pixels in all (two slabs of 64, one a thread). Measured with bench/conv_kernels.cpp on a
// Zen 5 at one thread, median CPU time of 5-7 alternated rounds, two runs: ResNet-18's stages on
// 32x32 images at batch 32, im2col against oneDNN, x[32,128,4,4] w[256,128,3,3] s2 0.49-0.55
// against 1.01-1.25 ms (0.44-0.48x), x[32,256,2,2] w[256,256,3,3] 0.61-0.70x, x[32,128,2,2] w[256,128,1,1]
// 0.67-0.75x. On 4x4 outputs and larger oneDNN runs at 140-215 GFLOP/s a core and wins: 1.2-1.6x
// for ResNet's first two stages, 1.21-1.24x for the SmallCNN's x[64,32,16,16], 1.32-1.34x for
// x[8,64,56,56].
// Outputs of one pixel an image at batch 32 (ResNet's last stage: 0.27-0.81x at one thread) are
// left to oneDNN: their 32 pixels make one slab, which one thread would compute alone.
bool conv2d_forward_uses_gemm(const ConvGeometry& g);
// The input gradient as the forward convolution of dout with the flipped, transposed weights
// (stride 1 only, where that identity holds without zero-stuffing). Here the GEMM's reduction is
// F x KH x KW and its output width C: at least 512 and 16, and at least 1024 pixels in dx (the
// flipped copy of the weights costs as much as the GEMM below that: ResNet's last stage on 32x32
// images, x[32,512,1,1] w[512,512,3,3], took 10-14 ms against oneDNN's 3-6). x[8,64,56,56]
// w[64,64,3,3] 27-29 against oneDNN's 33 ms; x[32,C,32,32] w[64,C,3,3] 0.80-0.94x oneDNN's time
// for C = 16 and 32, level for C = 3 and 8; with 32 filters (288 products) 1.07-1.16x slower,
// with 3 to 16 1.3-2.5x.
// On AVX-512 oneDNN keeps it: on every shape of the SmallCNN and ResNet-18 measured there it won
// at one thread by 1.2x (x[8,64,56,56]) to 7x (x[32,512,1,1] w[512,512,3,3], where the flipped
// copy of 2.4M weights dominates).
bool conv2d_backward_data_uses_gemm(const ConvGeometry& g);
// The weight gradient: one group and C x KH x KW >= 64, on AVX2. x[8,64,56,56] w[64,64,3,3]
// 28 against oneDNN's 62 ms at one thread, 13 against 24 at two; x[64,32,16,16] w[64,32,3,3]
// 8.3-10.8 against 11.5-16.5 and 4.2-5.2 against 5.7-8.4; 1x1 with 64 and 256 channels 0.8-0.95x
// oneDNN's time. With 3 input channels and a 3x3 window (27 products) the two are level within
// the noise (0.77-1.27x), with one channel and 5x5 oneDNN is 2.3-2.6x faster.
// On AVX-512: one group, at most 4 output pixels an image, a window over 1x1 and C x KH x KW >=
// 1152. Zen 5, one thread (as for the forward above): x[32,128,4,4] w[256,128,3,3] s2 0.58-0.64x
// oneDNN's time, x[32,256,2,2] w[256,256,3,3] 1.24-1.71 against 1.92-2.70 ms (0.63-0.65x),
// x[32,256,2,2] w[512,256,3,3] s2 0.51-0.53x, x[32,512,1,1] w[512,512,3,3] 2.7-3.1 against 4.1-4.4
// ms (0.68-0.71x); a shape with one slab runs its GEMM on every thread. 1x1 windows were level
// (0.81-1.13x), outputs of 4x4 and more 0.86-1.3x (x[8,64,56,56] 0.91-1.03x, the SmallCNN's
// 1.11-1.12x): those stay with oneDNN.
bool conv2d_weight_grad_uses_gemm(const ConvGeometry& g);

// The few-channel loops (ops/kernels/conv_few_channels.hpp) for a window sum of at most 32
// products, on AVX-512 only, at stride 1 and dilation 1 and for batches of 8 images or more (the
// forward splits its work by image); the forward for 16, 32 or 64 filters, the weight gradient
// for 32. Zen 5, one thread, median CPU time of 7 alternated rounds
// (bench/conv_kernels.cpp, load average 8-10 on the 2 cores): the SmallCNN's conv1
// x[64,3,32,32] w[32,3,3,3] p1 forward 0.71 against oneDNN's 0.77 ms (0.92x), weight gradient 0.65
// against 0.75 (0.88x); Fashion-MNIST's x[64,1,28,28] w[32,1,3,3] 0.74x and 0.68x; an RGB stem
// x[32,3,32,32] with 16 filters 0.96x forward, 1.49x weight gradient (one vector of filters: a
// broadcast load per multiply-add), with 64 filters 0.95x forward, weight gradient level (0.64-1.04x).
// The input gradient of these layers (usually the network's input, which needs none) stays
// with oneDNN.
bool conv2d_forward_uses_few_channels(const ConvGeometry& g);
bool conv2d_weight_grad_uses_few_channels(const ConvGeometry& g);

// The passes on the kernel the rules above pick (a depthwise weight gradient may take
// ops/kernels/conv_depthwise.hpp's loop, a few-channel layer ops/kernels/conv_few_channels.hpp's).
// x and dout channels-last; w [F,C/groups,KH,KW] in any layout; bias [F] or undefined. Outputs are channels-last; dW and, with `with_bias`,
// db = sum of dout over N, OH, OW. Precision::BFloat16 (autocast) takes oneDNN's bf16 primitives
// whatever the rules say (ops/kernels/conv_onednn.hpp).
Tensor conv2d_forward_fast(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g,
                           Precision precision = Precision::Float32);
Tensor conv2d_backward_data_fast(const Tensor& dout, const Tensor& w, const ConvGeometry& g, Precision precision = Precision::Float32);
ConvWeightGrads conv2d_backward_weights_fast(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias,
                                             Precision precision = Precision::Float32);

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
