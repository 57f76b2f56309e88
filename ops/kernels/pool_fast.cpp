#include "ops/kernels/pool_fast.hpp"

#include <cstring>
#include <limits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "engine/tensor_math.hpp"
#include "ops/kernels/elementwise.hpp"

namespace tapegrad::kernels {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool channels_last(const Tensor& t) { return t.suggest_memory_format() == MemoryFormat::ChannelsLast; }

// The outputs o in [lo, hi) whose window tap at offset k (the tap's index times the dilation)
// reads inside the input: 0 <= o*stride - pad + k < in.
struct Span {
    int64_t lo, hi;
};
Span inside(int64_t k, int64_t stride, int64_t pad, int64_t in, int64_t out) {
    const int64_t lo = pad > k ? (pad - k + stride - 1) / stride : 0;
    const int64_t last = in - 1 + pad - k;  // o*stride <= last
    const int64_t hi = last < 0 ? 0 : std::min(out, last / stride + 1);
    return {lo, std::max(lo, hi)};
}

// An input row split into its stride phases: phase t holds row[t], row[t + S], row[t + 2S], ...
// Tap q = kw - pad of output ow reads row[ow*S + q], which is phase (q mod S) at ow + floor(q/S):
// a unit-stride loop over ow, which the compiler vectorizes fully. (Read strided, the loads
// leave rows of 16 or fewer outputs scalar: the last strided group must be peeled.)
class RowPhases {
public:
    RowPhases(int64_t width, int64_t stride)
        : width_(width), stride_(stride), len_((width + stride - 1) / stride), buffer_(stride > 1 ? stride * len_ : 0) {}

    void load(const float* __restrict row) {
        if (stride_ == 1) {
            row_ = row;
            return;
        }
        float* __restrict b = buffer_.data();
        if (stride_ == 2) {
            for (int64_t j = 0; j < width_ / 2; ++j) {
                b[j] = row[2 * j];
                b[len_ + j] = row[2 * j + 1];
            }
            if (width_ % 2) b[width_ / 2] = row[width_ - 1];
        } else {
            for (int64_t i = 0; i < width_; ++i) b[(i % stride_) * len_ + i / stride_] = row[i];
        }
    }
    const float* phase(int64_t t) const { return stride_ == 1 ? row_ : buffer_.data() + t * len_; }

private:
    int64_t width_, stride_, len_;
    std::vector<float> buffer_;
    const float* row_ = nullptr;
};

// Folds one tap of one input row into the running maxima of an output row: o[ow] vs
// src[ow + shift], which sits at position first + ow*step of the input plane.
void max_into(const float* __restrict src, int64_t shift, int64_t first, int64_t step, float* __restrict o, int32_t* __restrict ix,
              Span span) {
#pragma omp simd
    for (int64_t ow = span.lo; ow < span.hi; ++ow) {
        const float v = src[ow + shift];
        // Strictly greater: the first maximum in row-major window order wins. NaN propagates.
        // Selects, not branches: on real data a branch would mispredict often.
        const bool take = v > o[ow] || v != v;
        o[ow] = take ? v : o[ow];
        ix[ow] = take ? static_cast<int32_t>(first + ow * step) : ix[ow];
    }
}

// The taps [lo, hi) of a window of `kernel` taps along an axis that some output's window reads
// inside the input: the others only ever read padding, and a kernel may have 2^30 of them.
Span taps_inside(int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, int64_t in, int64_t out) {
    const int64_t before_last = pad - (out - 1) * stride;  // the last window's tap k reads k*dilation - before_last
    const int64_t lo = before_last > 0 ? ceil_div(before_last, dilation) : 0;
    return {lo, std::max(lo, std::min(kernel, (pad + in - 1) / dilation + 1))};
}

// One input plane [H,W] to one output plane [OH,OW], row-major.
void max_pool_plane(const float* x, float* out, int32_t* idx, const PoolGeometry& g, RowPhases& phases) {
    const Span taps = taps_inside(g.KW, g.SW, g.PW, g.DW, g.W, g.OW);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
        float* o = out + oh * g.OW;
        int32_t* ix = idx + oh * g.OW;
        const int64_t h0 = oh * g.SH - g.PH;
        const int64_t ih_first = first_tap_inside(h0, g.DH);
        // Until something beats it, a window's answer is its first element inside the input: its
        // first tap, except in the windows that start in the left padding (fixed after this
        // loop, which stays a plain vectorizable one).
        for (int64_t ow = 0; ow < g.OW; ++ow) {
            o[ow] = kNegInf;
            ix[ow] = static_cast<int32_t>(ih_first * g.W + ow * g.SW - g.PW);
        }
        for (int64_t ow = 0; ow < g.OW && ow * g.SW < g.PW; ++ow)
            ix[ow] = static_cast<int32_t>(ih_first * g.W + first_tap_inside(ow * g.SW - g.PW, g.DW));
        for (int64_t ih = ih_first; ih < window_end(h0, g.KH, g.DH, g.H); ih += g.DH) {
            phases.load(x + ih * g.W);
            for (int64_t kw = taps.lo; kw < taps.hi; ++kw) {
                const int64_t q = kw * g.DW - g.PW;
                const int64_t t = ((q % g.SW) + g.SW) % g.SW;
                max_into(phases.phase(t), (q - t) / g.SW, ih * g.W + q, g.SW, o, ix, inside(kw * g.DW, g.SW, g.PW, g.W, g.OW));
            }
        }
    }
}

