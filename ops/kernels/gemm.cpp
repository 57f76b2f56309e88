// The one GEMM seam (declared in ops/linear.hpp). float32 goes to oneDNN's dnnl_sgemm, about twice
// OpenBLAS on these machines (see MEASURED.md); float64, and float32 under ReferenceKernelsGuard,
// run the plain triple loop so that the registry has something independent to compare against.
#include <oneapi/dnnl/dnnl.h>

#include <stdexcept>
#include <string>

#include "engine/threads.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/linear.hpp"

namespace tapegrad::kernels {
namespace {

template <class T>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
    for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
            T acc = 0;
            for (int64_t k = 0; k < K; ++k) {
                const T a = trans_a ? A[k * lda + i] : A[i * lda + k];
                const T b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                acc += a * b;
            }
            // beta == 0 must ignore C entirely: it may hold uninitialised memory (NaN * 0 = NaN).
            C[i * ldc + j] = alpha * acc + (beta == T(0) ? T(0) : beta * C[i * ldc + j]);
        }
    }
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0 || use_reference_kernels()) {  // K == 0: C = beta C, which the loop does without touching A or B
        gemm_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // dnnl_sgemm may split K over threads (see set_deterministic): one thread in deterministic mode.
    const ThreadCountGuard threads(split_sum_threads());
    const dnnl_status_t st =
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (st != dnnl_success)
        throw std::logic_error("gemm: dnnl_sgemm failed with status " + std::to_string(static_cast<int>(st)) + " (M=" +
                               std::to_string(M) + ", N=" + std::to_string(N) + ", K=" + std::to_string(K) + ")");
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
    gemm_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace tapegrad::kernels
