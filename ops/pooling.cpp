#include "ops/pooling.hpp"

#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "engine/checked_size.hpp"
#include "ops/activation.hpp"
#include "ops/detail/fusion.hpp"
#include "ops/detail/linear_op.hpp"
#include "ops/detail/op.hpp"
#include "ops/detail/unbatched.hpp"
#include "ops/kernels/index.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/kernels/pool_fast.hpp"
#include "ops/kernels/pool_reference.hpp"
#include "ops/index.hpp"

namespace tapegrad {
namespace {

using detail::as_batch;
using detail::drop_batch;
using detail::OpContext;
using detail::unbatched;

std::string pair_str(const Pair& p) { return "{" + std::to_string(p.h) + "," + std::to_string(p.w) + "}"; }

void check_input(const char* op, const Tensor& x) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is an undefined tensor");
    if (x.dim() != 4)
        throw std::invalid_argument(std::string(op) + ": the input must be 4-D [N,C,H,W] or 3-D [C,H,W], got " + to_string(x.shape()));
    if (x.size(2) == 0 || x.size(3) == 0)
        throw std::invalid_argument(std::string(op) + ": the input " + to_string(x.shape()) +
                                    " has no pixels; only the batch (or channel) size may be 0");
}

// Whether every window along one axis reads at least one input element (a dilated window may
// step over the whole input, leaving only padding). A window that starts inside the input reads
// its first tap, and every window starts before the input's end (the output size's rule). One that
// starts in the padding reads, with padding <= kernel/2, its first tap past the padding, at
// (start mod dilation) < dilation: inside when in >= dilation. Otherwise the kernel is at most 2
// taps (dilation (kernel - 1) + 1 <= in + 2 pad <= in + kernel), so only window 0 starts in the
// padding: the loop is short whatever the sizes, an empty batch's 2^31 rows included.
bool every_window_reads_input(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
    if (in >= dilation) return true;
    for (int64_t o = 0; o < out && o * stride < pad; ++o) {
        const int64_t start = o * stride - pad;
        if (kernels::first_tap_inside(start, dilation) >= kernels::window_end(start, kernel, dilation, in)) return false;
    }
    return true;
}

enum class PoolKind : uint8_t { Max, Average };

kernels::PoolGeometry check_pool(const char* op, const Tensor& x, const Pool2dOptions& o, PoolKind kind) {
    check_input(op, x);
    const Pair k = o.kernel_size, s = o.stride.value_or(o.kernel_size), p = o.padding, d = o.dilation;
    const std::string where = " (input " + to_string(x.shape()) + ", kernel " + pair_str(k) + ", stride " + pair_str(s) + ", padding " +
                              pair_str(p) + ", dilation " + pair_str(d) + (o.ceil_mode ? ", ceil_mode" : "") + ")";
    auto fail = [&](const std::string& what) { throw std::invalid_argument(std::string(op) + ": " + what + where); };
    if (kind == PoolKind::Max && (!o.count_include_pad || o.divisor_override))
        fail("count_include_pad and divisor_override are avg_pool2d options; leave them at their defaults");
    if (kind == PoolKind::Average && (d.h != 1 || d.w != 1)) fail("avg_pool2d has no dilation (neither has PyTorch's); leave it at 1");
    if (kind == PoolKind::Average && o.divisor_override == 0) fail("divisor_override must not be zero");
    if (k.h <= 0 || k.w <= 0) fail("kernel_size must be positive");
    if (s.h <= 0 || s.w <= 0) fail("stride must be positive");
    if (d.h <= 0 || d.w <= 0) fail("dilation must be positive");
    if (p.h < 0 || p.w < 0) fail("padding must not be negative");
    // PyTorch's pools take these as 32-bit integers, and refuse larger ones.
    constexpr int64_t kLimit = std::numeric_limits<int32_t>::max();
    if (k.h > kLimit || k.w > kLimit || s.h > kLimit || s.w > kLimit || p.h > kLimit || p.w > kLimit || d.h > kLimit || d.w > kLimit)
        fail("kernel_size, stride, padding and dilation must be below 2^31 (32-bit integers, as in PyTorch)");
    // PyTorch's rule: beyond half the kernel, a window could lie entirely in the padding.
    if (p.h > k.h / 2 || p.w > k.w / 2) fail("padding must be at most half the kernel size");
    const int64_t H = x.size(2), W = x.size(3);
    if (H * W > std::numeric_limits<int32_t>::max()) fail("an input plane has more than 2^31 elements");
    const WindowAxis rows{H, k.h, s.h, p.h, d.h}, cols{W, k.w, s.w, p.w, d.w};
    const int64_t OH = pool_output_size(rows, o.ceil_mode, op, where), OW = pool_output_size(cols, o.ceil_mode, op, where);
    if (OH < 1 || OW < 1)
        fail("the (dilated) kernel is larger than the padded input, so the output would be empty; pad more or use a smaller kernel");
    if (!every_window_reads_input(H, OH, k.h, s.h, p.h, d.h) || !every_window_reads_input(W, OW, k.w, s.w, p.w, d.w))
        fail("a dilated window reads only padding; use a smaller dilation or padding");
    kernels::PoolGeometry g{x.size(0), x.size(1), H,   W,   OH, OW, k.h, k.w, stride_in_use(rows, OH, op), stride_in_use(cols, OW, op),
                            p.h,       p.w,       d.h, d.w};
    checked_allocation(g.output_shape(), x.dtype(), op, where);
    return g;
}

// The fast kernels take either dense layout; anything else is copied to row-major first.
Tensor dense(const Tensor& x) {
    return x.is_contiguous() || x.is_contiguous(MemoryFormat::ChannelsLast) ? x.detach() : x.detach().contiguous();
}

// The average pool's bins along both axes, as saved state.
std::vector<SavedField> bins_state(const kernels::AvgPoolBins& bins) {
    auto axis = [](const kernels::AxisBins& a) {
        if (a.kernel == 0) return std::to_string(a.in) + " -> " + std::to_string(a.out) + " adaptive";
        return std::to_string(a.in) + " -> " + std::to_string(a.out) + ", kernel " + std::to_string(a.kernel) + ", stride " +
               std::to_string(a.stride) + ", padding " + std::to_string(a.pad) + (a.count_include_pad ? ", count_include_pad" : "");
    };
    std::vector<SavedField> fields{detail::saved("rows", axis(bins.rows)), detail::saved("cols", axis(bins.cols))};
    if (bins.divisor_override != 0) fields.push_back(detail::saved("divisor_override", bins.divisor_override));
    return fields;
}

// avg_pool2d and adaptive_avg_pool2d differ only in their bins. Both are linear, and each is its
// adjoint's backward (detail::LinearOp), so derivatives of any order exist.
// dX[n,c,h,w] [N,C,H,W] = sum over the bins (i,j) holding (h,w) of dout[n,c,i,j] / |bin (i,j)|
template <class Names>
struct AveragePool {
    static constexpr const char* name = Names::name;
    static constexpr detail::DerivativeDoc doc = Names::doc;
    static constexpr const char* adjoint_name = Names::adjoint_name;
    static constexpr detail::DTypes dtypes = detail::DTypes::Floating;
    kernels::AvgPoolBins bins;

