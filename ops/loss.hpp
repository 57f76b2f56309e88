#pragma once
// Softmax family and losses. Class labels are integer tensors given as std::vector<int64_t>,
// one per row.
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

enum class Reduction { Mean, Sum, None };

Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
// logits [N,K], labels N values in [0,K): fused log-softmax + NLL, finite for logits of +-1e4.
Tensor cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels, Reduction reduction = Reduction::Mean,
                     std::source_location loc = std::source_location::current());
// log_probs [N,K]
Tensor nll_loss(const Tensor& log_probs, const std::vector<int64_t>& labels, Reduction reduction = Reduction::Mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace tapegrad
