#include "ops/kernels/conv_gemm.hpp"

#include <omp.h>

#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "engine/tensor_math.hpp"
#include "engine/threads.hpp"
#include "ops/kernels/bfloat16.hpp"
#include "ops/kernels/conv_depthwise.hpp"
#include "ops/kernels/conv_few_channels.hpp"
#include "ops/kernels/conv_onednn.hpp"
#include "ops/kernels/cpu_isa.hpp"
#include "ops/kernels/gemm.hpp"

namespace tapegrad::kernels {
namespace {

// Pixels per slab of cols: 512 rows of a 3x3x64 window are 1.2 MB, which measured as fast as any
// slab from 128 to 2048 rows on the shapes in conv_gemm.hpp and keeps the buffer small. Wider
// windows get fewer rows, so that a thread's cols stays within 4 MiB.
constexpr int64_t kSlabRows = 512;
constexpr int64_t kSlabBytes = int64_t{4} << 20;
// The most the weight gradient's per-chunk partial sums take together.
constexpr int64_t kPartialBytes = int64_t{16} << 20;

// The most pixels a slab may have for rows of row_len floats.
int64_t slab_rows_limit(int64_t row_len) {
    return std::min(kSlabRows, std::max<int64_t>(16, kSlabBytes / (row_len * int64_t{sizeof(float)})));
}

// Row p of cols (see conv_gemm.hpp) for NHWC x. Where a window row lies inside the image and the
// dilation is 1, its KW pixels are one run of KW x C floats in both x and cols: one copy, not KW
// (few channels would otherwise make this a loop of tiny copies).
void im2col_row(const float* x, const ConvGeometry& g, int64_t p, float* dst) {
    const int64_t n = p / (g.OH * g.OW), oh = p / g.OW % g.OH, ow = p % g.OW;
    const int64_t iw0 = ow * g.stride_w - g.pad_w, run = g.KW * g.C;
    const bool row_inside = g.dilation_w == 1 && iw0 >= 0 && iw0 + g.KW <= g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t ih = oh * g.stride_h - g.pad_h + kh * g.dilation_h;
        if (ih < 0 || ih >= g.H) {
            std::fill(dst, dst + run, 0.0f);
            dst += run;
            continue;
        }
        const float* image_row = x + (n * g.H + ih) * g.W * g.C;
        if (row_inside) {
            std::copy_n(image_row + iw0 * g.C, run, dst);
            dst += run;
            continue;
        }
        for (int64_t kw = 0; kw < g.KW; ++kw, dst += g.C) {
            const int64_t iw = iw0 + kw * g.dilation_w;
            if (iw < 0 || iw >= g.W)
                std::fill(dst, dst + g.C, 0.0f);
            else
                std::copy_n(image_row + iw * g.C, g.C, dst);
        }
    }
}

void check_one_group_channels_last(const char* kernel, const ConvGeometry& g, std::initializer_list<const Tensor*> inputs) {
    if (g.groups != 1) throw std::logic_error(std::string(kernel) + ": grouped convolutions take the oneDNN kernel");
    for (const Tensor* t : inputs)
        if (!t->is_contiguous(MemoryFormat::ChannelsLast))
            throw std::logic_error(std::string(kernel) + ": activations must be channels-last");
}

// out[P, F] (NHWC memory) = cols[P, KH*KW*C] x w_rows^T, w_rows [F, KH*KW*C] row-major, plus bias.
// The slabs are split between threads, each building its own cols and calling one GEMM on one
// thread (kernels::gemm keeps to one thread inside a parallel region). The slab size depends on the
// shape alone: at least 16 slabs where there are pixels enough, so that any thread count shares
// the work evenly, and the same bits whatever that count is.
void im2col_gemm_forward(const float* x, const ConvGeometry& g, const float* w_rows, const float* bias, float* out) {
    const int64_t row_len = g.KH * g.KW * g.C, pixels = g.N * g.OH * g.OW;
    const int64_t slab = std::min({slab_rows_limit(row_len), std::max<int64_t>(64, (pixels + 15) / 16), pixels});
    const int64_t slabs = (pixels + slab - 1) / slab;
    const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), slabs));
    const Tensor cols = empty({threads, slab, row_len});  // from the caching allocator: no fresh pages per call
    auto* cols_base = static_cast<float*>(cols.data_ptr());
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t s = 0; s < slabs; ++s) {
        float* cp = cols_base + omp_get_thread_num() * slab * row_len;
        const int64_t first = s * slab, rows = std::min(slab, pixels - first);
        for (int64_t r = 0; r < rows; ++r) im2col_row(x, g, first + r, cp + r * row_len);
        float* dst = out + first * g.F;
        gemm(Kernels::Fast, false, true, rows, g.F, row_len, 1.0f, cp, row_len, w_rows, row_len, 0.0f, dst, g.F);
        if (bias)
            for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
                for (int64_t f = 0; f < g.F; ++f) dst[r * g.F + f] += bias[f];
            }
    }
}

