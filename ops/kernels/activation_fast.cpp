// Fast float32 exp, log, sigmoid, tanh and the activations built on them (silu, elu, gelu exact
// and in its tanh form), forward and backward, through xsimd. A scalar std::exp per element made sigmoid and tanh
// the slowest elementwise ops; these loops run several elements per instruction.
#include "ops/kernels/activation_fast.hpp"

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>

#include "engine/tensor_math.hpp"
#include "ops/kernels/elementwise.hpp"

namespace tapegrad::kernels {
namespace {

using Batch = xsimd::batch<float>;
using IntBatch = xsimd::batch<int32_t, Batch::arch_type>;
constexpr int64_t kWidth = Batch::size;

// e^x, as Cephes' expf: x = k ln2 + r with |r| <= ln2/2 (ln2 in two parts, so r is exact), e^r by
// a degree-7 polynomial, then 2^k applied in two halves so that results below 2^-126 come out as
// the subnormals std::exp gives (xsimd::exp returns 0 there, and 0 from x <= -88.38).
Batch exp_vec(const Batch& x) {
    const Batch k = xsimd::nearbyint(x * Batch(1.44269504088896341f));
    Batch r = xsimd::fnma(k, Batch(0.693359375f), x);
    r = xsimd::fnma(k, Batch(-2.12194440e-4f), r);
    Batch p(1.9875691500e-4f);
    p = xsimd::fma(p, r, Batch(1.3981999507e-3f));
    p = xsimd::fma(p, r, Batch(8.3334519073e-3f));
    p = xsimd::fma(p, r, Batch(4.1665795894e-2f));
    p = xsimd::fma(p, r, Batch(1.6666665459e-1f));
    p = xsimd::fma(p, r, Batch(5.0000001201e-1f));
    p = xsimd::fma(p * r, r, r + Batch(1.0f));
    // k lies in [-150, 128] for the x that reach here; each half of it is a normal power of two.
    const IntBatch ki = xsimd::to_int(xsimd::clip(k, Batch(-150.0f), Batch(128.0f)));
    const IntBatch k1 = ki >> 1, k2 = ki - k1;
    const Batch s1 = xsimd::bitwise_cast<Batch>((k1 + IntBatch(127)) << 23);
    const Batch s2 = xsimd::bitwise_cast<Batch>((k2 + IntBatch(127)) << 23);
    Batch y = p * s1 * s2;
    y = xsimd::select(x > Batch(88.72283935546875f), Batch(INFINITY), y);
    y = xsimd::select(x < Batch(-103.972084045410f), Batch(0.0f), y);
    return xsimd::select(xsimd::isnan(x), x, y);
}

// sigmoid(z) and 1 - sigmoid(z) from e = e^-|z|, which never overflows: 1 / (1 + e) and
// e / (1 + e), swapped for z < 0. So sigmoid(-100) is the subnormal e^-100, not 1 / (1 + inf),
// and 1 - sigmoid(z) carries no cancellation.
struct Sigmoid {
    Batch s, one_minus_s;
};
Sigmoid sigmoid_pair(const Batch& z) {
    const Batch e = exp_vec(-xsimd::abs(z));
    const Batch inv = Batch(1.0f) / (Batch(1.0f) + e);
    const Batch small = e * inv;
    const auto negative = z < Batch(0.0f);
    return {xsimd::select(negative, small, inv), xsimd::select(negative, inv, small)};
}
Batch sigmoid_vec(const Batch& z) { return sigmoid_pair(z).s; }

// gelu's tanh form: 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), which
// avoids the cancellation in 1 + tanh u for x << 0.
constexpr float kSqrt2OverPi = 0.79788456080286535588f, kCubic = 0.044715f;
Batch gelu_tanh_2u(const Batch& x) { return Batch(2 * kSqrt2OverPi) * (x + Batch(kCubic) * x * x * x); }

// The exact gelu's Phi(x) = erfc(-x / sqrt 2) / 2: erfc, not 1 + erf, keeps it accurate for x << 0.
constexpr float kSqrt1_2 = 0.70710678118654752440f, kInvSqrt2Pi = 0.39894228040143267794f;
Batch normal_cdf(const Batch& x) { return Batch(0.5f) * xsimd::erfc(-x * Batch(kSqrt1_2)); }

Batch forward_vec(ActivationKernel f, const Batch& x) {
    switch (f.op) {
        case Activation::Exp: return exp_vec(x);
        case Activation::Log: return xsimd::log(x);
        case Activation::Sigmoid: return sigmoid_vec(x);
        case Activation::Tanh: return xsimd::tanh(x);
        case Activation::Silu: return x * sigmoid_vec(x);
        // + 0 turns only a -0 into +0: elu(-0.0) and a gelu that underflows are +0, as PyTorch's float32 kernels give
        case Activation::Elu: return xsimd::select(x <= Batch(0.0f), Batch(f.alpha) * xsimd::expm1(x) + Batch(0.0f), x);
        case Activation::Gelu: return x * normal_cdf(x) + Batch(0.0f);
        case Activation::GeluTanh: return x * sigmoid_vec(gelu_tanh_2u(x));
    }
    return x;
}

// The derivatives of ops/activation.cpp, written with the sigmoid pair: silu' = s (1 + x (1 - s)),
// gelu' = s + x 2 s (1 - s) u' with s = sigmoid(2u) (as 1 - tanh^2 u = 4 s (1 - s)), and the exact
// gelu' = Phi(x) + x phi(x).
Batch backward_vec(ActivationKernel f, const Batch& g, const Batch& s) {
    const Batch one(1.0f);
    switch (f.op) {
        case Activation::Exp: return g * s;
        case Activation::Log: return g / s;
        case Activation::Sigmoid: return g * s * (one - s);
        case Activation::Tanh: return g * (one - s * s);
        case Activation::Silu: {
            const Sigmoid sig = sigmoid_pair(s);
            return g * sig.s * (one + s * sig.one_minus_s);
        }
        case Activation::Elu: return xsimd::select(s <= Batch(0.0f), g * Batch(f.alpha) * exp_vec(s), g);
        case Activation::Gelu: return g * (normal_cdf(s) + s * Batch(kInvSqrt2Pi) * exp_vec(Batch(-0.5f) * s * s));
        case Activation::GeluTanh: {
            const Sigmoid sig = sigmoid_pair(gelu_tanh_2u(s));
            const Batch du = Batch(kSqrt2OverPi) * (one + Batch(3 * kCubic) * s * s);
            return g * (sig.s + Batch(2.0f) * s * sig.s * sig.one_minus_s * du);
        }
    }
    return g;
}

// Calls fn(offset, length) over [0, n) in blocks whose starts are multiples of the vector width,
// in parallel above the threshold.
template <class Fn>
void for_blocks(int64_t n, Fn fn) {
    constexpr int64_t kBlock = 4096;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t b = 0; b < blocks; ++b) fn(b * kBlock, std::min(kBlock, n - b * kBlock));
}

// out[i] = op(in_0[i], ...) for the k inputs; the tail goes through a zero-padded vector.
template <int K, class Op>
void map_vec(const float* const (&in)[K], float* out, int64_t n, Op op) {
    int64_t i = 0;
    auto load = [&](int j, int64_t at) { return Batch::load_unaligned(in[j] + at); };
    for (; i + kWidth <= n; i += kWidth) {
        if constexpr (K == 1) op(load(0, i)).store_unaligned(out + i);
        else op(load(0, i), load(1, i)).store_unaligned(out + i);
    }
    if (i == n) return;
    float pad[K][kWidth] = {}, res[kWidth];
    for (int j = 0; j < K; ++j) std::copy(in[j] + i, in[j] + n, pad[j]);
    if constexpr (K == 1) op(Batch::load_unaligned(pad[0])).store_unaligned(res);
    else op(Batch::load_unaligned(pad[0]), Batch::load_unaligned(pad[1])).store_unaligned(res);
    std::copy(res, res + (n - i), out + i);
}

}  // namespace