// The taps of one output position inside the input: rows ih_lo, ih_lo + dh, ... below ih_hi,
// likewise columns.
struct Window {
    int64_t ih_lo, ih_hi, iw_lo, iw_hi;
    int64_t dh = 1, dw = 1;
};

// Max and argmax over the window of channels [c, c + Batch::size) of a channels-last image. The
// running maximum and its index stay in registers; the index rides in a float register as its bit
// pattern (a select moves bits unchanged). Selects, not branches: the compiler's if-converted
// version needs masked stores, which are slow on AVX2 processors.
template <class Batch>
void window_max(const float* x, int64_t W, int64_t C, int64_t c, const Window& w, float* o, int32_t* ix) {
    using Index = xsimd::batch<int32_t, typename Batch::arch_type>;
    Batch best(kNegInf);
    Batch at = xsimd::bitwise_cast<Batch>(Index(static_cast<int32_t>(w.ih_lo * W + w.iw_lo)));
    for (int64_t ih = w.ih_lo; ih < w.ih_hi; ih += w.dh)
        for (int64_t iw = w.iw_lo; iw < w.iw_hi; iw += w.dw) {
            const Batch v = Batch::load_unaligned(x + (ih * W + iw) * C + c);
            // Strictly greater: the first maximum in row-major window order wins. NaN propagates
            // (xsimd's != is the ordered compare, false for NaN: isnan is the unordered one).
            const auto take = (v > best) | xsimd::isnan(v);
            best = xsimd::select(take, v, best);
            at = xsimd::select(take, xsimd::bitwise_cast<Batch>(Index(static_cast<int32_t>(ih * W + iw))), at);
        }
    best.store_unaligned(o + c);
    xsimd::bitwise_cast<Index>(at).store_unaligned(ix + c);
}

// Output row (n, oh) of a channels-last max-pool: every window is a max over C-vectors.
void max_pool_row_nhwc(const float* x, float* out, int32_t* idx, int64_t oh, const PoolGeometry& g) {
    using Batch = xsimd::batch<float>;
    const int64_t C = g.C, h0 = oh * g.SH - g.PH;
    const int64_t vector_end = C - C % static_cast<int64_t>(Batch::size);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t w0 = ow * g.SW - g.PW;
        const Window w{first_tap_inside(h0, g.DH), window_end(h0, g.KH, g.DH, g.H), first_tap_inside(w0, g.DW),
                       window_end(w0, g.KW, g.DW, g.W), g.DH, g.DW};
        float* o = out + ow * C;
        int32_t* ix = idx + ow * C;
        for (int64_t c = 0; c < vector_end; c += Batch::size) window_max<Batch>(x, g.W, C, c, w, o, ix);
        for (int64_t c = vector_end; c < C; ++c) {
            float best = kNegInf;
            auto at = static_cast<int32_t>(w.ih_lo * g.W + w.iw_lo);
            for (int64_t ih = w.ih_lo; ih < w.ih_hi; ih += w.dh)
                for (int64_t iw = w.iw_lo; iw < w.iw_hi; iw += w.dw) {
                    const float v = x[(ih * g.W + iw) * C + c];
                    if (v > best || v != v) {
                        best = v;
                        at = static_cast<int32_t>(ih * g.W + iw);
                    }
                }
            o[c] = best;
            ix[c] = at;
        }
    }
}

}  // namespace

