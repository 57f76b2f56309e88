#include "ops/kernels/conv_depthwise.hpp"

#include <algorithm>
#include <stdexcept>

#include "ops/kernels/cpu_isa.hpp"

namespace tapegrad::kernels {
namespace {

// Channels per task: two AVX2 vectors, so that a 96-channel layer still splits six ways, and a
// task's accumulators (taps x 16 floats) stay in L1.
constexpr int64_t kChannelBlock = 16;

}  // namespace

bool conv2d_weight_grad_uses_depthwise(const ConvGeometry& g) {
    if (g.groups <= 1 || g.groups != g.C || g.F != g.C) return false;
    // AVX-512: images of at most 4 pixels only (numbers in conv_depthwise.hpp).
    return !onednn_has_avx512() || g.H * g.W <= 4;
}

ConvWeightGrads conv2d_backward_weights_depthwise(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias) {
    if (g.groups != g.C || g.F != g.C) throw std::logic_error("conv2d_backward_weights_depthwise: needs groups = C = F");
    if (!x.is_contiguous(MemoryFormat::ChannelsLast) || !dout.is_contiguous(MemoryFormat::ChannelsLast))
        throw std::logic_error("conv2d_backward_weights_depthwise: x and dout must be channels-last");
    const int64_t C = g.C, taps = g.KH * g.KW;
    const auto* xp = static_cast<const float*>(x.data_ptr());
    const auto* dp = static_cast<const float*>(dout.data_ptr());
    Tensor acc = zeros({taps, C});  // tap-major: the inner loop runs along contiguous channels
    ConvWeightGrads grads{empty(g.weight_shape()), with_bias ? zeros({C}) : Tensor()};
    auto* ap = static_cast<float*>(acc.data_ptr());
    float* db = with_bias ? static_cast<float*>(grads.bias.data_ptr()) : nullptr;
    const int64_t blocks = (C + kChannelBlock - 1) / kChannelBlock;
    const int64_t work = g.N * g.OH * g.OW * taps * C;
#pragma omp parallel for schedule(static) if (work > (int64_t{1} << 16))
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t c0 = b * kChannelBlock, width = std::min(kChannelBlock, C - c0);
        for (int64_t n = 0; n < g.N; ++n)
            for (int64_t oh = 0; oh < g.OH; ++oh)
                for (int64_t ow = 0; ow < g.OW; ++ow) {
                    const float* d = dp + ((n * g.OH + oh) * g.OW + ow) * C + c0;
                    for (int64_t kh = 0; kh < g.KH; ++kh) {
                        const int64_t ih = oh * g.stride_h - g.pad_h + kh * g.dilation_h;
                        if (ih < 0 || ih >= g.H) continue;
                        for (int64_t kw = 0; kw < g.KW; ++kw) {
                            const int64_t iw = ow * g.stride_w - g.pad_w + kw * g.dilation_w;
                            if (iw < 0 || iw >= g.W) continue;
                            const float* xs = xp + ((n * g.H + ih) * g.W + iw) * C + c0;
                            float* a = ap + (kh * g.KW + kw) * C + c0;
#pragma omp simd
                            for (int64_t c = 0; c < width; ++c) a[c] += d[c] * xs[c];
                        }
                    }
                    if (db) {
#pragma omp simd
                        for (int64_t c = 0; c < width; ++c) db[c0 + c] += d[c];
                    }
                }
    }
    auto* dw = static_cast<float*>(grads.weight.data_ptr());  // [C, 1, KH, KW]
    for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < taps; ++k) dw[c * taps + k] = ap[k * C + c];
    return grads;
}

}  // namespace tapegrad::kernels
