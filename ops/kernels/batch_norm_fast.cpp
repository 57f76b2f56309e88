// Fast float32 batch norm: two passes forward (per-channel sums, then y = k (x - mean) + b) and two passes
// backward (per-channel sums of g and g (x - mean), then dx = A g + B (x - mean) + D), over a dense buffer.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <optional>
#include <utility>

#include "ops/kernels/batch_norm.hpp"
#include "ops/kernels/elementwise.hpp"
#include "ops/kernels/float_vectors.hpp"

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

// relu_masked on 16 lanes, with the same arithmetic.
inline F16 relu_masked(F16 g, F16 x, F16 k, F16 s, F16 d) {
    using I16 = int32_t __attribute__((vector_size(16 * sizeof(int32_t))));
    F16 y = d;
    y += k * (x - s);
    const I16 keep = ~(y <= 0.0f);
    return reinterpret_cast<F16>(reinterpret_cast<I16>(g) & keep);
}

// Rows (or 32-value steps of a plane) whose terms are added in float before their sums go into
// double: within 8 float roundings of the exact sum a group. All in double, the moments ran at half
// the copy bandwidth (the conversions, not the loads, were the limit).
constexpr int64_t kFloatGroup = 8;

// What the moments add up: a and a (b - shift), with a masked by relu's derivative (Masked), or
// centred, a - shift (Centred, where a is b: batch norm's statistics).
enum class Terms { Plain, Masked, Centred };

// The a term of one element, in double.
template <Terms What>
double scalar_term(float a, float b, float shift, float k, float s0, float d) {
    if constexpr (What == Terms::Masked) return relu_masked(a, b, k, s0, d);
    if constexpr (What == Terms::Centred) return static_cast<double>(a) - shift;
    return a;
}

// Channels inner, rows [r0, r1), channels [c0, c0 + 16 NV): p1 = sum a, p2 = sum a (b - shift),
// the accumulators in registers (one store per block, not per row).
template <Terms What, int NV>
void moments_tile(const float* a, const float* b, const float* shift, const ReluMask& mask, int64_t C, int64_t c0, int64_t r0,
                  int64_t r1, double* p1, double* p2) {
    D8 t1[2 * NV] = {}, t2[2 * NV] = {};
    F16 sh[NV], k[NV] = {}, s0[NV] = {}, d[NV] = {};
    for (int v = 0; v < NV; ++v) {
        const int64_t c = c0 + v * kFloatVec;
        sh[v] = load_f16(shift + c);
        if constexpr (What == Terms::Masked) {
            k[v] = load_f16(mask.K + c);
            s0[v] = load_f16(mask.S + c);
            d[v] = load_f16(mask.D + c);
        }
    }
    for (int64_t r = r0; r < r1; r += kFloatGroup) {
        F16 f1[NV] = {}, f2[NV] = {};
        for (int64_t q = r, end = std::min(r + kFloatGroup, r1); q < end; ++q)
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) {
                const int64_t at = q * C + c0 + v * kFloatVec;
                F16 av = load_f16(a + at);
                const F16 bv = What == Terms::Centred ? av : load_f16(b + at);  // a is b
                if constexpr (What == Terms::Masked) av = relu_masked(av, bv, k[v], s0[v], d[v]);
                if constexpr (What == Terms::Centred) av -= sh[v];
                f1[v] += av;
                f2[v] += av * (bv - sh[v]);
            }
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) {
            add_wide(t1 + 2 * v, f1[v]);
            add_wide(t2 + 2 * v, f2[v]);
        }
    }
    for (int j = 0; j < 2 * NV; ++j) {
        store_d8(p1 + c0 + 8 * j, t1[j]);
        store_d8(p2 + c0 + 8 * j, t2[j]);
    }
}

// One (n, c) plane of S contiguous values: {sum a, sum a (b - shift)}: blocks of 256 values in
// 32 float lanes (8 values a lane), then 16 at a time in float, the last few in double.
template <Terms What>
std::pair<double, double> moments_plane(const float* a, const float* b, float shift, float k, float s0, float d, int64_t S) {
    constexpr int64_t kStep = 2 * kFloatVec, kBlock = kStep * kFloatGroup;
    D8 t1[4] = {}, t2[4] = {};
    const F16 sh = F16{} + shift, kv = F16{} + k, sv = F16{} + s0, dv = F16{} + d;
    auto term = [&](int64_t at, F16& f1, F16& f2) {
        F16 av = load_f16(a + at);
        const F16 bv = What == Terms::Centred ? av : load_f16(b + at);  // a is b
        if constexpr (What == Terms::Masked) av = relu_masked(av, bv, kv, sv, dv);
        if constexpr (What == Terms::Centred) av -= sh;
        f1 += av;
        f2 += av * (bv - sh);
    };
    int64_t s = 0;
    for (; s + kBlock <= S; s += kBlock) {
        F16 f1[2] = {}, f2[2] = {};
        for (int64_t i = s; i < s + kBlock; i += kStep)
#pragma GCC unroll 2
            for (int v = 0; v < 2; ++v) term(i + v * kFloatVec, f1[v], f2[v]);
#pragma GCC unroll 2
        for (int v = 0; v < 2; ++v) {
            add_wide(t1 + 2 * v, f1[v]);
            add_wide(t2 + 2 * v, f2[v]);
        }
    }
    for (; s + kFloatVec <= S; s += kFloatVec) {
        F16 f1 = {}, f2 = {};
        term(s, f1, f2);
        add_wide(t1, f1);
        add_wide(t2, f2);
    }
    double r1 = 0, r2 = 0;
    for (; s < S; ++s) {
        const double av = scalar_term<What>(a[s], b[s], shift, k, s0, d);
        r1 += av;
        r2 += av * (static_cast<double>(b[s]) - shift);
    }
    const D8 u1 = (t1[0] + t1[1]) + (t1[2] + t1[3]), u2 = (t2[0] + t2[1]) + (t2[2] + t2[3]);
    for (int j = 0; j < 8; ++j) {
        r1 += u1[j];
        r2 += u2[j];
    }
    return {r1, r2};
}

