#include "ops/conv.hpp"

#include <stdexcept>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

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
#include "ops/pad.hpp"
#include "ops/reduce.hpp"
#include "ops/shape_ops.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

using detail::OpContext;

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

void rethrow_backend_error(const char* op, const kernels::ConvGeometry& g) {
    try {
        throw;
    } catch (const dnnl::error& e) {
        throw std::runtime_error(std::string(op) + ": oneDNN refused the convolution (" + e.what() + ") of input " +
                                 to_string(g.input_shape()) + " with weight " + to_string(g.weight_shape()) + ", stride {" +
                                 str(g.stride_h) + "," + str(g.stride_w) + "}, padding {" + str(g.pad_h) + "," + str(g.pad_w) +
                                 "}, dilation {" + str(g.dilation_h) + "," + str(g.dilation_w) + "}, groups " + str(g.groups) +
                                 "; the checks should have refused these sizes: please report them");
    }
}

std::vector<SavedField> conv_saved_state(std::vector<SavedField> tensors, const kernels::ConvGeometry& g, bool fast,
                                         Precision precision) {
    tensors.push_back(detail::saved("stride", pair_str({g.stride_h, g.stride_w})));
    tensors.push_back(detail::saved("padding", pair_str({g.pad_h, g.pad_w})));
    tensors.push_back(detail::saved("dilation", pair_str({g.dilation_h, g.dilation_w})));
    tensors.push_back(detail::saved("groups", g.groups));
    tensors.push_back(detail::saved("kernels", fast ? "fast" : "reference"));
    return detail::with_precision(std::move(tensors), precision);
}

MemoryFormat conv2d_memory_format(const Tensor& x, const Tensor& w) {
    const bool channels_last = x.suggest_memory_format() == MemoryFormat::ChannelsLast ||
                               w.suggest_memory_format() == MemoryFormat::ChannelsLast;
    return channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
}

bool use_fast_kernels(Kernels choice, const kernels::ConvGeometry& g) {
    return !is_reference(choice) && g.pad_h <= g.H && g.pad_w <= g.W;
}

Precision conv_precision(DType dtype, const kernels::ConvGeometry& g) {
    return detail::autocast_precision(dtype, use_fast_kernels(choose_kernels(dtype), g) ? Kernels::Fast : Kernels::Reference);
}