// On AVX-512 oneDNN's brgconv kernels ran at 70-100% of one core's FMA loop on outputs of 4x4
// pixels an image and more, and keep those passes; on outputs of 2x2 and 1x1 pixels (ResNet's last
// two stages on 32x32 images) they fell to 20-50%, and one GEMM over every image's pixels does
// better. Numbers in conv_gemm.hpp.
bool small_output(const ConvGeometry& g) { return g.OH * g.OW <= 4; }

// Where the few-channel kernels' rules were measured: stride 1, dilation 1 and batches of 32 and
// 64. The forward splits its work by image, so a batch under 8 would leave threads idle.
bool few_channels_measured(const ConvGeometry& g) {
    return onednn_has_avx512() && conv2d_few_channels_supported(g) && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 &&
           g.dilation_w == 1 && g.N >= 8;
}

// Autocast's backward passes on AVX-512 where oneDNN 2.6's bf16 primitive ran slower than the
// float32 pass this file picks (ResNet-18's last two stages on 32x32 images, batch 32,
// tapegrad_conv_kernels --bf16 1, CPU time at 1 / 2 threads): every weight gradient of outputs of
// at most 4 pixels an image (1.0-2.1x / 1.23-2.27x the float32 pick's time), and the input
// gradient of a 3x3 window at stride 1 on 1-pixel outputs (3.2x / 2.5x). The other input
// gradients stay on oneDNN's bf16: 0.49-0.90x on 2x2-pixel outputs and 1x1 windows, and at
// stride 2 on 1-pixel outputs 1.24x at one thread but 0.88x at two. There the float32 pick runs
// on operands rounded to bfloat16, as autocast's reference path computes: products of bfloat16
// values are exact in float32, and the sums are float32's either way. Not the few-channel weight
// gradient: alone, oneDNN's bf16 pass for the SmallCNN's conv1 took 1.45x / 3.3x the few-channel
// loop's time, but in the bf16 step (profiled, 4 alternated runs) rounding its 8 MB output
// gradient first made the step's conv backward no faster at two threads and 0.5 ms slower at one.
bool bf16_weight_grad_emulated(const ConvGeometry& g) { return onednn_has_avx512() && g.groups == 1 && small_output(g); }
bool bf16_input_grad_emulated(const ConvGeometry& g) {
    return onednn_has_avx512() && g.groups == 1 && g.OH * g.OW == 1 && g.KH * g.KW > 1 && g.stride_h == 1 && g.stride_w == 1;
}

}  // namespace

bool conv2d_forward_uses_gemm(const ConvGeometry& g) {
    if (g.groups != 1) return false;
    // At least two slabs of 64 pixels, so that two threads share the work.
    if (onednn_has_avx512()) return small_output(g) && g.C * g.KH * g.KW >= 128 && g.N * g.OH * g.OW >= 128;
    return g.KH * g.KW > 1 && g.C * g.KH * g.KW >= 256;
}

