#pragma once
// Reference elementwise loops for the activations: one serial pass in row-major index order over
// operands of any strides, written to be obviously right. The fast versions are map_unary and
// map_binary in elementwise.hpp.
#include "engine/strided.hpp"
#include "engine/tensor.hpp"

namespace tapegrad::kernels {

// out[i] = f(x[i]); out is row-major.
template <class T, class F>
Tensor map_unary_reference(const Tensor& x, F f) {
    Tensor out = empty(x.shape(), {.dtype = x.dtype()});
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for_each_run<2>(x.shape(), {out.strides(), x.strides()}, [&](auto off, int64_t n, auto st) {
        for (int64_t i = 0; i < n; ++i) op[off[0] + i * st[0]] = f(xp[off[1] + i * st[1]]);
    });
    return out;
}

// out[i] = f(a[i], b[i]) for a and b of one shape; out is row-major.
template <class T, class F>
Tensor map_pair_reference(const Tensor& a, const Tensor& b, F f) {
    Tensor out = empty(a.shape(), {.dtype = a.dtype()});
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* op = out.data<T>();
    for_each_run<3>(a.shape(), {out.strides(), a.strides(), b.strides()}, [&](auto off, int64_t n, auto st) {
        for (int64_t i = 0; i < n; ++i) op[off[0] + i * st[0]] = f(ap[off[1] + i * st[1]], bp[off[2] + i * st[2]]);
    });
    return out;
}

}  // namespace tapegrad::kernels
