#include "ops/loss.hpp"

#include "engine/autograd.hpp"
#include "engine/profiler.hpp"
#include "engine/tensor_math.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/detail/op.hpp"
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

void check_classification(const char* op, const Tensor& x, const std::vector<int64_t>& labels, const char* what) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the " + what + " are undefined");
    detail::check_op_inputs(op, detail::DTypes::Floating, {&x});
    if (x.dim() != 2)
        throw std::invalid_argument(std::string(op) + ": expects " + what + " of shape [N,K], got " + to_string(x.shape()));
    const int64_t N = x.shape()[0], K = x.shape()[1];
    if (static_cast<int64_t>(labels.size()) != N)
        throw std::invalid_argument(std::string(op) + ": " + std::to_string(labels.size()) + " labels for " + what + " " +
                                    to_string(x.shape()) + "; need one per row (" + std::to_string(N) + ")");
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= K)
            throw std::invalid_argument(std::string(op) + ": label " + std::to_string(labels[i]) + " at index " +
                                        std::to_string(i) + " is out of range for " + std::to_string(K) +
                                        " classes (" + what + " " + to_string(x.shape()) + ")");
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

// The same weights as differentiable ops, shaped to broadcast against the per-element gradient
// (create_graph): g/count for Mean, g for Sum and None; `rows` reshapes None's g [N] to [N,1].
Tensor recorded_weights(const Tensor& g, int64_t count, Reduction r, bool rows) {
    if (r == Reduction::Mean) return g / static_cast<double>(count);
    if (r == Reduction::None && rows) return g.reshape({count, 1});
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

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_op("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_op("log_softmax", x, dim, true); }

Tensor cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels, Reduction reduction, SourceLocation loc) {
    detail::OpScope scope("cross_entropy", loc);
    check_classification("cross_entropy", logits, labels, "logits");
    const Tensor x = row_major(logits);
    const int64_t N = x.shape()[0], K = x.shape()[1];
    Tensor per_row = empty({N}, {.dtype = x.dtype()});
    std::vector<double> lse(N);
    const bool reference = is_reference(choose_kernels(x.dtype()));
    dispatch(x.dtype(), [&]<class T>() {
        if (reference)
            kernels::cross_entropy_forward_reference<T>(x.data<T>(), labels.data(), N, K, per_row.data<T>(), lse.data());
        else kernels::cross_entropy_forward_fast(x.data<float>(), labels.data(), N, K, per_row.data<float>(), lse.data());
    });
    Tensor out = reduce_rows(per_row, reduction);
    if (!needs_grad({logits})) return out;
    // loss_i = logsumexp(x_i) - x_i[y_i]: dx [N,K] = w_i (softmax(x_i) - onehot(y_i)), with w the
    // gradient of each row's loss (g/N for Mean). One fused pass; the softmax is recomputed from lse.
    return record("cross_entropy", out, {logits},
                  [saved_x = SavedTensor(x, logits), labels, lse = std::move(lse), reduction, reference](
                      const Tensor& g, const GradMask&) {
                      const Tensor x = saved_x.unpack();
                      const int64_t N = x.shape()[0], K = x.shape()[1];
                      if (is_grad_enabled())  // create_graph: (softmax(x) - onehot) w, recorded
                          return std::vector<Tensor>{(softmax(x, 1) - one_hot(labels, K, x.dtype())) *
                                                     recorded_weights(g, N, reduction, true)};
                      const Tensor w = row_weights(g, N, reduction);
                      Tensor dx = empty(x.shape(), {.dtype = x.dtype()});
                      dispatch(x.dtype(), [&]<class T>() {
                          if (reference)
                              kernels::cross_entropy_backward_reference<T>(x.data<T>(), labels.data(), lse.data(),
                                                                           w.data<T>(), N, K, dx.data<T>());
                          else
                              kernels::cross_entropy_backward_fast(x.data<float>(), labels.data(), lse.data(),
                                                                   w.data<float>(), N, K, dx.data<float>());
                      });
                      return std::vector<Tensor>{dx};
                  });
}

Tensor nll_loss(const Tensor& log_probs, const std::vector<int64_t>& labels, Reduction reduction) {
    check_classification("nll_loss", log_probs, labels, "log_probs");
    const int64_t N = log_probs.shape()[0];
    Tensor per_row = empty({N}, {.dtype = log_probs.dtype()});
    dispatch(log_probs.dtype(), [&]<class T>() {
        const T* p = log_probs.data<T>();
        const Strides& st = log_probs.strides();
        for (int64_t i = 0; i < N; ++i) per_row.data<T>()[i] = -p[i * st[0] + labels[i] * st[1]];
    });
    Tensor out = reduce_rows(per_row, reduction);
    const Shape shape = log_probs.shape();
    // loss_i = -lp[i, y_i]: dlp [N,K] = -w_i at (i, y_i), 0 elsewhere.
    return record("nll_loss", out, {log_probs}, [shape, labels, reduction](const Tensor& g, const GradMask&) {
        if (is_grad_enabled())  // create_graph: linear in g, recorded
            return std::vector<Tensor>{-(one_hot(labels, shape[1], g.dtype()) * recorded_weights(g, shape[0], reduction, true))};
        const Tensor w = row_weights(g, shape[0], reduction);
        Tensor d = zeros(shape, {.dtype = g.dtype()});
        dispatch(g.dtype(), [&]<class T>() {
            for (int64_t i = 0; i < shape[0]; ++i) d.data<T>()[i * shape[1] + labels[i]] = -w.data<T>()[i];
        });
        return std::vector<Tensor>{d};
    });
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
    if (!input.defined() || !target.defined()) throw std::invalid_argument("mse_loss: the input or the target is undefined");
    if (input.shape() != target.shape() || input.dtype() != target.dtype())
        throw std::invalid_argument("mse_loss: input " + describe(input) + " and target " + describe(target) +
                                    " must have the same shape and dtype");
    detail::check_op_inputs("mse_loss", detail::DTypes::Floating, {&input, &target});
    const Tensor a = row_major(input), b = row_major(target);
    const int64_t n = a.numel();
    Tensor diff = empty(a.shape(), {.dtype = a.dtype()});
    Tensor sq = empty(a.shape(), {.dtype = a.dtype()});
    dispatch(a.dtype(), [&]<class T>() {
        const T *ap = a.data<T>(), *bp = b.data<T>();
        T *dp = diff.data<T>(), *sp = sq.data<T>();
        for (int64_t i = 0; i < n; ++i) {
            dp[i] = ap[i] - bp[i];
            sp[i] = dp[i] * dp[i];
        }
    });
    Tensor out = reduction == Reduction::None ? sq : reduce_rows(sq.reshape({n}), reduction);
    if (!needs_grad({input, target})) return out;
    // l = (x - t)^2 (then reduced): dx = 2 (x - t) w, dt = -dx, w = g (None), g (Sum) or g/n (Mean).
    // diff is a private copy for the plain backward; input and target are saved (their versions
    // checked, as PyTorch does) for the recorded one.
    return record("mse_loss", out, {input, target},
                  [diff, reduction, saved_input = SavedTensor(input),
                   saved_target = SavedTensor(target)](const Tensor& g_in, const GradMask& needs) {
        const Tensor input = saved_input.unpack(), target = saved_target.unpack();
        const int64_t n = diff.numel();
        if (is_grad_enabled()) {  // create_graph: 2 (x - t) w, recorded
            const Tensor dx = 2.0 * (input - target) * recorded_weights(g_in, n, reduction, false);
            return std::vector<Tensor>{needs[0] ? dx : Tensor(), needs[1] ? -dx : Tensor()};
        }
        const Tensor g = reduction == Reduction::None ? row_major(g_in) : Tensor();
        const double scale = reduction == Reduction::None ? 2.0
                                                          : 2.0 * g_in.item() / (reduction == Reduction::Mean ? n : 1);
        Tensor dx = empty(diff.shape(), {.dtype = diff.dtype()});
        dispatch(diff.dtype(), [&]<class T>() {
            const T* dp = diff.data<T>();
            T* o = dx.data<T>();
            for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(scale * dp[i] * (g.defined() ? g.data<T>()[i] : T(1)));
        });
        return std::vector<Tensor>{needs[0] ? dx : Tensor(), needs[1] ? -dx : Tensor()};
    });
}

// Composed of log_softmax, mul and sum, so that its gradient (of any order) is theirs:
// nll_i = -w_{t_i} lp[i, t_i], smooth_i = -Σ_k w_k lp[i, k] (w = 1 without weight), both 0 for
// ignored rows; loss = (1 - s) reduce(nll) + (s / K) reduce(smooth), Mean dividing by Σ_i w_{t_i}.
template <class Labels>
    requires std::same_as<Labels, Tensor>
Tensor cross_entropy(const Tensor& logits, const Labels& labels_in, const CrossEntropyOptions& o, SourceLocation loc) {
    const Tensor& labels = labels_in;
    if (!logits.defined() || !labels.defined()) throw std::invalid_argument("cross_entropy: logits or labels are undefined");
    detail::check_op_inputs("cross_entropy", detail::DTypes::Floating, {&logits});
    const std::string shapes = " (logits " + describe(logits) + ", labels " + describe(labels) + ")";
    if (logits.dim() != 2) throw std::invalid_argument("cross_entropy: logits must be 2-D [N,K]" + shapes);
    if (labels.dtype() != kInt64 && labels.dtype() != kInt32)
        throw std::invalid_argument("cross_entropy: labels must be an integer tensor (int64 or int32) of class indices; convert "
                                    "with .to(tg::kInt64)" + shapes);
    const int64_t N = logits.size(0), K = logits.size(1);
    if (labels.dim() != 1 || labels.size(0) != N)
        throw std::invalid_argument("cross_entropy: labels must be [N] = [" + std::to_string(N) + "]" + shapes);
    if (o.weight.defined() && (o.weight.dim() != 1 || o.weight.size(0) != K || o.weight.dtype() != logits.dtype()))
        throw std::invalid_argument("cross_entropy: weight must be [K] = [" + std::to_string(K) + "] of the logits' dtype, got " +
                                    describe(o.weight) + shapes);
    if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0))
        throw std::invalid_argument("cross_entropy: label_smoothing must be in [0, 1], got " + std::to_string(o.label_smoothing));
    const std::vector<int64_t> t = labels.to_vector<int64_t>();
    bool any_ignored = false;
    for (int64_t i = 0; i < N; ++i) {
        if (t[i] == o.ignore_index) {
            any_ignored = true;
        } else if (t[i] < 0 || t[i] >= K) {
            throw std::invalid_argument("cross_entropy: label " + std::to_string(t[i]) + " at row " + std::to_string(i) +
                                        " is outside [0, " + std::to_string(K) + ") and is not ignore_index" + shapes);
        }
    }
    if (!o.weight.defined() && !any_ignored && o.label_smoothing == 0.0) return cross_entropy(logits, t, o.reduction, loc);

    const std::vector<double> class_w = o.weight.defined() ? o.weight.to_vector<double>() : std::vector<double>(K, 1.0);
    std::vector<double> picked(static_cast<std::size_t>(N * K), 0.0), keep(static_cast<std::size_t>(N), 0.0);
    double weight_sum = 0;
    for (int64_t i = 0; i < N; ++i) {
        if (t[i] == o.ignore_index) continue;
        picked[i * K + t[i]] = class_w[t[i]];
        keep[i] = 1.0;
        weight_sum += class_w[t[i]];
    }
    const TensorOptions opts{.dtype = logits.dtype()};
    const Tensor lp = log_softmax(logits, 1);
    auto reduce = [&](const Tensor& rows) {
        if (o.reduction == Reduction::None) return rows;
        const Tensor total = sum(rows);
        return o.reduction == Reduction::Sum ? total : total / weight_sum;
    };
    Tensor loss = reduce(-sum(lp * from_vector(picked, {N, K}, opts), {1}));
    if (o.label_smoothing == 0.0) return loss;
    const Tensor weighted = o.weight.defined() ? lp * reshape(o.weight.detach(), {1, K}) : lp;
    const Tensor smooth = reduce(-sum(weighted, {1}) * from_vector(keep, {N}, opts));
    return loss * (1.0 - o.label_smoothing) + smooth * (o.label_smoothing / static_cast<double>(K));
}

template Tensor cross_entropy<Tensor>(const Tensor&, const Tensor&, const CrossEntropyOptions&, SourceLocation);

}  // namespace tapegrad
