// Fast float32 batch norm: two passes forward (per-channel sums, then y = k (x - mean) + b) and two passes
// backward (per-channel sums of g and g (x - mean), then dx = A g + B (x - mean) + D), over a dense buffer.
#include <algorithm>
#include <cmath>

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

// Row blocks of the channels-inner sums: enough for 64 threads to share, few enough to add cheaply.
constexpr int64_t kMomentBlocks = 64;

// s1[c] = sum a, s2[c] = sum a (b - shift[c]) over channel c, accumulated in double.
void channel_moments(const float* a, const float* b, const double* shift, const Layout& L, double* s1, double* s2) {
    const int64_t C = L.C;
    const bool parallel = L.numel() > kParallelThreshold;
    std::fill(s1, s1 + C, 0.0);
    std::fill(s2, s2 + C, 0.0);
    if (L.channels_inner) {
        // Partial sums over fixed blocks of rows, added in block order: the result is the same for
        // any thread count (one partial per thread would make it depend on it).
        const int64_t rows = L.N * L.S;
        const int64_t blocks = std::min<int64_t>(rows, kMomentBlocks);
        std::vector<double> part(static_cast<std::size_t>(blocks) * 2 * C, 0.0);
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t blk = 0; blk < blocks; ++blk) {
            double* p1 = part.data() + static_cast<std::size_t>(blk) * 2 * C;
            double* p2 = p1 + C;
            for (int64_t r = rows * blk / blocks; r < rows * (blk + 1) / blocks; ++r) {
                const float* ar = a + r * C;
                const float* br = b + r * C;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) {
                    const double av = ar[c];
                    p1[c] += av;
                    p2[c] += av * (static_cast<double>(br[c]) - shift[c]);
                }
            }
        }
        for (int64_t blk = 0; blk < blocks; ++blk)
            for (int64_t c = 0; c < C; ++c) {
                s1[c] += part[static_cast<std::size_t>(blk) * 2 * C + c];
                s2[c] += part[static_cast<std::size_t>(blk) * 2 * C + C + c];
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
        const double sh = shift[p % C];
        double t1 = 0, t2 = 0;
#pragma omp simd reduction(+ : t1, t2)
        for (int64_t s = 0; s < S; ++s) {
            const double av = ap[s];
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

// out = A[c] g + B[c] (x - S[c]) + D[c], with g or x null to drop its term. Centering x before
// scaling keeps a constant channel exactly at its bias (x A + D would cancel catastrophically).
template <bool HasG, bool HasX>
void channel_affine_impl(const float* g, const float* x, const float* A, const float* B, const float* S,
                         const float* D, const Layout& L, float* out) {
    const int64_t C = L.C;
    const bool parallel = L.numel() > kParallelThreshold;
    // Element i of channel c; coefficients of an absent operand are never read (they may be null).
    auto term = [&](int64_t i, int64_t c) {
        float v = D[c];
        if constexpr (HasG) v += A[c] * g[i];
        if constexpr (HasX) v += B[c] * (x[i] - S[c]);
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

void channel_affine(const float* g, const float* x, const float* A, const float* B, const float* S, const float* D,
                    const Layout& L, float* out) {
    if (g && x) channel_affine_impl<true, true>(g, x, A, B, S, D, L, out);
    else if (g) channel_affine_impl<true, false>(g, x, A, B, S, D, L, out);
    else channel_affine_impl<false, true>(g, x, A, B, S, D, L, out);
}

double weight_at(const Tensor& w, int64_t c) { return w.defined() ? w.data<float>()[c * w.strides()[0]] : 1.0; }

}  // namespace

ChannelStats batch_norm_stats_fast(const Tensor& x) {
    const Layout L = layout_of(x);
    const std::vector<double> zero(L.C, 0.0);
    ChannelStats s{std::vector<double>(L.C), std::vector<double>(L.C)};
    std::vector<double> sq(L.C);
    channel_moments(x.data<float>(), x.data<float>(), zero.data(), L, s.mean.data(), sq.data());
    const double m = static_cast<double>(L.N * L.S);
    for (int64_t c = 0; c < L.C; ++c) {
        s.mean[c] /= m;
        // E[x^2] - mean^2 in double; clamped, as rounding can leave a constant channel slightly below 0.
        s.var[c] = std::max(sq[c] / m - s.mean[c] * s.mean[c], 0.0);
    }
    return s;
}

Tensor batch_norm_forward_fast(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& invstd,
                               const Tensor& weight, const Tensor& bias) {
    const Layout L = layout_of(x);
    std::vector<float> K(L.C), S(L.C), D(L.C);
    for (int64_t c = 0; c < L.C; ++c) {
        K[c] = static_cast<float>(weight_at(weight, c) * invstd[c]);
        S[c] = static_cast<float>(mean[c]);
        D[c] = static_cast<float>(bias.defined() ? bias.data<float>()[c * bias.strides()[0]] : 0.0);
    }
    Tensor y = empty_like(x);
    channel_affine(nullptr, x.data<float>(), nullptr, K.data(), S.data(), D.data(), L, y.data<float>());
    return y;
}

std::vector<Tensor> batch_norm_backward_fast(const Tensor& g, const Tensor& x, const std::vector<double>& mean,
                                             const std::vector<double>& invstd, const Tensor& weight, bool training) {
    const Layout L = layout_of(x);
    std::vector<double> sum_g(L.C), sum_gx(L.C);
    channel_moments(g.data<float>(), x.data<float>(), mean.data(), L, sum_g.data(), sum_gx.data());
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
    channel_affine(g.data<float>(), training ? x.data<float>() : nullptr, A.data(), B.data(), S.data(), D.data(), L,
                   dx.data<float>());
    return {dx, dw, db};
}

}  // namespace tapegrad::kernels
