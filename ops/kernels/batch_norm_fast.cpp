// Fast float32 batch norm: two passes forward (per-channel sums, then y = k (x - mean) + b) and two passes
// backward (per-channel sums of g and g (x - mean), then dx = A g + B (x - mean) + D), over a dense buffer.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <optional>

#include "ops/kernels/batch_norm.hpp"
#include "ops/kernels/elementwise.hpp"

namespace tapegrad::kernels {
namespace {

// x[N,C,S] with S = H*W. Planes: element (n,c,s) at (n*C + c)*S + s. Channels inner: at
// (n*S + s)*C + c, i.e. rows of C values.
struct Layout {
    int64_t N, C, S;
    bool channels_inner;
    int64_t numel() const { return N * C * S; }
};

Layout layout_of(const Tensor& x) {
    const int64_t S = x.dim() == 4 ? x.shape()[2] * x.shape()[3] : 1;
    // A row-major [N,C] or [N,C,1,1] has C innermost too.
    const bool inner = S == 1 || !x.is_contiguous();
    return {x.shape()[0], x.shape()[1], S, inner};
}

// relu fused after the batch norm: the forward's output y = K[c] (x - S[c]) + D[c] is recomputed
// from x, written as the forward writes it, and the gradient is passed only where y > 0 (as relu's
// backward: zero where y <= 0, passed where y is NaN). Null members: no relu.
struct ReluMask {
    const float* K = nullptr;
    const float* S = nullptr;
    const float* D = nullptr;
};

// g where y = k (x - s) + d, computed as the forward computes it, is positive (or NaN), else 0.
// A bit mask rather than a branch or a select, so that the loops around it vectorise (GCC left
// both scalar: 5x slower than the unfused kernels), and rather than g * 0/1, which would turn an
// infinite g into NaN where relu's backward gives 0.
inline float relu_masked(float g, float x, float k, float s, float d) {
    float y = d;
    y += k * (x - s);
    const uint32_t keep = 0u - static_cast<uint32_t>(!(y <= 0.0f));
    return std::bit_cast<float>(std::bit_cast<uint32_t>(g) & keep);
}

// Row blocks of the channels-inner sums: enough for 64 threads to share, few enough to add cheaply.
constexpr int64_t kMomentBlocks = 64;

// s1[c] = sum a, s2[c] = sum a (b - shift[c]) over channel c, accumulated in double; with Masked,
// a is first masked by relu's derivative at the output computed from b (mask.apply).
template <bool Masked>
void channel_moments_impl(const float* a, const float* b, const double* shift, const ReluMask& mask, const Layout& L, double* s1,
                          double* s2) {
    const int64_t C = L.C;
    const bool parallel = L.numel() > kParallelThreshold;
    const float *mk = mask.K, *ms = mask.S, *md = mask.D;
    std::fill(s1, s1 + C, 0.0);
    std::fill(s2, s2 + C, 0.0);
    if (L.channels_inner) {
        // Partial sums over fixed blocks of rows, added in block order: the result is the same for
        // any thread count (one partial per thread would make it depend on it).
        const int64_t rows = L.N * L.S;
        const int64_t blocks = std::min<int64_t>(rows, kMomentBlocks);
        // Blocks a cache line apart: every row writes all 2C partial sums of its block, so blocks
        // of different threads on one line would bounce it between the cores.
        const std::size_t stride = static_cast<std::size_t>(2 * C + 8);
        std::vector<double> part(static_cast<std::size_t>(blocks) * stride, 0.0);
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t blk = 0; blk < blocks; ++blk) {
            double* p1 = part.data() + static_cast<std::size_t>(blk) * stride;
            double* p2 = p1 + C;
            for (int64_t r = rows * blk / blocks; r < rows * (blk + 1) / blocks; ++r) {
                const float* ar = a + r * C;
                const float* br = b + r * C;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) {
                    const double av = Masked ? relu_masked(ar[c], br[c], mk[c], ms[c], md[c]) : ar[c];
                    p1[c] += av;
                    p2[c] += av * (static_cast<double>(br[c]) - shift[c]);
                }
            }
        }
        for (int64_t blk = 0; blk < blocks; ++blk)
            for (int64_t c = 0; c < C; ++c) {
                s1[c] += part[static_cast<std::size_t>(blk) * stride + c];
                s2[c] += part[static_cast<std::size_t>(blk) * stride + C + c];
            }
        return;
    }
    // One partial sum per (n, c) plane, so that the work splits evenly even when C < threads.
    const int64_t planes = L.N * C, S = L.S;
    std::vector<double> q1(static_cast<std::size_t>(planes)), q2(static_cast<std::size_t>(planes));
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const float* ap = a + p * S;
        const float* bp = b + p * S;
        const int64_t c = p % C;
        const double sh = shift[c];
        const float k = Masked ? mk[c] : 0.0f, s0 = Masked ? ms[c] : 0.0f, d = Masked ? md[c] : 0.0f;
        double t1 = 0, t2 = 0;
#pragma omp simd reduction(+ : t1, t2)
        for (int64_t s = 0; s < S; ++s) {
            const double av = Masked ? relu_masked(ap[s], bp[s], k, s0, d) : ap[s];
            t1 += av;
            t2 += av * (static_cast<double>(bp[s]) - sh);
        }
        q1[p] = t1;
        q2[p] = t2;
    }
    for (int64_t p = 0; p < planes; ++p) {
        s1[p % C] += q1[p];
        s2[p % C] += q2[p];
    }
}

