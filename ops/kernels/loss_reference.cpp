#include <algorithm>
#include <cmath>

#include "ops/kernels/loss.hpp"

namespace tapegrad::kernels {

template <class T>
void softmax_forward_reference(const T* x, T* y, SoftmaxShape s, bool log) {
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            const int64_t base = o * s.K * s.inner + i;
            auto at = [&](int64_t k) { return base + k * s.inner; };
            double m = x[at(0)];
            for (int64_t k = 1; k < s.K; ++k) m = std::max(m, static_cast<double>(x[at(k)]));
            double sum = 0;
            for (int64_t k = 0; k < s.K; ++k) sum += std::exp(x[at(k)] - m);
            for (int64_t k = 0; k < s.K; ++k)
                y[at(k)] = static_cast<T>(log ? x[at(k)] - m - std::log(sum) : std::exp(x[at(k)] - m) / sum);
        }
}

template <class T>
void softmax_backward_reference(const T* g, const T* y, T* dx, SoftmaxShape s, bool log) {
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            const int64_t base = o * s.K * s.inner + i;
            auto at = [&](int64_t k) { return base + k * s.inner; };
            double dot = 0;
            for (int64_t k = 0; k < s.K; ++k) dot += log ? g[at(k)] : g[at(k)] * y[at(k)];
            for (int64_t k = 0; k < s.K; ++k)
                dx[at(k)] = static_cast<T>(log ? g[at(k)] - std::exp(static_cast<double>(y[at(k)])) * dot
                                               : y[at(k)] * (g[at(k)] - dot));
        }
}

template <class T>
void cross_entropy_forward_reference(const T* x, const int64_t* labels, int64_t N, int64_t K, T* loss, double* lse) {
    for (int64_t i = 0; i < N; ++i) {
        const T* row = x + i * K;
        double m = row[0];
        for (int64_t k = 1; k < K; ++k) m = std::max(m, static_cast<double>(row[k]));
        double sum = 0;
        for (int64_t k = 0; k < K; ++k) sum += std::exp(row[k] - m);
        lse[i] = m + std::log(sum);
        loss[i] = static_cast<T>(lse[i] - row[labels[i]]);
    }
}

template <class T>
void cross_entropy_backward_reference(const T* x, const int64_t* labels, const double* lse, const T* w, int64_t N,
                                      int64_t K, T* dx) {
    for (int64_t i = 0; i < N; ++i)
        for (int64_t k = 0; k < K; ++k) {
            const double p = std::exp(x[i * K + k] - lse[i]);
            dx[i * K + k] = static_cast<T>(w[i] * (p - (k == labels[i] ? 1.0 : 0.0)));
        }
}

#define TAPEGRAD_INSTANTIATE(T)                                                                                     \
    template void softmax_forward_reference<T>(const T*, T*, SoftmaxShape, bool);                                   \
    template void softmax_backward_reference<T>(const T*, const T*, T*, SoftmaxShape, bool);                        \
    template void cross_entropy_forward_reference<T>(const T*, const int64_t*, int64_t, int64_t, T*, double*);      \
    template void cross_entropy_backward_reference<T>(const T*, const int64_t*, const double*, const T*, int64_t, \
                                                      int64_t, T*);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::kernels
