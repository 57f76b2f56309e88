#pragma once
// The checks and size resolution of a 2-D convolution, shared by conv2d and the ops built on its
// geometry (conv_transpose2d, conv2d_weight_grad). Internal to ops/.
#include "ops/conv.hpp"
#include "ops/conv_transpose.hpp"
#include "ops/kernels/conv_geometry.hpp"

namespace tapegrad {

// Checks x [N,C,H,W] against a weight of shape w_shape and dtype w_dtype, the bias and the
// options; errors name `op`. Returns the resolved geometry.
kernels::ConvGeometry check_conv2d(const char* op, const Tensor& x, const Shape& w_shape, DType w_dtype, const Tensor& bias,
                                   const Conv2dOptions& o);

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
