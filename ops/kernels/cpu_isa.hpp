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

}  // namespace tapegrad::kernels
