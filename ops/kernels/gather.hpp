#pragma once
// Gather and scatter-add along one dimension by an index tensor (ops/gather.cpp), on row-major
// operands. Indices are checked by the op before these run.
#include <cstdint>
#include <vector>

#include "engine/shape.hpp"
#include "ops/kernels/index.hpp"

namespace tapegrad::kernels {

// For each element of a row-major tensor of shape `index_shape`, in order: f(j, offset) with j its
// flat position and offset its position in a row-major tensor of shape `target` with the
// coordinate along `dim` left out (0), so that target's element is offset + index[j] * stride_dim.
template <class F>
void for_each_index_position(const Shape& index_shape, const Shape& target, std::size_t dim, F f) {
    const Strides target_strides = contiguous_strides(target);
    std::vector<int64_t> at(index_shape.size(), 0);
    const int64_t n = numel_of(index_shape);
    int64_t offset = 0;
    for (int64_t j = 0; j < n; ++j) {
        f(j, offset);
        for (std::size_t d = index_shape.size(); d-- > 0;) {
            if (d != dim) offset += target_strides[d];
            if (++at[d] < index_shape[d]) break;
            if (d != dim) offset -= target_strides[d] * index_shape[d];
            at[d] = 0;
        }
    }
}

// out[j] = x[..., index[j], ...] (torch.gather): out has index's shape.
template <class T>
void gather_dim(const T* x, const Shape& x_shape, std::size_t dim, const int64_t* index, const Shape& index_shape, T* out) {
    const int64_t stride = contiguous_strides(x_shape)[dim];
    for_each_index_position(index_shape, x_shape, dim, [&](int64_t j, int64_t offset) { out[j] = x[offset + index[j] * stride]; });
}

// out[..., index[j], ...] += src[j] (torch.scatter_add_), in order.
template <class T>
void scatter_add_dim(const T* src, const Shape& index_shape, std::size_t dim, const int64_t* index, const Shape& out_shape, T* out) {
    const int64_t stride = contiguous_strides(out_shape)[dim];
    for_each_index_position(index_shape, out_shape, dim, [&](int64_t j, int64_t offset) {
        T& o = out[offset + index[j] * stride];
        o = add_wrapping(o, src[j]);
    });
}

}  // namespace tapegrad::kernels
