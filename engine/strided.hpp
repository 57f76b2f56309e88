#pragma once
// Row-major iteration over N strided operands of one shape, as runs along the innermost dimension.
// Dimensions that are contiguous in every operand are merged first, so a dense tensor is a single
// run and a bias broadcast over [N,C,H,W] is N*C runs of H*W: the inner loop stays a plain,
// vectorizable pointer loop.
#include <array>
#include <cstdint>

#include "engine/shape.hpp"

namespace tapegrad {

template <std::size_t N>
struct StridedLayout {
    Shape shape;                     // after merging
    std::array<Strides, N> strides;  // per operand, after merging
};

template <std::size_t N>
StridedLayout<N> merge_dims(const Shape& shape, const std::array<Strides, N>& strides) {
    StridedLayout<N> out;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 1) continue;
        bool merge = !out.shape.empty();
        for (std::size_t k = 0; k < N && merge; ++k)
            merge = out.strides[k].back() == strides[k][d] * shape[d];
        if (merge) {
            const std::size_t last = out.shape.size() - 1;
            out.shape[last] *= shape[d];
            for (std::size_t k = 0; k < N; ++k) out.strides[k][last] = strides[k][d];
        } else {
            out.shape.push_back(shape[d]);
            for (std::size_t k = 0; k < N; ++k) out.strides[k].push_back(strides[k][d]);
        }
    }
    if (out.shape.empty()) {  // a scalar, or all dims of size 1
        out.shape.push_back(1);
        for (std::size_t k = 0; k < N; ++k) out.strides[k].push_back(1);
    }
    return out;
}

// Calls run(offsets, count, inner_strides) for each innermost run; offsets are in elements.
template <std::size_t N, class Run>
void for_each_run(const Shape& shape, const std::array<Strides, N>& strides, Run&& run) {
    for (int64_t d : shape)
        if (d == 0) return;
    const StridedLayout<N> m = merge_dims<N>(shape, strides);
    const std::size_t nd = m.shape.size();
    const int64_t inner = m.shape[nd - 1];
    std::array<int64_t, N> inner_strides{};
    for (std::size_t k = 0; k < N; ++k) inner_strides[k] = m.strides[k][nd - 1];
    std::array<int64_t, kMaxDims> index{};
    std::array<int64_t, N> offsets{};
    while (true) {
        run(offsets, inner, inner_strides);
        // Odometer increment over the outer dimensions.
        std::size_t d = nd - 1;
        while (true) {
            if (d == 0) return;
            --d;
            ++index[d];
            for (std::size_t k = 0; k < N; ++k) offsets[k] += m.strides[k][d];
            if (index[d] < m.shape[d]) break;
            for (std::size_t k = 0; k < N; ++k) offsets[k] -= m.strides[k][d] * m.shape[d];
            index[d] = 0;
        }
    }
}

// The strides that read a tensor of shape `from` as if broadcast to shape `to` (0 where a
// dimension is broadcast). `from` must broadcast to `to`.
Strides broadcast_strides(const Shape& from, const Strides& from_strides, const Shape& to);

}  // namespace tapegrad
