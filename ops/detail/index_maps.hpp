#pragma once
// What the ops that read their input through index maps (pad, nearest interpolation) share: their
// adjoint, which adds each gradient element back at the input position its output read.
#include "engine/tensor.hpp"
#include "ops/kernels/resample.hpp"

namespace tapegrad::detail {

inline Tensor scatter_add_through_maps(const Tensor& g_in, const Shape& input_shape, const kernels::IndexMaps& maps) {
    const Tensor g = g_in.contiguous();
    Tensor dx = zeros(input_shape, {.dtype = g.dtype()});
    dispatch(g.dtype(), [&]<class T>() { kernels::scatter_add_mapped<T>(g.data<T>(), dx.data<T>(), input_shape, maps); });
    return dx;
}

}  // namespace tapegrad::detail
