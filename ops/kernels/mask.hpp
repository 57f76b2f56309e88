#pragma once
// Loops for the ops whose inputs or outputs are masks (ops/compare.cpp, ops/reduce_logical.cpp):
// a predicate of one or two broadcast operands into a new bool tensor, a three-way select, and an
// and/or reduction over chosen dimensions. Outputs are new row-major tensors.
#include <array>
#include <vector>

#include "engine/strided.hpp"
#include "engine/tensor.hpp"

namespace tapegrad::kernels {

// out[i] = f(x[i]) as bool.
template <class T, class F>
Tensor predicate_unary(const Tensor& x, F f) {
    Tensor out = empty(x.shape(), {.dtype = kBool});
    const T* xp = x.data<T>();
    bool* op = out.data<bool>();
    for_each_run_unordered<2>(x.shape(), {out.strides(), x.strides()}, [&](auto off, int64_t n, auto st) {
        for (int64_t i = 0; i < n; ++i) op[off[0] + i * st[0]] = f(xp[off[1] + i * st[1]]);
    });
    return out;
}

// out[i] = f(a[i], b[i]) as bool, a and b broadcast to `shape`; both already of type T.
template <class T, class F>
Tensor predicate_binary(const Tensor& a, const Tensor& b, const Shape& shape, F f) {
    Tensor out = empty(shape, {.dtype = kBool});
    const Strides sa = broadcast_strides(a.shape(), a.strides(), shape);
    const Strides sb = broadcast_strides(b.shape(), b.strides(), shape);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    bool* op = out.data<bool>();
    for_each_run_unordered<3>(shape, {out.strides(), sa, sb}, [&](auto off, int64_t n, auto st) {
        for (int64_t i = 0; i < n; ++i) op[off[0] + i * st[0]] = f(ap[off[1] + i * st[1]], bp[off[2] + i * st[2]]);
    });
    return out;
}

// out[i] = cond[i] ? a[i] : b[i], every operand broadcast to `shape`; a, b and out of type T.
template <class T>
Tensor select(const Tensor& cond, const Tensor& a, const Tensor& b, const Shape& shape) {
    Tensor out = empty(shape, {.dtype = a.dtype()});
    const Strides sc = broadcast_strides(cond.shape(), cond.strides(), shape);
    const Strides sa = broadcast_strides(a.shape(), a.strides(), shape);
    const Strides sb = broadcast_strides(b.shape(), b.strides(), shape);
    const bool* cp = cond.data<bool>();
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* op = out.data<T>();
    for_each_run_unordered<4>(shape, {out.strides(), sc, sa, sb}, [&](auto off, int64_t n, auto st) {
        for (int64_t i = 0; i < n; ++i)
            op[off[0] + i * st[0]] = cp[off[1] + i * st[1]] ? ap[off[2] + i * st[2]] : bp[off[3] + i * st[3]];
    });
    return out;
}

// any (`all` false) or all of x != 0 over the dimensions marked in `reduce`, into a bool tensor of
// the kept dimensions (with keepdim, the reduced ones kept as 1). NaN is nonzero.
template <class T>
Tensor any_or_all(const Tensor& x, const std::vector<bool>& reduce, bool keepdim, bool all) {
    Shape out_shape;
    for (std::size_t d = 0; d < x.dim(); ++d)
        if (!reduce[d]) out_shape.push_back(x.shape()[d]);
        else if (keepdim) out_shape.push_back(1);
    Tensor out = full(out_shape, all ? 1.0 : 0.0, {.dtype = kBool});
    // out's strides seen from x's dimensions: 0 along the reduced ones, so each element lands in its row.
    Strides into;
    for (std::size_t d = 0, j = 0; d < x.dim(); ++d) {
        into.push_back(reduce[d] ? 0 : out.strides()[j]);
        if (!reduce[d] || keepdim) ++j;
    }
    const T* xp = x.data<T>();
    bool* op = out.data<bool>();
    for_each_run<2>(x.shape(), {x.strides(), into}, [&](auto off, int64_t n, auto st) {
        for (int64_t i = 0; i < n; ++i) {
            bool& o = op[off[1] + i * st[1]];
            const bool nonzero = xp[off[0] + i * st[0]] != T(0);
            o = all ? o && nonzero : o || nonzero;
        }
    });
    return out;
}

}  // namespace tapegrad::kernels
