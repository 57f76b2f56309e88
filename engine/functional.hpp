#pragma once
// Derivative helpers for small problems, after torch.autograd.functional: the Hessian-vector
// product and the full Jacobian, both built on grad() (hvp on create_graph).
#include <functional>

#include "engine/tensor.hpp"

namespace tapegrad {

// H v, where H is the Hessian of the scalar function f at x and v has x's shape: the gradient
// of <grad f(x), v>, computed as a vector-Jacobian product of the recorded gradient (H is
// symmetric). The result has no history; x is not modified and needs no requires_grad.
Tensor hvp(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& v);

// The Jacobian of f at x, of shape f(x).shape() followed by x.shape(): one backward per element
// of f(x). Entries for which f does not depend on x are 0.
Tensor jacobian(const std::function<Tensor(const Tensor&)>& f, const Tensor& x);

}  // namespace tapegrad
