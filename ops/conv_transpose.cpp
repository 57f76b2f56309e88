#include "ops/conv_transpose.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/checked_size.hpp"
#include "ops/conv_check.hpp"
#include "ops/detail/autocast.hpp"
#include "ops/detail/op.hpp"
#include "ops/detail/unbatched.hpp"
#include "ops/kernels/conv_gemm.hpp"
#include "ops/kernels/conv_onednn.hpp"
#include "ops/kernels/conv_reference.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/reduce.hpp"

namespace tapegrad {
namespace {

using detail::OpContext;

std::string str(int64_t v) { return std::to_string(v); }

// conv_transpose2d(x, w) is the input gradient of a conv2d whose output has x's shape: this
// returns that conv2d's geometry (its input is the transposed convolution's output).
kernels::ConvGeometry check_conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvTranspose2dOptions& o) {
    if (!x.defined() || !w.defined())
        throw std::invalid_argument("conv_transpose2d: the input or the weight is an undefined tensor");
    const std::string shapes = " (input " + to_string(x.shape()) + ", weight " + to_string(w.shape()) + ")";
    auto fail = [&](const std::string& what) { throw std::invalid_argument("conv_transpose2d: " + what + shapes); };
    if (x.dim() != 4) fail("the input must be 4-D [N,Cin,H,W], or 3-D [Cin,H,W] for a single image");
    if (w.dim() != 4) fail("the weight must be 4-D [Cin,Cout/groups,KH,KW]");
    if (x.dtype() != w.dtype() || (bias.defined() && bias.dtype() != x.dtype()))
        fail(std::string("input, weight and bias must have one dtype, got ") + dtype_name(x.dtype()) + " and " +
             dtype_name(w.dtype()) + (bias.defined() ? std::string(" and ") + dtype_name(bias.dtype()) : std::string()) +
             "; convert with .to()");
    if (!is_floating_point(x.dtype()))
        fail(std::string("this op takes float32 or float64 tensors, got ") + dtype_name(x.dtype()) + "; convert with .to(tg::kFloat32)");
    if (x.dtype() == kBFloat16)
        fail("this op does not take bfloat16 tensors; convert with .to(tg::kFloat32) (under tg::AutocastGuard it computes in "
             "bfloat16 on float32 tensors)");
    if (o.stride.h <= 0 || o.stride.w <= 0) fail("stride must be positive, got " + pair_str(o.stride));
    if (o.dilation.h <= 0 || o.dilation.w <= 0) fail("dilation must be positive (1 means none), got " + pair_str(o.dilation));
    if (o.padding.h < 0 || o.padding.w < 0) fail("padding must not be negative, got " + pair_str(o.padding));
    if (o.groups <= 0) fail("groups must be positive, got " + str(o.groups));
    if (o.output_padding.h < 0 || o.output_padding.w < 0 || o.output_padding.h >= o.stride.h || o.output_padding.w >= o.stride.w)
        fail("output_padding must be at least 0 and smaller than the stride, got output_padding " + pair_str(o.output_padding) +
             " with stride " + pair_str(o.stride));
    kernels::ConvGeometry g{};
    g.N = x.size(0), g.F = x.size(1), g.OH = x.size(2), g.OW = x.size(3);
    g.KH = w.size(2), g.KW = w.size(3);
    g.stride_h = o.stride.h, g.stride_w = o.stride.w, g.pad_h = o.padding.h, g.pad_w = o.padding.w;
    g.dilation_h = o.dilation.h, g.dilation_w = o.dilation.w, g.groups = o.groups;
    if (g.KH <= 0 || g.KW <= 0 || w.size(1) <= 0) fail("the weight has an empty dimension");
    if (w.size(0) != g.F) fail("the input has " + str(g.F) + " channels but the weight's first dimension is " + str(w.size(0)));
    if (g.F == 0) fail("the input has no channels; a transposed convolution needs at least one");
    if (g.F % g.groups != 0) fail("groups = " + str(g.groups) + " must divide the input channels (" + str(g.F) + ")");
    g.C = checked_mul(w.size(1), g.groups, "conv_transpose2d", "the output channels", shapes);
    if (bias.defined() && (bias.dim() != 1 || bias.size(0) != g.C))
        fail("bias must be [" + str(g.C) + "] (one per output channel), got " + to_string(bias.shape()));
    if (g.OH <= 0 || g.OW <= 0) fail("the input has no pixels");
    if (g.N == 0) fail("the batch is empty");
    // The transposed convolution's output is the input of the convolution g describes.
    WindowAxis rows{g.OH, g.KH, g.stride_h, g.pad_h, g.dilation_h}, cols{g.OW, g.KW, g.stride_w, g.pad_w, g.dilation_w};
    g.H = conv_transpose_output_size(rows, o.output_padding.h, "conv_transpose2d", shapes);
    g.W = conv_transpose_output_size(cols, o.output_padding.w, "conv_transpose2d", shapes);
    if (g.H < 1 || g.W < 1)
        fail("the output would be empty (" + str(g.H) + "x" + str(g.W) + "): the padding removes more than the input spans");
    checked_allocation(g.input_shape(), x.dtype(), "conv_transpose2d", shapes);
    rows.in = g.H, cols.in = g.W;
    g.stride_h = stride_in_use(rows, g.OH, "conv_transpose2d");
    g.stride_w = stride_in_use(cols, g.OW, "conv_transpose2d");
    g.dilation_h = dilation_in_use(rows);
    g.dilation_w = dilation_in_use(cols);
    return g;
}

Conv2dOptions conv_options(const kernels::ConvGeometry& g) {
    return {.stride = {g.stride_h, g.stride_w}, .padding = {g.pad_h, g.pad_w}, .dilation = {g.dilation_h, g.dilation_w}, .groups = g.groups};
}

// The transposed convolution that maps a gradient of g's output back onto g's input: its
// output_padding makes up the rows and columns the forward's floor division dropped.
ConvTranspose2dOptions transpose_options(const kernels::ConvGeometry& g) {
    const int64_t dropped_h = g.H - ((g.OH - 1) * g.stride_h - 2 * g.pad_h + g.dilation_h * (g.KH - 1) + 1);
    const int64_t dropped_w = g.W - ((g.OW - 1) * g.stride_w - 2 * g.pad_w + g.dilation_w * (g.KW - 1) + 1);
    return {.stride = {g.stride_h, g.stride_w},
            .padding = {g.pad_h, g.pad_w},
            .output_padding = {dropped_h, dropped_w},
            .groups = g.groups,
            .dilation = {g.dilation_h, g.dilation_w}};
}

// The fast kernels' activations: NHWC memory.
Tensor nhwc(const Tensor& t) { return kernels::to_memory_format(t, MemoryFormat::ChannelsLast); }

// The three convolutions of geometry g, on the fast or the reference kernels, for op `op`, with
// the inputs in autocast's precision p (ops/autocast.hpp); the results are not rounded yet (a bias
// may follow).
Tensor conv_forward(const char* op, const Tensor& x_in, const Tensor& w_in, const kernels::ConvGeometry& g, bool fast, Precision p) {
    const Tensor x = detail::autocast_input(p, x_in), w = detail::autocast_input(p, w_in);
    if (fast) return run_backend(op, g, [&] { return kernels::conv2d_forward_fast(nhwc(x), w, Tensor(), g, p); });
    return dispatch(x.dtype(), [&]<class T>() { return kernels::conv2d_forward_reference<T>(x, w, Tensor(), g); });
}
Tensor conv_input_grad(const char* op, const Tensor& dout_in, const Tensor& w_in, const kernels::ConvGeometry& g, bool fast,
                       Precision p) {
    const Tensor dout = detail::autocast_input(p, dout_in), w = detail::autocast_input(p, w_in);
    if (fast) return run_backend(op, g, [&] { return kernels::conv2d_backward_data_fast(nhwc(dout), w, g, p); });
    return dispatch(dout.dtype(), [&]<class T>() { return kernels::conv2d_backward_data_reference<T>(dout, w, g); });
}
Tensor conv_weight_grad(const char* op, const Tensor& x_in, const Tensor& dout_in, const kernels::ConvGeometry& g, bool fast,
                        Precision p) {
    const Tensor x = detail::autocast_input(p, x_in), dout = detail::autocast_input(p, dout_in);
    if (fast)
        return run_backend(op, g, [&] {
            return kernels::conv2d_backward_weights_fast(nhwc(x), nhwc(dout), g, false, p).weight;
        });
    return dispatch(x.dtype(), [&]<class T>() { return kernels::conv2d_backward_weights_reference<T>(x, dout, g); });
}

// y [N,Cout,H,W] = conv2d's input gradient of x [N,Cin,OH,OW] for weight w [Cin,Cout/groups,KH,KW],
// plus b [Cout]; the geometry is that conv2d's (its input is y, its weight shape w's). For the gradient G of y:
// dx [N,Cin,OH,OW] = conv2d(G, w); dw [Cin,Cout/groups,KH,KW] = conv2d_weight_grad(G, x) (G as the
// input, x as the output gradient); db [Cout] = G summed over N, H, W. dx and dw come back in x's
// and w's layouts. Under autocast every pass computes in `precision`, as conv2d's do (ops/conv.cpp).
struct ConvTranspose2d {
    static constexpr const char* name = "conv_transpose2d";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Convolution and pooling",
        .op = "conv_transpose2d",
        .forward = "y = conv2d's input gradient of x: y[n,c,h,w] = b_c + Σ_{f,u,v} x[n,f,i,j] w[f,c,u,v] over (i,j) "
                   "with s i + d u − p = h, s j + d v − p = w",
        .gradient = "dx = conv2d(g, w) (same stride, padding, dilation, groups); dw = conv2d_weight_grad(g, x) (g as "
                    "the input, x as the output gradient); db_c = Σ_{n,h,w} g[n,c,h,w]",
        .shapes = "x [N,Cin,H,W], w [Cin,Cout/groups,KH,KW], b [Cout], y [N,Cout,(H−1)s − 2p + d(KH−1) + output_padding "
                  "+ 1, ...]; output_padding < stride"};
    static constexpr detail::DTypes dtypes = detail::DTypes::Floating;
    static constexpr std::size_t required_inputs = 2;  // the bias is optional
    kernels::ConvGeometry geometry;                    // checked by the caller
    Precision precision = Precision::Float32;          // from the autocast guard at the call (conv_precision)
    // The saved state.
    bool fast = false;
    MemoryFormat input_format = MemoryFormat::Contiguous, weight_format = MemoryFormat::Contiguous;
    SavedTensor input{}, weight{};  // x for dw, w for dx

