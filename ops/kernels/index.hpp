#pragma once
// Gather, scatter and scatter-add by flat index on raw pointers (ops/index.cpp, and
// ops/pooling.cpp's max_unpool2d). Indices are checked by the op before these run.
#include <cstdint>
#include <type_traits>

namespace tapegrad::kernels {

// out[j] = x[index[j]] for j < n.
template <class T>
void gather_flat(const T* x, const int64_t* index, int64_t n, T* out) {
    for (int64_t j = 0; j < n; ++j) out[j] = x[index[j]];
}

// out[index[j]] += src[j] for j < n, in order (so repeated indices sum deterministically).
// Integers wrap around on overflow, as PyTorch's, added as unsigned where that is defined; bools
// add as or, PyTorch's bool sum.
template <class T>
T add_wrapping(T a, T b) {
    if constexpr (std::is_same_v<T, bool>) {
        return a || b;
    } else if constexpr (std::is_integral_v<T>) {
        using U = std::make_unsigned_t<T>;
        return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
    } else {
        return a + b;
    }
}

template <class T>
void scatter_add_flat(const T* src, const int64_t* index, int64_t n, T* out) {
    for (int64_t j = 0; j < n; ++j) out[index[j]] = add_wrapping(out[index[j]], src[j]);
}

// out[index[j]] = src[j] for j < n, in order (a repeated index keeps the last value).
template <class T>
void scatter_flat(const T* src, const int64_t* index, int64_t n, T* out) {
    for (int64_t j = 0; j < n; ++j) out[index[j]] = src[j];
}

}  // namespace tapegrad::kernels