void channel_moments(const float* a, const float* b, const double* shift, const ReluMask& mask, const Layout& L, double* s1,
                     double* s2) {
    if (mask.K) channel_moments_impl<true>(a, b, shift, mask, L, s1, s2);
    else channel_moments_impl<false>(a, b, shift, mask, L, s1, s2);
}

// out = A[c] g + B[c] (x - S[c]) + D[c], with g or x null to drop its term. Centering x before
// scaling keeps a constant channel exactly at its bias (x A + D would cancel catastrophically).
// With Relu: the forward (no g) clamps out at 0 as relu does; the backward masks g by relu's
// derivative at the forward's output, recomputed from mask_x (the batch norm's input).
template <bool HasG, bool HasX, bool Relu>
void channel_affine_impl(const float* g, const float* x, const float* A, const float* B, const float* S, const float* D,
                         const ReluMask& mask, const float* mask_x, const Layout& L, float* out) {
    const int64_t C = L.C;
    const bool parallel = L.numel() > kParallelThreshold;
    const float *mk = mask.K, *ms = mask.S, *md = mask.D;
    // Element i of channel c; coefficients of an absent operand are never read (they may be null).
    auto term = [&](int64_t i, int64_t c) {
        float v = D[c];
        if constexpr (HasG) v += A[c] * (Relu ? relu_masked(g[i], mask_x[i], mk[c], ms[c], md[c]) : g[i]);
        if constexpr (HasX) v += B[c] * (x[i] - S[c]);
        if constexpr (Relu && !HasG) v = v < 0 ? 0.0f : v;
        return v;
    };
    if (L.channels_inner) {
        const int64_t rows = L.N * L.S;
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t base = r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) out[base + c] = term(base + c, c);
        }
        return;
    }
    const int64_t planes = L.N * C, len = L.S;
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const int64_t c = p % C, base = p * len;
#pragma omp simd
        for (int64_t s = 0; s < len; ++s) out[base + s] = term(base + s, c);
    }
}

template <bool Relu>
void channel_affine_relu(const float* g, const float* x, const float* A, const float* B, const float* S, const float* D,
                         const ReluMask& mask, const float* mask_x, const Layout& L, float* out) {
    if (g && x) channel_affine_impl<true, true, Relu>(g, x, A, B, S, D, mask, mask_x, L, out);
    else if (g) channel_affine_impl<true, false, Relu>(g, x, A, B, S, D, mask, mask_x, L, out);
    else channel_affine_impl<false, true, Relu>(g, x, A, B, S, D, mask, mask_x, L, out);
}

void channel_affine(const float* g, const float* x, const float* A, const float* B, const float* S, const float* D,
                    const ReluMask& mask, const float* mask_x, const Layout& L, float* out) {
    if (mask.K) channel_affine_relu<true>(g, x, A, B, S, D, mask, mask_x, L, out);
    else channel_affine_relu<false>(g, x, A, B, S, D, mask, mask_x, L, out);
}

double weight_at(const Tensor& w, int64_t c) { return w.defined() ? w.data<float>()[c * w.strides()[0]] : 1.0; }