// s1[c] = sum a, s2[c] = sum a (b - shift[c]) over channel c, accumulated in double from float
// groups; with Masked, a is first masked by relu's derivative at the output computed from b
// (mask.apply). The loops subtract the shift rounded to float; s2 gets (shift_f - shift) s1 back.
template <Terms What>
void channel_moments_impl(const float* a, const float* b, const double* shift, const ReluMask& mask, const Layout& L, double* s1,
                          double* s2) {
    const int64_t C = L.C;
    const bool parallel = L.numel() > kParallelThreshold;
    const float *mk = mask.K, *ms = mask.S, *md = mask.D;
    std::vector<float> shift_f(shift, shift + C);
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
        // Tiles of 32 and 16 channels in registers, then the last C mod 16 channels row by row.
        const int64_t c32 = C / 32 * 32, c16 = C / kFloatVec * kFloatVec;
        const float* sf = shift_f.data();
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t blk = 0; blk < blocks; ++blk) {
            double* p1 = part.data() + static_cast<std::size_t>(blk) * stride;
            double* p2 = p1 + C;
            const int64_t r0 = rows * blk / blocks, r1 = rows * (blk + 1) / blocks;
            for (int64_t c0 = 0; c0 < c32; c0 += 32) moments_tile<What, 2>(a, b, sf, mask, C, c0, r0, r1, p1, p2);
            if (c16 > c32) moments_tile<What, 1>(a, b, sf, mask, C, c32, r0, r1, p1, p2);
            for (int64_t r = r0; r < r1; ++r) {
                const float* ar = a + r * C;
                const float* br = b + r * C;
                for (int64_t c = c16; c < C; ++c) {
                    const double av = scalar_term<What>(ar[c], br[c], sf[c], mk ? mk[c] : 0.0f, mk ? ms[c] : 0.0f, mk ? md[c] : 0.0f);
                    p1[c] += av;
                    p2[c] += av * (static_cast<double>(br[c]) - sf[c]);
                }
            }
        }
        for (int64_t blk = 0; blk < blocks; ++blk)
            for (int64_t c = 0; c < C; ++c) {
                s1[c] += part[static_cast<std::size_t>(blk) * stride + c];
                s2[c] += part[static_cast<std::size_t>(blk) * stride + C + c];
            }
    } else {
        // One partial sum per (n, c) plane, so that the work splits evenly even when C < threads.
        const int64_t planes = L.N * C, S = L.S;
        std::vector<double> q1(static_cast<std::size_t>(planes)), q2(static_cast<std::size_t>(planes));
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t p = 0; p < planes; ++p) {
            const int64_t c = p % C;
            const bool masked = What == Terms::Masked;
            const auto [t1, t2] = moments_plane<What>(a + p * S, b + p * S, shift_f[c], masked ? mk[c] : 0.0f, masked ? ms[c] : 0.0f,
                                                      masked ? md[c] : 0.0f, S);
            q1[p] = t1;
            q2[p] = t2;
        }
        for (int64_t p = 0; p < planes; ++p) {
            s1[p % C] += q1[p];
            s2[p % C] += q2[p];
        }
    }
    for (int64_t c = 0; c < C; ++c) s2[c] += (static_cast<double>(shift_f[c]) - shift[c]) * s1[c];
}

void channel_moments(const float* a, const float* b, const double* shift, const ReluMask& mask, const Layout& L, double* s1,
                     double* s2, bool centred = false) {
    if (mask.K) channel_moments_impl<Terms::Masked>(a, b, shift, mask, L, s1, s2);
    else if (centred) channel_moments_impl<Terms::Centred>(a, b, shift, mask, L, s1, s2);
    else channel_moments_impl<Terms::Plain>(a, b, shift, mask, L, s1, s2);
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
    // Moments about each channel's first value (0 if it is not finite, so that an infinity still
    // gives the mean infinity): x - shift stays small, so float groups lose nothing to cancellation.
    std::vector<double> shift(L.C, 0.0);
    const float* xp = x.data<float>();
    for (int64_t c = 0; L.N * L.S > 0 && c < L.C; ++c) {
        const float first = xp[L.channels_inner ? c : c * L.S];
        if (std::isfinite(first)) shift[c] = first;
    }
    ChannelStats s{std::vector<double>(L.C), std::vector<double>(L.C)};
    std::vector<double> sq(L.C);
    channel_moments(xp, xp, shift.data(), ReluMask{}, L, s.mean.data(), sq.data(), /*centred=*/true);
    const double m = static_cast<double>(L.N * L.S);
    for (int64_t c = 0; c < L.C; ++c) {
        const double centred = s.mean[c] / m;
        s.mean[c] = shift[c] + centred;
        // E[(x - shift)^2] - (mean - shift)^2 in double; clamped, as rounding can leave a constant
        // channel slightly below 0.
        s.var[c] = std::max(sq[c] / m - centred * centred, 0.0);
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
