#include "ops/loss.hpp"

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "ops/activation.hpp"
#include "ops/detail/loss.hpp"
#include "ops/arithmetic.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/kernels/loss.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

Tensor row_major(const Tensor& t) { return t.is_contiguous() ? t.detach() : t.detach().contiguous(); }

Tensor softmax_op(const char* op, const Tensor& x_in, int64_t dim, bool log) {
    if (!x_in.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    detail::check_op_inputs(op, detail::DTypes::Floating, {&x_in});
    if (x_in.dim() == 0) throw std::invalid_argument(std::string(op) + ": needs at least 1 dimension, got a scalar");
    const std::size_t d = normalize_axis(dim, x_in.dim(), op);
    // The fast kernels take rows of K contiguous values: another axis is moved last and back (a
    // copy each way, through differentiable views), which beats the strided reference loop.
    const auto last = static_cast<int64_t>(x_in.dim()) - 1;
    if (static_cast<int64_t>(d) != last && x_in.numel() > 0 && !is_reference(choose_kernels(x_in.dtype())))
        return softmax_op(op, x_in.transpose(static_cast<int64_t>(d), last), last, log).transpose(static_cast<int64_t>(d), last).contiguous();
    kernels::SoftmaxShape s{1, x_in.shape()[d], 1};
    for (std::size_t i = 0; i < d; ++i) s.outer *= x_in.shape()[i];
    for (std::size_t i = d + 1; i < x_in.dim(); ++i) s.inner *= x_in.shape()[i];
    const Tensor x = row_major(x_in);
    Tensor out = empty(x.shape(), {.dtype = x.dtype()});
    // The fast kernels take rows of K contiguous values (inner == 1). A tensor without elements has
    // nothing to compute, and no row to read.
    const bool reference = is_reference(choose_kernels(x.dtype())) || s.inner != 1;
    const bool empty_input = x.numel() == 0;
    dispatch(x.dtype(), [&]<class T>() {
        if (empty_input) return;
        if (reference) kernels::softmax_forward_reference<T>(x.data<T>(), out.data<T>(), s, log);
        else kernels::softmax_forward_fast(x.data<float>(), out.data<float>(), s, log);
    });
    if (!needs_grad({x_in})) return out;
    const SavedTensor saved_y = SavedTensor::output(out);
    const auto axis = static_cast<int64_t>(d);
    // softmax: dx = y (g - sum_k g y); log_softmax: dx = g - softmax sum_k g; both [..., K, ...]
    return record(op, out, {x_in}, [saved_y, s, log, reference, empty_input, axis](const Tensor& g_in, const GradMask&) {
        const Tensor y = saved_y.unpack();
        if (is_grad_enabled()) {  // create_graph: the same formula, recorded (y carries this node's history)
            if (log) return std::vector<Tensor>{g_in - exp(y) * g_in.sum({axis}, true)};
            return std::vector<Tensor>{y * (g_in - (g_in * y).sum({axis}, true))};
        }
        const Tensor g = row_major(g_in);
        Tensor dx = empty(y.shape(), {.dtype = y.dtype()});
        dispatch(y.dtype(), [&]<class T>() {
            if (empty_input) return;
            if (reference) kernels::softmax_backward_reference<T>(g.data<T>(), y.data<T>(), dx.data<T>(), s, log);
            else kernels::softmax_backward_fast(g.data<float>(), y.data<float>(), dx.data<float>(), s, log);
        });
        return std::vector<Tensor>{dx};
    });
}

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

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_op("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_op("log_softmax", x, dim, true); }

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
    std::vector<double> counted(c.labels.size(), 0.0);
    double weight_sum = 0;
    for (std::size_t j = 0; j < c.labels.size(); ++j) {
        if (c.labels[j] == o.ignore_index) continue;
        counted[j] = 1.0;
        weight_sum += o.weight.defined() ? class_weight[c.labels[j]] : 1.0;
    }
    const Tensor weighted =
        o.weight.defined() ? lp * o.weight.detach().reshape(detail::along_classes(logits.dim(), c.class_dim, c.shape.K)) : lp;
    Tensor smooth = -sum(weighted, {c.class_dim}) * from_vector(counted, target.shape(), {.dtype = logits.dtype()});
    if (o.reduction != Reduction::None) smooth = o.reduction == Reduction::Sum ? sum(smooth) : sum(smooth) / weight_sum;
    return nll * (1.0 - o.label_smoothing) + smooth * (o.label_smoothing / static_cast<double>(c.shape.K));
}

template Tensor cross_entropy<Tensor>(const Tensor&, const Tensor&, const CrossEntropyOptions&, SourceLocation);

}  // namespace tapegrad
