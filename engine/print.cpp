// Printing a tensor as PyTorch 1.13's repr prints it (torch/_tensor_str.py with the default print
// options: precision 4, threshold 1000, edgeitems 3, linewidth 80), so that output read next to
// PyTorch's compares character by character. libtorch's C++ operator<< (ATen's Formatting.cpp:
// columns under a common scale factor, then "[ CPUFloatType{2,3} ]") is not followed: it prints
// integers through double, losing int64 values above 2^53, and the repr is the form PyTorch's
// documentation and users read.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/print.hpp"
#include "engine/tensor.hpp"

namespace tapegrad {
namespace {

// The options one print reads (a snapshot, so a set_printoptions in another thread cannot change
// them half-way through).
struct Settings {
    int precision = 4;
    int64_t threshold = 1000;  // more elements than this are summarised
    int64_t edgeitems = 3;     // kept at each end of a summarised dimension
    std::size_t linewidth = 80;
    std::optional<bool> sci_mode{};  // none: chosen from the values
};

std::mutex settings_mutex;
Settings current_settings;  // guarded by settings_mutex

Settings settings_snapshot() {
    const std::lock_guard<std::mutex> lock(settings_mutex);
    return current_settings;
}

std::string printf_double(const char* format, int precision, double v) {
    std::vector<char> buffer(static_cast<std::size_t>(precision) + 400);  // %.*f of 1e308 has 309 digits before the point
    std::snprintf(buffer.data(), buffer.size(), format, precision, v);
    return buffer.data();
}

// Python's "{:.Nf}" / "{:.Ne}" spelling of NaN and infinities: "nan" whatever its sign bit.
std::string non_finite(double v) { return std::isnan(v) ? "nan" : v < 0 ? "-inf" : "inf"; }

// _Formatter: one mode and one width for every printed element. Integer tensors print as
// integers; floating-point ones choose, from their nonzero finite values, integer mode ("3."),
// fixed-point ("3.1416") or scientific ("1.0000e-06") when the magnitudes span more than 1000x,
// exceed 1e8 or (not all whole) go below 1e-4.
class Formatter {
public:
    // Bools print as True and False, right-aligned to the widest printed ("tensor([ True, False])").
    Formatter(const std::vector<bool>& values, const Settings&) {
        width_ = std::find(values.begin(), values.end(), false) != values.end() ? 5 : 4;
    }
    Formatter(const std::vector<int64_t>& values, const Settings&) {
        for (int64_t v : values) width_ = std::max(width_, std::to_string(v).size());
    }
    // As PyTorch, the width is the one the chosen mode needs even when set_printoptions' sci_mode
    // then overrides the mode.
    // Without a nonzero finite value the mode stays fixed-point, sci_mode or not, as in PyTorch.
    Formatter(const std::vector<double>& values, const Settings& settings) : precision_(settings.precision) {
        std::vector<double> nonzero_finite;
        for (double v : values)
            if (std::isfinite(v) && v != 0) nonzero_finite.push_back(v);
        if (nonzero_finite.empty()) return;
        double lo = INFINITY, hi = 0;
        for (double v : nonzero_finite) {
            lo = std::min(lo, std::abs(v));
            hi = std::max(hi, std::abs(v));
            if (v != std::ceil(v)) int_mode_ = false;
        }
        const bool sci = hi / lo > 1000.0 || hi > 1.0e8 || (!int_mode_ && lo < 1.0e-4);
        for (double v : nonzero_finite) {
            const std::size_t w = sci ? printf_double("%.*e", precision_, v).size()
                                  : int_mode_ ? printf_double("%.*f", 0, v).size() + 1
                                              : printf_double("%.*f", precision_, v).size();
            width_ = std::max(width_, w);
        }
        sci_mode_ = settings.sci_mode.value_or(sci);
    }

    std::size_t width() const { return width_; }

