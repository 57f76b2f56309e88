#pragma once
// Indexing with an integer tensor along one dimension, as PyTorch's: index_select, gather and
// scatter_add. Every index is checked against the size it addresses before anything is read or
// written; an out-of-range one (negative included) is refused naming the op, the value and the size.
#include "engine/source_location.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {

// x with dimension `dim` replaced by the entries `index` (1-D, int64 or int32) picks; repeats allowed.
// dx = index_add of g into zeros (repeated indices add up).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index, SourceLocation loc = SourceLocation::current());

// out[i][j][k] = x[i][index[i][j][k]][k] for dim = 1 (torch.gather): out has index's shape, index
// (int64) has x's rank and no larger size than x's along the other dimensions. dx = scatter_add of g.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index, SourceLocation loc = SourceLocation::current());

// x with src[i][j][k] added at x[i][index[i][j][k]][k] for dim = 1 (torch.scatter_add): index
// (int64) and src have one shape here, no larger than x's along the other dimensions; x and src one
// dtype. dx = g, dsrc = gather(g, dim, index).
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src,
                   SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
