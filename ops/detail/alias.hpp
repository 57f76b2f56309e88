#pragma once
// For op files that make views: the one way to return a tensor sharing its input's elements.
#include "engine/autograd.hpp"

namespace tapegrad::detail {

// out = x's elements under a new geometry (shape, strides, offset in elements from x's first
// element), marked as a view. Its backward `fn` maps the view's gradient to x's; it is right only
// while x holds what it held at the forward, so an in-place write to x since then is refused.
Tensor alias_with_grad(const char* op, const Tensor& x, const Shape& shape, const Strides& strides, BackwardFn fn,
                       int64_t offset = 0);

}  // namespace tapegrad::detail
