#include "ops/kernels/conv_gemm.hpp"

#include <algorithm>
#include <stdexcept>

#include "ops/kernels/conv_onednn.hpp"
#include "ops/kernels/cpu_isa.hpp"
#include "ops/kernels/gemm.hpp"

namespace tapegrad::kernels {
namespace {

// Pixels per slab of cols: 512 rows of a 3x3x64 window are 1.2 MB, which measured as fast as any
// slab from 256 to 2048 rows on the shapes above and keeps the buffer small.
constexpr int64_t kSlabRows = 512;

// Rows [first, first + rows) of cols for NHWC x.
void im2col_rows(const float* x, const ConvGeometry& g, int64_t first, int64_t rows, float* cols) {
    const int64_t row_len = g.KH * g.KW * g.C;
#pragma omp parallel for schedule(static) if (rows * row_len > (int64_t{1} << 16))
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t p = first + r;
        const int64_t n = p / (g.OH * g.OW), oh = p / g.OW % g.OH, ow = p % g.OW;
        float* dst = cols + r * row_len;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
            const int64_t ih = oh * g.stride_h - g.pad_h + kh * g.dilation_h;
            for (int64_t kw = 0; kw < g.KW; ++kw, dst += g.C) {
                const int64_t iw = ow * g.stride_w - g.pad_w + kw * g.dilation_w;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W)
                    std::fill(dst, dst + g.C, 0.0f);
                else
                    std::copy_n(x + ((n * g.H + ih) * g.W + iw) * g.C, g.C, dst);
            }
        }
    }
}

}  // namespace

bool conv2d_weight_grad_uses_gemm(const ConvGeometry& g) {
    return !onednn_has_avx512() && g.groups == 1 && g.C * g.KH * g.KW >= 64;
}

ConvWeightGrads conv2d_backward_weights_fast(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias) {
    return conv2d_weight_grad_uses_gemm(g) ? conv2d_backward_weights_im2col(x, dout, g, with_bias)
                                           : conv2d_backward_weights_onednn(x, dout, g, with_bias);
}

ConvWeightGrads conv2d_backward_weights_im2col(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias) {
    if (g.groups != 1) throw std::logic_error("conv2d_backward_weights_im2col: grouped convolutions take the oneDNN kernel");
    if (!x.is_contiguous(MemoryFormat::ChannelsLast) || !dout.is_contiguous(MemoryFormat::ChannelsLast))
        throw std::logic_error("conv2d_backward_weights_im2col: x and dout must be channels-last");
    const int64_t row_len = g.KH * g.KW * g.C, pixels = g.N * g.OH * g.OW;
    const auto* xp = static_cast<const float*>(x.data_ptr());
    const auto* dp = static_cast<const float*>(dout.data_ptr());
    // dW in (f, kh, kw, c) order first, then permuted to OIHW.
    Tensor dw_hwc = empty({g.F, g.KH, g.KW, g.C});
    auto* acc = static_cast<float*>(dw_hwc.data_ptr());
    const int64_t slab = std::min(kSlabRows, pixels);
    const Tensor cols = empty({slab, row_len});  // from the caching allocator: no fresh pages per call
    auto* cp = static_cast<float*>(cols.data_ptr());
    for (int64_t first = 0; first < pixels; first += slab) {
        const int64_t rows = std::min(slab, pixels - first);
        im2col_rows(xp, g, first, rows, cp);
        gemm(true, false, g.F, row_len, rows, 1.0f, dp + first * g.F, g.F, cp, row_len, first == 0 ? 0.0f : 1.0f,
             acc, row_len);
    }
    ConvWeightGrads grads{dw_hwc.permute({0, 3, 1, 2}).contiguous(), Tensor()};
    if (with_bias) {
        grads.bias = zeros({g.F});
        auto* db = static_cast<float*>(grads.bias.data_ptr());
        for (int64_t p = 0; p < pixels; ++p) {
            const float* row = dp + p * g.F;
#pragma omp simd
            for (int64_t f = 0; f < g.F; ++f) db[f] += row[f];
        }
    }
    return grads;
}

}  // namespace tapegrad::kernels