MaxPoolResult max_pool2d_forward_fast(const Tensor& x, const PoolGeometry& g) {
    const bool cl = channels_last(x);
    Tensor out = empty(g.output_shape(), cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    Argmax argmax = Argmax::allocate(out.numel(), cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    // An empty batch: nothing to do, and its rows may be 2^40 long (so is a row buffer).
    if (out.numel() == 0) return {out, argmax};
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
#pragma omp parallel if (parallel)
        {
            RowPhases phases(g.W, g.SW);
#pragma omp for schedule(static)
            for (int64_t p = 0; p < g.N * g.C; ++p)
                max_pool_plane(xp + p * g.H * g.W, op + p * g.OH * g.OW, ip + p * g.OH * g.OW, g, phases);
        }
    }
    return {out, argmax};
}

Tensor max_pool2d_backward_fast(const Tensor& dout_in, const Argmax& argmax, const PoolGeometry& g) {
    const Tensor dout = as_contiguous(dout_in, argmax.format);
    Tensor dx = empty(g.input_shape(), argmax.format);
    if (dx.numel() == 0) return dx;
    const float* dp = dout.data<float>();
    const int32_t* ip = argmax.index.get();
    float* xp = dx.data<float>();
    const bool parallel = dx.numel() > kParallelThreshold;
    // Each image (channels-last) or plane (row-major) is zeroed and added into by one thread,
    // while it is in cache; overlapping windows add up.
    if (argmax.format == MemoryFormat::ChannelsLast) {
        // Rather than scatter channel by channel, every window position takes the C-vector of
        // gradients whose argmax it is: KH*KW masked vector adds instead of C scalar ones.
        const int64_t C = g.C, in_image = g.H * g.W * C;
        // When the windows tile the input exactly (the usual k2 s2 on even sizes), each input
        // position belongs to one window: it is written once, with no zeroing pass before.
        const bool tiles = g.SH == g.KH && g.SW == g.KW && g.PH == 0 && g.PW == 0 && g.DH == 1 && g.DW == 1 && g.OH * g.SH == g.H &&
                           g.OW * g.SW == g.W;
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t n = 0; n < g.N; ++n) {
            float* image = xp + n * in_image;
            if (!tiles) std::memset(image, 0, sizeof(float) * in_image);
            for (int64_t oh = 0; oh < g.OH; ++oh)
                for (int64_t ow = 0; ow < g.OW; ++ow) {
                    const int64_t j = ((n * g.OH + oh) * g.OW + ow) * C;
                    const float* __restrict d = dp + j;
                    const int32_t* __restrict ix = ip + j;
                    const int64_t h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
                    for (int64_t ih = first_tap_inside(h0, g.DH); ih < window_end(h0, g.KH, g.DH, g.H); ih += g.DH)
                        for (int64_t iw = first_tap_inside(w0, g.DW); iw < window_end(w0, g.KW, g.DW, g.W); iw += g.DW) {
                            const auto pos = static_cast<int32_t>(ih * g.W + iw);
                            float* __restrict v = image + pos * C;
                            if (tiles) {
#pragma omp simd
                                for (int64_t c = 0; c < C; ++c) v[c] = ix[c] == pos ? d[c] : 0.0f;
                            } else {
#pragma omp simd
                                for (int64_t c = 0; c < C; ++c) v[c] += ix[c] == pos ? d[c] : 0.0f;
                            }
                        }
                }
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
    if (out.numel() == 0) return out;  // an empty batch, whose rows may be 2^40 long
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
                for (int64_t h = b.rows.begin(i), h_end = b.rows.end(i); h < h_end; ++h)
                    for (int64_t w = b.cols.begin(j), w_end = b.cols.end(j); w < w_end; ++w) {
                        const float* v = xp + ((n * b.H + h) * b.W + w) * C;
                        for (int64_t c = 0; c < C; ++c) o[c] += v[c];
                    }
                const float scale = 1.0f / static_cast<float>(b.divisor(i, j));
                for (int64_t c = 0; c < C; ++c) o[c] *= scale;
            }
        }
    } else {
        // Separably: first sum the rows of bin i into one row (a unit-stride, vectorized loop),
        // then each output sums its columns of that row.
#pragma omp parallel if (parallel)
        {
            std::vector<float> row_sum(static_cast<std::size_t>(b.W));
            float* __restrict rs = row_sum.data();
#pragma omp for schedule(static)
            for (int64_t p = 0; p < b.N * C; ++p) {
                const float* plane = xp + p * b.H * b.W;
                for (int64_t i = 0; i < OH; ++i) {
                    std::fill(row_sum.begin(), row_sum.end(), 0.0f);
                    for (int64_t h = b.rows.begin(i), h_end = b.rows.end(i); h < h_end; ++h) {
                        const float* __restrict row = plane + h * b.W;
                        for (int64_t w = 0; w < b.W; ++w) rs[w] += row[w];
                    }
                    for (int64_t j = 0; j < OW; ++j) {
                        float sum = 0.0f;
                        for (int64_t w = b.cols.begin(j), w_end = b.cols.end(j); w < w_end; ++w) sum += rs[w];
                        op[(p * OH + i) * OW + j] = sum / static_cast<float>(b.divisor(i, j));
                    }
                }
            }
        }
    }
    return out;
}

