#pragma once
// The float32 weight gradient of a depthwise convolution (groups = C = F: one filter per channel),
// a loop of our own: oneDNN 2.6 on AVX2 takes its jit_dw kernel only for some shapes and falls to a
// generic GEMM-based one for the rest, which took 5-10 ms per call on MobileNetV2's late layers
// (x[32,960,1,1] w[960,1,3,3]: 276k multiply-adds) and half of its training step.
#include "engine/tensor.hpp"
#include "ops/kernels/conv_geometry.hpp"

namespace tapegrad::kernels {

// True for a depthwise convolution with one filter per channel, on AVX2 (oneDNN's effective ISA;
// on AVX-512 oneDNN keeps the job, where this was not measured).
bool conv2d_weight_grad_uses_depthwise(const ConvGeometry& g);

// x, dout: channels-last. dW [C,1,KH,KW] and, with `with_bias`, db. Each channel's sums run over
// the pixels in one fixed order on one thread, so the bits do not depend on the thread count.
ConvWeightGrads conv2d_backward_weights_depthwise(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias);

}  // namespace tapegrad::kernels
