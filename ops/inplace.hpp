#pragma once
// In-place ops: Tensor's fill_, zero_, copy_, add_, sub_, mul_, div_ and relu_ (declared on
// Tensor), and relu_ as a function. Every one bumps the version counter that the tensor shares
// with its views and detach(), so that backward refuses a saved tensor that changed.
//
// Rules, as in PyTorch:
//  - a leaf that requires grad can be written in place only with grad mode off (NoGradGuard);
//  - with grad mode on, a tensor with history takes the in-place op's history (after y.relu_(),
//    y's grad_fn is relu's node, whose input edge is y's old history);
//  - a differentiable in-place write to a view of a tensor that requires grad is refused, since
//    the base's history could not see it; an expanded tensor (several elements on one memory
//    location) cannot be written in place at all.
#include "engine/tensor.hpp"

namespace tapegrad {

Tensor relu_(const Tensor& x);

}  // namespace tapegrad