// Checks everything oneDNN would otherwise reject with an opaque status, and resolves the sizes.
kernels::ConvGeometry check_conv2d(const char* op, const Tensor& x, const Shape& w_shape, DType w_dtype, const Tensor& bias,
                                   const Conv2dOptions& o) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is an undefined tensor");
    const std::string shapes = " (input " + to_string(x.shape()) + ", weight " + to_string(w_shape) + ")";
    auto fail = [&](const std::string& what) { throw std::invalid_argument(std::string(op) + ": " + what + shapes); };
    if (x.dim() != 4) fail("the input must be 4-D [N,C,H,W], or 3-D [C,H,W] for a single image");
    if (w_shape.size() != 4) fail("the weight must be 4-D [F,C/groups,KH,KW]");
    if (x.dtype() != w_dtype || (bias.defined() && bias.dtype() != x.dtype()))
        fail(std::string("input, weight and bias must have one dtype, got ") + dtype_name(x.dtype()) + " and " + dtype_name(w_dtype) +
             (bias.defined() ? std::string(" and ") + dtype_name(bias.dtype()) : std::string()) + "; convert with .to()");
    if (!is_floating_point(x.dtype()))
        fail(std::string("this op takes float32 or float64 tensors, got ") + dtype_name(x.dtype()) + "; convert with .to(tg::kFloat32)");
    if (x.dtype() == kBFloat16)
        fail("this op does not take bfloat16 tensors; convert with .to(tg::kFloat32) (under tg::AutocastGuard it computes in "
             "bfloat16 on float32 tensors)");
    if (o.stride.h <= 0 || o.stride.w <= 0) fail("stride must be positive, got {" + str(o.stride.h) + "," + str(o.stride.w) + "}");
    if (o.dilation.h <= 0 || o.dilation.w <= 0)
        fail("dilation must be positive (1 means none), got {" + str(o.dilation.h) + "," + str(o.dilation.w) + "}");
    if (o.padding.h < 0 || o.padding.w < 0) fail("padding must not be negative, got {" + str(o.padding.h) + "," + str(o.padding.w) + "}");
    if (o.groups <= 0) fail("groups must be positive, got " + str(o.groups));
    kernels::ConvGeometry g{};
    g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
    g.F = w_shape[0], g.KH = w_shape[2], g.KW = w_shape[3];
    g.stride_h = o.stride.h, g.stride_w = o.stride.w, g.pad_h = o.padding.h, g.pad_w = o.padding.w;
    g.dilation_h = o.dilation.h, g.dilation_w = o.dilation.w, g.groups = o.groups;
    if (g.KH <= 0 || g.KW <= 0 || g.F <= 0) fail("the weight has an empty dimension");
    if (g.C == 0) fail("the input has no channels; a convolution needs at least one");
    if (g.H == 0 || g.W == 0) fail("the input has no pixels; only the batch may be empty");
    if (g.C % g.groups != 0 || g.F % g.groups != 0)
        fail("groups = " + str(g.groups) + " must divide both the input channels (" + str(g.C) + ") and the filters (" + str(g.F) + ")");
    if (g.C / g.groups != w_shape[1])
        fail("input has " + str(g.C) + " channels but weight expects " +
             str(checked_mul(w_shape[1], g.groups, op, "the weight's channels times groups", shapes)) + " (" + str(w_shape[1]) +
             " per group x " + str(g.groups) + " groups)");
    if (bias.defined() && (bias.dim() != 1 || bias.size(0) != g.F))
        fail("bias must be [" + str(g.F) + "] (one per filter), got " + to_string(bias.shape()));
    const WindowAxis rows{g.H, g.KH, g.stride_h, g.pad_h, g.dilation_h}, cols{g.W, g.KW, g.stride_w, g.pad_w, g.dilation_w};
    g.OH = conv_output_size(rows, op, shapes);
    g.OW = conv_output_size(cols, op, shapes);
    if (g.OH < 1 || g.OW < 1)
        fail("the (dilated) kernel is larger than the padded input, so the output would be empty; pad the input or use a smaller kernel");
    checked_allocation(g.output_shape(), x.dtype(), op, shapes);
    g.stride_h = stride_in_use(rows, g.OH, op);
    g.stride_w = stride_in_use(cols, g.OW, op);
    g.dilation_h = dilation_in_use(rows);
    g.dilation_w = dilation_in_use(cols);
    if (g.N == 0) fail("the batch is empty");
    return g;
}

