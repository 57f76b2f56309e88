#pragma once
// Element conversions that refuse a value the target type cannot hold, instead of wrapping it or
// invoking undefined behaviour (a float converted to an integer type it does not fit is UB in C++):
// NaN, ±inf or an out-of-range number to an integer type, an int64 outside int32's range to int32.
// Floating-point to integer truncates toward zero, as PyTorch's .long() and full(..., 1.7, int64);
// the value must lie within the integer type's [min, max] before truncation, as PyTorch requires.
// A conversion to a floating-point type is never refused: an integer rounds to the nearest value
// the type holds and a double beyond float's range becomes ±inf, as PyTorch's .to() does.
// Integer to integer never passes through double, so int64 values are exact all the way.
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "engine/dtype.hpp"

namespace tapegrad {

// A bfloat16 value is checked and reported as the float it widens to (exactly).
template <class T>
constexpr auto widened(T v) {
    if constexpr (std::is_same_v<T, BFloat16>) return static_cast<float>(v);
    else return v;
}

// True when some From value has no To counterpart (From and To are element types: float, double,
// int64_t, int32_t, bool, BFloat16).
template <class To, class From>
consteval bool some_value_overflows() {
    // bool takes any value (nonzero is true) and gives 0 or 1, which every type holds.
    if constexpr (!std::is_integral_v<To> || std::is_same_v<To, From> || std::is_same_v<To, bool> ||
                  std::is_same_v<From, bool>)
        return false;
    else if constexpr (std::is_floating_point_v<From> || std::is_same_v<From, BFloat16>) return true;
    else
        return std::cmp_less(std::numeric_limits<From>::min(), std::numeric_limits<To>::min()) ||
               std::cmp_greater(std::numeric_limits<From>::max(), std::numeric_limits<To>::max());
}
template <class To, class From>
inline constexpr bool can_overflow = some_value_overflows<To, From>();

// True when static_cast<To>(v) is defined and keeps v (truncated toward zero, for a float to an
// integer). NaN and ±inf fit no integer type.
template <class To, class From>
constexpr bool fits(From v) {
    if constexpr (!can_overflow<To, From>) {
        return true;
    } else if constexpr (std::is_same_v<From, BFloat16>) {
        return fits<To>(widened(v));
    } else if constexpr (std::is_integral_v<From>) {
        return std::in_range<To>(v);
    } else {
        // PyTorch's rule for scalars: v itself within [min, max], so int32 refuses -2^31 - 0.5 even
        // though it truncates into range. max rounds up to 2^63 as a double, hence also v < 2^k
        // (hi, exact in From): PyTorch lets 2^63 through to int64 and wraps it to -2^63.
        constexpr From lo = static_cast<From>(std::numeric_limits<To>::min());
        constexpr From max = static_cast<From>(std::numeric_limits<To>::max());
        constexpr From hi = static_cast<From>(std::numeric_limits<To>::max() / 2 + 1) * From(2);
        return v >= lo && v <= max && v < hi;
    }
}

// "value nan cannot be converted to type int64 without overflow (int64 holds the integers from
// -9223372036854775808 to 9223372036854775807)": PyTorch's wording, with the range. From is an
// element type.
template <class From>
std::string overflow_message(From value, DType to);

// std::invalid_argument("<op>: <overflow_message>; pass a value in that range, or use a
// floating-point dtype").
template <class From>
[[noreturn]] void throw_overflow(const char* op, From value, DType to);

// static_cast<To>(v), refused with throw_overflow (naming `op`) when v does not fit To.
template <class To, class From>
To checked_cast(From v, const char* op) {
    if constexpr (can_overflow<To, From>)
        if (!fits<To>(v)) throw_overflow(op, widened(v), dtype_of<To>());
    return static_cast<To>(v);
}

}  // namespace tapegrad
