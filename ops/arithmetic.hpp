#pragma once
// add, sub, mul, div and neg with NumPy broadcasting. The operators on Tensor (a + b, a * 2.0, -a)
// are declared in engine/tensor.hpp and call these.
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);
// a + alpha * b, one pass (PyTorch's add with alpha).
Tensor add(const Tensor& a, const Tensor& b, double alpha);
// The sum of any number of tensors of one shape and dtype, as one node (torch.stack(...).sum(0)).
Tensor add_n(const std::vector<Tensor>& tensors);

}  // namespace tapegrad
