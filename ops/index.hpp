#pragma once
// Gather and scatter by flat index: what max and max_pool2d route their gradients through, as ops
// of their own so that those gradients are differentiable again (each is the other's backward: one
// linear op, run through the op entry, whose adjoint is the other).
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

// PyTorch's torch.take, shaped: y[j] = x.flatten()[index[j]] (row-major flat indices), y of
// `shape`; numel(shape) == index.size().
Tensor take(const Tensor& x, const std::vector<int64_t>& index, const Shape& shape, SourceLocation loc = SourceLocation::current());

// The adjoint of take (torch.put with accumulate=True into zeros): a tensor of `shape`, zero but
// out.flatten()[index[j]] += source.flatten()[j]; repeated indices add up.
Tensor put_add(const Shape& shape, const std::vector<int64_t>& index, const Tensor& source,
               SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
