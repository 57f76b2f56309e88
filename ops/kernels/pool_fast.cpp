#include "ops/kernels/pool_fast.hpp"

#include <cstring>
#include <limits>

#include "ops/kernels/elementwise.hpp"

namespace tapegrad::kernels {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool channels_last(const Tensor& t) { return t.suggest_memory_format() == MemoryFormat::ChannelsLast; }

Tensor in_format(const Tensor& t, MemoryFormat format) { return t.is_contiguous(format) ? t : t.detach().contiguous(format); }

// The outputs o in [lo, hi) whose window tap k reads inside the input: 0 <= o*stride - pad + k < in.
struct Span {
    int64_t lo, hi;
};
Span inside(int64_t k, int64_t stride, int64_t pad, int64_t in, int64_t out) {
    const int64_t lo = pad > k ? (pad - k + stride - 1) / stride : 0;
    const int64_t last = in - 1 + pad - k;  // o*stride <= last
    const int64_t hi = last < 0 ? 0 : std::min(out, last / stride + 1);
    return {lo, std::max(lo, hi)};
}

// Folds one input row into a row of running maxima: o[ow] vs row[ow*stride + offset]. The
// compile-time stride lets the compiler vectorize the strided loads (stride 2 is every CNN's pool).
template <int64_t kStride>
void max_into(const float* row, int32_t row_pos, float* o, int32_t* ix, Span span, int64_t stride, int64_t offset) {
    const int64_t s = kStride > 0 ? kStride : stride;
    for (int64_t ow = span.lo; ow < span.hi; ++ow) {
        const int64_t iw = ow * s + offset;
        const float v = row[iw];
        // Strictly greater: the first maximum in row-major window order wins. NaN propagates.
        if (v > o[ow] || v != v) {
            o[ow] = v;
            ix[ow] = row_pos + static_cast<int32_t>(iw);
        }
    }
}

// One input plane [H,W] to one output plane [OH,OW], row-major.
void max_pool_plane(const float* x, float* out, int32_t* idx, const PoolGeometry& g) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
        float* o = out + oh * g.OW;
        int32_t* ix = idx + oh * g.OW;
        const int64_t h0 = oh * g.SH - g.PH;
        // Until something beats it, a window's answer is its first element inside the input.
        for (int64_t ow = 0; ow < g.OW; ++ow) {
            o[ow] = kNegInf;
            ix[ow] = static_cast<int32_t>(std::max<int64_t>(h0, 0) * g.W + std::max<int64_t>(ow * g.SW - g.PW, 0));
        }
        for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h0 + g.KH, g.H); ++ih)
            for (int64_t kw = 0; kw < g.KW; ++kw) {
                const Span span = inside(kw, g.SW, g.PW, g.W, g.OW);
                const float* row = x + ih * g.W;
                const auto pos = static_cast<int32_t>(ih * g.W);
                if (g.SW == 1) max_into<1>(row, pos, o, ix, span, 1, kw - g.PW);
                else if (g.SW == 2) max_into<2>(row, pos, o, ix, span, 2, kw - g.PW);
                else max_into<0>(row, pos, o, ix, span, g.SW, kw - g.PW);
            }
    }
}

// Output row (n, oh) of a channels-last max-pool: every window is a max over C-vectors.
void max_pool_row_nhwc(const float* x, float* out, int32_t* idx, int64_t oh, const PoolGeometry& g) {
    const int64_t C = g.C;
    const int64_t h0 = oh * g.SH - g.PH;
    for (int64_t ow = 0; ow < g.OW; ++ow) {
        float* o = out + ow * C;
        int32_t* ix = idx + ow * C;
        const int64_t w0 = ow * g.SW - g.PW;
        const auto first = static_cast<int32_t>(std::max<int64_t>(h0, 0) * g.W + std::max<int64_t>(w0, 0));
        for (int64_t c = 0; c < C; ++c) {
            o[c] = kNegInf;
            ix[c] = first;
        }
        for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h0 + g.KH, g.H); ++ih)
            for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w0 + g.KW, g.W); ++iw) {
                const float* v = x + (ih * g.W + iw) * C;
                const auto pos = static_cast<int32_t>(ih * g.W + iw);
                for (int64_t c = 0; c < C; ++c)
                    if (v[c] > o[c] || v[c] != v[c]) {
                        o[c] = v[c];
                        ix[c] = pos;
                    }
            }
    }
}

}  // namespace

MaxPoolResult max_pool2d_forward_fast(const Tensor& x, const PoolGeometry& g) {
    const bool cl = channels_last(x);
    Tensor out = empty(g.output_shape(), cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    Argmax argmax = Argmax::allocate(out.numel(), cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    const float* xp = x.data<float>();
    float* op = out.data<float>();
    int32_t* ip = argmax.index.get();
    const bool parallel = out.numel() * g.KH * g.KW > kParallelThreshold;
    if (cl) {
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t r = 0; r < g.N * g.OH; ++r) {
            const int64_t n = r / g.OH, oh = r % g.OH;
            max_pool_row_nhwc(xp + n * g.H * g.W * g.C, op + r * g.OW * g.C, ip + r * g.OW * g.C, oh, g);
        }
    } else {
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t p = 0; p < g.N * g.C; ++p)
            max_pool_plane(xp + p * g.H * g.W, op + p * g.OH * g.OW, ip + p * g.OH * g.OW, g);
    }
    return {out, argmax};
}

