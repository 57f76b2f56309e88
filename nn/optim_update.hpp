#pragma once
// The loop every optimizer writes parameters with (internal to nn/optim*.cpp and nn/lbfgs.cpp).
#include <algorithm>
#include <array>
#include <numeric>
#include <utility>
#include <vector>

#include "engine/strided.hpp"
#include "engine/tensor.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad::nn::detail {

// A tensor with `like`'s shape, dtype and strides when `like` is dense (so that the update loop
// walks the parameter and its state as one run), row-major otherwise.
inline Tensor empty_with_layout_of(const Tensor& like) {
    if (!is_dense(like)) return empty(like.shape(), {.dtype = like.dtype()});
    // A dense tensor with non-negative strides starts at its lowest address and spans numel elements.
    return as_strided(empty({like.numel()}, {.dtype = like.dtype()}), like.shape(), like.strides());
}

// The one place where optimizers write parameters: calls update(p, g, state...) on matching
// elements of operands = {parameter, gradient, state slots...}, each walked by its own strides, and
// records the in-place write in the parameter's version counter (a graph that saved it refuses
// backward).
template <class T, std::size_t N, class Update>
void update_parameter(const std::array<Tensor, N>& operands, Update&& update) {
    // Dimensions in the parameter's memory order, so that a dense parameter and its state are one
    // run. One thread, always the same runs: the result does not depend on the thread count (a
    // vectorised loop and its scalar tail may round differently).
    const Tensor& param = operands[0];
    std::vector<std::size_t> order(param.dim());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return param.strides()[a] > param.strides()[b]; });
    Shape shape;
    std::array<Strides, N> strides;
    std::array<T*, N> base;
    for (std::size_t d : order) {
        shape.push_back(param.shape()[d]);
        for (std::size_t k = 0; k < N; ++k) strides[k].push_back(operands[k].strides()[d]);
    }
    for (std::size_t k = 0; k < N; ++k) base[k] = operands[k].template data<T>();
    for_each_run<N>(shape, strides, [&](const auto& offsets, int64_t count, const auto& steps) {
        [&]<std::size_t... K>(std::index_sequence<K...>) {
            if (((steps[K] == 1) && ...)) {
#pragma omp simd
                for (int64_t j = 0; j < count; ++j) update(base[K][offsets[K] + j]...);
            } else {
                for (int64_t j = 0; j < count; ++j) update(base[K][offsets[K] + j * steps[K]]...);
            }
        }(std::make_index_sequence<N>{});
    });
    param.bump_version();
}

}  // namespace tapegrad::nn::detail