    Tensor apply(Kernels choice, const Tensor& x) const {
        if (!is_reference(choice)) return kernels::avg_pool2d_forward_fast(dense(x), bins);
        return dispatch(x.dtype(), [&]<class T>() { return kernels::avg_pool2d_forward_reference<T>(x, bins); });
    }
    Tensor adjoint(Kernels choice, const Tensor& dout) const {
        if (!is_reference(choice)) return kernels::avg_pool2d_backward_fast(dout, bins);
        return dispatch(dout.dtype(), [&]<class T>() { return kernels::avg_pool2d_backward_reference<T>(dout, bins); });
    }
    std::vector<SavedField> saved_state() const { return bins_state(bins); }
};

struct AvgPool2dNames {
    static constexpr const char* name = "avg_pool2d";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Convolution and pooling",
        .op = "avg_pool2d",
        .forward = "y[n,c,i,j] = (1/D) Σ_{u,v} x[n,c, s i + u − p, s j + v − p] (padding counts as zeros); D = the "
                   "window clipped to the padded input, (min(h₀ + KH, H + p) − h₀)·(likewise w) with h₀ = s i − p "
                   "(count_include_pad, the default: KH·KW unless a ceil_mode window hangs past the padding), or the "
                   "window clipped to the input (count_include_pad=false), or divisor_override",
        .gradient = "dx[n,c,h,w] = Σ over windows containing (h,w) of g[n,c,i,j] / D",
        .shapes = "as max_pool2d (no dilation)"};
    static constexpr const char* adjoint_name = "avg_pool2d_backward";
};
struct AdaptiveAvgPool2dNames {
    static constexpr const char* name = "adaptive_avg_pool2d";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Convolution and pooling",
        .op = "adaptive_avg_pool2d",
        .forward = "output (i, j) averages rows [⌊i H/H'⌋, ⌈(i+1) H/H'⌉) and likewise columns",
        .gradient = "dx = each g[n,c,i,j] spread evenly over its window, summed where windows overlap",
        .shapes = "x [N,C,H,W] → y [N,C,H',W']"};
    static constexpr const char* adjoint_name = "adaptive_avg_pool2d_backward";
};