    Tensor forward(const OpContext& ctx, const Tensor& x, const Tensor& w, const Tensor& b) {
        fast = use_fast_kernels(ctx.kernels, geometry);
        input_format = x.suggest_memory_format();
        weight_format = w.suggest_memory_format();
        // PyTorch 1.13's conv_transpose2d on the CPU returns a row-major output whatever the
        // layouts of its input and weight; the gradients come back in their layouts.
        Tensor out = kernels::to_memory_format(conv_input_grad(name, x, w, geometry, fast, precision), MemoryFormat::Contiguous);
        if (b.defined()) kernels::add_channel_bias(out, detail::bfloat16_values(precision, b));
        if (ctx.recording) {
            if (w.requires_grad()) input = SavedTensor(x);
            if (x.requires_grad()) weight = SavedTensor(w);
        }
        return detail::autocast_output(precision, out);
    }

    std::vector<Tensor> backward(const Tensor& dy, const GradMask& needs) const {
        const detail::PrecisionGuard autocast(precision);
        std::vector<Tensor> grads(3);
        if (needs[0]) grads[0] = in_memory_format(conv2d(dy, weight.unpack(), Tensor(), conv_options(geometry)), input_format);
        if (needs[1]) {
            const Tensor dw = conv2d_weight_grad(dy, input.unpack(), geometry.weight_shape(), conv_options(geometry));
            grads[1] = in_memory_format(dw, weight_format);
        }
        if (needs[2]) grads[2] = sum(dy, {0, 2, 3});
        return grads;
    }