void activation_forward_fast(ActivationKernel f, const float* x, float* y, int64_t n) {
    for_blocks(n, [&](int64_t at, int64_t len) {
        const float* const in[1] = {x + at};
        map_vec<1>(in, y + at, len, [f](const Batch& v) { return forward_vec(f, v); });
    });
}

void activation_backward_fast(ActivationKernel f, const float* g, const float* saved, float* dx, int64_t n) {
    for_blocks(n, [&](int64_t at, int64_t len) {
        const float* const in[2] = {g + at, saved + at};
        map_vec<2>(in, dx + at, len, [f](const Batch& gv, const Batch& sv) { return backward_vec(f, gv, sv); });
    });
}

Tensor activation_forward_fast(ActivationKernel f, const Tensor& x_in) {
    const Tensor x = is_standard_dense(x_in) ? x_in : as_contiguous(x_in);
    Tensor y = empty_like(x);
    activation_forward_fast(f, x.data<float>(), y.data<float>(), x.numel());
    return y;
}

Tensor activation_backward_fast(ActivationKernel f, const Tensor& g_in, const Tensor& s_in) {
    const bool shared = same_dense_layout(g_in, s_in);
    const Tensor g = shared ? g_in : as_contiguous(g_in);
    const Tensor s = shared ? s_in : as_contiguous(s_in);
    Tensor dx = empty_like(s);
    activation_backward_fast(f, g.data<float>(), s.data<float>(), dx.data<float>(), s.numel());
    return dx;
}

}  // namespace tapegrad::kernels