bool conv2d_backward_data_uses_gemm(const ConvGeometry& g) {
    return !onednn_has_avx512() && g.groups == 1 && g.KH * g.KW > 1 && g.F * g.KH * g.KW >= 512 && g.C >= 16 &&
           g.N * g.H * g.W >= 1024 && g.stride_h == 1 &&
           g.stride_w == 1 && g.pad_h <= g.dilation_h * (g.KH - 1) && g.pad_w <= g.dilation_w * (g.KW - 1);
}

bool conv2d_forward_uses_few_channels(const ConvGeometry& g) {
    return few_channels_measured(g) && g.F != 48;
}

bool conv2d_weight_grad_uses_few_channels(const ConvGeometry& g) {
    return few_channels_measured(g) && g.F == 32;
}

bool conv2d_weight_grad_uses_gemm(const ConvGeometry& g) {
    if (g.groups != 1) return false;
    if (onednn_has_avx512()) return small_output(g) && g.KH * g.KW > 1 && g.C * g.KH * g.KW >= 1152;
    return g.C * g.KH * g.KW >= 64;
}

Tensor conv2d_forward_fast(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g, Precision precision) {
    if (precision == Precision::BFloat16) return conv2d_forward_onednn(x, w, bias, g, precision);
    if (conv2d_forward_uses_few_channels(g)) return conv2d_forward_few_channels(x, w, bias, g);
    return conv2d_forward_uses_gemm(g) ? conv2d_forward_im2col(x, w, bias, g) : conv2d_forward_onednn(x, w, bias, g);
}

Tensor conv2d_backward_data_fast(const Tensor& dout, const Tensor& w, const ConvGeometry& g, Precision precision) {
    if (precision == Precision::BFloat16) {
        if (!bf16_input_grad_emulated(g)) return conv2d_backward_data_onednn(dout, w, g, precision);
        return conv2d_backward_data_fast(rounded_to_bfloat16(dout), rounded_to_bfloat16(w), g, Precision::Float32);
    }
    return conv2d_backward_data_uses_gemm(g) ? conv2d_backward_data_im2col(dout, w, g)
                                             : conv2d_backward_data_onednn(dout, w, g);
}

ConvWeightGrads conv2d_backward_weights_fast(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias,
                                             Precision precision) {
    if (precision == Precision::BFloat16) {
        if (!bf16_weight_grad_emulated(g)) return conv2d_backward_weights_onednn(x, dout, g, with_bias, precision);
        return conv2d_backward_weights_fast(rounded_to_bfloat16(x), rounded_to_bfloat16(dout), g, with_bias, Precision::Float32);
    }
    if (conv2d_weight_grad_uses_few_channels(g)) return conv2d_backward_weights_few_channels(x, dout, g, with_bias);
    if (conv2d_weight_grad_uses_depthwise(g)) return conv2d_backward_weights_depthwise(x, dout, g, with_bias);
    return conv2d_weight_grad_uses_gemm(g) ? conv2d_backward_weights_im2col(x, dout, g, with_bias)
                                           : conv2d_backward_weights_onednn(x, dout, g, with_bias);
}

