#pragma once
// The two convolutions that make conv2d's gradients, as ops of their own: the transposed
// convolution (conv2d's input gradient, and a layer in its own right: ConvTranspose2d, U-Nets) and
// the weight-gradient convolution. Each is differentiable, so conv2d has a second derivative.
#include "ops/conv.hpp"

namespace tapegrad {

struct ConvTranspose2dOptions {
    Pair stride = 1;
    Pair padding = 0;
    Pair output_padding = 0;  // extra rows/columns at the bottom/right of the output; < stride
    int64_t groups = 1;
    Pair dilation = 1;
};

// PyTorch's F.conv_transpose2d: x [N,Cin,H,W], weight [Cin,Cout/groups,KH,KW], bias [Cout] or
// undefined; output [N,Cout,OH,OW] with OH = (H-1)s - 2p + d(KH-1) + output_padding + 1. It is the
// gradient of conv2d(·, weight) with respect to its input: y = conv2d_input_grad(x, weight).
// float32 runs oneDNN's backward-data primitive (channels-last output); float64, or
// ReferenceKernelsGuard, the reference kernel.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        const ConvTranspose2dOptions& options = {}, SourceLocation loc = SourceLocation::current());

// The gradient of conv2d(x, w, ·, options) with respect to w, for the gradient grad_output of its
// output: dW[f,c,u,v] = sum_{n,i,j} grad_output[n,f,i,j] x[n,c, s i + d u - p, s j + d v - p].
// x [N,C,H,W], grad_output [N,F,OH,OW] (conv2d's output shape), weight_shape [F,C/groups,KH,KW].
// float32 runs oneDNN's backward-weights primitive.
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& grad_output, const Shape& weight_shape,
                          const Conv2dOptions& options = {}, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
