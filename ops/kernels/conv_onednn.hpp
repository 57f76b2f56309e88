#pragma once
// Fast float32 convolution on oneDNN's primitives (forward_training, backward_data,
// backward_weights). Activations are NHWC in memory (tapegrad's channels-last), because oneDNN's
// brgconv kernels for NHWC run twice as fast here as its NCHW path (docs/measured.md); the output
// is channels-last too, so a stack of channels-last convolutions never reorders. Weights are read
// as OIHW or, channels-last, as OHWI (any other layout is copied to OIHW first), and reordered to
// whatever blocked layout each primitive prefers; weight gradients come out OIHW. Primitives are built once per shape and kept in a thread-safe cache.
#include <cstddef>

#include "engine/tensor.hpp"
#include "ops/kernels/conv_geometry.hpp"
#include "ops/kernels/kernel_choice.hpp"

namespace tapegrad::kernels {

// `t` with `format`'s memory and strides: `t` itself when it already is, a view with the format's
// strides when only size-1 dimensions differ (a row-major tensor with C == 1 is also
// channels-last: the same memory), else a copy: for float32 4-D tensors each image transposed in
// register tiles (kernels::transpose_planes), else a strided copy. The convolutions below work on
// NHWC memory; conv2d converts inputs and outputs with this where their layout (PyTorch's rule,
// ops/conv.cpp) is row-major.
Tensor to_memory_format(const Tensor& t, MemoryFormat format);

// Every tensor here is float32. With Precision::BFloat16 (autocast, on a processor with bfloat16
// instructions) the passes convert what they read (x, w, dout, and the bias) to bfloat16, run
// oneDNN's bf16 primitives, which sum in float32, and write float32 results, not yet rounded to
// bfloat16: the op rounds them.

// x: channels-last (see to_memory_format); w [F,C/groups,KH,KW] in any layout; bias [F] or
// undefined. Returns the output [N,F,OH,OW], channels-last.
Tensor conv2d_forward_onednn(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g,
                             Precision precision = Precision::Float32);

// dout: channels-last. Returns dx [N,C,H,W], channels-last.
Tensor conv2d_backward_data_onednn(const Tensor& dout, const Tensor& w, const ConvGeometry& g,
                                   Precision precision = Precision::Float32);

// x, dout: channels-last. oneDNN computes db in the same pass as dw.
ConvWeightGrads conv2d_backward_weights_onednn(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias,
                                               Precision precision = Precision::Float32);

// How many primitives (convolutions and reorders, with their descriptors) are cached: tests use it
// to check that a repeated call builds nothing new.
std::size_t conv2d_primitive_cache_size();

}  // namespace tapegrad::kernels
