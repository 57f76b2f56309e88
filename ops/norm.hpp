#pragma once
// PyTorch's torch.norm / torch.linalg.vector_norm: the vector p-norm over `dims` (every dimension
// when empty; the default p = 2 over every element is the Frobenius norm). p = 0 counts the nonzero
// elements, p = ±inf takes the largest (smallest) |x|; any other finite p is (Σ |x|^p)^(1/p).
// Floating-point inputs only, as PyTorch's. The gradient is PyTorch's norm_backward: 0 where the
// norm is 0 (the norm of a zero vector has gradient 0, not NaN), split equally among the ties of
// the ±inf norms, 0 for p = 0.
#include <vector>

#include "engine/source_location.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {

Tensor norm(const Tensor& x, double p = 2.0, const std::vector<int64_t>& dims = {}, bool keepdim = false,
            SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
