#pragma once
// Per-element losses f(x, t; p) and their derivatives, as PyTorch 1.13's CPU kernels compute them,
// and the loops that apply them to dense buffers; nll_loss's gather and scatter.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "engine/strided.hpp"

namespace tapegrad::kernels {

// ---------------------------------------------------------------- the formulas
// value(x, t, p) is the loss of one element; d_input and d_target its derivatives (a loss of x - t
// leaves d_target out: it is d_input with x and t swapped). p is the per-element parameter
// (binary_cross_entropy_with_logits' pos_weight), 1 where there is none.

// binary_cross_entropy's and binary_cross_entropy_with_logits' formulas are written for a float or
// a double and, unchanged, for an xsimd batch of floats (the fast float32 loops): the maths
// functions are found by argument-dependent lookup, std's for scalars, xsimd's for batches.

// PyTorch clamps each log at -100, so that a probability of exactly 0 or 1 gives a finite loss,
// and bounds the denominator of the input derivative by 1e-12 for the same reason (its EPSILON,
// a float: 1e-12f in either dtype). The target derivative is -logit(x), unclamped, as PyTorch's.
struct BinaryCrossEntropyFormula {
    template <class T> T value(T x, T t, T) const {
        using std::log, std::max;
        return (t - T(1)) * max(T(log(T(1) - x)), T(-100)) - t * max(T(log(x)), T(-100));
    }
    template <class T> T d_input(T x, T t, T) const {
        using std::max;
        return (x - t) / max((T(1) - x) * x, T(1e-12f));
    }
    template <class T> T d_target(T x, T, T) const {
        using std::log;
        return log(T(1) - x) - log(x);  // -logit(x): +0 at x = 1/2, ±inf at 0 and 1, as PyTorch's
    }
};

// log(sigmoid(z)) without overflow, as PyTorch's log_sigmoid.
template <class T>
T log_sigmoid(T z) {
    using std::abs, std::exp, std::log1p, std::min;
    return min(z, T(0)) - log1p(exp(-abs(z)));
}

// PyTorch's stable form, with m = max(-x, 0) and p = pos_weight:
// (1 - t) x + (1 + (p - 1) t) (log(e^-m + e^(-x-m)) + m).
struct BinaryCrossEntropyWithLogitsFormula {
    bool pos_weighted;
    template <class T> T value(T x, T t, T p) const {
        using std::exp, std::log, std::max;
        const T m = max(-x, T(0));
        const T softplus = log(exp(-m) + exp(-x - m));
        if (!pos_weighted) return (T(1) - t) * x + m + softplus;
        return (T(1) - t) * x + ((p - T(1)) * t + T(1)) * (softplus + m);
    }
    template <class T> T d_input(T x, T t, T p) const {
        using std::exp;
        const T s = T(1) / (T(1) + exp(-x));
        if (!pos_weighted) return s - t;
        return (p * t + T(1) - t) * s - p * t;
    }
    template <class T> T d_target(T x, T, T p) const {
        return pos_weighted ? T(log_sigmoid(-x) - p * log_sigmoid(x)) : T(-x);
    }
};

// sign(x - t), 0 where they are equal (PyTorch's sgn in abs' derivative).
template <class T>
T sign_of(T d) {
    return T((d > T(0)) - (d < T(0)));
}

struct L1Formula {
    template <class T> T value(T x, T t, T) const { return std::abs(x - t); }
    template <class T> T d_input(T x, T t, T) const { return sign_of(x - t); }
};

struct MseFormula {
    template <class T> T value(T x, T t, T) const { return (x - t) * (x - t); }
    template <class T> T d_input(T x, T t, T) const { return T(2) * (x - t); }
};

// beta > 0 (beta = 0 is l1). The derivative is d / beta inside (-beta, beta), sign(d) outside.
struct SmoothL1Formula {
    double beta;
    template <class T> T value(T x, T t, T) const {
        const T z = std::abs(x - t), b = T(beta);
        return z < b ? T(0.5) * z * z / b : z - T(0.5) * b;
    }
    template <class T> T d_input(T x, T t, T) const {
        const T d = x - t, b = T(beta);
        return d <= -b ? T(-1) : (d >= b ? T(1) : d / b);
    }
};

// The derivative is d inside (-delta, delta), delta sign(d) outside.
struct HuberFormula {
    double delta;
    template <class T> T value(T x, T t, T) const {
        const T z = std::abs(x - t), c = T(delta);
        return z < c ? T(0.5) * z * z : c * (z - T(0.5) * c);
    }
    template <class T> T d_input(T x, T t, T) const {
        const T d = x - t, c = T(delta);
        return d <= -c ? -c : (d >= c ? c : d);
    }
};

// t (log t - x) with PyTorch's xlogy (0 where t = 0), or e^t (t - x) with log_target. The target
// derivative log t + 1 - x is NaN where t = 0, as PyTorch's (xlogy's derivative t / t there).
struct KlDivFormula {
    bool log_target;
    template <class T> T value(T x, T t, T) const {
        if (log_target) return std::exp(t) * (t - x);
        return (t == T(0) ? T(0) : t * std::log(t)) - t * x;
    }
    template <class T> T d_input(T, T t, T) const { return log_target ? -std::exp(t) : -t; }
    template <class T> T d_target(T x, T t, T) const {
        if (log_target) return std::exp(t) * (t - x + T(1));
        return t == T(0) ? std::numeric_limits<T>::quiet_NaN() : std::log(t) + T(1) - x;
    }
};

// ---------------------------------------------------------------- the loops

// A loss of x - t has d_input odd in x - t, so d_target is d_input with x and t swapped, as
// PyTorch computes it (mse_loss_backward(grad, target, self)): a zero difference gives +0, not -0.
template <class T, class Formula>
T target_derivative(const Formula& f, T x, T t, T p) {
    if constexpr (requires { f.d_target(x, t, p); }) return f.d_target(x, t, p);
    else return f.d_input(t, x, p);
}

// The buffers of one loss, each of n elements: the target, the weight and the parameter are
// already broadcast to the input's shape; w and p may be null (1 everywhere).
template <class T>
struct LossOperands {
    const T* x;
    const T* t;
    const T* w;
    const T* p;
    int64_t n;
};

// out[i] = w[i] f(x[i], t[i], p[i]); returns their sum, accumulated in double in index order (the
// same result for any thread count).
template <class T, class Formula>
double elementwise_loss_forward(const Formula& f, LossOperands<T> a, T* out) {
#pragma omp parallel for if (a.n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < a.n; ++i) {
        const T v = f.value(a.x[i], a.t[i], a.p ? a.p[i] : T(1));
        out[i] = a.w ? v * a.w[i] : v;
    }
    double total = 0;
    for (int64_t i = 0; i < a.n; ++i) total += out[i];
    return total;
}

