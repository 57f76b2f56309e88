#include "ops/kernels/conv_few_channels.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/tensor_math.hpp"
#include "engine/threads.hpp"
#include "ops/kernels/float_vectors.hpp"

namespace tapegrad::kernels {
namespace {

// The longest window sum and the widest output these loops take (see the header).
constexpr int64_t kMaxWindow = 32;
constexpr int64_t kMaxFilters = 64;
// Chunks of images for the weight gradient's partial sums: enough for any thread count here to
// share the work, few enough that adding the partials costs nothing.
constexpr int64_t kMaxChunks = 16;

// (F16{} + v would add 0.0f first: one instruction more per product, as it must turn -0 into +0.)
F16 broadcast(float v) { return F16{v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v}; }
void store_f16(float* p, F16 v) { std::memcpy(p, &v, sizeof v); }

// One image of x zero-padded to [H + 2 pad_h, W + 2 pad_w, C], and where each window tap and each
// output pixel start in it.
struct PaddedImage {
    const ConvGeometry& g;
    int64_t padded_w;
    std::vector<int64_t> taps;  // offset of tap k = (kh, kw, c) from a pixel's window origin

    explicit PaddedImage(const ConvGeometry& geometry) : g(geometry), padded_w(g.W + 2 * g.pad_w) {
        for (int64_t kh = 0; kh < g.KH; ++kh)
            for (int64_t kw = 0; kw < g.KW; ++kw)
                for (int64_t c = 0; c < g.C; ++c) taps.push_back((kh * g.dilation_h * padded_w + kw * g.dilation_w) * g.C + c);
    }
    int64_t size() const { return (g.H + 2 * g.pad_h) * padded_w * g.C; }
    int64_t pixel_origin(int64_t p) const { return ((p / g.OW) * g.stride_h * padded_w + (p % g.OW) * g.stride_w) * g.C; }
    // Copies image n of NHWC x into buf, whose border is zero already (only the interior is written).
    void fill(const float* x, int64_t n, float* buf) const {
        for (int64_t h = 0; h < g.H; ++h)
            std::memcpy(buf + ((h + g.pad_h) * padded_w + g.pad_w) * g.C, x + (n * g.H + h) * g.W * g.C,
                        sizeof(float) * g.W * g.C);
    }
};

// out[r][0, F) = bias + sum over k of x[r][k] w[k][f] for R output pixels (F = 16 V), whose windows
// start at origins[r]; the accumulators (R x V vectors) stay in registers.
template <int R, int V>
void forward_block(const float* const* origins, const int64_t* taps, int64_t K, const float* wt, int64_t F, const float* bias,
                   float* const* out) {
    F16 acc[R][V];
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = bias ? load_f16(bias + 16 * v) : F16{};
    for (int64_t k = 0; k < K; ++k) {
        F16 wv[V];
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) wv[v] = load_f16(wt + k * F + 16 * v);
        const int64_t tap = taps[k];
#pragma GCC unroll 32
        for (int r = 0; r < R; ++r) {
            const F16 xv = broadcast(origins[r][tap]);
#pragma GCC unroll 4
            for (int v = 0; v < V; ++v) acc[r][v] += xv * wv[v];
        }
    }
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) store_f16(out[r] + 16 * v, acc[r][v]);
}

// Output pixels per block for V vectors of filters: at most 24 accumulators of AVX-512's 32 vector
// registers (the rest hold the weights and the broadcast input) and 8 pixel pointers, which
// stay in general registers (12 spilled to the stack).
constexpr int kMaxBlockPixels = 8;
template <int V>
constexpr int kBlockPixels = V == 4 ? 6 : kMaxBlockPixels;

template <int V>
void forward_image(const float* img, const PaddedImage& pad, const float* wt, const float* bias, float* out, float* scratch) {
    constexpr int R = kBlockPixels<V>;
    const ConvGeometry& g = pad.g;
    const int64_t pixels = g.OH * g.OW, K = static_cast<int64_t>(pad.taps.size());
    const float* origins[R];
    float* outs[R];
    for (int64_t first = 0; first < pixels; first += R) {
        // A last, short block repeats its last pixel into the scratch rows.
        for (int r = 0; r < R; ++r) {
            const int64_t p = std::min(first + r, pixels - 1);
            origins[r] = img + pad.pixel_origin(p);
            outs[r] = first + r < pixels ? out + (first + r) * g.F : scratch + r * g.F;
        }
        forward_block<R, V>(origins, pad.taps.data(), K, wt, g.F, bias, outs);
    }
}

