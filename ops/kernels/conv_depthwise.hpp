#pragma once
// The float32 weight gradient of a depthwise convolution (groups = C = F: one filter per channel),
// a loop of our own: oneDNN 2.6 on AVX2 takes its jit_dw kernel only for some shapes and falls to a
// generic GEMM-based one for the rest, which took 5-10 ms per call on MobileNetV2's late layers
// (x[32,960,1,1] w[960,1,3,3]: 276k multiply-adds) and half of its training step.
#include "engine/tensor.hpp"
#include "ops/kernels/conv_geometry.hpp"

namespace tapegrad::kernels {

// True for a depthwise convolution with one filter per channel: on AVX2 always (oneDNN's effective
// ISA), on AVX-512 for images of at most 4 pixels. There oneDNN 2.6 falls to a slow kernel again:
// MobileNetV2 on 32x32 images at batch 32, Zen 5, one thread, median CPU time of 7 alternated
// rounds, two runs: x[32,384,2,2] 0.045-0.072 against 0.41-0.65 ms (0.11x), x[32,576,2,2] 0.08-0.10x,
// x[32,576,2,2] s2 0.04-0.06x, x[32,960,1,1] 0.022-0.026 against 0.65-0.84 ms (0.03x). On 4x4
// images and larger oneDNN's jit kernel runs at 40-100 GFLOP/s and the loop, which carries its
// sums through memory, at 4-12: 3.7-11x slower (x[32,192,4,4] to x[32,32,16,16]).
bool conv2d_weight_grad_uses_depthwise(const ConvGeometry& g);

// x, dout: channels-last. dW [C,1,KH,KW] and, with `with_bias`, db. Each channel's sums run over
// the pixels in one fixed order on one thread, so the bits do not depend on the thread count.
ConvWeightGrads conv2d_backward_weights_depthwise(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias);

}  // namespace tapegrad::kernels