    std::vector<Tensor> fused_backward(Kernels, const Tensor& dy, const GradMask& needs) const {
        const Precision p = precision;
        std::vector<Tensor> grads(3);
        if (needs[0])
            grads[0] = kernels::to_memory_format(detail::autocast_output(p, conv_forward(name, dy, weight.unpack(), geometry, fast, p)),
                                                 input_format);
        if (needs[1])
            grads[1] = kernels::to_memory_format(
                detail::autocast_output(p, conv_weight_grad(name, dy, input.unpack(), geometry, fast, p)), weight_format);
        if (needs[2]) grads[2] = conv_bias_grad(dy, p);
        return grads;
    }

    std::vector<SavedField> saved_state() const {
        return conv_saved_state({detail::saved("input", input), detail::saved("weight", weight)}, geometry, fast, precision);
    }
};

// dW [F,C/groups,KH,KW] = x [N,C,H,W] correlated with go [N,F,OH,OW], bilinear in the two. For the
// gradient G of dW: dx [N,C,H,W] = conv2d's input gradient of go with weight G = conv_transpose2d(go,
// G); dgo [N,F,OH,OW] = conv2d(x, G). Under autocast every pass computes in `precision`.
struct Conv2dWeightGrad {
    static constexpr const char* name = "conv2d_weight_grad";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Convolution and pooling",
        .op = "conv2d_weight_grad",
        .forward = "dW[f,c,u,v] = Σ_{n,i,j} go[n,f,i,j] x[n,c, s i + d u − p, s j + d v − p] (conv2d's weight gradient "
                   "for output gradient go)",
        .gradient = "bilinear: for the gradient G of dW, dx = conv_transpose2d(go, G) with the output_padding that "
                    "restores x's size; dgo = conv2d(x, G)",
        .shapes = "x [N,C,H,W], go [N,F,H',W'] (conv2d's output), dW [F,C/groups,KH,KW]"};
    static constexpr detail::DTypes dtypes = detail::DTypes::Floating;
    kernels::ConvGeometry geometry;             // checked by the caller
    Precision precision = Precision::Float32;  // from the autocast guard at the call (conv_precision)
    // The saved state.
    bool fast = false;
    SavedTensor input{}, grad_output{};  // x for dgo, go for dx

    Tensor forward(const OpContext& ctx, const Tensor& x, const Tensor& go) {
        fast = use_fast_kernels(ctx.kernels, geometry);
        Tensor out = detail::autocast_output(precision, conv_weight_grad(name, x, go, geometry, fast, precision));
        if (ctx.recording) {
            if (go.requires_grad()) input = SavedTensor(x);
            if (x.requires_grad()) grad_output = SavedTensor(go);
        }
        return out;
    }

    std::vector<Tensor> backward(const Tensor& G, const GradMask& needs) const {
        const detail::PrecisionGuard autocast(precision);
        std::vector<Tensor> grads(2);
        if (needs[0]) grads[0] = conv_transpose2d(grad_output.unpack(), G, Tensor(), transpose_options(geometry));
        if (needs[1]) grads[1] = conv2d(input.unpack(), G, Tensor(), conv_options(geometry));
        return grads;
    }

    std::vector<Tensor> fused_backward(Kernels, const Tensor& G, const GradMask& needs) const {
        std::vector<Tensor> grads(2);
        if (needs[0]) grads[0] = detail::autocast_output(precision, conv_input_grad(name, grad_output.unpack(), G, geometry, fast, precision));
        if (needs[1]) grads[1] = detail::autocast_output(precision, conv_forward(name, input.unpack(), G, geometry, fast, precision));
        return grads;
    }

    std::vector<SavedField> saved_state() const {
        return conv_saved_state({detail::saved("input", input), detail::saved("grad_output", grad_output)}, geometry, fast,
                                precision);
    }
};

}  // namespace

