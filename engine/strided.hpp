#pragma once
// Row-major iteration over N strided operands of one shape, as runs along the innermost dimension.
// Dimensions that are contiguous in every operand are merged first, so a dense tensor is a single
// run and a bias broadcast over [N,C,H,W] is N*C runs of H*W: the inner loop stays a plain,
// vectorizable pointer loop.
#include <algorithm>
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

namespace detail {
// Walks dimensions [first, nd) of a merged layout from `offsets`, calling run once per innermost run.
template <std::size_t N, class Run>
void walk(const StridedLayout<N>& m, std::size_t first, std::array<int64_t, N> offsets, Run& run) {
    const std::size_t nd = m.shape.size();
    std::array<int64_t, N> inner_strides{};
    for (std::size_t k = 0; k < N; ++k) inner_strides[k] = m.strides[k][nd - 1];
    std::array<int64_t, kMaxDims> index{};
    while (true) {
        run(offsets, m.shape[nd - 1], inner_strides);
        // Odometer increment over the outer dimensions.
        std::size_t d = nd - 1;
        while (true) {
            if (d <= first) return;
            --d;
            ++index[d];
            for (std::size_t k = 0; k < N; ++k) offsets[k] += m.strides[k][d];
            if (index[d] < m.shape[d]) break;
            for (std::size_t k = 0; k < N; ++k) offsets[k] -= m.strides[k][d] * m.shape[d];
            index[d] = 0;
        }
    }
}
}  // namespace detail

// Calls run(offsets, count, inner_strides) for each innermost run, in row-major index order;
// offsets are in elements.
template <std::size_t N, class Run>
void for_each_run(const Shape& shape, const std::array<Strides, N>& strides, Run&& run) {
    for (int64_t d : shape)
        if (d == 0) return;
    detail::walk<N>(merge_dims<N>(shape, strides), 0, {}, run);
}

// Below this many elements a parallel region costs more than it saves.
inline constexpr int64_t kParallelThreshold = 1 << 15;

// Like for_each_run, for loops whose visiting order does not matter (each output element is
// written once): dimensions are visited in operand 0's memory order, so a channels-last tensor is
// walked as the dense block it is, and the outermost dimension is split across OpenMP threads
// above kParallelThreshold elements. `run` is called concurrently on disjoint runs.
template <std::size_t N, class Run>
void for_each_run_unordered(const Shape& shape, const std::array<Strides, N>& strides, Run&& run) {
    for (int64_t d : shape)
        if (d == 0) return;
    // Largest stride of operand 0 outermost (stable, so ties keep their logical order).
    std::array<std::size_t, kMaxDims> order{};
    for (std::size_t d = 0; d < shape.size(); ++d) order[d] = d;
    std::stable_sort(order.begin(), order.begin() + shape.size(),
                     [&](std::size_t a, std::size_t b) { return strides[0][a] > strides[0][b]; });
    Shape s;
    std::array<Strides, N> st;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        s.push_back(shape[order[i]]);
        for (std::size_t k = 0; k < N; ++k) st[k].push_back(strides[k][order[i]]);
    }
    const StridedLayout<N> m = merge_dims<N>(s, st);
    const int64_t outer = m.shape[0];
    if (numel_of(m.shape) <= kParallelThreshold || outer == 1) {
        detail::walk<N>(m, 0, {}, run);
        return;
    }
    // Contiguous chunks of the outermost dimension, one walk each: the walk's set-up is paid per
    // chunk, not per row (a channels-last bias add has 32,768 rows of 32).
    const int64_t inner = numel_of(m.shape) / outer;
    const int64_t chunks = std::min<int64_t>(outer, (outer * inner + kParallelThreshold - 1) / kParallelThreshold);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
        const int64_t lo = outer * c / chunks, hi = outer * (c + 1) / chunks;
        StridedLayout<N> part = m;
        part.shape[0] = hi - lo;
        std::array<int64_t, N> offsets{};
        for (std::size_t k = 0; k < N; ++k) offsets[k] = lo * m.strides[k][0];
        detail::walk<N>(part, 0, offsets, run);
    }
}

// The strides that read a tensor of shape `from` as if broadcast to shape `to` (0 where a
// dimension is broadcast). `from` must broadcast to `to`.
Strides broadcast_strides(const Shape& from, const Strides& from_strides, const Shape& to);

}  // namespace tapegrad
