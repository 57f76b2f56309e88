#pragma once
// Joining and cutting tensors along a dimension, as in PyTorch: cat and stack copy; narrow, slice,
// select, split and chunk return views that share the input's elements (in-place writes through
// them follow the view rules of ops/inplace.hpp). Each runs through the op entry (its node is
// CatBackward0, SliceBackward0, ...); split and chunk are narrows, timed by the profiler as
// themselves.
#include <limits>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

// Joins tensors of one dtype and rank whose sizes agree except along `dim`. Channels-last when
// every input is channels-last.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0, SourceLocation loc = SourceLocation::current());
// Joins tensors of one shape along a new dimension `dim` (0 <= dim <= rank).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0, SourceLocation loc = SourceLocation::current());
// x[.., start : start+length, ..] along `dim`; start may be negative (counted from the end).
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length, SourceLocation loc = SourceLocation::current());
// x[.., start:end:step, ..] along `dim`, with Python's rules: negative start/end count from the
// end, both are clamped to the size, step must be positive.
Tensor slice(const Tensor& x, int64_t dim, int64_t start = 0, int64_t end = std::numeric_limits<int64_t>::max(),
             int64_t step = 1, SourceLocation loc = SourceLocation::current());
// x[.., index, ..]: the dimension disappears; index may be negative.
Tensor select(const Tensor& x, int64_t dim, int64_t index, SourceLocation loc = SourceLocation::current());
// Pieces of split_size along `dim` (the last one smaller when the size does not divide).
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0, SourceLocation loc = SourceLocation::current());
// Pieces of the given sizes, which must add up to the size of `dim`.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& split_sizes, int64_t dim = 0,
                          SourceLocation loc = SourceLocation::current());
// `chunks` pieces of ceil(size/chunks) (fewer when the size is small), as PyTorch.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
