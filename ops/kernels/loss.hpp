#pragma once
// Softmax and cross-entropy kernels on dense row-major buffers. A softmax over dim d of a
// row-major tensor sees it as [outer, K, inner]: the K values of one slice are inner apart.
// Reference kernels (templated, double accumulation) take any inner; the fast float32 kernels
// take inner == 1 (the softmax over the last dim, and every cross_entropy), in parallel over rows.
#include <cstdint>
#include <vector>

namespace tapegrad::kernels {

struct SoftmaxShape {
    int64_t outer, K, inner;
};

// y = softmax(x) or, with log, log_softmax(x); max-subtracted, so finite for any finite x.
template <class T>
void softmax_forward_reference(const T* x, T* y, SoftmaxShape s, bool log);
// softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g).
template <class T>
void softmax_backward_reference(const T* g, const T* y, T* dx, SoftmaxShape s, bool log);
void softmax_forward_fast(const float* x, float* y, SoftmaxShape s, bool log);
void softmax_backward_fast(const float* g, const float* y, float* dx, SoftmaxShape s, bool log);

// Per row i of logits [N,K]: lse[i] = log sum_k exp(x[i,k]) (max-subtracted) and
// loss[i] = lse[i] - x[i, labels[i]].
template <class T>
void cross_entropy_forward_reference(const T* x, const int64_t* labels, int64_t N, int64_t K, T* loss, double* lse);
void cross_entropy_forward_fast(const float* x, const int64_t* labels, int64_t N, int64_t K, float* loss, double* lse);
// dx[i,k] = w[i] (exp(x[i,k] - lse[i]) - [k == labels[i]]), w[i] the gradient of loss[i].
template <class T>
void cross_entropy_backward_reference(const T* x, const int64_t* labels, const double* lse, const T* w, int64_t N,
                                      int64_t K, T* dx);
void cross_entropy_backward_fast(const float* x, const int64_t* labels, const double* lse, const float* w, int64_t N,
                                 int64_t K, float* dx);

}  // namespace tapegrad::kernels
