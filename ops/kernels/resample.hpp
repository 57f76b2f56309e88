#pragma once
// Resampling kernels on raw pointers: gathers through one index map per dimension (pad's
// constant/reflect/replicate and nearest interpolation are all "output index o along dimension d
// reads input index map[d][o]") and bilinear interpolation over the last two dimensions. Written
// once for float and double; the output is row-major, the input any strides. Each backward is
// the transpose of its forward: a scatter-add.
#include <cstdint>
#include <vector>

#include "engine/shape.hpp"

namespace tapegrad::kernels {

// map[d][o] = the input index read by output index o along dimension d, or -1 where the output is
// padding (it gets `fill`). map[d].size() is the output size along d.
using IndexMaps = std::vector<std::vector<int64_t>>;

Shape mapped_shape(const IndexMaps& maps);

// out (row-major, mapped_shape(maps)) [o] = x[map(o)], or fill.
template <class T>
void gather_mapped(const T* x, const Strides& x_strides, T* out, const IndexMaps& maps, T fill);
// dx [map(o)] += g[o] over every o with a source; dx is row-major of the input shape and must
// start zeroed; g is row-major.
template <class T>
void scatter_add_mapped(const T* g, T* dx, const Shape& x_shape, const IndexMaps& maps);

// One output coordinate of a linear interpolation: reads i0 and i1 with weights w0 and w1.
struct LinearTap {
    int64_t i0, i1;
    double w0, w1;
};
// out [P, OH, OW] row-major = Σ taps_h × taps_w of x [P, H, W] (strides xs: plane, row, column).
template <class T>
void bilinear_forward(const T* x, int64_t P, int64_t plane_stride_x, int64_t row_stride_x, int64_t col_stride_x, T* out,
                      const std::vector<LinearTap>& taps_h, const std::vector<LinearTap>& taps_w);
// dx [P, H, W] row-major, zeroed, += transpose of the forward applied to g [P, OH, OW] row-major.
template <class T>
void bilinear_backward(const T* g, int64_t P, T* dx, int64_t H, int64_t W, const std::vector<LinearTap>& taps_h,
                       const std::vector<LinearTap>& taps_w);

}  // namespace tapegrad::kernels
