#include "ops/kernels/cpu_isa.hpp"

#include <oneapi/dnnl/dnnl.h>

namespace tapegrad::kernels {

std::string onednn_isa_name() {
    switch (dnnl_get_effective_cpu_isa()) {
        case dnnl_cpu_isa_sse41: return "sse41";
        case dnnl_cpu_isa_avx: return "avx";
        case dnnl_cpu_isa_avx2: return "avx2";
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
        case dnnl_cpu_isa_avx512_core: return "avx512_core";
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
        default: return "other (" + std::to_string(static_cast<int>(dnnl_get_effective_cpu_isa())) + ")";
    }
}

bool onednn_has_avx512() {
    // The ISA enum is a bit set: every AVX-512 level contains avx512_core's bits.
    static const bool avx512 = (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
    return avx512;
}

bool onednn_has_bf16() {
    static const bool bf16 = (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
    return bf16;
}

}  // namespace tapegrad::kernels
