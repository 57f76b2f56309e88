#pragma once
// GCC's vector types for the float32 sums (reduce_fast.cpp, batch_norm_fast.cpp): 16 floats are one
// zmm register with AVX-512 and two ymm with AVX2, with the same arithmetic (so the same bits) on
// both. Accumulators held in these stay in registers, where GCC keeps a loop's local arrays in memory.
#include <cstdint>
#include <cstring>

#include <immintrin.h>

namespace tapegrad::kernels {

using F16 = float __attribute__((vector_size(16 * sizeof(float))));
using F8 = float __attribute__((vector_size(8 * sizeof(float))));
using D8 = double __attribute__((vector_size(8 * sizeof(double))));
inline constexpr int64_t kFloatVec = 16;

inline F16 load_f16(const float* p) {
    F16 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline D8 load_d8(const double* p) {
    D8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline void store_d8(double* p, D8 v) { std::memcpy(p, &v, sizeof v); }

// 8 floats in double. GCC 12 lowers __builtin_convertvector to 4-wide conversions and inserts even
// with AVX-512, so there the one instruction is named (in its masked form, all lanes: the plain
// intrinsic starts from an undefined register, which -Wmaybe-uninitialized reports).
inline D8 to_d8(F8 v) {
#ifdef __AVX512F__
    return reinterpret_cast<D8>(_mm512_mask_cvtps_pd(_mm512_setzero_pd(), 0xFF, reinterpret_cast<__m256>(v)));
#else
    return __builtin_convertvector(v, D8);
#endif
}

// The low and the high 8 floats of v, in double.
inline D8 low_d8(F16 v) { return to_d8(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)); }
inline D8 high_d8(F16 v) { return to_d8(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15)); }

// wide[0] += the low 8 floats of v, wide[1] += the high 8, in double.
inline void add_wide(D8* wide, F16 v) {
    wide[0] += low_d8(v);
    wide[1] += high_d8(v);
}

}  // namespace tapegrad::kernels
