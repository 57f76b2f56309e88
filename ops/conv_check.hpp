#pragma once
// The checks and size resolution of a 2-D convolution, shared by conv2d and the ops built on its
// geometry (conv_transpose2d, conv2d_weight_grad). Internal to ops/.
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "ops/conv.hpp"
#include "ops/conv_transpose.hpp"
#include "ops/detail/autocast.hpp"
#include "ops/kernels/conv_geometry.hpp"
#include "ops/kernels/conv_onednn.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {

// Checks x [N,C,H,W] against a weight of shape w_shape and dtype w_dtype, the bias and the
// options; errors name `op`. Returns the resolved geometry.
kernels::ConvGeometry check_conv2d(const char* op, const Tensor& x, const Shape& w_shape, DType w_dtype, const Tensor& bias,
                                   const Conv2dOptions& o);

// "{h,w}", for errors and saved state.
inline std::string pair_str(const Pair& p) { return "{" + std::to_string(p.h) + "," + std::to_string(p.w) + "}"; }

// Whether geometry g runs on the fast kernels (oneDNN, im2col) rather than the reference loops:
// for the fast kernel choice (float32 outside ReferenceKernelsGuard), unless the padding is larger
// than the input. oneDNN takes time that grows with the padding to build a primitive (1.5 s for
// 2^17 on a 4x4 input), where the reference loops only visit the taps inside the input; no network
// pads that much.
bool use_fast_kernels(Kernels choice, const kernels::ConvGeometry& g);

// What a convolution of geometry g on `dtype` computes in, read from the autocast guard
// (ops/autocast.hpp) by the public function: bf16 primitives where it runs the fast kernels on a
// processor that has them, else the reference path's rounding; float32 without a guard.
Precision conv_precision(DType dtype, const kernels::ConvGeometry& g);

// PyTorch's layout rule for conv2d (mkldnn_conv_use_channels_last): channels-last when the input
// or the weight suggests channels-last, row-major otherwise.
MemoryFormat conv2d_memory_format(const Tensor& x, const Tensor& w);

// A bias gradient, dout [N,F,OH,OW] summed over N, OH, OW, as the fused backwards compute it: in
// float32, or under autocast the sum of dout's bfloat16 values, rounded to bfloat16.
inline Tensor conv_bias_grad(const Tensor& dout, Precision precision) {
    return detail::bfloat16_values(precision, sum(detail::bfloat16_values(precision, dout), {0, 2, 3}));
}

// A convolution's result or gradient `t` in `format`: recorded (contiguous) under create_graph,
// else a plain copy, or `t` itself when it already is. Not an op of its own.
inline Tensor in_memory_format(const Tensor& t, MemoryFormat format) {
    return is_grad_enabled() ? contiguous(t, format) : kernels::to_memory_format(t, format);
}

// A convolution definition's saved state for to_dot: its saved tensors, then the geometry, the
// kernel choice ("fast" or "reference") and, under autocast, the precision, by name.
std::vector<SavedField> conv_saved_state(std::vector<SavedField> tensors, const kernels::ConvGeometry& g, bool fast,
                                         Precision precision);

// Runs a convolution's backend call. The checks leave oneDNN nothing to refuse; should it refuse
// anyway, its dnnl::error becomes a std::runtime_error naming `op` and the geometry.
[[noreturn]] void rethrow_backend_error(const char* op, const kernels::ConvGeometry& g);
template <class Call>
decltype(auto) run_backend(const char* op, const kernels::ConvGeometry& g, Call&& call) {
    try {
        return call();
    } catch (...) {
        rethrow_backend_error(op, g);
    }
}

// The options of the two ops that make conv2d's gradients for geometry g (used under create_graph):
// dX = conv_transpose2d(dout, w, {}, input_grad), dW = conv2d_weight_grad(x, dout, w_shape, weight_grad).
struct Conv2dGradientOps {
    ConvTranspose2dOptions input_grad;
    Conv2dOptions weight_grad;
};
Conv2dGradientOps conv2d_gradient_ops(const kernels::ConvGeometry& g);

}  // namespace tapegrad
