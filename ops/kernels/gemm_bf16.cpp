// gemm_bf16: the operands converted to dense bfloat16 buffers, then oneDNN's matmul primitive
// (bf16 x bf16 -> f32), built once per shape and thread count.
#include <algorithm>
#include <array>

#include "engine/bfloat16.hpp"
#include "engine/threads.hpp"
#include "ops/kernels/bfloat16.hpp"
#include "ops/kernels/gemm.hpp"
#include "ops/kernels/onednn_primitives.hpp"

namespace tapegrad::kernels {
namespace {

using dnnl::memory;

struct MatmulEntry {
    dnnl::matmul::primitive_desc pd;
    onednn::Step step;
};
using MatmulKey = std::array<int64_t, 7>;

// The stored matrix [rows, cols] with row stride ld, as a dense bfloat16 copy in `out`.
void pack(const float* src, int64_t rows, int64_t cols, int64_t ld, BFloat16* out) {
    if (ld == cols) return convert_to_bfloat16(src, out, rows * cols);
    for (int64_t r = 0; r < rows; ++r) to_bfloat16(src + r * ld, out + r * cols, cols);
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
        return;
    }
    const MatmulKey key{M, N, K, trans_a ? 1 : 0, trans_b ? 1 : 0, ldc, get_num_threads()};
    const MatmulEntry& e = onednn::cache<MatmulKey, MatmulEntry>().get(key, [&] {
        constexpr auto bf16 = memory::data_type::bf16;
        // A transposed operand is its stored matrix read column-major.
        const memory::desc a({M, K}, bf16, trans_a ? memory::dims{1, M} : memory::dims{K, 1});
        const memory::desc b({K, N}, bf16, trans_b ? memory::dims{1, K} : memory::dims{N, 1});
        const memory::desc c({M, N}, memory::data_type::f32, memory::dims{ldc, 1});
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), onednn::user_scratchpad(), onednn::cpu_engine());
        return MatmulEntry{pd, {dnnl::matmul(pd), pd.scratchpad_desc()}};
    });
    const onednn::Buffer a(static_cast<std::size_t>(M * K) * sizeof(BFloat16)), b(static_cast<std::size_t>(K * N) * sizeof(BFloat16));
    pack(A, trans_a ? K : M, trans_a ? M : K, lda, static_cast<BFloat16*>(a.get()));
    pack(B, trans_b ? N : K, trans_b ? K : N, ldb, static_cast<BFloat16*>(b.get()));
    e.step.run({{DNNL_ARG_SRC, memory(e.pd.src_desc(), onednn::cpu_engine(), a.get())},
                {DNNL_ARG_WEIGHTS, memory(e.pd.weights_desc(), onednn::cpu_engine(), b.get())},
                {DNNL_ARG_DST, memory(e.pd.dst_desc(), onednn::cpu_engine(), C)}});
}

}  // namespace tapegrad::kernels
