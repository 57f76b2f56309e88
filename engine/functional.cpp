#include "engine/functional.hpp"

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad {
namespace {

// A fresh leaf with x's values that requires grad, so that f's graph starts at it.
Tensor differentiable_copy(const Tensor& x) {
    Tensor leaf = empty(x.shape(), {.dtype = x.dtype()});
    copy_into(leaf, x);
    return leaf.requires_grad_(true);
}

}  // namespace

Tensor hvp(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& v) {
    if (!x.defined() || !v.defined() || v.shape() != x.shape() || v.dtype() != x.dtype())
        throw std::invalid_argument("hvp: v must have x's shape and dtype, got x " + (x.defined() ? describe(x) : "undefined") +
                                    " and v " + (v.defined() ? describe(v) : "undefined"));
    const GradModeGuard grad_mode(true);
    const Tensor xl = differentiable_copy(x);
    const Tensor y = f(xl);
    if (!y.defined() || y.numel() != 1)
        throw std::invalid_argument("hvp: f must return a scalar, got " + (y.defined() ? describe(y) : "undefined"));
    if (!y.requires_grad()) return zeros(x.shape(), {.dtype = x.dtype()});
    const Tensor g = grad({y}, {xl}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    if (!g.requires_grad()) return zeros(x.shape(), {.dtype = x.dtype()});  // f is linear in x
    const Tensor hv = grad({g}, {xl}, {v.detach()}, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true)[0];
    return hv.defined() ? hv : zeros(x.shape(), {.dtype = x.dtype()});
}

Tensor jacobian(const std::function<Tensor(const Tensor&)>& f, const Tensor& x) {
    if (!x.defined()) throw std::invalid_argument("jacobian: x is undefined");
    const GradModeGuard grad_mode(true);
    const Tensor xl = differentiable_copy(x);
    const Tensor y = f(xl);
    if (!y.defined()) throw std::invalid_argument("jacobian: f returned an undefined tensor");
    Shape shape = y.shape();
    for (int64_t s : x.shape()) shape.push_back(s);
    Tensor jac = zeros(shape, {.dtype = y.dtype()});
    if (!y.requires_grad()) return jac;
    const int64_t rows = y.numel(), cols = x.numel();
    const Tensor flat = as_strided(jac, {rows, cols}, {cols, 1});
    for (int64_t m = 0; m < rows; ++m) {
        Tensor u = zeros(y.shape(), {.dtype = y.dtype()});
        fill_tensor(as_strided(u, {1}, {1}, m), 1.0);
        const Tensor row = grad({y}, {xl}, {u}, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true)[0];
        if (row.defined()) copy_into(as_strided(flat, x.shape(), contiguous_strides(x.shape()), m * cols), row);
    }
    return jac;
}

}  // namespace tapegrad
