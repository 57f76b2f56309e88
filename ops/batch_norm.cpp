#include "ops/batch_norm.hpp"

#include <cmath>

#include "engine/autograd.hpp"
#include "engine/profiler.hpp"
#include "engine/tensor_math.hpp"
#include "ops/kernels/batch_norm.hpp"
#include "ops/kernels/elementwise.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

void check_param(const Tensor& p, const char* what, const Tensor& x) {
    if (!p.defined()) return;
    const int64_t C = x.shape()[1];
    if (p.dim() != 1 || p.shape()[0] != C)
        throw std::invalid_argument(std::string("batch_norm: ") + what + " has shape " + to_string(p.shape()) +
                                    " but the input " + to_string(x.shape()) + " has " + std::to_string(C) +
                                    " channels; it should be [" + std::to_string(C) + "]");
    if (p.dtype() != x.dtype())
        throw std::invalid_argument(std::string("batch_norm: ") + what + " is " + describe(p) + " but the input is " +
                                    describe(x) + "; use one dtype");
}

void check(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
           const Tensor& bias, const BatchNormOptions& o) {
    if (!x.defined()) throw std::invalid_argument("batch_norm: the input is undefined");
    detail::check_op_inputs("batch_norm", detail::DTypes::Floating, {&x});
    if (x.dim() != 2 && x.dim() != 3 && x.dim() != 4)
        throw std::invalid_argument("batch_norm: expects a 2-D [N,C], 3-D [N,C,L] or 4-D [N,C,H,W] input, got " +
                                    to_string(x.shape()));
    // Checked before anything divides by the channel count.
    if (x.shape()[1] == 0) throw std::invalid_argument("batch_norm: the input " + to_string(x.shape()) + " has no channels");
    check_param(running_mean, "running_mean", x);
    check_param(running_var, "running_var", x);
    check_param(weight, "weight", x);
    check_param(bias, "bias", x);
    if (running_mean.defined() != running_var.defined())
        throw std::invalid_argument("batch_norm: give both running_mean and running_var, or neither");
    if (!o.training && !running_mean.defined())
        throw std::invalid_argument("batch_norm: eval mode normalises with running_mean and running_var, which are undefined");
    if (o.training && x.numel() / x.shape()[1] <= 1)
        throw std::invalid_argument("batch_norm: expected more than 1 value per channel when training, got input " +
                                    to_string(x.shape()));
    if (!(o.eps > 0)) throw std::invalid_argument("batch_norm: eps must be positive, got " + std::to_string(o.eps));
}

std::vector<double> read_channels(const Tensor& t) {
    std::vector<double> v(t.shape()[0]);
    for (int64_t c = 0; c < t.shape()[0]; ++c) v[c] = t.at({c});
    return v;
}

// running = (1 - momentum) running + momentum batch, in place: the running statistics are buffers
// outside autograd, as in PyTorch.
void update_running(const Tensor& running, const std::vector<double>& batch, double momentum) {
    dispatch(running.dtype(), [&]<class T>() {
        T* p = running.data<T>();
        const int64_t s = running.strides()[0];
        for (std::size_t c = 0; c < batch.size(); ++c)
            p[c * s] = static_cast<T>((1 - momentum) * p[c * s] + momentum * batch[c]);
    });
    running.bump_version();
}

// A per-channel vector shaped to broadcast against x: [1,C] or [1,C,1,1].
Tensor per_channel(const Tensor& v, const Tensor& x) {
    Shape s;
    for (std::size_t d = 0; d < x.dim(); ++d) s.push_back(d == 1 ? x.shape()[1] : 1);
    return v.reshape(s);
}
Tensor per_channel(const std::vector<double>& v, const Tensor& x) {
    return per_channel(from_vector(v, {static_cast<int64_t>(v.size())}, {.dtype = x.dtype()}), x);
}

// batch_norm's gradients written with differentiable ops, for a recorded backward (create_graph):
// in training the statistics are recomputed from x (with its history), so that the second
// derivative sees how they depend on x; in eval they are constants.
std::vector<Tensor> recorded_backward(const Tensor& g, const Tensor& x, const Tensor& w, const std::vector<double>& mean,
                                      const std::vector<double>& invstd, bool training, double eps) {
    std::vector<int64_t> axes{0};
    for (int64_t d = 2; d < static_cast<int64_t>(x.dim()); ++d) axes.push_back(d);
    const Tensor gw = w.defined() ? g * per_channel(w, x) : g;
    Tensor xhat, dx;
    if (training) {
        const Tensor centered = x - tapegrad::mean(x, axes, true);
        const Tensor inv = pow(tapegrad::mean(centered * centered, axes, true) + eps, -0.5);
        xhat = centered * inv;
        dx = inv * (gw - tapegrad::mean(gw, axes, true) - xhat * tapegrad::mean(gw * xhat, axes, true));
    } else {
        const Tensor inv = per_channel(invstd, x);
        xhat = (x - per_channel(mean, x)) * inv;
        dx = gw * inv;
    }
    return {dx, sum(g * xhat, axes), sum(g, axes)};
}

// relu's derivative at relu(batch_norm)'s output, recomputed from x: 1 where the batch norm's
// output is positive or NaN, 0 where it is not (as relu's backward), as a constant tensor.
Tensor relu_mask(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& invstd, const Tensor& weight,
                 const Tensor& bias) {
    const Tensor y = kernels::batch_norm_forward_fast(x, mean, invstd, weight, bias);
    return kernels::map_unary<float>(y, [](float v) { return v <= 0 ? 0.0f : 1.0f; });
}