Tensor conv2d_forward_im2col(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g) {
    check_one_group_channels_last("conv2d_forward_im2col", g, {&x});
    Tensor out = empty(g.output_shape(), MemoryFormat::ChannelsLast);
    // The weights as [F, KH, KW, C] rows: channels-last weights (a model moved to channels-last)
    // are that memory already; any other layout is gathered through its strides, one filter's
    // taps x C block at a time so that the writes stay in cache. A convolution with few pixels and
    // many weights (ResNet's last stage on small images) spent as long in a copy here as in its GEMM.
    Tensor gathered;
    const float* w_rows = static_cast<const float*>(w.data_ptr());
    if (!w.is_contiguous(MemoryFormat::ChannelsLast)) {
        gathered = empty({g.F, g.KH, g.KW, g.C});
        auto* rows = static_cast<float*>(gathered.data_ptr());
        const Strides& st = w.strides();
#pragma omp parallel for schedule(static) if (g.F * g.C * g.KH * g.KW > (int64_t{1} << 16))
        for (int64_t f = 0; f < g.F; ++f)
            for (int64_t c = 0; c < g.C; ++c)
                for (int64_t kh = 0; kh < g.KH; ++kh)
                    for (int64_t kw = 0; kw < g.KW; ++kw)
                        rows[((f * g.KH + kh) * g.KW + kw) * g.C + c] = w_rows[f * st[0] + c * st[1] + kh * st[2] + kw * st[3]];
        w_rows = rows;
    }
    const Tensor b = bias.defined() ? as_contiguous(bias) : Tensor();
    im2col_gemm_forward(static_cast<const float*>(x.data_ptr()), g, w_rows,
                        b.defined() ? static_cast<const float*>(b.data_ptr()) : nullptr, static_cast<float*>(out.data_ptr()));
    return out;
}

Tensor conv2d_backward_data_im2col(const Tensor& dout, const Tensor& w, const ConvGeometry& g) {
    check_one_group_channels_last("conv2d_backward_data_im2col", g, {&dout});
    if (g.stride_h != 1 || g.stride_w != 1 || g.pad_h > g.dilation_h * (g.KH - 1) || g.pad_w > g.dilation_w * (g.KW - 1))
        throw std::logic_error("conv2d_backward_data_im2col: needs stride 1 and padding at most dilation x (kernel - 1)");
    Tensor dx = empty(g.input_shape(), MemoryFormat::ChannelsLast);
    // The convolution that maps dout [N,F,OH,OW] to dx [N,C,H,W].
    ConvGeometry t = g;
    t.C = g.F, t.H = g.OH, t.W = g.OW, t.F = g.C, t.OH = g.H, t.OW = g.W;
    t.pad_h = g.dilation_h * (g.KH - 1) - g.pad_h, t.pad_w = g.dilation_w * (g.KW - 1) - g.pad_w;
    Tensor flipped = empty({g.C, g.KH, g.KW, g.F});
    const auto* src = static_cast<const float*>(w.data_ptr());
    const Strides& st = w.strides();  // any layout, read in place
    auto* dst = static_cast<float*>(flipped.data_ptr());
    // One input channel's taps x F block at a time, so that the writes stay in cache.
#pragma omp parallel for schedule(static) if (g.F * g.C * g.KH * g.KW > (int64_t{1} << 16))
    for (int64_t c = 0; c < g.C; ++c)
        for (int64_t f = 0; f < g.F; ++f)
            for (int64_t kh = 0; kh < g.KH; ++kh)
                for (int64_t kw = 0; kw < g.KW; ++kw)
                    dst[((c * g.KH + (g.KH - 1 - kh)) * g.KW + (g.KW - 1 - kw)) * g.F + f] =
                        src[f * st[0] + c * st[1] + kh * st[2] + kw * st[3]];
    im2col_gemm_forward(static_cast<const float*>(dout.data_ptr()), t, dst, nullptr, static_cast<float*>(dx.data_ptr()));
    return dx;
}

