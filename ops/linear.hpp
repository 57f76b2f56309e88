#pragma once
// Matrix products. Every float32 GEMM goes through one seam, kernels::gemm (ops/kernels/gemm.hpp).
#include "engine/tensor.hpp"

namespace tapegrad {

// [M,K] x [K,N] -> [M,N]; [B,M,K] x [B,K,N] -> [B,M,N] with the batch dimension broadcast
// (either side may have batch 1 or be 2-D). A 1-D operand is a row on the left, a column on the
// right, and that dimension is dropped from the result, as in PyTorch ([K] x [K] is 0-D).
Tensor matmul(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
// [M,K] x [K,N] -> [M,N], both 2-D (PyTorch's mm; matmul for batches and vectors).
Tensor mm(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
// x [N,in] (or [..., in]), weight [out,in], bias [out] or undefined: x W^T + b.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
