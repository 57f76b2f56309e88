#pragma once
#include "engine/generator.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {

// Zeroes each element with probability p and scales the rest by 1/(1-p), drawing from `gen`.
// The identity when !training or p == 0.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen, SourceLocation loc = SourceLocation::current());
// The same, drawing from the default generator (engine/generator.hpp: manual_seed).
Tensor dropout(const Tensor& x, double p, bool training, SourceLocation loc = SourceLocation::current());

// PyTorch's dropout2d (feature dropout): each channel of each sample, x[n, c] of a 4-D [N,C,H,W] or
// 3-D [N,C,L] input (PyTorch 1.13 reads 3-D as [N,C,L]), is zeroed whole with probability p and
// the others are scaled by 1/(1-p). The identity when !training or p == 0. Other ranks are refused
// (PyTorch deprecates them; use dropout).
Tensor dropout2d(const Tensor& x, double p, bool training, Generator& gen, SourceLocation loc = SourceLocation::current());
Tensor dropout2d(const Tensor& x, double p, bool training, SourceLocation loc = SourceLocation::current());

// Draws of 1 with probability p[i] and 0 otherwise, in p's floating-point dtype; every p[i] must be
// in [0, 1]. The result has no gradient.
Tensor bernoulli(const Tensor& p, Generator& gen, SourceLocation loc = SourceLocation::current());
Tensor bernoulli(const Tensor& p, SourceLocation loc = SourceLocation::current());
// Draws of 1 with probability p, of x's shape and dtype (any dtype; bool gets true and false).
Tensor bernoulli(const Tensor& x, double p, Generator& gen, SourceLocation loc = SourceLocation::current());
Tensor bernoulli(const Tensor& x, double p, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
