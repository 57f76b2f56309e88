#pragma once
// Moments and the normalisations built on them: var and std over chosen dimensions (with
// PyTorch's correction), layer_norm and group_norm. Each computes its forward as a composition of
// mean, sub, mul and sqrt, recorded as one node of its own, whose derivative is written in
// differentiable ops (docs/derivatives.md), so gradients of any order exist.
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

// sum((x - mean)^2) / (n - correction) over `dims` (all dimensions when empty); correction 1 is
// PyTorch's default (unbiased), 0 the population variance. n - correction <= 0 gives inf or NaN,
// as in PyTorch.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1, bool keepdim = false,
           SourceLocation loc = SourceLocation::current());
// sqrt(var(x, dims, correction, keepdim)).
Tensor std(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1, bool keepdim = false,
           SourceLocation loc = SourceLocation::current());
// Normalises over the trailing dimensions given by normalized_shape (biased variance), then
// weight * xhat + bias; weight and bias are of normalized_shape, or undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5, SourceLocation loc = SourceLocation::current());
// x [N,C,*]: normalises each of num_groups groups of C/num_groups channels over those channels and
// all spatial positions, then weight[c] * xhat + bias[c] per channel (weight, bias [C] or undefined).
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
