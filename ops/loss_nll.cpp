// nll_loss: PyTorch's F.nll_loss with class weights, ignore_index and targets of any rank.
#include <stdexcept>

#include "ops/arithmetic.hpp"
#include "ops/detail/loss.hpp"
#include "ops/index.hpp"
#include "ops/loss.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// loss_j = -w[t_j] x[n, t_j, ...] for each target j (0 where t_j is ignore_index). The gradient
// is -w[t_j] gw_j at the picked elements and 0 elsewhere, gw = g (None, Sum) or g / Σ_j w[t_j]
// (Mean); in differentiable ops a put_add of the picked values, so that it is linear in g.
struct NllLoss {
    static constexpr const char* name = "nll_loss";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "nll_loss",
        .forward = "ℓ_j = −w_{t_j} x[n, t_j, ..] per target j (0 where t_j = ignore_index; w = 1 without weight); R = "
                   "Σ/Σ_j w_{t_j} over counted j (Mean; NaN when none counts), Σ (Sum), identity (None)",
        .gradient = "dx = −w_{t_j} gw_j at (n, t_j, ..), 0 elsewhere; gw = g/Σ_j w_{t_j}, g, or g_j",
        .shapes = "x [N,K,d..] or [K], labels int64/int32 [N,d..] or 0-d (the vector form: x [N,K]), w [K]"};
    static constexpr DTypes dtypes = DTypes::Floating;
    detail::ClassTargets targets;
    Tensor weight_arg;
    int64_t ignore_index;
    Reduction reduction;
    Shape target_shape;
    Shape input_shape{};
    SavedTensor weight{};
    double divisor = 1;

    Tensor forward(const OpContext& ctx, const Tensor& x_in) {
        const Tensor x = as_contiguous(x_in), w = weight_arg.defined() ? as_contiguous(weight_arg.detach()) : Tensor();
        input_shape = x.shape();
        Tensor out = empty(target_shape, {.dtype = x.dtype()});
        dispatch(x.dtype(), [&]<class T>() {
            kernels::nll_forward<T>(x.data<T>(), targets.labels.data(), w.defined() ? w.data<T>() : nullptr, targets.shape,
                                    ignore_index, out.data<T>());
        });
        if (ctx.recording && w.defined()) weight = SavedTensor(w, weight_arg);
        if (reduction == Reduction::Mean) {
            const std::vector<double> class_weight = w.defined() ? w.to_vector<double>() : std::vector<double>();
            divisor = 0;
            for (int64_t label : targets.labels)
                if (label != ignore_index) divisor += w.defined() ? class_weight[label] : 1.0;
        }
        if (reduction == Reduction::None) return out;
        double total = 0;
        for (double v : out.to_vector<double>()) total += v;
        return scalar_tensor(total / divisor, {.dtype = x.dtype()});
    }

    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const {
        const std::vector<double> class_weight = weight.defined() ? weight.unpack().to_vector<double>() : std::vector<double>();
        std::vector<int64_t> into_input, into_target;
        std::vector<double> picked_weight;
        const auto& [outer, K, inner] = targets.shape;
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
                const int64_t j = o * inner + i, k = targets.labels[j];
                if (k == ignore_index) continue;
                into_input.push_back((o * K + k) * inner + i);
                into_target.push_back(j);
                picked_weight.push_back(weight.defined() ? class_weight[k] : 1.0);
            }
        const auto count = static_cast<int64_t>(into_input.size());
        const Tensor gw = reduction == Reduction::None ? take(g, into_target, {count}) : g / divisor;
        return {put_add(input_shape, into_input, -(gw * from_vector(picked_weight, {count}, {.dtype = g.dtype()})))};
    }

    std::vector<Tensor> fused_backward(Kernels, const Tensor& g_in, const GradMask&) const {
        const Tensor g = as_contiguous(g_in), w = weight.defined() ? weight.unpack() : Tensor();
        Tensor dx = zeros(input_shape, {.dtype = g.dtype()});
        dispatch(g.dtype(), [&]<class T>() {
            kernels::nll_backward<T>(g.data<T>(), reduction == Reduction::None ? 1 : 0, static_cast<T>(divisor),
                                     targets.labels.data(), w.defined() ? w.data<T>() : nullptr, targets.shape, ignore_index,
                                     dx.data<T>());
        });
        return {dx};
    }
};

}  // namespace

template <class Labels>
    requires std::same_as<Labels, Tensor>
Tensor nll_loss(const Tensor& input, const Labels& target, const NllLossOptions& o, SourceLocation loc) {
    if (!input.defined() || !target.defined()) throw std::invalid_argument("nll_loss: the input or the target is undefined");
    detail::check_reduction("nll_loss", o.reduction);
    return detail::run_op(NllLoss{.targets = detail::class_targets("nll_loss", input, target, o.weight, o.ignore_index),
                                  .weight_arg = o.weight,
                                  .ignore_index = o.ignore_index,
                                  .reduction = o.reduction,
                                  .target_shape = target.shape()},
                          loc, input);
}

template Tensor nll_loss<Tensor>(const Tensor&, const Tensor&, const NllLossOptions&, SourceLocation);

Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight, Reduction reduction, int64_t ignore_index,
                SourceLocation loc) {
    return nll_loss(input, target, NllLossOptions{.weight = weight, .ignore_index = ignore_index, .reduction = reduction}, loc);
}

Tensor nll_loss(const Tensor& log_probs, const std::vector<int64_t>& labels, Reduction reduction, SourceLocation loc) {
    detail::check_classification("nll_loss", log_probs, labels, "log_probs");
    const auto N = static_cast<int64_t>(labels.size());
    return nll_loss(log_probs, from_vector(labels, {N}), {.reduction = reduction}, loc);
}

}  // namespace tapegrad
