#include "ops/batch_norm.hpp"

#include <cmath>
#include <optional>
#include <stdexcept>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "ops/kernels/batch_norm.hpp"
#include "ops/kernels/elementwise.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/detail/fusion.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

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

// xhat = (x - mean) invstd [N,C,...], y = w xhat + b. Training: dx = w invstd / M (M g - sum g -
// xhat sum(g xhat)) [N,C,...]; eval: dx = w invstd g; dw = sum(g xhat) [C], db = sum(g) [C].
// Fused with relu (fast kernels only; batch_norm_relu runs the two ops for the reference kernels):
// relu(batch_norm) in one pass each way, g masked by relu's derivative at the output.
template <bool FuseRelu>
struct BatchNorm {
    static constexpr const char* name = FuseRelu ? "batch_norm_relu" : "batch_norm";
    static constexpr detail::DerivativeDoc doc =
        FuseRelu ? detail::DerivativeDoc{
            .section = "Batch normalisation",
            .op = "batch_norm_relu",
            .forward = "y = relu(batch_norm(x)) with batch_norm's arguments (train or eval)",
            .gradient = "batch_norm's gradients with g replaced by g ⊙ [y > 0]; the fast kernels recompute the pre-relu "
                        "output from x in each backward pass; the reference is the two ops unfused",
            .shapes = "as batch_norm"}
        : detail::DerivativeDoc{
            .section = "Batch normalisation",
            .op = "batch_norm",
            .forward = "training: μ_c = (1/M) Σ_c x, σ²_c = (1/M) Σ_c (x − μ_c)² (biased), x̂ = (x − μ_c) / √(σ²_c + "
                       "ε), y = γ_c x̂ + β_c; running ← (1 − m) running + m · batch stat, with the unbiased variance "
                       "σ²_c M/(M−1); eval: x̂ = (x − running_mean_c) / √(running_var_c + ε), y = γ_c x̂ + β_c",
            .gradient = "training, with dx̂ = g γ_c: dx = (1/M) · invstd_c · (M dx̂ − Σ_c dx̂ − x̂ Σ_c dx̂ x̂); eval: "
                        "dx = g γ_c / √(running_var_c + ε); both: dγ_c = Σ_c g x̂, dβ_c = Σ_c g",
            .shapes = "x [N,C,H,W] or [N,C]; γ, β, running stats [C]"};
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr std::size_t required_inputs = 1;  // the weight and the bias are optional
    // The arguments (checked by the caller); the running statistics are updated in training.
    Tensor running_mean{}, running_var{};
    BatchNormOptions options;
    // The saved state.
    SavedTensor input{}, weight{};
    std::vector<double> mean{}, invstd{};
    // The bias's values at the forward, for relu's mask recomputed from x (fast kernels only). A
    // copy, not a saved tensor: as PyTorch's relu saves its output, an in-place write to the bias
    // after the forward leaves this backward valid.
    std::vector<double> relu_bias{};
    bool fast = false;  // ran the fast float32 kernels: batch_norm's node may become batch_norm_relu's (fusion.hpp)

    Tensor forward(const OpContext& ctx, const Tensor& x_in, const Tensor& w, const Tensor& b) {
        // The fast kernels take row-major or channels-last; anything else is copied once.
        const MemoryFormat format = x_in.suggest_memory_format();
        const Tensor x = x_in.is_contiguous(format) ? x_in.detach() : x_in.detach().contiguous(format);
        const bool reference = is_reference(ctx.kernels);
        fast = !reference;
        if (FuseRelu && reference) throw std::logic_error("batch_norm_relu: the fused kernels are float32 fast kernels only");
        const int64_t C = x.shape()[1];
        invstd.resize(C);
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
        // The node does not keep the running statistics alive.
        running_mean = running_var = Tensor();
        Tensor out = dispatch(x.dtype(), [&]<class T>() {
            return reference ? kernels::batch_norm_forward_reference<T>(x, mean, invstd, w, b)
                             : kernels::batch_norm_forward_fast(x, mean, invstd, w, b, FuseRelu);
        });
        if (ctx.recording) {
            input = SavedTensor(x, x_in);
            if (w.defined()) weight = SavedTensor(w);
            // batch_norm keeps the bias's values too (unlisted, never read by its own backward),
            // for the rewrite of relu(batch_norm(...)) into batch_norm_relu.
            if (fast && b.defined()) relu_bias = read_channels(b);
        }
        return out;
    }