namespace {

// 'valid' is padding 0; 'same' pads d(k-1)/2 on both sides, and an odd remainder on the bottom
// and right with an explicit zero pad of the input first (as PyTorch does).
Tensor conv2d_padded(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options,
                     SourceLocation loc) {
    Conv2dOptions o = options;
    o.padding = 0;
    const bool bad_dilation = options.dilation.h <= 0 || options.dilation.w <= 0;
    // 'valid', and inputs the checks will refuse with their own message (an empty input among them:
    // padding a [2^26,5,0,0] first would make a 1.6 GB tensor only to refuse it).
    if (options.padding.kind == PaddingKind::Valid || !x.defined() || x.numel() == 0 || !weight.defined() || weight.dim() != 4 ||
        bad_dilation)
        return conv2d(x, weight, bias, o, loc);
    const std::string shapes = " (input " + to_string(x.shape()) + ", weight " + to_string(weight.shape()) + ")";
    if (options.stride.h != 1 || options.stride.w != 1)
        throw std::invalid_argument("conv2d: padding 'same' needs stride 1, got {" + str(options.stride.h) + "," +
                                    str(options.stride.w) + "}" + shapes);
    const int64_t total_h = checked_mul(options.dilation.h, weight.size(2) - 1, "conv2d", "the dilated kernel", shapes);
    const int64_t total_w = checked_mul(options.dilation.w, weight.size(3) - 1, "conv2d", "the dilated kernel", shapes);
    o.padding = Pair{total_h / 2, total_w / 2};
    if (total_h % 2 == 0 && total_w % 2 == 0) return conv2d(x, weight, bias, o, loc);
    return conv2d(pad(x, {0, total_w % 2, 0, total_h % 2}), weight, bias, o, loc);
}

// A strided 1x1 convolution (ResNet's downsample) reads every s-th pixel: the same as a stride-1
// 1x1 convolution of the subsampled input. The fast path takes that form because oneDNN 2.6's
// jit_1x1 weight gradient for strided 1x1 with few channels returned wrong values on more than
// one thread (tests/test_models.cpp's ResNet-18 caught it).
bool is_strided_1x1(const Tensor& x, const Tensor& w, const Conv2dOptions& o) {
    return x.defined() && w.defined() && x.dim() == 4 && w.dim() == 4 && w.size(2) == 1 && w.size(3) == 1 &&
           o.stride.h > 0 && o.stride.w > 0 && (o.stride.h > 1 || o.stride.w > 1) && o.padding.h == 0 && o.padding.w == 0 &&
           !is_reference(choose_kernels(x.dtype()));
}

Tensor conv2d_strided_1x1(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options,
                          SourceLocation loc) {
    check_conv2d("conv2d", x, weight.shape(), weight.dtype(), bias, options);  // errors name the caller's shapes
    Conv2dOptions o = options;
    o.stride = 1;
    return conv2d(x.slice(2, 0, x.size(2), options.stride.h).slice(3, 0, x.size(3), options.stride.w), weight, bias, o, loc);
}

// y [N,F,OH,OW] = x [N,C,H,W] correlated with w [F,C/groups,KH,KW], plus b [F].
// dX [N,C,H,W] = conv_transpose2d(dout, w) (the full correlation of dout with w rotated by 180
// degrees); dW [F,C/groups,KH,KW] = conv2d_weight_grad(x, dout) (x correlated with dout);
// db [F] = dout summed over N, OH, OW. dX comes back in x's layout and dW in the weight's, as
// PyTorch's leaves get them. Under autocast (ops/autocast.hpp) every pass computes in `precision`:
// the reference path rounds what it reads to bfloat16, the bf16 kernels convert it, and each result
// is rounded to bfloat16; the spec reopens that precision for the ops it records.
struct Conv2d {
    static constexpr const char* name = "conv2d";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Convolution and pooling",
        .op = "conv2d",
        .forward = "y[n,f,i,j] = b_f + Σ_{c,u,v} w[f,c,u,v] · x[n,c, s i + u − p, s j + v − p] (zero outside x)",
        .gradient = "dx[n,c,h,w] = Σ_{f,u,v} g[n,f,i,j] w[f,c,u,v] over (i,j) with s i + u − p = h, s j + v − p = w (a "
                    "full correlation of g with the 180°-rotated kernel for s = 1); dw[f,c,u,v] = Σ_{n,i,j} g[n,f,i,j] "
                    "x[n,c, s i + u − p, s j + v − p]; db_f = Σ_{n,i,j} g[n,f,i,j]",
        .shapes = "x [N,C,H,W], w [F,C,KH,KW], b [F], y [N,F,H',W']"};
    static constexpr detail::DTypes dtypes = detail::DTypes::Floating;
    static constexpr std::size_t required_inputs = 2;  // the bias is optional
    kernels::ConvGeometry geometry;                    // checked by the caller
    Precision precision = Precision::Float32;          // from the autocast guard at the call (conv_precision)
    // The saved state.
    bool fast = false;  // the kernel choice: oneDNN, im2col or the depthwise loop rather than the reference loops
    MemoryFormat input_format = MemoryFormat::Contiguous, weight_format = MemoryFormat::Contiguous;
    SavedTensor input{}, weight{};  // x (NHWC on the fast path, rounded on autocast's reference path) for dW, w for dX

    Tensor forward(const OpContext& ctx, const Tensor& x, const Tensor& w, const Tensor& b) {
        const kernels::ConvGeometry& g = geometry;
        if (ctx.scope.counting_flops())
            ctx.scope.set_flops(2.0 * static_cast<double>(g.N * g.F * g.OH * g.OW) * static_cast<double>(g.C / g.groups * g.KH * g.KW));
        fast = use_fast_kernels(ctx.kernels, g);
        input_format = x.suggest_memory_format();
        weight_format = w.suggest_memory_format();
        const Tensor xr = detail::autocast_input(precision, x), wr = detail::autocast_input(precision, w),
                     br = detail::autocast_input(precision, b);
        // The fast path runs on NHWC memory; that copy is also what dW needs later.
        const Tensor xs =
            fast ? run_backend(name, g, [&] { return kernels::to_memory_format(xr, MemoryFormat::ChannelsLast); }) : xr.detach();
        const Tensor computed = fast ? run_backend(name, g, [&] { return kernels::conv2d_forward_fast(xs, wr, br, g, precision); })
                                     : dispatch(x.dtype(), [&]<class T>() { return kernels::conv2d_forward_reference<T>(xs, wr, br, g); });
        if (ctx.recording) {
            if (w.requires_grad()) input = SavedTensor(xs, x);
            if (x.requires_grad()) weight = SavedTensor(w);
        }
        return kernels::to_memory_format(detail::autocast_output(precision, computed), conv2d_memory_format(x, w));
    }