    std::string format(bool v) const { return padded(v ? "True" : "False"); }
    std::string format(int64_t v) const { return padded(std::to_string(v)); }
    std::string format(double v) const {
        if (!std::isfinite(v)) return padded(non_finite(v));
        if (sci_mode_) return padded(printf_double("%.*e", precision_, v));
        if (int_mode_) return padded(printf_double("%.*f", 0, v) + ".");
        return padded(printf_double("%.*f", precision_, v));
    }

private:
    std::string padded(const std::string& s) const {
        return s.size() >= width_ ? s : std::string(width_ - s.size(), ' ') + s;
    }
    int precision_ = 4;
    bool int_mode_ = true;
    bool sci_mode_ = false;
    std::size_t width_ = 1;
};

// The indices printed along a dimension of size n: all of them, or the first and last `edge` when
// summarising (edge >= 0); -1 marks the "..." between them.
std::vector<int64_t> printed_indices(int64_t n, int64_t edge) {
    std::vector<int64_t> out;
    if (edge >= 0 && n > 2 * edge) {
        for (int64_t i = 0; i < edge; ++i) out.push_back(i);
        out.push_back(-1);
        for (int64_t i = n - edge; i < n; ++i) out.push_back(i);
    } else {
        for (int64_t i = 0; i < n; ++i) out.push_back(i);
    }
    return out;
}

template <class V>
class Printer {
public:
    Printer(const Tensor& t, const Settings& settings)
        : values_(t.to_vector<V>()), shape_(t.shape()), strides_(contiguous_strides(t.shape())),
          edge_(t.numel() > settings.threshold ? settings.edgeitems : -1), linewidth_(settings.linewidth),
          formatter_(printed_values(), settings) {}

    std::string str(int indent) const { return shape_.size() == 0 ? formatter_.format(values_[0]) : nested(0, 0, indent); }

private:
    // The values that will be printed (PyTorch's get_summarized_data), which alone set the format.
    std::vector<V> printed_values() const {
        std::vector<V> out;
        if (shape_.size() == 0) return values_;
        collect(0, 0, out);
        return out;
    }
    void collect(std::size_t dim, int64_t offset, std::vector<V>& out) const {
        for (int64_t i : printed_indices(shape_[dim], edge_)) {
            if (i < 0) continue;
            const int64_t at = offset + i * strides_[dim];
            if (dim + 1 == shape_.size()) out.push_back(values_[static_cast<std::size_t>(at)]);
            else collect(dim + 1, at, out);
        }
    }

    // _vector_str: as many elements on a line as fit in the line width, the "..." counting as one.
    std::string vector(int64_t offset, int indent) const {
        const std::size_t element_length = formatter_.width() + 2;
        const std::size_t room = linewidth_ > static_cast<std::size_t>(indent) ? linewidth_ - static_cast<std::size_t>(indent) : 0;
        const std::size_t per_line = std::max<std::size_t>(1, room / element_length);
        std::vector<std::string> items;
        for (int64_t i : printed_indices(shape_.back(), edge_))
            items.push_back(i < 0 ? " ..." : formatter_.format(values_[static_cast<std::size_t>(offset + i * strides_.back())]));
        std::string out = "[";
        for (std::size_t i = 0; i < items.size(); ++i) {
            if (i > 0) out += i % per_line == 0 ? ",\n" + std::string(static_cast<std::size_t>(indent) + 1, ' ') : ", ";
            out += items[i];
        }
        return out + "]";
    }

    // _tensor_str_with_formatter: sub-tensors separated by one blank line per dimension below them.
    std::string nested(std::size_t dim, int64_t offset, int indent) const {
        if (dim + 1 == shape_.size()) return vector(offset, indent);
        const std::string separator =
            "," + std::string(shape_.size() - dim - 1, '\n') + std::string(static_cast<std::size_t>(indent) + 1, ' ');
        std::string out = "[";
        bool first = true;
        for (int64_t i : printed_indices(shape_[dim], edge_)) {
            if (!first) out += separator;
            first = false;
            out += i < 0 ? "..." : nested(dim + 1, offset + i * strides_[dim], indent + 1);
        }
        return out + "]";
    }

