#include "ops/kernels/pool_reference.hpp"

#include <limits>

#include "engine/tensor_math.hpp"

namespace tapegrad::kernels {
namespace {

// Offset of output element (n,c,oh,ow) in an argmax stored in `format`.
int64_t argmax_offset(const Argmax& a, const PoolGeometry& g, int64_t n, int64_t c, int64_t oh, int64_t ow) {
    if (a.format == MemoryFormat::ChannelsLast) return ((n * g.OH + oh) * g.OW + ow) * g.C + c;
    return ((n * g.C + c) * g.OH + oh) * g.OW + ow;
}

}  // namespace

template <class T>
MaxPoolResult max_pool2d_forward_reference(const Tensor& x_in, const PoolGeometry& g) {
    const Tensor x = as_contiguous(x_in);
    Tensor out = empty(g.output_shape(), {.dtype = x.dtype()});
    Argmax argmax = Argmax::allocate(out.numel(), MemoryFormat::Contiguous);
    if (out.numel() == 0) return {out, argmax};  // an empty batch may still have 2^31 images of 0 channels
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for (int64_t n = 0; n < g.N; ++n)
        for (int64_t c = 0; c < g.C; ++c) {
            const T* plane = xp + (n * g.C + c) * g.H * g.W;
            for (int64_t oh = 0; oh < g.OH; ++oh)
                for (int64_t ow = 0; ow < g.OW; ++ow) {
                    T best = -std::numeric_limits<T>::infinity();
                    int64_t best_pos = -1;
                    // Only the taps inside the input (padding is -inf): a kernel may have 2^30 taps.
                    const int64_t h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
                    for (int64_t ih = first_tap_inside(h0, g.DH); ih < window_end(h0, g.KH, g.DH, g.H); ih += g.DH)
                        for (int64_t iw = first_tap_inside(w0, g.DW); iw < window_end(w0, g.KW, g.DW, g.W); iw += g.DW) {
                            const T v = plane[ih * g.W + iw];
                            // Strictly greater keeps the first maximum; the first element in the
                            // window is taken even if it is -inf.
                            if (best_pos < 0 || v > best || v != v) {
                                best = v;
                                best_pos = ih * g.W + iw;
                            }
                        }
                    const int64_t j = argmax_offset(argmax, g, n, c, oh, ow);  // row-major, like out
                    op[j] = best;
                    argmax.index[j] = static_cast<int32_t>(best_pos);
                }
        }
    return {out, argmax};
}

template <class T>
Tensor max_pool2d_backward_reference(const Tensor& dout_in, const Argmax& argmax, const PoolGeometry& g) {
    const Tensor dout = as_contiguous(dout_in);
    Tensor dx = zeros(g.input_shape(), {.dtype = dout.dtype()});
    if (dx.numel() == 0) return dx;
    const T* dp = dout.data<T>();
    T* xp = dx.data<T>();
    for (int64_t n = 0; n < g.N; ++n)
        for (int64_t c = 0; c < g.C; ++c)
            for (int64_t oh = 0; oh < g.OH; ++oh)
                for (int64_t ow = 0; ow < g.OW; ++ow)
                    xp[(n * g.C + c) * g.H * g.W + argmax.index[argmax_offset(argmax, g, n, c, oh, ow)]] +=
                        dp[((n * g.C + c) * g.OH + oh) * g.OW + ow];
    return dx;
}

template <class T>
Tensor avg_pool2d_forward_reference(const Tensor& x_in, const AvgPoolBins& b) {
    const Tensor x = as_contiguous(x_in);
    Tensor out = empty(b.output_shape(), {.dtype = x.dtype()});
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    const int64_t OH = b.rows.size(), OW = b.cols.size();
    for (int64_t p = 0; p < b.N * b.C; ++p)
        for (int64_t i = 0; i < OH; ++i)
            for (int64_t j = 0; j < OW; ++j) {
                double sum = 0.0;
                for (int64_t h = b.rows.begin(i), h_end = b.rows.end(i); h < h_end; ++h)
                    for (int64_t w = b.cols.begin(j), w_end = b.cols.end(j); w < w_end; ++w) sum += xp[(p * b.H + h) * b.W + w];
                op[(p * OH + i) * OW + j] = static_cast<T>(sum / b.divisor(i, j));
            }
    return out;
}

template <class T>
Tensor avg_pool2d_backward_reference(const Tensor& dout_in, const AvgPoolBins& b) {
    const Tensor dout = as_contiguous(dout_in);
    Tensor dx = zeros(b.input_shape(), {.dtype = dout.dtype()});
    const T* dp = dout.data<T>();
    T* xp = dx.data<T>();
    const int64_t OH = b.rows.size(), OW = b.cols.size();
    for (int64_t p = 0; p < b.N * b.C; ++p)
        for (int64_t i = 0; i < OH; ++i)
            for (int64_t j = 0; j < OW; ++j) {
                const T share = static_cast<T>(dp[(p * OH + i) * OW + j] / b.divisor(i, j));
                for (int64_t h = b.rows.begin(i), h_end = b.rows.end(i); h < h_end; ++h)
                    for (int64_t w = b.cols.begin(j), w_end = b.cols.end(j); w < w_end; ++w) xp[(p * b.H + h) * b.W + w] += share;
            }
    return dx;
}

template MaxPoolResult max_pool2d_forward_reference<float>(const Tensor&, const PoolGeometry&);
template MaxPoolResult max_pool2d_forward_reference<double>(const Tensor&, const PoolGeometry&);
template Tensor max_pool2d_backward_reference<float>(const Tensor&, const Argmax&, const PoolGeometry&);
template Tensor max_pool2d_backward_reference<double>(const Tensor&, const Argmax&, const PoolGeometry&);
template Tensor avg_pool2d_forward_reference<float>(const Tensor&, const AvgPoolBins&);
template Tensor avg_pool2d_forward_reference<double>(const Tensor&, const AvgPoolBins&);
template Tensor avg_pool2d_backward_reference<float>(const Tensor&, const AvgPoolBins&);
template Tensor avg_pool2d_backward_reference<double>(const Tensor&, const AvgPoolBins&);

}  // namespace tapegrad::kernels
