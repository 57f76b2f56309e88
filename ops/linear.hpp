#pragma once
// Matrix products. Every float32 GEMM goes through one seam, gemm() below, which calls oneDNN's
// dnnl_sgemm or OpenBLAS, whichever is faster for the shape on this processor
// (ops/kernels/gemm_backend.hpp).
#include "engine/tensor.hpp"

namespace tapegrad {

// [M,K] x [K,N] -> [M,N]; [B,M,K] x [B,K,N] -> [B,M,N] with the batch dimension broadcast
// (either side may have batch 1 or be 2-D). A 1-D operand is a row on the left, a column on the
// right, and that dimension is dropped from the result, as in PyTorch ([K] x [K] is 0-D).
Tensor matmul(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
// x [N,in] (or [..., in]), weight [out,in], bias [out] or undefined: x W^T + b.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              SourceLocation loc = SourceLocation::current());

namespace kernels {
// Row-major C[M,N] = alpha * op(A) op(B) + beta * C, op = transpose when the flag is set;
// lda, ldb, ldc are the row strides. float32 calls a BLAS; float64 runs a plain loop.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);
}  // namespace kernels

}  // namespace tapegrad
