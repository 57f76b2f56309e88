#include "ops/loss.hpp"

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "ops/activation.hpp"
#include "ops/detail/loss.hpp"
#include "ops/arithmetic.hpp"
#include "ops/compare.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/kernels/loss.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

Tensor row_major(const Tensor& t) { return t.is_contiguous() ? t.detach() : t.detach().contiguous(); }

// Turns per-row losses [N] into the reduced output.
Tensor reduce_rows(const Tensor& per_row, Reduction r) {
    if (r == Reduction::None) return per_row;
    return dispatch(per_row.dtype(), [&]<class T>() {
        const T* p = per_row.data<T>();
        double sum = 0;
        for (int64_t i = 0; i < per_row.numel(); ++i) sum += p[i];
        if (r == Reduction::Mean) sum /= static_cast<double>(per_row.numel());
        return scalar_tensor(sum, {.dtype = per_row.dtype()});
    });
}

// The gradient of each row's loss given the gradient of the reduced output: g [N] for None,
// g for Sum, g / N for Mean.
Tensor row_weights(const Tensor& g, int64_t N, Reduction r) {
    if (r == Reduction::None) return row_major(g);
    const double scale = g.item() / (r == Reduction::Mean ? static_cast<double>(N) : 1.0);
    return full({N}, scale, {.dtype = g.dtype()});
}

// The same weights as differentiable ops, shaped to broadcast against the rows [N,K]
// (create_graph): g/N for Mean, g for Sum, g [N] as [N,1] for None.
Tensor recorded_weights(const Tensor& g, int64_t N, Reduction r) {
    if (r == Reduction::Mean) return g / static_cast<double>(N);
    if (r == Reduction::None) return g.reshape({N, 1});
    return g;
}

// [N,K] with 1 at (i, labels[i]).
Tensor one_hot(const std::vector<int64_t>& labels, int64_t K, DType dtype) {
    const auto N = static_cast<int64_t>(labels.size());
    Tensor t = zeros({N, K}, {.dtype = dtype});
    dispatch(dtype, [&]<class T>() {
        for (int64_t i = 0; i < N; ++i) t.data<T>()[i * K + labels[i]] = T(1);
    });
    return t;
}

using detail::DTypes;
using detail::OpContext;

// loss_i = logsumexp(x_i) - x_i[y_i]: dx [N,K] = w_i (softmax(x_i) - onehot(y_i)), with w the
// gradient of each row's loss (g/N for Mean). The fused backward is one pass that recomputes the
// softmax from the saved logsumexp.
struct CrossEntropy {
    static constexpr const char* name = "cross_entropy";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "cross_entropy",
        .forward = "ℓ_i = logsumexp(x_i) − x_{i, t_i}; Mean: (1/N) Σ ℓ_i, Sum: Σ ℓ_i, None: ℓ",
        .gradient = "dx_i = w_i (softmax(x_i) − onehot(t_i)), w_i = g/N (Mean), g (Sum), g_i (None)",
        .shapes = "x [N,K], labels N values in [0,K); y scalar or [N]"};
    static constexpr DTypes dtypes = DTypes::Floating;
    std::vector<int64_t> labels;
    Reduction reduction;
    SavedTensor input{};
    std::vector<double> lse{};

    Tensor forward(const OpContext& ctx, const Tensor& logits) {
        const Tensor x = row_major(logits);
        const int64_t N = x.shape()[0], K = x.shape()[1];
        Tensor per_row = empty({N}, {.dtype = x.dtype()});
        lse.resize(static_cast<std::size_t>(N));
        dispatch(x.dtype(), [&]<class T>() {
            if (is_reference(ctx.kernels))
                kernels::cross_entropy_forward_reference<T>(x.data<T>(), labels.data(), N, K, per_row.data<T>(), lse.data());
            else kernels::cross_entropy_forward_fast(x.data<float>(), labels.data(), N, K, per_row.data<float>(), lse.data());
        });
        if (ctx.recording) input = SavedTensor(x, logits);
        return reduce_rows(per_row, reduction);
    }

    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const {
        const Tensor x = input.unpack();
        const int64_t N = x.shape()[0], K = x.shape()[1];
        return {(softmax(x, 1) - one_hot(labels, K, x.dtype())) * recorded_weights(g, N, reduction)};
    }

    std::vector<Tensor> fused_backward(Kernels kernels, const Tensor& g, const GradMask&) const {
        const Tensor x = input.unpack();
        const int64_t N = x.shape()[0], K = x.shape()[1];
        const Tensor w = row_weights(g, N, reduction);
        Tensor dx = empty(x.shape(), {.dtype = x.dtype()});
        dispatch(x.dtype(), [&]<class T>() {
            if (is_reference(kernels))
                kernels::cross_entropy_backward_reference<T>(x.data<T>(), labels.data(), lse.data(), w.data<T>(), N, K, dx.data<T>());
            else
                kernels::cross_entropy_backward_fast(x.data<float>(), labels.data(), lse.data(), w.data<float>(), N, K, dx.data<float>());
        });
        return {dx};
    }
};