// The flat row-major index into x of each output's maximum, in the output's row-major order: what
// put_add scatters the gradient with when the backward is recorded.
std::vector<int64_t> flat_argmax(const kernels::Argmax& argmax, const kernels::PoolGeometry& g) {
    std::vector<int64_t> flat(static_cast<std::size_t>(g.N * g.C * g.OH * g.OW));
    if (flat.empty()) return flat;  // [2^31, 0, ...] would loop over the batch for nothing
    const bool channels_last = argmax.format == MemoryFormat::ChannelsLast;
    std::size_t j = 0;
    for (int64_t n = 0; n < g.N; ++n)
        for (int64_t c = 0; c < g.C; ++c)
            for (int64_t p = 0; p < g.OH * g.OW; ++p) {
                const int64_t at = channels_last ? (n * g.OH * g.OW + p) * g.C + c : (n * g.C + c) * g.OH * g.OW + p;
                flat[j++] = (n * g.C + c) * g.H * g.W + argmax.index[at];
            }
    return flat;
}

// dX [N,C,H,W]: dX[n,c,argmax(n,c,j)] += dout[n,c,j]; every other input gets 0
// The argmax is all the backward reads; the version check refuses what PyTorch, which saves x,
// refuses. The output and, when asked, the argmax as PyTorch's int64 indices (no gradient).
struct MaxPool2d {
    static constexpr const char* name = "max_pool2d";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Convolution and pooling",
        .op = "max_pool2d",
        .forward = "y[n,c,i,j] = max over the window x[n,c, s i + d u − p, s j + d v − p], u < KH, v < KW (padding "
                   "counts as −∞; dilation d)",
        .gradient = "dx receives g[n,c,i,j] at the window's first maximum (row-major window order), summed over "
                    "overlapping windows; 0 elsewhere",
        .shapes = "x [N,C,H,W] (or [C,H,W]) → y [N,C,H',W'], H' = ⌊(H + 2p − d(KH − 1) − 1)/s⌋ + 1; ceil_mode rounds "
                  "up, then drops the last window if it starts at or past H + p"};
    static constexpr detail::DTypes dtypes = detail::DTypes::Floating;
    kernels::PoolGeometry geometry;  // checked by the caller
    bool return_indices = false;
    kernels::Argmax argmax{};
    SavedTensor input_version{};

    std::tuple<Tensor, Tensor> forward(const OpContext& ctx, const Tensor& x) {
        kernels::MaxPoolResult r = !is_reference(ctx.kernels)
                                       ? kernels::max_pool2d_forward_fast(dense(x), geometry)
                                       : dispatch(x.dtype(), [&]<class T>() { return kernels::max_pool2d_forward_reference<T>(x, geometry); });
        Tensor indices = return_indices ? r.argmax.to_tensor(geometry.output_shape()) : Tensor();
        if (ctx.recording) {
            argmax = std::move(r.argmax);
            input_version = SavedTensor::version_of(x);
        }
        return {r.out, indices};
    }
    std::vector<Tensor> backward(const Tensor& dout, const GradMask&) const {
        input_version.check();
        return {put_add(geometry.input_shape(), flat_argmax(argmax, geometry), dout)};
    }
    std::vector<Tensor> fused_backward(Kernels choice, const Tensor& dout, const GradMask&) const {
        input_version.check();
        if (!is_reference(choice)) return {kernels::max_pool2d_backward_fast(dout, argmax, geometry)};
        return {dispatch(dout.dtype(), [&]<class T>() { return kernels::max_pool2d_backward_reference<T>(dout, argmax, geometry); })};
    }
    std::vector<SavedField> saved_state() const {
        const kernels::PoolGeometry& g = geometry;
        return {SavedField{"argmax",
                                   {},
                                   SavedTensorInfo{g.output_shape(), kInt32,
                                                   static_cast<std::size_t>(g.N * g.C * g.OH * g.OW) * sizeof(int32_t)}},
                detail::saved("argmax_layout", argmax.format == MemoryFormat::ChannelsLast ? "channels_last" : "contiguous"),
                detail::saved("input_shape", to_string(g.input_shape())),
                detail::saved("kernel_size", pair_str({g.KH, g.KW})),
                detail::saved("stride", pair_str({g.SH, g.SW})),
                detail::saved("padding", pair_str({g.PH, g.PW})),
                detail::saved("dilation", pair_str({g.DH, g.DW})),
                detail::saved("input_version", input_version)};
    }
};

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options, SourceLocation loc) {
    if (unbatched(x)) return drop_batch(max_pool2d(as_batch(x), options, loc));
    return std::get<0>(detail::run_op(MaxPool2d{.geometry = check_pool("max_pool2d", x, options, PoolKind::Max)}, loc, x));
}

