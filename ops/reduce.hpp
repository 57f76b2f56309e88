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