// loss_j = -Σ_k w_k t'_jk lp_jk over the class dimension, lp = log_softmax(x), t' = (1 - s) t + s/K
// (w = 1 without weight); Mean divides by the number of rows. With gw = g (None, along the class
// dimension), g / rows (Mean) or g (Sum): dx = gw (softmax(x) Σ_k w_k t'_k - w t'),
// dt = -(1 - s) gw w lp.
struct CrossEntropyProbabilities {
    static constexpr const char* name = "cross_entropy";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Softmax and losses",
        .op = "cross_entropy (probabilities t; weight w, smoothing s)",
        .forward = "t' = (1 − s) t + s/K; ℓ = −Σ_k w_k t'_k log_softmax(x)_k along dim 1; Mean divides by the number of "
                   "rows (numel/K) whatever w",
        .gradient = "dx = gw (softmax(x) Σ_k w_k t'_k − w t'), dt = −(1 − s) gw w log_softmax(x); gw = g/rows (Mean), g "
                    "(Sum), g along dim 1 (None)",
        .shapes = "x, t same shape [N,K,d..] or [K]"};
    static constexpr DTypes dtypes = DTypes::Floating;
    Tensor weight;  // [K], or undefined
    double smoothing;
    Reduction reduction;
    int64_t class_dim = 1, classes = 0;
    double divisor = 1;
    SavedTensor input{}, target{};

    Tensor forward(const OpContext& ctx, const Tensor& x, const Tensor& t) {
        class_dim = x.dim() == 1 ? 0 : 1;
        classes = x.size(class_dim);
        if (weight.defined()) {
            detail::check_constant(name, "weight", weight, x, {classes});
            if (weight.dim() != 1 || weight.size(0) != classes)
                throw std::invalid_argument("cross_entropy: the weight must be [K] = [" + std::to_string(classes) +
                                            "], one per class, got " + describe(weight) + " (logits " + describe(x) + ")");
        }
        if (reduction == Reduction::Mean) divisor = classes > 0 ? static_cast<double>(x.numel() / classes) : 0.0;
        if (ctx.recording) {
            input = SavedTensor(x);
            target = SavedTensor(t);
        }
        const Tensor per_row = -sum(weighted(log_softmax(x.detach(), class_dim) * smoothed(t.detach())), {class_dim});
        if (reduction == Reduction::None) return per_row;
        return reduction == Reduction::Sum ? sum(per_row) : sum(per_row) / divisor;
    }

    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        const Tensor x = input.unpack(), t = target.unpack();
        const Tensor gw = reduction == Reduction::None ? (x.dim() > 1 ? unsqueeze(g, class_dim) : g)
                          : reduction == Reduction::Mean ? g / divisor
                                                         : g;
        const Tensor wt = weighted(smoothed(t));
        Tensor dx, dt;
        if (needs[0]) dx = (softmax(x, class_dim) * sum(wt, {class_dim}, true) - wt) * gw;
        if (needs[1]) dt = -(1.0 - smoothing) * weighted(log_softmax(x, class_dim)) * gw;
        return {dx, dt};
    }

