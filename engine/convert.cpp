#include "engine/convert.hpp"

#include <charconv>
#include <stdexcept>

namespace tapegrad {
namespace {

std::string range_text(DType to) {
    auto span = [](auto lo, auto hi) { return "the integers from " + std::to_string(lo) + " to " + std::to_string(hi); };
    switch (to) {
        case DType::Int64: return span(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
        case DType::Int32: return span(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
        case DType::Float32:
        case DType::Float64:
        case DType::BFloat16:
        case DType::Bool: break;
    }
    throw std::logic_error("overflow_message: no value overflows a floating-point or bool dtype");
}

// The shortest text that reads back as the same value: 1e+30, nan, -inf, 9007199254740993.
template <class From>
std::string text_of(From value) {
    if constexpr (std::is_integral_v<From>) {
        return std::to_string(value);
    } else {
        char buf[32];
        const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
        return std::string(buf, end);
    }
}

}  // namespace

template <class From>
std::string overflow_message(From value, DType to) {
    return "value " + text_of(value) + " cannot be converted to type " + dtype_name(to) + " without overflow (" +
           dtype_name(to) + " holds " + range_text(to) + ")";
}

template <class From>
void throw_overflow(const char* op, From value, DType to) {
    throw std::invalid_argument(std::string(op) + ": " + overflow_message(value, to) +
                                "; pass a value in that range, or use a floating-point dtype");
}

#define TAPEGRAD_OVERFLOW_TEXT(From)                                   \
    template std::string overflow_message<From>(From, DType);          \
    template void throw_overflow<From>(const char*, From, DType);
TAPEGRAD_OVERFLOW_TEXT(float)
TAPEGRAD_OVERFLOW_TEXT(double)
TAPEGRAD_OVERFLOW_TEXT(int64_t)
TAPEGRAD_OVERFLOW_TEXT(int32_t)
#undef TAPEGRAD_OVERFLOW_TEXT

}  // namespace tapegrad