// batch_norm, and with `fuse_relu` relu(batch_norm) in one pass each way (fast kernels only; the
// caller runs the two ops for the reference kernels).
Tensor batch_norm_impl(const char* op, const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, const BatchNormOptions& options, bool fuse_relu,
                       SourceLocation loc) {
    detail::OpScope scope(op, loc);
    check(x_in, running_mean, running_var, weight, bias, options);
    // [N,C,L] is [N,C,L,1]: the same statistics per channel, through the same kernels.
    if (x_in.dim() == 3)
        return squeeze(batch_norm_impl(op, unsqueeze(x_in, 3), running_mean, running_var, weight, bias, options, fuse_relu, loc), 3);
    // The fast kernels take row-major or channels-last; anything else is copied once.
    const MemoryFormat format = x_in.suggest_memory_format();
    const Tensor x = x_in.is_contiguous(format) ? x_in.detach() : x_in.detach().contiguous(format);
    const bool reference = is_reference(choose_kernels(x.dtype()));
    if (fuse_relu && reference) throw std::logic_error("batch_norm_relu: the fused kernels are float32 fast kernels only");
    const int64_t C = x.shape()[1];

    std::vector<double> mean, invstd(C);
    if (options.training) {
        kernels::ChannelStats s = dispatch(x.dtype(), [&]<class T>() {
            return reference ? kernels::batch_norm_stats_reference<T>(x) : kernels::batch_norm_stats_fast(x);
        });
        for (int64_t c = 0; c < C; ++c) invstd[c] = 1.0 / std::sqrt(s.var[c] + options.eps);
        if (running_mean.defined()) {
            const double m = static_cast<double>(x.numel() / C);
            std::vector<double> unbiased(C);
            for (int64_t c = 0; c < C; ++c) unbiased[c] = s.var[c] * m / (m - 1);
            update_running(running_mean, s.mean, options.momentum);
            update_running(running_var, unbiased, options.momentum);
        }
        mean = std::move(s.mean);
    } else {
        mean = read_channels(running_mean);
        const std::vector<double> var = read_channels(running_var);
        for (int64_t c = 0; c < C; ++c) invstd[c] = 1.0 / std::sqrt(var[c] + options.eps);
    }

    Tensor out = dispatch(x.dtype(), [&]<class T>() {
        return reference ? kernels::batch_norm_forward_reference<T>(x, mean, invstd, weight, bias)
                         : kernels::batch_norm_forward_fast(x, mean, invstd, weight, bias, fuse_relu);
    });
    if (!needs_grad({x_in, weight, bias})) return out;
    const SavedTensor saved_x(x, x_in);
    const SavedTensor saved_w = weight.defined() ? SavedTensor(weight) : SavedTensor();
    // The relu mask is recomputed from x with the forward's bias.
    const SavedTensor saved_b = fuse_relu && bias.defined() ? SavedTensor(bias) : SavedTensor();
    const bool training = options.training;
    const double eps = options.eps;
    // xhat = (x - mean) invstd [N,C,...], y = w xhat + b. Training: dx = w invstd / M (M g - sum g -
    // xhat sum(g xhat)) [N,C,...]; eval: dx = w invstd g; dw = sum(g xhat) [C], db = sum(g) [C].
    // Fused with relu: the same with g masked by relu's derivative at the output.
    return record(op, out, {x_in, weight, bias},
                  [saved_x, saved_w, saved_b, mean, invstd, training, reference, eps, fuse_relu](const Tensor& g_out,
                                                                                                const GradMask& needs) {
                      const Tensor x = saved_x.unpack();
                      const Tensor w = saved_w.defined() ? saved_w.unpack() : Tensor();
                      const Tensor b = saved_b.defined() ? saved_b.unpack() : Tensor();
                      if (is_grad_enabled()) {  // create_graph; relu's derivative is a constant mask
                          const Tensor g_in = fuse_relu ? g_out * relu_mask(x.detach(), mean, invstd, saved_w.defined() ? w.detach() : Tensor(), b) : g_out;
                          std::vector<Tensor> grads = recorded_backward(g_in, x, w, mean, invstd, training, eps);
                          for (std::size_t i = 0; i < 3; ++i)
                              if (!needs[i]) grads[i] = Tensor();
                          return grads;
                      }
                      // The kernels read g in x's layout.
                      const Tensor g = g_out.strides() == x.strides() ? g_out : g_out.contiguous(x.suggest_memory_format());
                      std::vector<Tensor> grads = dispatch(g.dtype(), [&]<class T>() {
                          return reference ? kernels::batch_norm_backward_reference<T>(g, x, mean, invstd, w, training)
                                           : kernels::batch_norm_backward_fast(g, x, mean, invstd, w, training,
                                                                               fuse_relu ? std::optional<Tensor>(b) : std::nullopt);
                      });
                      for (std::size_t i = 0; i < 3; ++i)
                          if (!needs[i]) grads[i] = Tensor();
                      return grads;
                  });
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, const BatchNormOptions& options, SourceLocation loc) {
    return batch_norm_impl("batch_norm", x, running_mean, running_var, weight, bias, options, false, loc);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, const BatchNormOptions& options, SourceLocation loc) {
    // The unfused ops are the reference; the undefined-input check is batch_norm's.
    if (!x.defined() || is_reference(choose_kernels(x.dtype())))
        return relu(batch_norm(x, running_mean, running_var, weight, bias, options, loc), loc);
    return batch_norm_impl("batch_norm_relu", x, running_mean, running_var, weight, bias, options, true, loc);
}

}  // namespace tapegrad
