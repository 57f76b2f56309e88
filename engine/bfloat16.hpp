#pragma once
// bfloat16: float32's sign, exponent and top 7 mantissa bits, in 16 bits. The element type of
// kBFloat16 tensors and of the bf16 buffers autocast's kernels hand to oneDNN. Conversion from
// float rounds to the nearest even value and turns every NaN into 0x7FC0, as PyTorch's
// c10::BFloat16 does; a double goes through float first (as in PyTorch), an integer too.
// Conversion to float is exact.
#include <bit>
#include <cstdint>
#include <type_traits>

namespace tapegrad {

// The bits of float `f` rounded to bfloat16, round-to-nearest-even.
constexpr uint16_t bfloat16_bits(float f) {
    const uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;  // NaN
    return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
constexpr float bfloat16_to_float(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }
// f rounded to the nearest bfloat16 value, kept as a float.
constexpr float round_to_bfloat16(float f) { return bfloat16_to_float(bfloat16_bits(f)); }

struct BFloat16 {
    uint16_t bits;

    BFloat16() = default;  // uninitialised, as a float is: storage is allocated without a fill
    template <class T>
        requires std::is_arithmetic_v<T>
    constexpr explicit BFloat16(T v) : bits(bfloat16_bits(static_cast<float>(v))) {}
    template <class T>
        requires std::is_arithmetic_v<T>
    constexpr explicit operator T() const {
        return static_cast<T>(bfloat16_to_float(bits));
    }
};
static_assert(sizeof(BFloat16) == 2 && std::is_trivially_default_constructible_v<BFloat16>);

// Bulk conversions for the kernels, plain loops the compiler vectorizes.
inline void to_bfloat16(const float* src, BFloat16* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i].bits = bfloat16_bits(src[i]);
}
// Each of p[0, n) rounded to bfloat16 in place.
inline void round_to_bfloat16(float* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i) p[i] = round_to_bfloat16(p[i]);
}

}  // namespace tapegrad