// The forward's coefficients: y = K[c] (x - S[c]) + D[c], K = w invstd, S = mean, D = b.
struct ForwardCoefficients {
    std::vector<float> K, S, D;
    ForwardCoefficients(const std::vector<double>& mean, const std::vector<double>& invstd, const Tensor& weight,
                        const Tensor& bias)
        : K(mean.size()), S(mean.size()), D(mean.size()) {
        for (std::size_t c = 0; c < mean.size(); ++c) {
            const auto ci = static_cast<int64_t>(c);
            K[c] = static_cast<float>(weight_at(weight, ci) * invstd[c]);
            S[c] = static_cast<float>(mean[c]);
            D[c] = static_cast<float>(bias.defined() ? bias.data<float>()[ci * bias.strides()[0]] : 0.0);
        }
    }
    ReluMask mask() const { return {K.data(), S.data(), D.data()}; }
};

}  // namespace

ChannelStats batch_norm_stats_fast(const Tensor& x) {
    const Layout L = layout_of(x);
    const std::vector<double> zero(L.C, 0.0);
    ChannelStats s{std::vector<double>(L.C), std::vector<double>(L.C)};
    std::vector<double> sq(L.C);
    channel_moments(x.data<float>(), x.data<float>(), zero.data(), ReluMask{}, L, s.mean.data(), sq.data());
    const double m = static_cast<double>(L.N * L.S);
    for (int64_t c = 0; c < L.C; ++c) {
        s.mean[c] /= m;
        // E[x^2] - mean^2 in double; clamped, as rounding can leave a constant channel slightly below 0.
        s.var[c] = std::max(sq[c] / m - s.mean[c] * s.mean[c], 0.0);
    }
    return s;
}

Tensor batch_norm_forward_fast(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& invstd,
                               const Tensor& weight, const Tensor& bias, bool relu) {
    const Layout L = layout_of(x);
    const ForwardCoefficients f(mean, invstd, weight, bias);
    Tensor y = empty_like(x);
    channel_affine(nullptr, x.data<float>(), nullptr, f.K.data(), f.S.data(), f.D.data(), relu ? f.mask() : ReluMask{}, nullptr, L,
                   y.data<float>());
    return y;
}

std::vector<Tensor> batch_norm_backward_fast(const Tensor& g, const Tensor& x, const std::vector<double>& mean,
                                             const std::vector<double>& invstd, const Tensor& weight, bool training,
                                             const std::optional<Tensor>& relu_bias) {
    const Layout L = layout_of(x);
    std::optional<ForwardCoefficients> forward;
    if (relu_bias) forward.emplace(mean, invstd, weight, *relu_bias);
    const ReluMask mask = forward ? forward->mask() : ReluMask{};
    std::vector<double> sum_g(L.C), sum_gx(L.C);
    channel_moments(g.data<float>(), x.data<float>(), mean.data(), mask, L, sum_g.data(), sum_gx.data());
    const double m = static_cast<double>(L.N * L.S);
    Tensor dw = empty({L.C}), db = empty({L.C});
    std::vector<float> A(L.C), B(L.C), S(L.C), D(L.C);
    for (int64_t c = 0; c < L.C; ++c) {
        const double sum_g_xhat = sum_gx[c] * invstd[c];
        dw.data<float>()[c] = static_cast<float>(sum_g_xhat);
        db.data<float>()[c] = static_cast<float>(sum_g[c]);
        // dx = k (g - sum_g/M - xhat sum_g_xhat/M), k = w invstd, xhat = (x - mean) invstd,
        // as A g + B (x - mean) + D; in eval mode the statistics are constants and dx = k g.
        const double k = weight_at(weight, c) * invstd[c];
        A[c] = static_cast<float>(k);
        B[c] = static_cast<float>(training ? -k * invstd[c] * sum_g_xhat / m : 0.0);
        S[c] = static_cast<float>(mean[c]);
        D[c] = static_cast<float>(training ? -k * sum_g[c] / m : 0.0);
    }
    Tensor dx = empty_like(x);
    channel_affine(g.data<float>(), training ? x.data<float>() : nullptr, A.data(), B.data(), S.data(), D.data(), mask,
                   x.data<float>(), L, dx.data<float>());
    return {dx, dw, db};
}

}  // namespace tapegrad::kernels
