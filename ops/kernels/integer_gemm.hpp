#pragma once
// The integer matrix product PyTorch 1.13 computes for int64 and int32 matmul: exact, a plain
// loop (no BLAS takes integers), wrapping around on overflow as PyTorch's does (the products and
// sums are taken as unsigned, where wrapping is defined).
#include <cstdint>
#include <type_traits>

namespace tapegrad::kernels {

// Row-major C[M,N] = op(A) op(B), op = transpose when the flag is set; lda, ldb, ldc are the row
// strides, as gemm() takes them.
template <class T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
void integer_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                  T* C, int64_t ldc) {
    using U = std::make_unsigned_t<T>;
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            U sum = 0;
            for (int64_t k = 0; k < K; ++k) {
                const U a = static_cast<U>(trans_a ? A[k * lda + m] : A[m * lda + k]);
                const U b = static_cast<U>(trans_b ? B[n * ldb + k] : B[k * ldb + n]);
                sum = static_cast<U>(sum + static_cast<U>(a * b));
            }
            C[m * ldc + n] = static_cast<T>(sum);
        }
}

}  // namespace tapegrad::kernels