Tensor max_pool2d(const Tensor& x, Pair kernel_size, std::optional<Pair> stride, Pair padding, Pair dilation, bool ceil_mode,
                  SourceLocation loc) {
    return max_pool2d(
        x, Pool2dOptions{.kernel_size = kernel_size, .stride = stride, .padding = padding, .dilation = dilation, .ceil_mode = ceil_mode}, loc);
}

// Max-pooling commutes with relu exactly: relu is monotone, so the window maximum of relu(x) is
// relu of the window maximum, and the gradient reaches the same element (the first maximum, or
// none where the maximum is not positive; NaN propagates either way). relu's forward has run; the
// pool's node is recorded on relu's input instead, from relu's result (whose argmax differs from
// x's only in windows whose maximum is not positive, where relu's mask zeroes the gradient), and
// relu on the pooled result, so relu's backward and saved result are a quarter the size for a
// 2x2 pool, and relu's full-size result is freed now rather than at backward.
Tensor max_pool2d(Tensor&& x, const Pool2dOptions& options, SourceLocation loc) {
    if (unbatched(x) || !detail::rewritable(x, 1) || !detail::made_by_relu(x) || !x.grad_fn()->edges()[0].node)
        return max_pool2d(x, options, loc);
    auto impl = std::make_shared<TensorImpl>(*x.impl());
    impl->grad_fn = x.grad_fn()->edges()[0].node;
    x = Tensor();  // relu's node goes
    const Tensor relu_result_on_relu_input(std::move(impl));
    return relu(max_pool2d(relu_result_on_relu_input, options, loc), loc);
}

