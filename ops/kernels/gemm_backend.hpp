#pragma once
// The libraries behind kernels::gemm's float32 path, and which one it picks. kernels::gemm
// (ops/linear.hpp) is the only caller in the library; the benchmarks and tests call a backend
// directly to compare the two on the same shapes.
#include <cstdint>
#include <string>

namespace tapegrad::kernels {

enum class GemmBackend { OneDnn, OpenBlas };

// Whether this build links OpenBLAS (its OpenMP build); without it every product goes to oneDNN.
bool have_openblas();

// The backend kernels::gemm uses for a product of this shape on this processor: a fixed table
// per instruction set (measured, see docs/performance.md), never a timing taken at run
// time, so that a result does not change from one run to the next. The instruction set is
// oneDNN's (ops/kernels/cpu_isa.hpp), so DNNL_MAX_CPU_ISA=AVX2 selects the AVX2 column.
GemmBackend gemm_backend(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K);

const char* gemm_backend_name(GemmBackend backend);

// Row-major C[M,N] = alpha op(A) op(B) + beta C on `backend`, with the calling thread's OpenMP
// thread count; beta == 0 ignores C's contents. Throws std::invalid_argument for strides that do
// not fit (lda < columns of A as stored, ...), std::logic_error when the library fails or
// OpenBLAS is asked for but not linked.
void sgemm_on(GemmBackend backend, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace tapegrad::kernels
