#pragma once
// add, sub, mul, div and neg with NumPy broadcasting and PyTorch's type promotion: integers are
// computed in their own dtype (int64 + int32 is int64, wrapping on overflow as PyTorch's do), div
// of integers is true division in float32, and mixed dtypes compute in torch.result_type (int64 with
// float32 is float32, float32 with float64 is float64); each input's gradient has its own dtype.
// The operators on Tensor (a + b, a * 2.0, -a) are declared in engine/tensor.hpp and call these;
// a double scalar with an integer tensor gives float32, as a Python float does in PyTorch.
#include <vector>

#include "engine/source_location.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {

Tensor add(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor sub(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor mul(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor div(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
Tensor neg(const Tensor& a, SourceLocation loc = SourceLocation::current());
// a^b elementwise, broadcast, in the promoted dtype (pow with a scalar exponent is in
// ops/activation.hpp). Integers to a negative integer power are refused, as PyTorch refuses them.
Tensor pow(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
// x^n for an integer n: as pow(x, double(n)) for a floating-point x; an integer x stays integer
// (int64 [2, 3] ^ 2 is int64 [4, 9]), as libtorch's pow with an integral Scalar.
Tensor pow(const Tensor& x, IntegerScalar exponent, SourceLocation loc = SourceLocation::current());
template <IntegerLike S>
Tensor pow(const Tensor& x, S exponent, SourceLocation loc = SourceLocation::current()) {
    return pow(x, IntegerScalar{static_cast<int64_t>(exponent)}, loc);
}
// a + alpha * b, one pass (PyTorch's add with alpha). With integer tensors alpha must be a whole
// number, as PyTorch refuses a floating-point alpha for them.
Tensor add(const Tensor& a, const Tensor& b, double alpha, SourceLocation loc = SourceLocation::current());
// The sum of any number of tensors of one shape, as one node: a + b + ... in their promoted dtype.
Tensor add_n(const std::vector<Tensor>& tensors, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
