#include "engine/checked_size.hpp"

#include <sys/sysinfo.h>

#include <stdexcept>

namespace tapegrad {
namespace {

// RAM and swap together: no single allocation larger than that can succeed.
uint64_t machine_memory_bytes() {
    static const uint64_t bytes = [] {
        struct sysinfo info {};
        if (sysinfo(&info) != 0) return UINT64_MAX;
        return (static_cast<uint64_t>(info.totalram) + info.totalswap) * info.mem_unit;
    }();
    return bytes;
}

std::string gib(uint64_t gibibytes) { return std::to_string(gibibytes) + " GiB"; }

int64_t numel_within_limit(const Shape& shape, const char* op, std::string_view context) {
    // Strides multiply the non-zero sizes, so an empty [0, 2^32, 2^32] must be refused too.
    int64_t count = 1, span = 1;
    for (int64_t d : shape) {
        if (d < 0)
            throw std::invalid_argument(std::string(op) + ": negative dimension in shape " + to_string(shape) + std::string(context));
        if (__builtin_mul_overflow(span, std::max<int64_t>(d, 1), &span) || span > kMaxElements)
            throw std::invalid_argument(std::string(op) + ": shape " + to_string(shape) +
                                        " has more than 2^40 elements, the most a tensor may hold" + std::string(context));
        count *= d;  // count <= span: cannot overflow
    }
    return count;
}

}  // namespace

void throw_overflow(const char* op, std::string_view what, int64_t a, char sign, int64_t b, std::string_view context) {
    throw std::invalid_argument(std::string(op) + ": " + std::string(what) + " (" + std::to_string(a) + " " + sign + " " +
                                std::to_string(b) + ") overflows int64" + std::string(context) +
                                "; sizes this large cannot be allocated");
}

// Declared in engine/shape.hpp, which every file includes.
int64_t checked_numel(const Shape& shape, const char* op) { return numel_within_limit(shape, op, {}); }

void check_fits_in_memory(int64_t count, std::size_t bytes_each, const char* op, std::string_view what, std::string_view context) {
    const unsigned __int128 bytes = static_cast<unsigned __int128>(count) * bytes_each;
    if (bytes > machine_memory_bytes())
        throw std::invalid_argument(std::string(op) + ": " + std::string(what) + " would need " + gib(static_cast<uint64_t>(bytes >> 30)) +
                                    ", more than this machine's " + gib(machine_memory_bytes() >> 30) + " of memory (RAM and swap)" +
                                    std::string(context));
}

int64_t checked_allocation(const Shape& shape, DType dtype, const char* op, std::string_view context) {
    const int64_t count = numel_within_limit(shape, op, context);
    // count <= 2^40 elements of at most 8 bytes: the product fits. The message is made only when needed.
    if (static_cast<uint64_t>(count) * element_size(dtype) > machine_memory_bytes())
        check_fits_in_memory(count, element_size(dtype), op, std::string("a ") + dtype_name(dtype) + " tensor of shape " + to_string(shape),
                             context);
    return count;
}

int64_t window_span(const WindowAxis& a, const char* op, std::string_view context) {
    const int64_t padded = checked_add(a.in, checked_mul(2, a.pad, op, "twice the padding", context), op, "the padded input", context);
    const int64_t reach = checked_mul(a.dilation, a.kernel - 1, op, "the dilated kernel", context);
    return checked_sub(padded, reach, op, "the padded input less the dilated kernel", context) - 1;
}

int64_t conv_output_size(const WindowAxis& a, const char* op, std::string_view context) {
    const int64_t span = window_span(a, op, context);
    return span < 0 ? 0 : span / a.stride + 1;
}

int64_t pool_output_size(const WindowAxis& a, bool ceil_mode, const char* op, std::string_view context) {
    const int64_t span = window_span(a, op, context);
    if (span < 0) return 0;
    if (!ceil_mode) return span / a.stride + 1;
    int64_t out = ceil_div(span, a.stride) + 1;
    // The last window must start inside the input or the left padding: (out - 1) stride < in + pad.
    if (out - 1 >= ceil_div(checked_add(a.in, a.pad, op, "the input and its padding", context), a.stride)) --out;
    return out;
}

int64_t conv_transpose_output_size(const WindowAxis& a, int64_t output_padding, const char* op, std::string_view context) {
    const int64_t spread = checked_mul(a.in - 1, a.stride, op, "(input - 1) * stride", context);
    const int64_t reach = checked_mul(a.dilation, a.kernel - 1, op, "the dilated kernel", context);
    const int64_t cropped = checked_sub(spread, checked_mul(2, a.pad, op, "twice the padding", context), op,
                                        "the output less the padding", context);
    return checked_add(checked_add(cropped, reach, op, "the output size", context), output_padding + 1, op, "the output size",
                       context);
}

int64_t stride_in_use(const WindowAxis& a, int64_t out, const char* op) {
    return out == 1 ? std::min(a.stride, window_span(a, op) + 1) : a.stride;
}

}  // namespace tapegrad
