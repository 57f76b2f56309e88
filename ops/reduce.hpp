#pragma once
// Reductions: sum and mean over all elements or chosen axes; max, min, argmax and argmin over an
// axis, and max and min with their indices.
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);

}  // namespace tapegrad

namespace tapegrad {
// The largest (smallest) element of x, 0-d, NaN if x has one; the gradient is shared evenly by
// the elements equal to it (PyTorch's x.max()). x must not be empty.
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
// The largest (smallest) value along `axis`; the gradient goes to the first maximum (minimum).
Tensor max(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor min(const Tensor& x, int64_t axis, bool keepdim = false);
// PyTorch's torch.max(x, dim, keepdim) and torch.min(x, dim, keepdim), which return both:
//   auto [values, indices] = tg::max_with_indices(x, 1);
// values as max / min (differentiable), indices as argmax / argmin (int64, no gradient).
struct ValuesIndices {
    Tensor values;
    Tensor indices;
};
ValuesIndices max_with_indices(const Tensor& x, int64_t axis, bool keepdim = false);
ValuesIndices min_with_indices(const Tensor& x, int64_t axis, bool keepdim = false);
// As torch.argmax / torch.argmin: an int64 tensor of the indices of the first largest (smallest)
// values along `axis`, of x's shape without that axis (keepdim: with it, as size 1); NaN counts
// as the extreme, as in PyTorch. Without an axis, the index into the flattened x (a 0-d
// tensor). Any dtype; no gradient.
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor argmax(const Tensor& x);
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor argmin(const Tensor& x);
// How many elements of a and b (one shape, any dtypes) are equal: PyTorch's (a == b).sum().item(),
// e.g. the correct predictions count_equal(argmax(logits, 1), labels).
int64_t count_equal(const Tensor& a, const Tensor& b);
}  // namespace tapegrad
