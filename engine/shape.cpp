#include "engine/shape.hpp"

#include <string>

#include "engine/checked_size.hpp"

namespace tapegrad {

std::string to_string(const Shape& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i) out += ",";
        out += std::to_string(s[i]);
    }
    return out + "]";
}

// A tensor's shape passed checked_numel when it was made, so for one this never throws; a shape
// built by hand that overflows is refused rather than wrapped.
int64_t numel_of(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n = checked_mul(n, d, "numel", "the product of the sizes", [&] { return " (shape " + to_string(s) + ")"; });
    return n;
}

std::optional<Strides> view_strides(const Shape& shape, const Strides& strides, const Shape& target) {
    if (shape.empty()) {
        Strides ones;
        ones.resize(target.size(), 1);
        return ones;
    }
    int64_t numel = 1;
    for (int64_t n : shape) numel *= n;
    Strides out;
    out.resize(target.size());
    if (numel == 0) {
        if (shape == target) return strides;
        return contiguous_strides(target);
    }
    // Walk both shapes from the innermost dimension: each run of old dimensions whose strides
    // chain (stride[d-1] = size[d] * stride[d]) is one block of memory, which the target must cover
    // with whole dimensions of its own.
    int64_t view_d = static_cast<int64_t>(target.size()) - 1;
    int64_t chunk_base_stride = strides.back();
    int64_t tensor_numel = 1, view_numel = 1;
    for (int64_t tensor_d = static_cast<int64_t>(shape.size()) - 1; tensor_d >= 0; --tensor_d) {
        tensor_numel *= shape[tensor_d];
        const bool chunk_ends = tensor_d == 0 || (shape[tensor_d - 1] != 1 && strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
        if (!chunk_ends) continue;
        while (view_d >= 0 && (view_numel < tensor_numel || target[view_d] == 1)) {
            out[view_d] = view_numel * chunk_base_stride;
            view_numel *= target[view_d];
            --view_d;
        }
        if (view_numel != tensor_numel) return std::nullopt;
        if (tensor_d > 0) {
            chunk_base_stride = strides[tensor_d - 1];
            tensor_numel = 1;
            view_numel = 1;
        }
    }
    if (view_d != -1) return std::nullopt;
    return out;
}

Strides contiguous_strides(const Shape& s) {
    Strides st;
    st.resize(s.size());
    int64_t acc = 1;
    for (std::size_t i = s.size(); i-- > 0;) {
        st[i] = acc;
        acc = checked_mul(acc, std::max<int64_t>(s[i], 1), "contiguous_strides", "a stride", [&] { return " (shape " + to_string(s) + ")"; });
    }
    return st;
}

Strides channels_last_strides(const Shape& s) {
    if (s.size() != 4) throw std::invalid_argument("channels_last: needs a 4-D [N,C,H,W] shape, got " + to_string(s));
    const int64_t C = std::max<int64_t>(s[1], 1), H = std::max<int64_t>(s[2], 1), W = std::max<int64_t>(s[3], 1);
    const auto context = [&] { return " (shape " + to_string(s) + ")"; };
    const int64_t row = checked_mul(W, C, "channels_last_strides", "a row stride", context);
    return Strides{checked_mul(H, row, "channels_last_strides", "an image stride", context), 1, row, C};
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const std::size_t n = std::max(a.size(), b.size());
    Shape out;
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        if (da != db && da != 1 && db != 1)
            throw std::invalid_argument(std::string(op) + ": shapes " + to_string(a) + " and " + to_string(b) +
                                        " are not broadcastable (dimension " + std::to_string(i) + ": " +
                                        std::to_string(da) + " vs " + std::to_string(db) +
                                        "); sizes must match or be 1");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

bool is_expandable_to(const Shape& shape, const Shape& desired) {
    if (shape.size() > desired.size()) return false;
    const std::size_t lead = desired.size() - shape.size();
    for (std::size_t d = 0; d < shape.size(); ++d)
        if (shape[d] != 1 && shape[d] != desired[lead + d]) return false;
    return true;
}

std::size_t normalize_axis(int64_t axis, std::size_t ndim, const char* op) {
    const int64_t n = static_cast<int64_t>(ndim);
    if (axis < -n || axis >= n)
        throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for a " +
                                    std::to_string(ndim) + "-D tensor (expected [" + std::to_string(-n) + ", " +
                                    std::to_string(n - 1) + "])");
    return static_cast<std::size_t>(axis < 0 ? axis + n : axis);
}

}  // namespace tapegrad
