#pragma once
// Overflow-checked size and geometry arithmetic. Every size an op derives from its arguments
// (element counts, the output length of a sliding window, slice bounds, split points) goes through
// these, so that no argument, however large, overflows int64 or sends an op into an allocation or a
// loop it cannot finish. Each error is a std::invalid_argument that names the op; `context`, when
// given, is appended to it (the shapes and options, e.g. " (input [1,3,8,8], kernel {2,2})").
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "engine/dtype.hpp"
#include "engine/shape.hpp"

namespace tapegrad {

// "<op>: <what> (<a> <sign> <b>) overflows int64<context>": the arithmetic's overflow error.
[[noreturn]] void throw_overflow(const char* op, std::string_view what, int64_t a, char sign, int64_t b, std::string_view context);

namespace detail {
// A context is text, or a callable that makes it: hot callers (numel_of) build it only on overflow.
inline std::string_view context_text(std::string_view context) { return context; }
template <class Make>
    requires std::is_invocable_r_v<std::string, const Make&>
std::string context_text(const Make& make) {
    return make();
}
}  // namespace detail

template <class Context = std::string_view>
int64_t checked_add(int64_t a, int64_t b, const char* op, std::string_view what, const Context& context = {}) {
    int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) throw_overflow(op, what, a, '+', b, detail::context_text(context));
    return r;
}
template <class Context = std::string_view>
int64_t checked_sub(int64_t a, int64_t b, const char* op, std::string_view what, const Context& context = {}) {
    int64_t r = 0;
    if (__builtin_sub_overflow(a, b, &r)) throw_overflow(op, what, a, '-', b, detail::context_text(context));
    return r;
}
template <class Context = std::string_view>
int64_t checked_mul(int64_t a, int64_t b, const char* op, std::string_view what, const Context& context = {}) {
    int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) throw_overflow(op, what, a, '*', b, detail::context_text(context));
    return r;
}

// ceil(a / b) for a >= 0, b > 0, without the a + b - 1 that overflows near INT64_MAX.
inline int64_t ceil_div(int64_t a, int64_t b) { return a == 0 ? 0 : (a - 1) / b + 1; }

// floor(a * b / c) and ceil(a * b / c) for a, b >= 0 and c > 0, exact where a * b itself would
// overflow (an adaptive pool's bin edges, i * in / out).
inline int64_t mul_div_floor(int64_t a, int64_t b, int64_t c) {
    int64_t product = 0;
    if (!__builtin_mul_overflow(a, b, &product)) return product / c;
    return static_cast<int64_t>(static_cast<__int128>(a) * b / c);
}
inline int64_t mul_div_ceil(int64_t a, int64_t b, int64_t c) {
    int64_t product = 0;
    if (!__builtin_mul_overflow(a, b, &product)) return ceil_div(product, c);
    return static_cast<int64_t>((static_cast<__int128>(a) * b + c - 1) / c);
}

// The product of the sizes, refused (naming `op`) when a size is negative or the product of the
// non-zero sizes passes kMaxElements (the strides multiply those), and, for a tensor of `dtype`,
// when its bytes exceed this machine's memory: see check_fits_in_memory.
int64_t checked_allocation(const Shape& shape, DType dtype, const char* op, std::string_view context = {});

// Refuses, naming `op` and `what`, `count` things of `bytes_each` (count >= 0) that together
// exceed this machine's memory (RAM and swap). Such a request can only fail, after a long time or
// in the allocator (where a sanitizer aborts): failing first says why.
void check_fits_in_memory(int64_t count, std::size_t bytes_each, const char* op, std::string_view what,
                          std::string_view context = {});

// One axis of a sliding window: `kernel` taps `dilation` apart, every `stride`, over an input of
// `in` padded by `pad` on both sides. The arguments are checked by the op (positive kernel, stride
// and dilation; pad >= 0).
struct WindowAxis {
    int64_t in, kernel, stride, pad, dilation = 1;
};

// in + 2 pad - dilation (kernel - 1) - 1: how far the last window can start past the first. Negative
// when the dilated kernel is larger than the padded input.
int64_t window_span(const WindowAxis& a, const char* op, std::string_view context = {});

// A convolution's (and a floor-mode pool's) output length: span / stride + 1, or 0 when the
// dilated kernel does not fit in the padded input.
int64_t conv_output_size(const WindowAxis& a, const char* op, std::string_view context = {});

// PyTorch's pooling_output_shape: as conv_output_size, or with ceil_mode the ceiling of span /
// stride + 1, less the last window when it would start in the right padding.
int64_t pool_output_size(const WindowAxis& a, bool ceil_mode, const char* op, std::string_view context = {});

// A transposed convolution's output length: (in - 1) stride - 2 pad + dilation (kernel - 1) +
// output_padding + 1 (may come out <= 0: the caller refuses that).
int64_t conv_transpose_output_size(const WindowAxis& a, int64_t output_padding, const char* op,
                                   std::string_view context = {});

// The stride the kernels are given for an axis with `out` outputs. With one output the stride is
// never applied, and any stride past the span computes the same: the smallest of those is used,
// so that nothing sized by the stride (oneDNN's descriptors, a pool's stride phases) sees 2^62.
int64_t stride_in_use(const WindowAxis& a, int64_t out, const char* op);

// Likewise the dilation of a one-tap kernel is never applied, and oneDNN refuses a large one.
inline int64_t dilation_in_use(const WindowAxis& a) { return a.kernel == 1 ? 1 : a.dilation; }

}  // namespace tapegrad