    std::vector<V> values_;
    Shape shape_;
    Strides strides_;
    int64_t edge_;  // printed at each end of a dimension, or -1: every element
    std::size_t linewidth_;
    Formatter formatter_;
};

// Python's str(tuple(shape)): "(2, 0)", "(0,)".
std::string python_tuple(const Shape& shape) {
    std::string out = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + (shape.size() == 1 ? ",)" : ")");
}

// _add_suffixes: ", suffix" on the last line while it fits in the line width, else on a new line.
std::string with_suffixes(const std::string& text, const std::vector<std::string>& suffixes, std::size_t indent,
                          std::size_t linewidth) {
    std::string out = text;
    const std::size_t newline = text.rfind('\n');
    // PyTorch's len(s) - s.rfind("\n") + 1, with rfind's -1 when there is no line break.
    std::size_t last_line = newline == std::string::npos ? text.size() + 2 : text.size() - newline + 1;
    for (const std::string& suffix : suffixes) {
        if (last_line + suffix.size() + 2 > linewidth) {
            out += ",\n" + std::string(indent, ' ') + suffix;
            last_line = indent + suffix.size();
        } else {
            out += ", " + suffix;
            last_line += suffix.size() + 2;
        }
    }
    return out + ")";
}

std::string repr(const Tensor& t) {
    const Settings settings = settings_snapshot();
    const std::string prefix = "tensor(";
    const int indent = static_cast<int>(prefix.size());
    std::vector<std::string> suffixes;
    std::string body;
    const std::string dtype_suffix = std::string("dtype=torch.") + dtype_name(t.dtype());
    if (t.numel() == 0) {
        if (t.dim() != 1) suffixes.push_back("size=" + python_tuple(t.shape()));
        if (t.dtype() != kFloat32) suffixes.push_back(dtype_suffix);
        body = "[]";
    } else {
        // float32, int64 and bool are the dtypes PyTorch's repr does not name.
        if (t.dtype() != kFloat32 && t.dtype() != kInt64 && t.dtype() != kBool) suffixes.push_back(dtype_suffix);
        body = is_floating_point(t.dtype()) ? Printer<double>(t, settings).str(indent)
               : t.dtype() == kBool         ? Printer<bool>(t, settings).str(indent)
                                            : Printer<int64_t>(t, settings).str(indent);
    }
    if (t.grad_fn()) suffixes.push_back("grad_fn=<" + t.grad_fn()->type_name() + ">");
    else if (t.requires_grad()) suffixes.push_back("requires_grad=True");
    return with_suffixes(prefix + body, suffixes, static_cast<std::size_t>(indent), settings.linewidth);
}

}  // namespace

void set_printoptions(const PrintOptions& options) {
    Settings next;
    const std::lock_guard<std::mutex> lock(settings_mutex);
    if (options.profile) {
        if (*options.profile == "short") next = {.precision = 2, .edgeitems = 2};
        else if (*options.profile == "full") next = {.threshold = std::numeric_limits<int64_t>::max()};
        else if (*options.profile != "default")
            throw std::invalid_argument("set_printoptions: profile must be \"default\", \"short\" or \"full\", got \"" + *options.profile + "\"");
    } else {
        next = current_settings;
    }
    if ((options.precision && *options.precision < 0) || (options.threshold && *options.threshold < 0) ||
        (options.edgeitems && *options.edgeitems < 0) || (options.linewidth && *options.linewidth < 1))
        throw std::invalid_argument("set_printoptions: precision, threshold and edgeitems must be non-negative and linewidth positive");
    if (options.precision) next.precision = *options.precision;
    if (options.threshold) next.threshold = *options.threshold;
    if (options.edgeitems) next.edgeitems = *options.edgeitems;
    if (options.linewidth) next.linewidth = static_cast<std::size_t>(*options.linewidth);
    next.sci_mode = options.sci_mode;  // as PyTorch: None restores the automatic choice
    current_settings = next;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }

std::string to_string(const Tensor& t) { return t.defined() ? repr(t) : "tensor(undefined)"; }

}  // namespace tapegrad
