#pragma once
// The instruction set oneDNN runs here, which also picks between kernels whose ranking differs
// between AVX2 and AVX-512 processors (the GEMM library, the convolution's activation layout).
// It honours DNNL_MAX_CPU_ISA, so an AVX-512 machine can take the AVX2 choices too.
#include <string>

namespace tapegrad::kernels {

// "avx2", "avx512_core", "avx512_core_bf16", ...
std::string onednn_isa_name();

// Whether oneDNN runs AVX-512 kernels (avx512_core or above).
bool onednn_has_avx512();

// Whether oneDNN runs bfloat16 instructions (avx512_core_bf16 or AMX): its bf16 primitives are
// then faster than float32 ones. On avx512_core alone it emulates them, more slowly than float32;
// below AVX-512 it has none.
bool onednn_has_bf16();

}  // namespace tapegrad::kernels