Tensor avg_pool2d_backward_fast(const Tensor& dout_in, const AvgPoolBins& b) {
    const bool cl = channels_last(dout_in);
    const Tensor dout = as_contiguous(dout_in, cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    Tensor dx = empty(b.input_shape(), cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    if (dx.numel() == 0) return dx;
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
                    const float scale = 1.0f / static_cast<float>(b.divisor(i, j));
                    for (int64_t h = b.rows.begin(i), h_end = b.rows.end(i); h < h_end; ++h)
                        for (int64_t w = b.cols.begin(j), w_end = b.cols.end(j); w < w_end; ++w) {
                            float* v = image + (h * b.W + w) * C;
                            for (int64_t c = 0; c < C; ++c) v[c] += d[c] * scale;
                        }
                }
        }
    } else {
        // The forward's separable order reversed: spread bin row i's gradients along one row,
        // then add that row to every input row of the bin (unit-stride, vectorized).
#pragma omp parallel if (parallel)
        {
            std::vector<float> row_share(static_cast<std::size_t>(b.W));
            float* __restrict rs = row_share.data();
#pragma omp for schedule(static)
            for (int64_t p = 0; p < b.N * C; ++p) {
                float* plane = xp + p * b.H * b.W;
                std::memset(plane, 0, sizeof(float) * b.H * b.W);
                for (int64_t i = 0; i < OH; ++i) {
                    std::fill(row_share.begin(), row_share.end(), 0.0f);
                    for (int64_t j = 0; j < OW; ++j) {
                        const float share = dp[(p * OH + i) * OW + j] / static_cast<float>(b.divisor(i, j));
                        for (int64_t w = b.cols.begin(j), w_end = b.cols.end(j); w < w_end; ++w) rs[w] += share;
                    }
                    for (int64_t h = b.rows.begin(i), h_end = b.rows.end(i); h < h_end; ++h) {
                        float* __restrict row = plane + h * b.W;
                        for (int64_t w = 0; w < b.W; ++w) row[w] += rs[w];
                    }
                }
            }
        }
    }
    return dx;
}

}  // namespace tapegrad::kernels
