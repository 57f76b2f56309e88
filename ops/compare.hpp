#pragma once
// Comparisons, logical ops and masks, as PyTorch's: comparisons and logical ops return bool
// tensors, which have no gradient; where and masked_fill select between tensors by a bool mask
// and are differentiable in the values they select.
//
// Comparisons broadcast and compare in the inputs' promoted dtype (int64 with float32 compares in
// float32, float32 with float64 in float64); NaN compares unequal to everything, itself included.
// A double scalar compares in the tensor's floating-point dtype, or, with an integer or bool
// tensor, as an int64 when it is a whole number and in float32 otherwise (PyTorch's x > 0 and
// x > 0.5).
#include "engine/source_location.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {

Tensor eq(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor ne(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor lt(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor le(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor gt(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor ge(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor eq(const Tensor& a, double b, SourceLocation loc = SourceLocation::current());
Tensor ne(const Tensor& a, double b, SourceLocation loc = SourceLocation::current());
Tensor lt(const Tensor& a, double b, SourceLocation loc = SourceLocation::current());
Tensor le(const Tensor& a, double b, SourceLocation loc = SourceLocation::current());
Tensor gt(const Tensor& a, double b, SourceLocation loc = SourceLocation::current());
Tensor ge(const Tensor& a, double b, SourceLocation loc = SourceLocation::current());

// Nonzero (NaN included) is true, for inputs of any dtype; the result is bool.
Tensor logical_and(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor logical_or(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor logical_xor(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor logical_not(const Tensor& x, SourceLocation loc = SourceLocation::current());
// Bitwise on integer and bool tensors (on bool: and, or, xor, not), in the promoted dtype; floating
// point refused, as PyTorch's &, |, ^ and ~.
Tensor bitwise_and(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor bitwise_or(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor bitwise_xor(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor bitwise_not(const Tensor& x, SourceLocation loc = SourceLocation::current());

// cond ? a : b per element; cond is bool, the three broadcast; a and b are promoted to their common
// dtype. da = g where cond, db = g where !cond.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor where(const Tensor& cond, const Tensor& a, double b, SourceLocation loc = SourceLocation::current());
Tensor where(const Tensor& cond, double a, const Tensor& b, SourceLocation loc = SourceLocation::current());

// x with `value` where the bool mask is true (mask and x broadcast; the result has x's dtype, value
// converted to it). dx = g where !mask. Tensor::masked_fill_ writes it in place.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value, SourceLocation loc = SourceLocation::current());

// libtorch's operators: x > 0, a == b, mask & other, ~mask.
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
Tensor operator==(double a, const Tensor& b);
Tensor operator!=(double a, const Tensor& b);
Tensor operator<(double a, const Tensor& b);
Tensor operator<=(double a, const Tensor& b);
Tensor operator>(double a, const Tensor& b);
Tensor operator>=(double a, const Tensor& b);
Tensor operator&(const Tensor& a, const Tensor& b);
Tensor operator|(const Tensor& a, const Tensor& b);
Tensor operator^(const Tensor& a, const Tensor& b);
Tensor operator~(const Tensor& x);
Tensor operator!(const Tensor& x);

}  // namespace tapegrad
