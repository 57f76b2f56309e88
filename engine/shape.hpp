#pragma once
// Shapes and strides: a tiny fixed-capacity vector, so that creating a tensor or recording an op
// never allocates for its metadata.
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace tapegrad {

inline constexpr std::size_t kMaxDims = 8;

class Shape {
public:
    using value_type = int64_t;
    Shape() = default;
    Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
    explicit Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }
    template <class It>
    Shape(It first, It last) { assign(first, last); }

    std::size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    int64_t& operator[](std::size_t i) { return d_[i]; }
    int64_t operator[](std::size_t i) const { return d_[i]; }
    int64_t* begin() { return d_.data(); }
    int64_t* end() { return d_.data() + n_; }
    const int64_t* begin() const { return d_.data(); }
    const int64_t* end() const { return d_.data() + n_; }
    const int64_t* data() const { return d_.data(); }
    int64_t back() const { return d_[n_ - 1]; }
    void push_back(int64_t v) {
        if (n_ == kMaxDims) throw std::invalid_argument("tensor: at most 8 dimensions are supported");
        d_[n_++] = v;
    }
    void insert_front(int64_t v) {
        push_back(0);
        std::copy_backward(d_.begin(), d_.begin() + n_ - 1, d_.begin() + n_);
        d_[0] = v;
    }
    void erase(std::size_t i) {
        std::copy(d_.begin() + i + 1, d_.begin() + n_, d_.begin() + i);
        --n_;
    }
    void resize(std::size_t n, int64_t fill = 0) {
        if (n > kMaxDims) throw std::invalid_argument("tensor: at most 8 dimensions are supported");
        for (std::size_t i = n_; i < n; ++i) d_[i] = fill;
        n_ = static_cast<uint8_t>(n);
    }
    std::vector<int64_t> vec() const { return {begin(), end()}; }
    friend bool operator==(const Shape& a, const Shape& b) {
        return a.n_ == b.n_ && std::equal(a.begin(), a.end(), b.begin());
    }
    friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

private:
    template <class It>
    void assign(It first, It last) {
        n_ = 0;
        for (; first != last; ++first) push_back(static_cast<int64_t>(*first));
    }
    std::array<int64_t, kMaxDims> d_{};
    uint8_t n_ = 0;
};

using Strides = Shape;

// "[2,3,4]"
std::string to_string(const Shape& s);
int64_t numel_of(const Shape& s);
// The largest tensor, in elements (and in the product of its non-zero sizes).
inline constexpr int64_t kMaxElements = int64_t{1} << 40;
// numel_of for a shape that comes from a user: refuses negative sizes, and shapes past kMaxElements
// before any stride arithmetic could overflow, with an error naming `op`.
int64_t checked_numel(const Shape& shape, const char* op);
Strides contiguous_strides(const Shape& s);
// Strides of the channels-last memory layout of a 4-D [N,C,H,W] shape: C varies fastest.
Strides channels_last_strides(const Shape& s);
// NumPy broadcasting; throws std::invalid_argument naming `op` when the shapes do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Whether `shape` broadcasts to `desired` (PyTorch's is_expandable_to): it has no more dimensions,
// and each of its sizes, aligned from the right, is 1 or desired's.
bool is_expandable_to(const Shape& shape, const Shape& desired);
// Turns a possibly negative axis into [0, ndim); throws naming `op` when out of range.
std::size_t normalize_axis(int64_t axis, std::size_t ndim, const char* op);

}  // namespace tapegrad