// acc[j][0, F) += sum over the image's pixels of x[p][taps[j]] dout[p][f] for KB taps (F = 16 V).
template <int KB, int V>
void weight_block(const float* img, const PaddedImage& pad, const int64_t* taps, const float* dout, float* acc_out) {
    const ConvGeometry& g = pad.g;
    F16 acc[KB][V];
#pragma GCC unroll 32
    for (int j = 0; j < KB; ++j)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[j][v] = load_f16(acc_out + j * g.F + 16 * v);
    int64_t tap[KB];
    for (int j = 0; j < KB; ++j) tap[j] = taps[j];
    for (int64_t oh = 0; oh < g.OH; ++oh) {
        const float* row = img + oh * g.stride_h * pad.padded_w * g.C;
        const float* d = dout + oh * g.OW * g.F;
        for (int64_t ow = 0; ow < g.OW; ++ow, d += g.F) {
            const float* origin = row + ow * g.stride_w * g.C;
            F16 dv[V];
#pragma GCC unroll 4
            for (int v = 0; v < V; ++v) dv[v] = load_f16(d + 16 * v);
#pragma GCC unroll 32
            for (int j = 0; j < KB; ++j) {
                const F16 xv = broadcast(origin[tap[j]]);
#pragma GCC unroll 4
                for (int v = 0; v < V; ++v) acc[j][v] += xv * dv[v];
            }
        }
    }
#pragma GCC unroll 32
    for (int j = 0; j < KB; ++j)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) store_f16(acc_out + j * g.F + 16 * v, acc[j][v]);
}

// Taps per block of the weight gradient for V vectors of filters: up to 24 accumulators, and for two
// vectors 9 (a 3x3 window on 3 channels in three blocks, none padded).
constexpr int weight_block_taps(int64_t V) { return V == 1 ? 16 : V == 2 ? 9 : static_cast<int>(24 / V); }

// Adds one image's products into acc [K_padded][F]: the taps in blocks of KB (the last padded with
// tap 0, whose sums land in rows past K and are dropped).
template <int V>
void weight_image(const float* img, const PaddedImage& pad, const int64_t* padded_taps, int64_t blocks, const float* dout, float* acc) {
    constexpr int KB = weight_block_taps(V);
    for (int64_t b = 0; b < blocks; ++b) weight_block<KB, V>(img, pad, padded_taps + b * KB, dout, acc + b * KB * pad.g.F);
}


void check(const char* kernel, const ConvGeometry& g, std::initializer_list<const Tensor*> activations) {
    if (!conv2d_few_channels_supported(g)) throw std::logic_error(std::string(kernel) + ": the shape is not one these loops take");
    for (const Tensor* t : activations)
        if (!t->is_contiguous(MemoryFormat::ChannelsLast))
            throw std::logic_error(std::string(kernel) + ": activations must be channels-last");
}

// Per thread: a padded image buffer, zeroed once (each image then writes only its interior).
Tensor padded_buffers(const PaddedImage& pad, int threads) { return zeros({threads, pad.size()}); }

}  // namespace

bool conv2d_few_channels_supported(const ConvGeometry& g) {
#ifdef __AVX512F__
    return g.groups == 1 && g.C * g.KH * g.KW <= kMaxWindow && g.F % 16 == 0 && g.F <= kMaxFilters;
#else
    (void)g;
    return false;
#endif
}

