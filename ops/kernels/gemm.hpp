#pragma once
// The one GEMM seam. Every float32 product in the library (matmul, linear, the convolution weight
// gradient) goes through gemm() below, which calls oneDNN's dnnl_sgemm or OpenBLAS, whichever is
// faster for the shape on this processor (ops/kernels/gemm_backend.hpp).
#include <cstdint>

#include "ops/kernels/kernel_choice.hpp"

namespace tapegrad::kernels {

// Row-major C[M,N] = alpha * op(A) op(B) + beta * C, op = transpose when the flag is set;
// lda, ldb, ldc are the row strides. float32 with the fast kernels calls a BLAS (on the calling
// thread alone, and always dnnl_sgemm, when called inside an OpenMP parallel region); float64 and
// the reference kernels run a plain loop. The caller passes the kernel choice its op made.
void gemm(Kernels kernels, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(Kernels kernels, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// Row-major C[M,N] = op(A) op(B) with A and B converted to bfloat16 (round-to-nearest-even) and
// the products summed in float32, on oneDNN's bf16 matmul: autocast's products on a processor with
// bfloat16 instructions (Precision::BFloat16). C gets the float32 sums, not rounded; the op
// rounds its result once it is complete (a bias added).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc);

}  // namespace tapegrad::kernels
