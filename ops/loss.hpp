#pragma once
// Softmax family and losses. Class labels are an integer tensor (int64 or int32) or a
// std::vector<int64_t>, one per row.
#include <concepts>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

enum class Reduction { Mean, Sum, None };

Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
// logits [N,K], labels N values in [0,K): fused log-softmax + NLL, finite for logits of +-1e4.
Tensor cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels, Reduction reduction = Reduction::Mean,
                     SourceLocation loc = SourceLocation::current());

struct CrossEntropyOptions {
    Reduction reduction = Reduction::Mean;
    int64_t ignore_index = -100;  // rows with this label contribute nothing (and do not count in the mean)
    Tensor weight = Tensor();      // [K] per-class weights (a constant), or undefined
    double label_smoothing = 0.0;  // in [0, 1]: the target is (1 - s) onehot + s / K
};
// PyTorch's F.cross_entropy(logits, labels, weight, ignore_index, reduction, label_smoothing):
// labels is an integer tensor [N] (int64 or int32). With weights, Mean divides by the summed
// weights of the rows that count. Without weight, ignored rows or smoothing it is the fused
// kernel above.
// (A template taking only Tensor, so that cross_entropy(x, {0}) still means the vector form.)
template <class Labels>
    requires std::same_as<Labels, Tensor>
Tensor cross_entropy(const Tensor& logits, const Labels& labels, const CrossEntropyOptions& options = {},
                     SourceLocation loc = SourceLocation::current());
// log_probs [N,K]
Tensor nll_loss(const Tensor& log_probs, const std::vector<int64_t>& labels, Reduction reduction = Reduction::Mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace tapegrad