std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const Pool2dOptions& options, SourceLocation loc) {
    if (unbatched(x)) {
        auto [out, indices] = max_pool2d_with_indices(as_batch(x), options, loc);
        return {drop_batch(out), drop_batch(indices)};
    }
    return detail::run_op(MaxPool2d{.geometry = check_pool("max_pool2d", x, options, PoolKind::Max), .return_indices = true}, loc, x);
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options, SourceLocation loc) {
    if (unbatched(x)) return drop_batch(avg_pool2d(as_batch(x), options, loc));
    const kernels::PoolGeometry g = check_pool("avg_pool2d", x, options, PoolKind::Average);
    kernels::AvgPoolBins bins{g.N, g.C, g.H, g.W, kernels::window_bins(g.H, g.OH, g.KH, g.SH, g.PH, options.count_include_pad),
                              kernels::window_bins(g.W, g.OW, g.KW, g.SW, g.PW, options.count_include_pad)};
    bins.divisor_override = options.divisor_override.value_or(0);
    return detail::run_linear_op(AveragePool<AvgPool2dNames>{bins}, loc, x);
}

Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size, SourceLocation loc) {
    if (unbatched(x)) return drop_batch(adaptive_avg_pool2d(as_batch(x), output_size, loc));
    check_input("adaptive_avg_pool2d", x);
    const std::string where = " (input " + to_string(x.shape()) + ", output_size " + pair_str(output_size) + ")";
    if (output_size.h <= 0 || output_size.w <= 0)
        throw std::invalid_argument("adaptive_avg_pool2d: output_size must be positive" + where);
    checked_allocation({x.size(0), x.size(1), output_size.h, output_size.w}, x.dtype(), "adaptive_avg_pool2d", where);
    const kernels::AvgPoolBins bins{x.size(0), x.size(1), x.size(2), x.size(3), kernels::adaptive_bins(x.size(2), output_size.h),
                                    kernels::adaptive_bins(x.size(3), output_size.w)};
    return detail::run_linear_op(AveragePool<AdaptiveAvgPool2dNames>{bins}, loc, x);
}

namespace {

// One axis of max_unpool2d's output: PyTorch's default (in − 1)s − 2p + k, or the requested size,
// which must lie strictly within one stride of it.
int64_t unpooled_size(const std::string& where, const char* axis, const WindowAxis& a, std::optional<int64_t> requested) {
    const char* op = "max_unpool2d";
    const int64_t natural = conv_transpose_output_size(a, 0, op, where);
    if (!requested) {
        if (natural <= 0)
            throw std::invalid_argument(std::string(op) + ": the default output " + axis + " is " + std::to_string(natural) +
                                        "; give output_size" + where);
        return natural;
    }
    const int64_t low = checked_sub(natural, a.stride, op, "the default output size less the stride", where);
    const int64_t high = checked_add(natural, a.stride, op, "the default output size plus the stride", where);
    if (*requested <= 0 || *requested <= low || *requested >= high)
        throw std::invalid_argument(std::string(op) + ": output_size " + axis + " " + std::to_string(*requested) +
                                    " must be positive and strictly between " + std::to_string(low) + " and " + std::to_string(high) +
                                    " (the default " + std::to_string(natural) + " plus or minus the stride)" + where);
    return *requested;
}

// out [N,C,H',W'] zeros with out[n,c].flat[indices[n,c,i,j]] = x[n,c,i,j]. flat_index holds those
// positions as flat row-major indices into the whole output, checked by the caller.
// dx[n,c,i,j] [N,C,H,W] = g[n,c].flat[indices[n,c,i,j]]: a gather (take), whose own gradient is
// the scatter-add put_add, so every order is differentiable. As in PyTorch, an input whose
// value a repeated index overwrote still receives the gradient at that index.
struct MaxUnpool2d {
    static constexpr const char* name = "max_unpool2d";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Convolution and pooling",
        .op = "max_unpool2d",
        .forward = "y[n,c].flat[idx[n,c,i,j]] = x[n,c,i,j], zero elsewhere (a repeated index keeps the last x)",
        .gradient = "dx[n,c,i,j] = g[n,c].flat[idx[n,c,i,j]] (a gather, `take`)",
        .shapes = "x, idx [N,C,H,W] → y [N,C,H',W'], H' = (H − 1)s − 2p + KH or output_size (within ±s of it, "
                  "exclusive)"};
    static constexpr detail::DTypes dtypes = detail::DTypes::Floating;
    std::vector<int64_t> flat_index;
    Shape output_shape;
    Shape input_shape{};

