#include "ops/kernels/resample.hpp"

#include "engine/strided.hpp"

namespace tapegrad::kernels {
namespace {

// The input offset (through x_strides) of the row that output row r (over all dimensions but the
// last, row-major) reads, or -1 where that row is padding.
int64_t row_source(const IndexMaps& maps, const Shape& out_shape, const Strides& x_strides, int64_t r) {
    int64_t rest = r, src = 0;
    for (std::size_t d = maps.size() - 1; d-- > 0;) {
        const int64_t i = maps[d][rest % out_shape[d]];
        rest /= out_shape[d];
        if (i < 0) return -1;
        src += i * x_strides[d];
    }
    return src;
}

// Calls row(out_row_offset, x_row_offset_or_-1_if_padding) for every row of the output, in
// parallel (rows are independent).
template <class Row>
void for_each_row(const IndexMaps& maps, const Strides& x_strides, Row row) {
    const Shape out_shape = mapped_shape(maps);
    if (numel_of(out_shape) == 0) return;
    const int64_t row_len = out_shape.back();
    const int64_t rows = numel_of(out_shape) / row_len;
#pragma omp parallel for schedule(static) if (rows * row_len > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) row(r * row_len, row_source(maps, out_shape, x_strides, r));
}

}  // namespace

Shape mapped_shape(const IndexMaps& maps) {
    Shape s;
    for (const auto& m : maps) s.push_back(static_cast<int64_t>(m.size()));
    return s;
}

template <class T>
void gather_mapped(const T* x, const Strides& x_strides, T* out, const IndexMaps& maps, T fill) {
    const std::vector<int64_t>& last = maps.back();
    const int64_t n = static_cast<int64_t>(last.size()), s = x_strides[maps.size() - 1];
    for_each_row(maps, x_strides, [&](int64_t o, int64_t src) {
        if (src < 0) {
            for (int64_t j = 0; j < n; ++j) out[o + j] = fill;
            return;
        }
        for (int64_t j = 0; j < n; ++j) out[o + j] = last[j] < 0 ? fill : x[src + last[j] * s];
    });
}

template <class T>
void scatter_add_mapped(const T* g, T* dx, const Shape& x_shape, const IndexMaps& maps) {
    const Strides xs = contiguous_strides(x_shape);
    const std::vector<int64_t>& last = maps.back();
    const int64_t n = static_cast<int64_t>(last.size());
    // Serial: several outputs may read one input (reflection, replication, nearest upsampling).
    const Shape out_shape = mapped_shape(maps);
    const int64_t rows = n == 0 ? 0 : numel_of(out_shape) / n;
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t src = row_source(maps, out_shape, xs, r);
        if (src < 0) continue;
        const T* gr = g + r * n;
        for (int64_t j = 0; j < n; ++j)
            if (last[j] >= 0) dx[src + last[j]] += gr[j];
    }
}

template <class T>
void bilinear_forward(const T* x, int64_t P, int64_t plane_stride_x, int64_t row_stride_x, int64_t col_stride_x, T* out,
                      const std::vector<LinearTap>& taps_h, const std::vector<LinearTap>& taps_w) {
    const int64_t OH = static_cast<int64_t>(taps_h.size()), OW = static_cast<int64_t>(taps_w.size());
#pragma omp parallel for schedule(static) if (P * OH * OW > kParallelThreshold)
    for (int64_t p = 0; p < P; ++p) {
        const T* xp = x + p * plane_stride_x;
        T* op = out + p * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
            const LinearTap& th = taps_h[oh];
            const T* r0 = xp + th.i0 * row_stride_x;
            const T* r1 = xp + th.i1 * row_stride_x;
            for (int64_t ow = 0; ow < OW; ++ow) {
                const LinearTap& tw = taps_w[ow];
                const int64_t c0 = tw.i0 * col_stride_x, c1 = tw.i1 * col_stride_x;
                op[oh * OW + ow] = static_cast<T>(th.w0 * (tw.w0 * r0[c0] + tw.w1 * r0[c1]) + th.w1 * (tw.w0 * r1[c0] + tw.w1 * r1[c1]));
            }
        }
    }
}

template <class T>
void bilinear_backward(const T* g, int64_t P, T* dx, int64_t H, int64_t W, const std::vector<LinearTap>& taps_h,
                       const std::vector<LinearTap>& taps_w) {
    const int64_t OH = static_cast<int64_t>(taps_h.size()), OW = static_cast<int64_t>(taps_w.size());
    // Planes are independent; within a plane the scatter runs in a fixed order (deterministic).
#pragma omp parallel for schedule(static) if (P * OH * OW > kParallelThreshold)
    for (int64_t p = 0; p < P; ++p) {
        const T* gp = g + p * OH * OW;
        T* dp = dx + p * H * W;
        for (int64_t oh = 0; oh < OH; ++oh) {
            const LinearTap& th = taps_h[oh];
            for (int64_t ow = 0; ow < OW; ++ow) {
                const LinearTap& tw = taps_w[ow];
                const double v = gp[oh * OW + ow];
                dp[th.i0 * W + tw.i0] += static_cast<T>(th.w0 * tw.w0 * v);
                dp[th.i0 * W + tw.i1] += static_cast<T>(th.w0 * tw.w1 * v);
                dp[th.i1 * W + tw.i0] += static_cast<T>(th.w1 * tw.w0 * v);
                dp[th.i1 * W + tw.i1] += static_cast<T>(th.w1 * tw.w1 * v);
            }
        }
    }
}

#define TAPEGRAD_RESAMPLE_INSTANTIATE(T)                                                                                \
    template void gather_mapped<T>(const T*, const Strides&, T*, const IndexMaps&, T);                                 \
    template void scatter_add_mapped<T>(const T*, T*, const Shape&, const IndexMaps&);                                 \
    template void bilinear_forward<T>(const T*, int64_t, int64_t, int64_t, int64_t, T*, const std::vector<LinearTap>&, \
                                      const std::vector<LinearTap>&);                                                  \
    template void bilinear_backward<T>(const T*, int64_t, T*, int64_t, int64_t, const std::vector<LinearTap>&,         \
                                       const std::vector<LinearTap>&);
TAPEGRAD_RESAMPLE_INSTANTIATE(float)
TAPEGRAD_RESAMPLE_INSTANTIATE(double)
#undef TAPEGRAD_RESAMPLE_INSTANTIATE
// pad's constant mode copies integer and bool tensors too (PyTorch pads a mask with False).
template void gather_mapped<int64_t>(const int64_t*, const Strides&, int64_t*, const IndexMaps&, int64_t);
template void gather_mapped<int32_t>(const int32_t*, const Strides&, int32_t*, const IndexMaps&, int32_t);
template void gather_mapped<bool>(const bool*, const Strides&, bool*, const IndexMaps&, bool);

}  // namespace tapegrad::kernels