private:
    Tensor smoothed(const Tensor& t) const {
        return smoothing == 0.0 ? t : t * (1.0 - smoothing) + smoothing / static_cast<double>(classes);
    }
    // v ⊙ w along the class dimension
    Tensor weighted(const Tensor& v) const {
        if (!weight.defined()) return v;
        return v * weight.detach().reshape(detail::along_classes(v.dim(), class_dim, classes));
    }
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels, Reduction reduction, SourceLocation loc) {
    detail::check_reduction("cross_entropy", reduction);
    detail::check_classification("cross_entropy", logits, labels, "logits");
    return detail::run_op(CrossEntropy{.labels = labels, .reduction = reduction}, loc, logits);
}

// Class indices: log_softmax, then nll_loss; with smoothing s, PyTorch's
// (1 - s) nll + (s / K) R(-Σ_k w_k lp_k), the second term 0 for ignored targets and R dividing by
// the same summed weights as nll_loss's Mean.
template <class Labels>
    requires std::same_as<Labels, Tensor>
Tensor cross_entropy(const Tensor& logits, const Labels& target_in, const CrossEntropyOptions& o, SourceLocation loc) {
    const Tensor& target = target_in;
    if (!logits.defined() || !target.defined()) throw std::invalid_argument("cross_entropy: the logits or the target is undefined");
    detail::check_reduction("cross_entropy", o.reduction);
    detail::check_floating("cross_entropy", logits, "logits");
    if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0))
        throw std::invalid_argument("cross_entropy: label_smoothing must be in [0, 1], got " + std::to_string(o.label_smoothing));
    if (is_floating_point(target.dtype())) {
        if (target.shape() != logits.shape() || logits.dim() == 0)
            throw std::invalid_argument("cross_entropy: the target must be an integer tensor (int64 or int32) of class indices, or "
                                        "class probabilities of the logits' shape (logits " + describe(logits) + ", target " +
                                        describe(target) + ")");
        return detail::run_op(CrossEntropyProbabilities{.weight = o.weight, .smoothing = o.label_smoothing, .reduction = o.reduction},
                              loc, logits, target);
    }
    const detail::ClassTargets c = detail::class_targets("cross_entropy", logits, target, o.weight, o.ignore_index);
    if (!o.weight.defined() && !c.any_ignored && o.label_smoothing == 0.0 && logits.dim() == 2)
        return cross_entropy(logits, c.labels, o.reduction, loc);
    const Tensor lp = log_softmax(logits, c.class_dim);
    const Tensor nll = nll_loss(lp, target, {.weight = o.weight, .ignore_index = o.ignore_index, .reduction = o.reduction}, loc);
    if (o.label_smoothing == 0.0) return nll;

    const std::vector<double> class_weight = o.weight.defined() ? o.weight.to_vector<double>() : std::vector<double>();
    std::vector<double> ignored(c.labels.size(), 0.0);
    double weight_sum = 0;
    for (std::size_t j = 0; j < c.labels.size(); ++j) {
        if (c.labels[j] == o.ignore_index) {
            ignored[j] = 1.0;
            continue;
        }
        weight_sum += o.weight.defined() ? class_weight[c.labels[j]] : 1.0;
    }
    const Tensor weighted =
        o.weight.defined() ? lp * o.weight.detach().reshape(detail::along_classes(logits.dim(), c.class_dim, c.shape.K)) : lp;
    // masked, not multiplied by 0: an ignored row gives exactly 0 and no gradient even when every row
    // is ignored (the mean's 1/0 then meets a masked 0, as in PyTorch, not 0 * inf)
    Tensor smooth = masked_fill(-sum(weighted, {c.class_dim}), ne(from_vector(ignored, target.shape()), 0.0), 0.0);
    if (o.reduction != Reduction::None) smooth = o.reduction == Reduction::Sum ? sum(smooth) : sum(smooth) / weight_sum;
    return nll * (1.0 - o.label_smoothing) + smooth * (o.label_smoothing / static_cast<double>(c.shape.K));
}

template Tensor cross_entropy<Tensor>(const Tensor&, const Tensor&, const CrossEntropyOptions&, SourceLocation);

}  // namespace tapegrad