Tensor max_pool2d_backward_fast(const Tensor& dout_in, const Argmax& argmax, const PoolGeometry& g) {
    const Tensor dout = in_format(dout_in, argmax.format);
    Tensor dx = empty(g.input_shape(), argmax.format);
    const float* dp = dout.data<float>();
    const int32_t* ip = argmax.index.get();
    float* xp = dx.data<float>();
    const bool parallel = dx.numel() > kParallelThreshold;
    // Each image (channels-last) or plane (row-major) is zeroed and scattered into by one thread,
    // while it is in cache; overlapping windows add up.
    if (argmax.format == MemoryFormat::ChannelsLast) {
        const int64_t C = g.C, in_image = g.H * g.W * C, out_image = g.OH * g.OW * C;
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t n = 0; n < g.N; ++n) {
            float* d = xp + n * in_image;
            std::memset(d, 0, sizeof(float) * in_image);
            for (int64_t j = n * out_image; j < (n + 1) * out_image; j += C)
                for (int64_t c = 0; c < C; ++c) d[ip[j + c] * C + c] += dp[j + c];
        }
    } else {
        const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t p = 0; p < g.N * g.C; ++p) {
            float* d = xp + p * in_plane;
            std::memset(d, 0, sizeof(float) * in_plane);
            for (int64_t j = p * out_plane; j < (p + 1) * out_plane; ++j) d[ip[j]] += dp[j];
        }
    }
    return dx;
}

Tensor avg_pool2d_forward_fast(const Tensor& x, const AvgPoolBins& b) {
    const bool cl = channels_last(x);
    Tensor out = empty(b.output_shape(), cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    const float* xp = x.data<float>();
    float* op = out.data<float>();
    const int64_t OH = b.rows.size(), OW = b.cols.size(), C = b.C;
    const bool parallel = x.numel() > kParallelThreshold;
    if (cl) {
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t r = 0; r < b.N * OH; ++r) {
            const int64_t n = r / OH, i = r % OH;
            for (int64_t j = 0; j < OW; ++j) {
                float* o = op + (r * OW + j) * C;
                for (int64_t c = 0; c < C; ++c) o[c] = 0.0f;
                for (int64_t h = b.rows.begin[i]; h < b.rows.end[i]; ++h)
                    for (int64_t w = b.cols.begin[j]; w < b.cols.end[j]; ++w) {
                        const float* v = xp + ((n * b.H + h) * b.W + w) * C;
                        for (int64_t c = 0; c < C; ++c) o[c] += v[c];
                    }
                const float scale = 1.0f / static_cast<float>(b.rows.count[i] * b.cols.count[j]);
                for (int64_t c = 0; c < C; ++c) o[c] *= scale;
            }
        }
    } else {
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t p = 0; p < b.N * C; ++p) {
            const float* plane = xp + p * b.H * b.W;
            for (int64_t i = 0; i < OH; ++i)
                for (int64_t j = 0; j < OW; ++j) {
                    float sum = 0.0f;
                    for (int64_t h = b.rows.begin[i]; h < b.rows.end[i]; ++h)
                        for (int64_t w = b.cols.begin[j]; w < b.cols.end[j]; ++w) sum += plane[h * b.W + w];
                    op[(p * OH + i) * OW + j] = sum / static_cast<float>(b.rows.count[i] * b.cols.count[j]);
                }
        }
    }
    return out;
}

Tensor avg_pool2d_backward_fast(const Tensor& dout_in, const AvgPoolBins& b) {
    const bool cl = channels_last(dout_in);
    const Tensor dout = in_format(dout_in, cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    Tensor dx = empty(b.input_shape(), cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    const float* dp = dout.data<float>();
    float* xp = dx.data<float>();
    const int64_t OH = b.rows.size(), OW = b.cols.size(), C = b.C;
    const bool parallel = dx.numel() > kParallelThreshold;
    if (cl) {
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t n = 0; n < b.N; ++n) {
            float* image = xp + n * b.H * b.W * C;
            std::memset(image, 0, sizeof(float) * b.H * b.W * C);
            for (int64_t i = 0; i < OH; ++i)
                for (int64_t j = 0; j < OW; ++j) {
                    const float* d = dp + ((n * OH + i) * OW + j) * C;
                    const float scale = 1.0f / static_cast<float>(b.rows.count[i] * b.cols.count[j]);
                    for (int64_t h = b.rows.begin[i]; h < b.rows.end[i]; ++h)
                        for (int64_t w = b.cols.begin[j]; w < b.cols.end[j]; ++w) {
                            float* v = image + (h * b.W + w) * C;
                            for (int64_t c = 0; c < C; ++c) v[c] += d[c] * scale;
                        }
                }
        }
    } else {
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t p = 0; p < b.N * C; ++p) {
            float* plane = xp + p * b.H * b.W;
            std::memset(plane, 0, sizeof(float) * b.H * b.W);
            for (int64_t i = 0; i < OH; ++i)
                for (int64_t j = 0; j < OW; ++j) {
                    const float share = dp[(p * OH + i) * OW + j] / static_cast<float>(b.rows.count[i] * b.cols.count[j]);
                    for (int64_t h = b.rows.begin[i]; h < b.rows.end[i]; ++h)
                        for (int64_t w = b.cols.begin[j]; w < b.cols.end[j]; ++w) plane[h * b.W + w] += share;
                }
        }
    }
    return dx;
}

}  // namespace tapegrad::kernels
