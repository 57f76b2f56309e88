#include "ops/pooling.hpp"

#include <limits>
#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "engine/profiler.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/kernels/pool_fast.hpp"
#include "ops/kernels/pool_reference.hpp"
#include "ops/index.hpp"

namespace tapegrad {
namespace {

std::string pair_str(const Pair& p) { return "{" + std::to_string(p.h) + "," + std::to_string(p.w) + "}"; }

void check_input(const char* op, const Tensor& x) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is an undefined tensor");
    if (x.dim() != 4)
        throw std::invalid_argument(std::string(op) + ": the input must be 4-D [N,C,H,W], got " + to_string(x.shape()) +
                                    "; add a batch dimension with reshape for a single image");
}

kernels::PoolGeometry check_pool(const char* op, const Tensor& x, const Pool2dOptions& o) {
    check_input(op, x);
    const Pair k = o.kernel_size, s = o.stride.value_or(o.kernel_size), p = o.padding;
    auto fail = [&](const std::string& what) {
        throw std::invalid_argument(std::string(op) + ": " + what + " (input " + to_string(x.shape()) + ", kernel " + pair_str(k) +
                                    ", stride " + pair_str(s) + ", padding " + pair_str(p) + ")");
    };
    if (k.h <= 0 || k.w <= 0) fail("kernel_size must be positive");
    if (s.h <= 0 || s.w <= 0) fail("stride must be positive");
    if (p.h < 0 || p.w < 0) fail("padding must not be negative");
    // Bounded first, so that the output-size arithmetic below cannot overflow.
    if (k.h > kMaxElements || k.w > kMaxElements || s.h > kMaxElements || s.w > kMaxElements)
        fail("kernel_size and stride must be at most 2^40");
    // PyTorch's rule: beyond half the kernel, a window could lie entirely in the padding.
    if (p.h > k.h / 2 || p.w > k.w / 2) fail("padding must be at most half the kernel size");
    kernels::PoolGeometry g{x.size(0), x.size(1), x.size(2), x.size(3), 0, 0, k.h, k.w, s.h, s.w, p.h, p.w};
    if (g.H + 2 * p.h < k.h || g.W + 2 * p.w < k.w) fail("the kernel is larger than the padded input, so the output would be empty");
    g.OH = (g.H + 2 * p.h - k.h) / s.h + 1;
    g.OW = (g.W + 2 * p.w - k.w) / s.w + 1;
    if (g.H * g.W > std::numeric_limits<int32_t>::max()) fail("an input plane has more than 2^31 elements");
    return g;
}

bool use_fast(const Tensor& x) { return !is_reference(choose_kernels(x.dtype())); }

// The fast kernels take either dense layout; anything else is copied to row-major first.
Tensor dense(const Tensor& x) {
    return x.is_contiguous() || x.is_contiguous(MemoryFormat::ChannelsLast) ? x.detach() : x.detach().contiguous();
}

Tensor average_pool_backward(const char* op, const Tensor& dout, const kernels::AvgPoolBins& bins, bool fast);

// avg_pool2d and adaptive_avg_pool2d differ only in their bins.
Tensor average_pool(const char* op, const Tensor& x, const kernels::AvgPoolBins& bins) {
    const bool fast = use_fast(x);
    Tensor out = fast ? kernels::avg_pool2d_forward_fast(dense(x), bins)
                      : dispatch(x.dtype(), [&]<class T>() { return kernels::avg_pool2d_forward_reference<T>(x, bins); });
    // dX[n,c,h,w] [N,C,H,W] = sum over the bins (i,j) holding (h,w) of dout[n,c,i,j] / |bin (i,j)|
    return record(op, out, {x}, [op, bins, fast](const Tensor& dout, const GradMask&) {
        return std::vector<Tensor>{average_pool_backward(op, dout, bins, fast)};
    });
}

// The pool's adjoint, recorded when a backward is being recorded (create_graph): both are linear,
// and each is the other's backward, so derivatives of any order exist.
Tensor average_pool_backward(const char* op, const Tensor& dout, const kernels::AvgPoolBins& bins, bool fast) {
    Tensor dx = fast ? kernels::avg_pool2d_backward_fast(dout, bins)
                     : dispatch(dout.dtype(), [&]<class T>() { return kernels::avg_pool2d_backward_reference<T>(dout, bins); });
    return record(std::string(op) + "_backward", dx, {dout}, [op, bins](const Tensor& g, const GradMask&) {
        return std::vector<Tensor>{average_pool(op, g, bins)};
    });
}

// The flat row-major index into x of each output's maximum, in the output's row-major order: what
// put_add scatters the gradient with when the backward is recorded.
std::vector<int64_t> flat_argmax(const kernels::Argmax& argmax, const kernels::PoolGeometry& g) {
    std::vector<int64_t> flat(static_cast<std::size_t>(g.N * g.C * g.OH * g.OW));
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

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options, SourceLocation loc) {
    detail::OpScope scope("max_pool2d", loc);
    const kernels::PoolGeometry g = check_pool("max_pool2d", x, options);
    const bool fast = use_fast(x);
    kernels::MaxPoolResult r = fast ? kernels::max_pool2d_forward_fast(dense(x), g)
                                    : dispatch(x.dtype(), [&]<class T>() { return kernels::max_pool2d_forward_reference<T>(x, g); });
    // dX [N,C,H,W]: dX[n,c,argmax(n,c,j)] += dout[n,c,j]; every other input gets 0
    // The argmax is all the backward reads; the version check refuses what PyTorch, which saves x, refuses.
    return record("max_pool2d", r.out, {x}, [g, fast, argmax = r.argmax, saved_x = SavedTensor::version_of(x)](
                                                const Tensor& dout, const GradMask&) {
        saved_x.check();
        if (is_grad_enabled())  // create_graph: the scatter as a recorded op
            return std::vector<Tensor>{put_add(g.input_shape(), flat_argmax(argmax, g), dout)};
        return std::vector<Tensor>{fast ? kernels::max_pool2d_backward_fast(dout, argmax, g)
                                        : dispatch(dout.dtype(), [&]<class T>() {
                                              return kernels::max_pool2d_backward_reference<T>(dout, argmax, g);
                                          })};
    });
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options) {
    const kernels::PoolGeometry g = check_pool("avg_pool2d", x, options);
    return average_pool("avg_pool2d", x,
                        {g.N, g.C, g.H, g.W, kernels::window_bins(g.H, g.OH, g.KH, g.SH, g.PH),
                         kernels::window_bins(g.W, g.OW, g.KW, g.SW, g.PW)});
}

Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size) {
    check_input("adaptive_avg_pool2d", x);
    if (output_size.h <= 0 || output_size.w <= 0)
        throw std::invalid_argument("adaptive_avg_pool2d: output_size must be positive, got " + pair_str(output_size) + " (input " +
                                    to_string(x.shape()) + ")");
    if (x.size(2) <= 0 || x.size(3) <= 0)
        throw std::invalid_argument("adaptive_avg_pool2d: the input " + to_string(x.shape()) + " has no pixels to average");
    return average_pool("adaptive_avg_pool2d", x,
                        {x.size(0), x.size(1), x.size(2), x.size(3), kernels::adaptive_bins(x.size(2), output_size.h),
                         kernels::adaptive_bins(x.size(3), output_size.w)});
}

}  // namespace tapegrad