ConvWeightGrads conv2d_backward_weights_im2col(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias) {
    check_one_group_channels_last("conv2d_backward_weights_im2col", g, {&x, &dout});
    const int64_t row_len = g.KH * g.KW * g.C, pixels = g.N * g.OH * g.OW, weights = g.F * row_len;
    const auto* xp = static_cast<const float*>(x.data_ptr());
    const auto* dp = static_cast<const float*>(dout.data_ptr());
    const int64_t slab = std::min(slab_rows_limit(row_len), pixels);
    const int64_t slabs = (pixels + slab - 1) / slab;
    // The slabs are cut into up to 16 chunks, fixed by the shape; each chunk's partial dW (and db)
    // comes from one thread, one single-threaded GEMM per slab, and the partials are added in chunk
    // order: the same bits at any thread count, and no thread waits on another until the sum.
    // Partials take at most 16 MiB; a shape with fewer than two chunks runs its slabs in turn, each
    // GEMM on every thread (a library may then split its K, so deterministic mode gives it one).
    const int64_t chunks = std::min({int64_t{16}, slabs, std::max<int64_t>(1, kPartialBytes / (weights * int64_t{sizeof(float)}))});
    const int threads = static_cast<int>(std::min<int64_t>(chunks, get_num_threads()));
    // Each partial is dW [F, KH*KW*C], then db [F].
    const int64_t partial_len = weights + (with_bias ? g.F : 0);
    Tensor partial = empty({chunks, partial_len});
    const Tensor cols = empty({threads, slab, row_len});
    auto* cols_base = static_cast<float*>(cols.data_ptr());
    auto* partial_base = static_cast<float*>(partial.data_ptr());
    auto run_chunk = [&](int64_t chunk, float* cp) {
        float* acc = partial_base + chunk * partial_len;
        float* bias_acc = acc + weights;
        if (with_bias) std::fill(bias_acc, bias_acc + g.F, 0.0f);
        const int64_t begin = chunk * slabs / chunks, end = (chunk + 1) * slabs / chunks;
        for (int64_t s = begin; s < end; ++s) {
            const int64_t first = s * slab, rows = std::min(slab, pixels - first);
#pragma omp parallel for schedule(static) if (chunks == 1 && rows * row_len > (int64_t{1} << 16))
            for (int64_t r = 0; r < rows; ++r) im2col_row(xp, g, first + r, cp + r * row_len);
            gemm(Kernels::Fast, true, false, g.F, row_len, rows, 1.0f, dp + first * g.F, g.F, cp, row_len, s == begin ? 0.0f : 1.0f, acc,
                 row_len);
            if (with_bias)
                for (int64_t r = 0; r < rows; ++r) {
                    const float* row = dp + (first + r) * g.F;
#pragma omp simd
                    for (int64_t f = 0; f < g.F; ++f) bias_acc[f] += row[f];
                }
        }
    };
    if (chunks == 1) {
        run_chunk(0, cols_base);
    } else {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t chunk = 0; chunk < chunks; ++chunk) run_chunk(chunk, cols_base + omp_get_thread_num() * slab * row_len);
    }
    // The chunks' sum, permuted from (f, kh, kw, c) to OIHW in the same pass: one filter's
    // KH*KW*C weights stay in cache while they are written with a stride of KH*KW.
    ConvWeightGrads grads{empty(g.weight_shape()), with_bias ? empty({g.F}) : Tensor()};
    auto* dw = static_cast<float*>(grads.weight.data_ptr());
    const int64_t taps = g.KH * g.KW;
#pragma omp parallel for schedule(static) if (weights * chunks > (int64_t{1} << 16))
    for (int64_t f = 0; f < g.F; ++f)
        for (int64_t k = 0; k < taps; ++k) {
            const int64_t from = (f * taps + k) * g.C;
            for (int64_t c = 0; c < g.C; ++c) {
                float total = partial_base[from + c];
                for (int64_t chunk = 1; chunk < chunks; ++chunk) total += partial_base[chunk * partial_len + from + c];
                dw[(f * g.C + c) * taps + k] = total;
            }
        }
    for (int64_t f = 0; with_bias && f < g.F; ++f) {
        float total = partial_base[weights + f];
        for (int64_t chunk = 1; chunk < chunks; ++chunk) total += partial_base[chunk * partial_len + weights + f];
        static_cast<float*>(grads.bias.data_ptr())[f] = total;
    }
    return grads;
}

}  // namespace tapegrad::kernels