Tensor conv2d_forward_few_channels(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g) {
    check("conv2d_forward_few_channels", g, {&x});
    const PaddedImage pad(g);
    const int64_t K = static_cast<int64_t>(pad.taps.size());
    // The weights as [K][F], k = (kh, kw, c): one vector load per tap and filter block.
    Tensor packed = empty({K, g.F});
    auto* wt = static_cast<float*>(packed.data_ptr());
    const auto* wp = static_cast<const float*>(w.data_ptr());
    const Strides& st = w.strides();
    for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw)
            for (int64_t c = 0; c < g.C; ++c)
                for (int64_t f = 0; f < g.F; ++f)
                    wt[((kh * g.KW + kw) * g.C + c) * g.F + f] = wp[f * st[0] + c * st[1] + kh * st[2] + kw * st[3]];
    const Tensor b = bias.defined() ? as_contiguous(bias) : Tensor();
    const float* bp = b.defined() ? static_cast<const float*>(b.data_ptr()) : nullptr;
    Tensor out = empty(g.output_shape(), MemoryFormat::ChannelsLast);
    auto* op = static_cast<float*>(out.data_ptr());
    const auto* xp = static_cast<const float*>(x.data_ptr());
    const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), g.N));
    const Tensor buffers = padded_buffers(pad, threads);
    const Tensor scratch = empty({threads, kMaxBlockPixels * g.F});
    auto* buf_base = static_cast<float*>(buffers.data_ptr());
    auto* scratch_base = static_cast<float*>(scratch.data_ptr());
    const int64_t pixels = g.OH * g.OW;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t n = 0; n < g.N; ++n) {
        const int t = omp_get_thread_num();
        float* img = buf_base + t * pad.size();
        pad.fill(xp, n, img);
        float* o = op + n * pixels * g.F;
        float* s = scratch_base + t * kMaxBlockPixels * g.F;
        switch (g.F / 16) {
            case 1: forward_image<1>(img, pad, wt, bp, o, s); break;
            case 2: forward_image<2>(img, pad, wt, bp, o, s); break;
            case 3: forward_image<3>(img, pad, wt, bp, o, s); break;
            default: forward_image<4>(img, pad, wt, bp, o, s); break;
        }
    }
    return out;
}

ConvWeightGrads conv2d_backward_weights_few_channels(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias) {
    check("conv2d_backward_weights_few_channels", g, {&x, &dout});
    const PaddedImage pad(g);
    const int64_t K = static_cast<int64_t>(pad.taps.size()), KB = weight_block_taps(g.F / 16);
    const int64_t blocks = (K + KB - 1) / KB, padded_k = blocks * KB;
    std::vector<int64_t> padded_taps = pad.taps;
    padded_taps.resize(padded_k, 0);
    const int64_t chunks = std::min(kMaxChunks, g.N), pixels = g.OH * g.OW;
    const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), chunks));
    // Per chunk: dW as [padded_k][F], then db [F].
    const int64_t partial_len = (padded_k + 1) * g.F;
    Tensor partial = zeros({chunks, partial_len});
    const Tensor buffers = padded_buffers(pad, threads);
    auto* partial_base = static_cast<float*>(partial.data_ptr());
    auto* buf_base = static_cast<float*>(buffers.data_ptr());
    const auto* xp = static_cast<const float*>(x.data_ptr());
    const auto* dp = static_cast<const float*>(dout.data_ptr());
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        float* img = buf_base + omp_get_thread_num() * pad.size();
        float* acc = partial_base + chunk * partial_len;
        for (int64_t n = chunk * g.N / chunks; n < (chunk + 1) * g.N / chunks; ++n) {
            pad.fill(xp, n, img);
            const float* d = dp + n * pixels * g.F;
            switch (g.F / 16) {
                case 1: weight_image<1>(img, pad, padded_taps.data(), blocks, d, acc); break;
                case 2: weight_image<2>(img, pad, padded_taps.data(), blocks, d, acc); break;
                case 3: weight_image<3>(img, pad, padded_taps.data(), blocks, d, acc); break;
                default: weight_image<4>(img, pad, padded_taps.data(), blocks, d, acc); break;
            }
            if (with_bias) {
                float* db = acc + padded_k * g.F;
                for (int64_t p = 0; p < pixels; ++p) {
#pragma omp simd
                    for (int64_t f = 0; f < g.F; ++f) db[f] += d[p * g.F + f];
                }
            }
        }
    }
    // The chunks' sum in chunk order, permuted from [k = (kh, kw, c)][F] to OIHW.
    ConvWeightGrads grads{empty(g.weight_shape()), with_bias ? empty({g.F}) : Tensor()};
    auto* dw = static_cast<float*>(grads.weight.data_ptr());
    const int64_t taps = g.KH * g.KW;
    for (int64_t f = 0; f < g.F; ++f)
        for (int64_t k = 0; k < K; ++k) {
            float total = partial_base[k * g.F + f];
            for (int64_t chunk = 1; chunk < chunks; ++chunk) total += partial_base[chunk * partial_len + k * g.F + f];
            const int64_t c = k % g.C, tap = k / g.C;
            dw[(f * g.C + c) * taps + tap] = total;
        }
    for (int64_t f = 0; with_bias && f < g.F; ++f) {
        float total = partial_base[padded_k * g.F + f];
        for (int64_t chunk = 1; chunk < chunks; ++chunk) total += partial_base[chunk * partial_len + padded_k * g.F + f];
        static_cast<float*>(grads.bias.data_ptr())[f] = total;
    }
    return grads;
}

}  // namespace tapegrad::kernels