    Tensor forward(const OpContext& ctx, const Tensor& x) {
        const Tensor xs = x.is_contiguous() ? x.detach() : x.detach().contiguous();
        Tensor out = zeros(output_shape, {.dtype = x.dtype()});
        dispatch(x.dtype(), [&]<class T>() { kernels::scatter_flat<T>(xs.data<T>(), flat_index.data(), xs.numel(), out.data<T>()); });
        if (ctx.recording) input_shape = x.shape();
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {take(g, flat_index, input_shape)}; }
    std::vector<SavedField> saved_state() const {
        return {detail::saved("flat_index", std::to_string(flat_index.size()) + " int64 positions, " +
                                                std::to_string(flat_index.size() * sizeof(int64_t)) + " B"),
                detail::saved("input_shape", to_string(input_shape)), detail::saved("output_shape", to_string(output_shape))};
    }
};

}  // namespace

Tensor max_unpool2d(const Tensor& x, const Tensor& indices, const MaxUnpool2dOptions& options, SourceLocation loc) {
    if (unbatched(x)) {
        if (indices.defined() && indices.dim() == 3) return drop_batch(max_unpool2d(as_batch(x), as_batch(indices), options, loc));
        throw std::invalid_argument("max_unpool2d: indices must have the input's shape, as max_pool2d_with_indices returns them (input " +
                                    to_string(x.shape()) + ", indices " + (indices.defined() ? to_string(indices.shape()) : "undefined") + ")");
    }
    check_input("max_unpool2d", x);
    const Pair k = options.kernel_size, s = options.stride.value_or(options.kernel_size), p = options.padding;
    const std::string where = " (input " + to_string(x.shape()) + ", indices " +
                              (indices.defined() ? to_string(indices.shape()) + " " + dtype_name(indices.dtype()) : "undefined") +
                              ", kernel " + pair_str(k) + ", stride " + pair_str(s) + ", padding " + pair_str(p) + ")";
    auto fail = [&](const std::string& what) { throw std::invalid_argument("max_unpool2d: " + what + where); };
    if (!is_floating_point(x.dtype())) fail("the input must be float32 or float64");
    if (!indices.defined() || indices.dtype() != kInt64)
        fail("indices must be the int64 tensor that max_pool2d_with_indices returns");
    if (indices.shape() != x.shape()) fail("indices must have the input's shape");
    if (k.h <= 0 || k.w <= 0) fail("kernel_size must be positive");
    if (s.h <= 0 || s.w <= 0) fail("stride must be positive");
    if (p.h < 0 || p.w < 0) fail("padding must not be negative");
    const auto requested = [&](bool rows) -> std::optional<int64_t> {
        if (!options.output_size) return std::nullopt;
        return rows ? options.output_size->h : options.output_size->w;
    };
    const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    const int64_t OH = unpooled_size(where, "height", {H, k.h, s.h, p.h}, requested(true));
    const int64_t OW = unpooled_size(where, "width", {W, k.w, s.w, p.w}, requested(false));
    const Shape out_shape{N, C, OH, OW};
    checked_allocation(out_shape, x.dtype(), "max_unpool2d", where);

    // Each plane's indices become flat row-major indices into the whole output, checked before
    // anything is written.
    const Tensor plane_index = indices.is_contiguous() ? indices : indices.contiguous();
    const int64_t* ip = plane_index.data<int64_t>();
    std::vector<int64_t> flat(static_cast<std::size_t>(x.numel()));
    for (int64_t j = 0; j < x.numel(); ++j) {
        if (ip[j] < 0 || ip[j] >= OH * OW)
            fail("index " + std::to_string(ip[j]) + " at flat position " + std::to_string(j) + " is outside an output plane of " +
                 std::to_string(OH) + "x" + std::to_string(OW) +
                 "; pass the indices of max_pool2d_with_indices with the same kernel, stride and padding, and its input's size as output_size");
        flat[j] = j / (H * W) * (OH * OW) + ip[j];
    }
    return detail::run_op(MaxUnpool2d{.flat_index = std::move(flat), .output_shape = out_shape}, loc, x);
}

}  // namespace tapegrad
