// The one GEMM seam (declared in ops/kernels/gemm.hpp). float32 goes to oneDNN's dnnl_sgemm or to
// OpenBLAS's cblas_sgemm, whichever a fixed per-processor table says is faster for the shape
// (see gemm_backend below); float64, and float32 under ReferenceKernelsGuard, run the plain triple
// loop so that the registry has something independent to compare against.
#include "ops/kernels/gemm_backend.hpp"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#ifdef TAPEGRAD_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/threads.hpp"
#include "ops/kernels/cpu_isa.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/kernels/gemm.hpp"
#include "ops/kernels/onednn_primitives.hpp"
#include "ops/kernels/transpose.hpp"

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

std::string shape_text(int64_t M, int64_t N, int64_t K) {
    return "M=" + std::to_string(M) + ", N=" + std::to_string(N) + ", K=" + std::to_string(K);
}

// The row strides each operand needs at least, as both libraries demand (OpenBLAS would only print
// a message and leave C alone).
void check_strides(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
    const int64_t need_a = std::max<int64_t>(1, trans_a ? M : K), need_b = std::max<int64_t>(1, trans_b ? K : N);
    if (lda < need_a || ldb < need_b || ldc < std::max<int64_t>(1, N))
        throw std::invalid_argument("gemm: row strides lda=" + std::to_string(lda) + ", ldb=" + std::to_string(ldb) +
                                    ", ldc=" + std::to_string(ldc) + " are too small for " + shape_text(M, N, K) +
                                    "; they must be at least " + std::to_string(need_a) + ", " + std::to_string(need_b) +
                                    ", " + std::to_string(std::max<int64_t>(1, N)));
}

// OpenBLAS takes 32-bit sizes and strides (blasint): a larger one would be truncated.
bool fits_blasint(std::initializer_list<int64_t> sizes) {
    return std::max(sizes) <= std::numeric_limits<int32_t>::max();
}

// Whether gemm transposes B first for A B^T on oneDNN (a fixed rule per instruction set, as
// gemm_backend's): a dense copy of B^T multiplied untransposed.
bool transposes_b_first(int64_t M, int64_t N, int64_t K) {
    // Measured on AVX-512 (Zen 5) only, oneDNN's time for A B^T (B stored [N,K]: a fully connected
    // layer's forward) against transposing B into [K,N] and multiplying that, at 1 and 2 threads:
    // [64,4096]x[128,4096]^T 0.47 and 0.62 ms (no faster at two threads) against 0.43 and 0.28;
    // [256,192]x[768,192]^T 0.37 and 0.36 against 0.37 and 0.20; a classifier's [32,1280]x[10,1280]^T
    // 0.74-0.78x. From M = 512 on (512^3: 1.06x at one thread) or for a B over 2^20 values (the
    // transpose costs more than it saves: 1.4-3x for [4096,4096]) oneDNN keeps the transposed B.
    return onednn_has_avx512() && M < 512 && static_cast<double>(N) * static_cast<double>(K) <= double(1 << 20);
}

}  // namespace

bool have_openblas() {
#ifdef TAPEGRAD_HAVE_OPENBLAS
    return true;
#else
    return false;
#endif
}

GemmBackend gemm_backend(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
    // Measured at one thread, each library called alternately, CPU time (docs/performance.md).
    // AVX-512 (Zen 5): dnnl_sgemm ran at about twice OpenBLAS's speed on every shape measured.
    if (!have_openblas() || onednn_has_avx512() || !fits_blasint({M, N, K})) return GemmBackend::OneDnn;
    // AVX2 (Zen 3): with A transposed (A^T B: a weight gradient) OpenBLAS took 0.68x dnnl_sgemm's
    // time for [4096,64]^T [64,128] and 0.79x for 512^3; it also wins once every dimension reaches
    // 512 (0.93x). oneDNN wins the other skinny and the small products (by 5-15% for a fully
    // connected layer's forward and input gradient, more on tiny ones, where OpenBLAS's set-up
    // shows), so products under a million multiply-adds stay with it whatever their transposes.
    const bool large = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) >= double(1 << 20);
    if (large && trans_a) return GemmBackend::OpenBlas;
    return std::min({M, N, K}) >= 512 ? GemmBackend::OpenBlas : GemmBackend::OneDnn;
}

const char* gemm_backend_name(GemmBackend backend) { return backend == GemmBackend::OpenBlas ? "openblas" : "onednn"; }

void sgemm_on(GemmBackend backend, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    check_strides(trans_a, trans_b, M, N, K, lda, ldb, ldc);
    if (backend == GemmBackend::OpenBlas) {
        if (!fits_blasint({M, N, K, lda, ldb, ldc}))
            throw std::invalid_argument("gemm: OpenBLAS takes sizes and strides below 2^31, got " + shape_text(M, N, K) +
                                        ", lda=" + std::to_string(lda) + ", ldb=" + std::to_string(ldb) + ", ldc=" + std::to_string(ldc));
#ifdef TAPEGRAD_HAVE_OPENBLAS
        // The OpenMP build takes its thread count from the calling thread's OpenMP setting, and
        // runs on one thread inside a parallel region.
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
                    static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
        return;
#else
        throw std::logic_error("gemm: OpenBLAS was asked for, but this build does not link it");
#endif
    }
    const dnnl_status_t st =
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (st != dnnl_success)
        throw std::logic_error("gemm: dnnl_sgemm failed with status " + std::to_string(static_cast<int>(st)) + " (" +
                               shape_text(M, N, K) + ")");
}

void gemm(Kernels kernels, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0 || is_reference(kernels)) {  // K == 0: C = beta C, which the loop does without touching A or B
        gemm_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // Either library may split the K reduction over threads (dnnl_sgemm does for skinny products;
    // see set_deterministic): one thread in deterministic mode.
    const ThreadCountGuard threads(split_sum_threads());
    // Inside a parallel region (a caller splitting its own work between threads) both libraries
    // run on the calling thread alone; dnnl_sgemm then, because OpenBLAS's OpenMP build shares its
    // buffers between concurrent callers unless it was built with NUM_PARALLEL. A region of one
    // thread counts too (omp_get_level, not omp_in_parallel), so that the library, and with it the
    // bits, does not change with the thread count.
    const bool blas_strides = fits_blasint({lda, ldb, ldc});
    const bool nested = omp_get_level() > 0;
    const GemmBackend backend = nested || !blas_strides ? GemmBackend::OneDnn : gemm_backend(trans_a, trans_b, M, N, K);
    if (backend == GemmBackend::OneDnn && !nested && !trans_a && trans_b && ldb == K && transposes_b_first(M, N, K)) {
        const onednn::Buffer b_transposed(static_cast<std::size_t>(N * K) * sizeof(float));
        auto* bt = static_cast<float*>(b_transposed.get());
        transpose_planes(B, bt, 1, N, K);
        sgemm_on(backend, false, false, M, N, K, alpha, A, lda, bt, N, beta, C, ldc);
        return;
    }
    sgemm_on(backend, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(Kernels, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
    gemm_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace tapegrad::kernels