    // In differentiable ops (create_graph); relu's derivative is a constant mask.
    std::vector<Tensor> backward(const Tensor& g_out, const GradMask& needs) const {
        const Tensor x = input.unpack();
        const Tensor w = weight.defined() ? weight.unpack() : Tensor();
        const Tensor g = FuseRelu ? g_out * relu_mask(x.detach(), mean, invstd, weight.defined() ? w.detach() : Tensor(), mask_bias()) : g_out;
        return only_needed(recorded_backward(g, x, w, mean, invstd, options.training, options.eps), needs);
    }

    std::vector<Tensor> fused_backward(Kernels choice, const Tensor& g_out, const GradMask& needs) const {
        const Tensor x = input.unpack();
        const Tensor w = weight.defined() ? weight.unpack() : Tensor();
        // The kernels read g in x's layout.
        const Tensor g = g_out.strides() == x.strides() ? g_out : g_out.contiguous(x.suggest_memory_format());
        const bool reference = is_reference(choice);
        return only_needed(dispatch(g.dtype(),
                                    [&]<class T>() {
                                        return reference ? kernels::batch_norm_backward_reference<T>(g, x, mean, invstd, w, options.training)
                                                         : kernels::batch_norm_backward_fast(
                                                               g, x, mean, invstd, w, options.training,
                                                               FuseRelu ? std::optional<Tensor>(mask_bias()) : std::nullopt);
                                    }),
                           needs);
    }

    std::vector<SavedField> saved_state() const {
        std::vector<SavedField> fields{detail::saved("input", input), detail::saved("weight", weight)};
        if (FuseRelu) fields.push_back(detail::saved("bias", relu_bias));
        fields.push_back(detail::saved("mean", mean));
        fields.push_back(detail::saved("invstd", invstd));
        fields.push_back(detail::saved("training", options.training));
        fields.push_back(detail::saved("eps", options.eps));
        return fields;
    }

private:
    Tensor mask_bias() const {
        return relu_bias.empty() ? Tensor() : from_vector(relu_bias, {static_cast<int64_t>(relu_bias.size())});
    }
    static std::vector<Tensor> only_needed(std::vector<Tensor> grads, const GradMask& needs) {
        for (std::size_t i = 0; i < 3; ++i)
            if (!needs[i]) grads[i] = Tensor();
        return grads;
    }
};

template <bool FuseRelu>
Tensor run_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                      const Tensor& bias, const BatchNormOptions& options, SourceLocation loc) {
    check(x, running_mean, running_var, weight, bias, options);
    // [N,C,L] is [N,C,L,1]: the same statistics per channel, through the same kernels.
    if (x.dim() == 3)
        return squeeze(run_batch_norm<FuseRelu>(unsqueeze(x, 3), running_mean, running_var, weight, bias, options, loc), 3);
    return detail::run_op(BatchNorm<FuseRelu>{.running_mean = running_mean, .running_var = running_var, .options = options}, loc,
                          x, weight, bias);
}

}  // namespace

// batch_norm's node becomes batch_norm_relu's: the same saved state (batch_norm kept the bias's values on
// the fast kernels for this), the relu applied in place as batch_norm_relu's forward clamps.
Tensor detail::relu_of_batch_norm(Tensor& x, const SourceLocation& loc) {
    if (!rewritable(x)) return Tensor();
    const BatchNorm<false>* bn = producer<BatchNorm<false>>(x);
    if (!bn || !bn->fast || !kernels::is_standard_dense(x)) return Tensor();
    OpScope scope(BatchNorm<true>::name, loc);
    BatchNorm<true> fused{.options = bn->options, .input = bn->input, .weight = bn->weight,
                          .mean = bn->mean, .invstd = bn->invstd, .relu_bias = bn->relu_bias, .fast = true};
    kernels::map_unary_in_place<float>(x, [](float v) { return v < 0 ? 0.0f : v; });
    return rerecord(std::move(x), std::move(fused), Kernels::Fast);
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, const BatchNormOptions& options, SourceLocation loc) {
    return run_batch_norm<false>(x, running_mean, running_var, weight, bias, options, loc);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, const BatchNormOptions& options, SourceLocation loc) {
    // The unfused ops are the reference; the undefined-input check is batch_norm's.
    if (!x.defined() || is_reference(choose_kernels(x.dtype())))
        return relu(batch_norm(x, running_mean, running_var, weight, bias, options, loc), loc);
    return run_batch_norm<true>(x, running_mean, running_var, weight, bias, options, loc);
}

}  // namespace tapegrad