    std::vector<Tensor> backward(const Tensor& dout, const GradMask& needs) const {
        const detail::PrecisionGuard autocast(precision);
        const Conv2dGradientOps ops = conv2d_gradient_ops(geometry);
        std::vector<Tensor> grads(3);
        if (needs[0]) grads[0] = in_memory_format(conv_transpose2d(dout, weight.unpack(), Tensor(), ops.input_grad), input_format);
        if (needs[1]) {
            const Tensor dw = conv2d_weight_grad(input.unpack(), dout, geometry.weight_shape(), ops.weight_grad);
            grads[1] = in_memory_format(dw, weight_format);
        }
        if (needs[2]) grads[2] = sum(dout, {0, 2, 3});
        return grads;
    }

    // The same gradients from the kernels; oneDNN's weight pass gives db along with dW.
    std::vector<Tensor> fused_backward(Kernels, const Tensor& dout_in, const GradMask& needs) const {
        const kernels::ConvGeometry& g = geometry;
        const Tensor dout = detail::autocast_input(precision, dout_in);
        const Tensor w = needs[0] ? detail::autocast_input(precision, weight.unpack()) : Tensor();
        std::vector<Tensor> grads(3);
        if (fast) {
            run_backend(name, g, [&] {
                const Tensor d = kernels::to_memory_format(dout, MemoryFormat::ChannelsLast);
                if (needs[0]) grads[0] = kernels::conv2d_backward_data_fast(d, w, g, precision);
                if (needs[1]) {
                    kernels::ConvWeightGrads wg = kernels::conv2d_backward_weights_fast(input.unpack(), d, g, needs[2], precision);
                    grads[1] = wg.weight;
                    grads[2] = wg.bias;
                }
            });
        } else {
            dispatch(dout.dtype(), [&]<class T>() {
                if (needs[0]) grads[0] = kernels::conv2d_backward_data_reference<T>(dout, w, g);
                if (needs[1]) grads[1] = kernels::conv2d_backward_weights_reference<T>(input.unpack(), dout, g);
            });
        }
        for (Tensor& grad : grads)
            if (grad.defined()) grad = detail::autocast_output(precision, grad);
        if (needs[0]) grads[0] = kernels::to_memory_format(grads[0], input_format);
        if (needs[1]) grads[1] = kernels::to_memory_format(grads[1], weight_format);
        // Without dW (a frozen weight) there is no oneDNN pass to get db from: a plain reduction.
        if (needs[2] && !grads[2].defined()) grads[2] = conv_bias_grad(dout_in, precision);
        return grads;
    }

    std::vector<SavedField> saved_state() const {
        return conv_saved_state({detail::saved("input", input), detail::saved("weight", weight)}, geometry, fast, precision);
    }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options,
              SourceLocation loc) {
    if (detail::unbatched(x)) return detail::drop_batch(conv2d(detail::as_batch(x), weight, bias, options, loc));
    if (options.padding.kind != PaddingKind::Explicit) return conv2d_padded(x, weight, bias, options, loc);
    if (is_strided_1x1(x, weight, options)) return conv2d_strided_1x1(x, weight, bias, options, loc);
    if (!weight.defined()) throw std::invalid_argument("conv2d: the weight is an undefined tensor");
    const kernels::ConvGeometry g = check_conv2d("conv2d", x, weight.shape(), weight.dtype(), bias, options);
    return detail::run_op(Conv2d{.geometry = g, .precision = conv_precision(x.dtype(), g)}, loc, x, weight, bias);
}

}  // namespace tapegrad
