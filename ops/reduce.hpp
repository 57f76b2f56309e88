#pragma once
// Reductions: sum and mean over all elements or chosen axes, max over an axis.
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);

}  // namespace tapegrad

namespace tapegrad {
// The largest value along `axis`; the gradient goes to the first maximum.
Tensor max(const Tensor& x, int64_t axis, bool keepdim = false);
// Indices of the first largest values along `axis` (no gradient), in row-major order of the
// reduced shape.
std::vector<int64_t> argmax(const Tensor& x, int64_t axis);
}  // namespace tapegrad
