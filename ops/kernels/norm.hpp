#pragma once
// The vector p-norm of x over the dimensions marked in `reduce` (ops/norm.cpp), accumulated in
// double: (Σ |x|^p)^(1/p), with p = 0 counting the nonzero elements, p = ±inf the largest (smallest)
// |x|. NaN propagates; over no elements every norm is 0, as PyTorch's.
#include <cmath>
#include <limits>
#include <vector>

#include "engine/strided.hpp"
#include "engine/tensor.hpp"

namespace tapegrad::kernels {

template <class T>
Tensor vector_norm(const Tensor& x, double p, const std::vector<bool>& reduce, bool keepdim) {
    Shape out_shape;
    int64_t count = 1;
    for (std::size_t d = 0; d < x.dim(); ++d)
        if (!reduce[d]) out_shape.push_back(x.shape()[d]);
        else {
            count *= x.shape()[d];
            if (keepdim) out_shape.push_back(1);
        }
    Tensor out = empty(out_shape, {.dtype = x.dtype()});
    const double start = p == -std::numeric_limits<double>::infinity() ? std::numeric_limits<double>::infinity() : 0.0;
    std::vector<double> acc(static_cast<std::size_t>(out.numel()), start);
    // acc's row-major strides seen from x's dimensions: 0 along the reduced ones.
    Strides into;
    for (std::size_t d = 0, j = 0; d < x.dim(); ++d) {
        into.push_back(reduce[d] ? 0 : out.strides()[j]);
        if (!reduce[d] || keepdim) ++j;
    }
    const T* xp = x.data<T>();
    for_each_run<2>(x.shape(), {x.strides(), into}, [&](auto off, int64_t n, auto st) {
        for (int64_t i = 0; i < n; ++i) {
            double& a = acc[static_cast<std::size_t>(off[1] + i * st[1])];
            const double v = std::abs(static_cast<double>(xp[off[0] + i * st[0]]));
            if (std::isnan(v) || std::isnan(a)) a = std::numeric_limits<double>::quiet_NaN();
            else if (p == 0) a += v != 0;
            else if (p == 1) a += v;
            else if (p == 2) a += v * v;
            else if (std::isinf(p)) a = p > 0 ? std::max(a, v) : std::min(a, v);
            else a += std::pow(v, p);
        }
    });
    T* o = out.data<T>();
    for (std::size_t k = 0; k < acc.size(); ++k) {
        double r = acc[k];
        if (count == 0) r = 0;
        else if (p == 2) r = std::sqrt(r);
        else if (p != 0 && p != 1 && !std::isinf(p)) r = std::pow(r, 1.0 / p);
        o[k] = static_cast<T>(r);
    }
    return out;
}

}  // namespace tapegrad::kernels