Conv2dGradientOps conv2d_gradient_ops(const kernels::ConvGeometry& g) { return {transpose_options(g), conv_options(g)}; }

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvTranspose2dOptions& options,
                        SourceLocation loc) {
    if (detail::unbatched(x)) return detail::drop_batch(conv_transpose2d(detail::as_batch(x), weight, bias, options, loc));
    const kernels::ConvGeometry g = check_conv_transpose2d(x, weight, bias, options);
    return detail::run_op(ConvTranspose2d{.geometry = g, .precision = conv_precision(x.dtype(), g)}, loc, x, weight, bias);
}

Tensor conv2d_weight_grad(const Tensor& x, const Tensor& grad_output, const Shape& weight_shape, const Conv2dOptions& options,
                          SourceLocation loc) {
    const kernels::ConvGeometry g = check_conv2d("conv2d_weight_grad", x, weight_shape, x.defined() ? x.dtype() : kFloat32, Tensor(), options);
    if (!grad_output.defined() || grad_output.shape() != g.output_shape() || grad_output.dtype() != x.dtype())
        throw std::invalid_argument("conv2d_weight_grad: grad_output must be " + to_string(g.output_shape()) + " " +
                                    dtype_name(x.dtype()) + " (the conv2d output of input " + to_string(x.shape()) +
                                    " and weight " + to_string(weight_shape) + "), got " +
                                    (grad_output.defined() ? describe(grad_output) : std::string("an undefined tensor")));
    return detail::run_op(Conv2dWeightGrad{.geometry = g, .precision = conv_precision(x.dtype(), g)}, loc, x, grad_output);
}

}  // namespace tapegrad