// dx[i] = g_i w[i] df/dx / divisor and dt[i] = g_i w[i] df/dt / divisor (either may be null),
// g_i = g[i * g_stride] (stride 0: one gradient for the reduced loss).
template <class T, class Formula>
void elementwise_loss_backward(const Formula& f, LossOperands<T> a, const T* g, int64_t g_stride, T divisor, T* dx, T* dt) {
#pragma omp parallel for if (a.n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < a.n; ++i) {
        const T p = a.p ? a.p[i] : T(1);
        const T scale = a.w ? g[i * g_stride] * a.w[i] : g[i * g_stride];
        if (dx) dx[i] = f.d_input(a.x[i], a.t[i], p) * scale / divisor;
        if (dt) dt[i] = target_derivative(f, a.x[i], a.t[i], p) * scale / divisor;
    }
}

// The loops above on float32 through xsimd, for the formulas built on log and exp
// (ops/kernels/loss_elementwise_fast.cpp); the same values to a few ulp.
template <class Formula>
constexpr bool has_fast_loops =
    std::is_same_v<Formula, BinaryCrossEntropyFormula> || std::is_same_v<Formula, BinaryCrossEntropyWithLogitsFormula>;
template <class Formula>
double elementwise_loss_forward_fast(const Formula& f, LossOperands<float> a, float* out);
template <class Formula>
void elementwise_loss_backward_fast(const Formula& f, LossOperands<float> a, const float* g, int64_t g_stride, float divisor,
                                    float* dx, float* dt);

// The index of the first element outside [0, 1] (NaN included), or -1.
template <class T>
int64_t first_outside_unit_interval(const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (!(x[i] >= T(0) && x[i] <= T(1))) return i;
    return -1;
}

// ---------------------------------------------------------------- nll_loss

// An input [outer, K, inner] (dense row-major) and one target per (outer, inner) position.
struct NllShape {
    int64_t outer, K, inner;
};

// out[j] = -w[t_j] x[o, t_j, i] for target j = o * inner + i, 0 where t_j is ignore_index (w null:
// 1). Targets are checked by the caller.
template <class T>
void nll_forward(const T* x, const int64_t* targets, const T* w, NllShape s, int64_t ignore_index, T* out) {
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            const int64_t j = o * s.inner + i, k = targets[j];
            out[j] = k == ignore_index ? T(0) : -(w ? w[k] : T(1)) * x[(o * s.K + k) * s.inner + i];
        }
}

// dx (zeroed by the caller) gets -w[t_j] g_j / divisor at (o, t_j, i) for each counted target,
// g_j = g[j * g_stride].
template <class T>
void nll_backward(const T* g, int64_t g_stride, T divisor, const int64_t* targets, const T* w, NllShape s,
                  int64_t ignore_index, T* dx) {
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            const int64_t j = o * s.inner + i, k = targets[j];
            if (k != ignore_index) dx[(o * s.K + k) * s.inner + i] = -(w ? w[k] : T(1)) * (g[j * g_stride] / divisor);
        }
}

}  // namespace tapegrad::kernels
