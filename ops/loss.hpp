#pragma once
// The losses, with PyTorch 1.13's options and numerics (softmax and log_softmax: ops/softmax.hpp). Class labels are an integer
// tensor (int64 or int32) or a std::vector<int64_t>, one per row. Every loss refuses integer
// inputs by its name; weights are constants (a weight that requires grad is refused, as PyTorch).
#include <concepts>
#include <vector>

#include "engine/tensor.hpp"
#include "ops/softmax.hpp"

namespace tapegrad {

// Mean: the sum divided by the number of elements (by the summed weights of the counted rows for
// nll_loss and cross_entropy with weights or ignore_index). BatchMean, kl_div's only: the sum
// divided by the input's first size.
enum class Reduction { Mean, Sum, None, BatchMean };

// logits [N,K], labels N values in [0,K): fused log-softmax + NLL, finite for logits of +-1e4.
Tensor cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels, Reduction reduction = Reduction::Mean,
                     SourceLocation loc = SourceLocation::current());

struct CrossEntropyOptions {
    Reduction reduction = Reduction::Mean;
    int64_t ignore_index = -100;  // rows with this label contribute nothing (and do not count in the mean)
    Tensor weight = Tensor();      // [K] per-class weights (a constant), or undefined
    double label_smoothing = 0.0;  // in [0, 1]: the target is (1 - s) onehot + s / K
};
// PyTorch's F.cross_entropy(logits, target, weight, ignore_index, reduction, label_smoothing).
// logits [N,K] or [N,K,d1,...] (or [K]); the class dimension is 1 (0 for [K]). The target is
// either class indices, an integer tensor (int64 or int32) [N] or [N,d1,...], or probabilities,
// a floating tensor of the logits' shape and dtype (ignore_index does not apply to those). With
// class indices and weights, Mean divides by the summed weights of the rows that count; with
// probabilities, Mean divides by the number of rows whatever the weights, as PyTorch. Without
// weight, ignored rows or smoothing, 2-D logits take the fused kernel above.
// (A template taking only Tensor, so that cross_entropy(x, {0}) still means the vector form.)
template <class Labels>
    requires std::same_as<Labels, Tensor>
Tensor cross_entropy(const Tensor& logits, const Labels& target, const CrossEntropyOptions& options = {},
                     SourceLocation loc = SourceLocation::current());

// log_probs [N,K]
Tensor nll_loss(const Tensor& log_probs, const std::vector<int64_t>& labels, Reduction reduction = Reduction::Mean,
                SourceLocation loc = SourceLocation::current());

struct NllLossOptions {
    Tensor weight = Tensor();      // [K] per-class weights (a constant), or undefined
    int64_t ignore_index = -100;  // targets with this value contribute nothing and do not count
    Reduction reduction = Reduction::Mean;
};
// PyTorch's F.nll_loss(input, target, weight, ignore_index, reduction): input [N,K] (or
// [N,K,d1,...], or [K]), target an integer tensor (int64 or int32) [N] ([N,d1,...], or 0-d).
// loss = -weight[t] input[n, t, ...]; Mean divides by the summed weights of the counted targets
// (NaN when none counts, as PyTorch); None gives the target's shape.
template <class Labels>
    requires std::same_as<Labels, Tensor>
Tensor nll_loss(const Tensor& input, const Labels& target, const NllLossOptions& options = {},
                SourceLocation loc = SourceLocation::current());
// libtorch's positional form, torch::nll_loss(input, target, /*weight=*/{}, Reduction::Sum): the same op.
Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight, Reduction reduction = Reduction::Mean,
                int64_t ignore_index = -100, SourceLocation loc = SourceLocation::current());

// The regression losses take an input and a target of one shape and dtype; both get gradients.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                SourceLocation loc = SourceLocation::current());
// |x - t|; the gradient is sign(x - t), 0 where x = t.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
               SourceLocation loc = SourceLocation::current());

struct SmoothL1LossOptions {
    Reduction reduction = Reduction::Mean;
    double beta = 1.0;  // >= 0; 0 is l1_loss, as PyTorch
};
// 0.5 (x - t)^2 / beta where |x - t| < beta, |x - t| - 0.5 beta elsewhere.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossOptions& options = {},
                      SourceLocation loc = SourceLocation::current());

struct HuberLossOptions {
    Reduction reduction = Reduction::Mean;
    double delta = 1.0;  // > 0
};
// 0.5 (x - t)^2 where |x - t| < delta, delta (|x - t| - 0.5 delta) elsewhere.
Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossOptions& options = {},
                  SourceLocation loc = SourceLocation::current());

struct KlDivOptions {
    Reduction reduction = Reduction::Mean;  // BatchMean is the mathematical KL divergence of a batch
    bool log_target = false;                 // the target is given as log-probabilities
};
// PyTorch's F.kl_div(input, target): input holds log-probabilities; the loss per element is
// t (log t - input) (0 where t = 0), or exp(t) (t - input) with log_target.
Tensor kl_div(const Tensor& input, const Tensor& target, const KlDivOptions& options = {},
              SourceLocation loc = SourceLocation::current());

struct BinaryCrossEntropyOptions {
    Tensor weight = Tensor();  // broadcast to the input's shape (a constant), or undefined
    Reduction reduction = Reduction::Mean;
};
// PyTorch's F.binary_cross_entropy: input probabilities in [0, 1] (anything else, NaN included,
// is refused, as PyTorch), loss = -w (t max(log x, -100) + (1 - t) max(log(1 - x), -100)), so a
// sigmoid saturated to exactly 0 or 1 gives a finite loss; the input gradient is
// w (x - t) / max(x (1 - x), 1e-12), finite there too. Second derivatives are PyTorch's.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BinaryCrossEntropyOptions& options = {},
                            SourceLocation loc = SourceLocation::current());

struct BinaryCrossEntropyWithLogitsOptions {
    Tensor weight = Tensor();      // broadcast to the input's shape (a constant), or undefined
    Tensor pos_weight = Tensor();  // the weight of positive examples, broadcast to the target (e.g. [C])
    Reduction reduction = Reduction::Mean;
};
// PyTorch's F.binary_cross_entropy_with_logits, in its stable form: with m = max(-x, 0) and
// p = 1 + (pos_weight - 1) t, loss = w ((1 - t) x + p (log(e^-m + e^(-x-m)) + m)).
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BinaryCrossEntropyWithLogitsOptions& options = {},
                                        SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
