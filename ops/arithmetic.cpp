#include "ops/arithmetic.hpp"

#include "engine/autograd.hpp"
#include "ops/kernels/elementwise.hpp"

namespace tapegrad {
namespace {

void check_binary(const Tensor& a, const Tensor& b, const char* op) {
    if (!a.defined() || !b.defined()) throw std::invalid_argument(std::string(op) + ": an operand is an undefined tensor");
    if (a.dtype() != b.dtype())
        throw std::invalid_argument(std::string(op) + ": operands " + describe(a) + " and " + describe(b) +
                                    " have different dtypes; convert one with .to()");
}

template <class F>
Tensor binary(const Tensor& a, const Tensor& b, const char* op, F f) {
    check_binary(a, b, op);
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
    return dispatch(a.dtype(), [&]<class T>() { return kernels::map_binary<T>(a, b, shape, f); });
}

// An integer tensor with a double scalar computes in float32, PyTorch's result type for an integer
// tensor and a floating-point scalar (int64 [1, 2] + 1.5 is float32 [2.5, 3.5]): the scalar is
// never converted to an integer type.
DType computing_dtype(const Tensor& a) { return is_floating_point(a.dtype()) ? a.dtype() : kFloat32; }
Tensor floating(const Tensor& a) { return a.to(computing_dtype(a)); }
Tensor scalar_like(double s, const Tensor& a) { return scalar_tensor(s, {.dtype = computing_dtype(a)}); }

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
    Tensor out = binary(a, b, "add", [](auto x, auto y) { return x + y; });
    // d(a+b)/da = 1, d(a+b)/db = 1; the engine sums broadcast dims down.
    return record("add", out, {a, b}, [](const Tensor& g, const GradMask&) { return std::vector<Tensor>{g, g}; });
}

Tensor add(const Tensor& a, const Tensor& b, double alpha) {
    check_binary(a, b, "add");
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), "add");
    Tensor out = dispatch(a.dtype(), [&]<class T>() {
        const T al = static_cast<T>(alpha);
        return kernels::map_binary<T>(a, b, shape, [al](T x, T y) { return x + al * y; });
    });
    return record("add", out, {a, b},
                  [alpha](const Tensor& g, const GradMask& needs) {
                      return std::vector<Tensor>{g, needs[1] ? g * alpha : Tensor()};
                  });
}

Tensor add_n(const std::vector<Tensor>& tensors) {
    if (tensors.empty()) throw std::invalid_argument("add_n: needs at least one tensor");
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        check_binary(tensors[0], tensors[i], "add_n");
        if (tensors[i].shape() != tensors[0].shape())
            throw std::invalid_argument("add_n: tensor " + std::to_string(i) + " has shape " + to_string(tensors[i].shape()) +
                                        " but tensor 0 has " + to_string(tensors[0].shape()) + "; all shapes must match");
    }
    Tensor out = empty(tensors[0].shape(), {.dtype = tensors[0].dtype()});
    copy_into(out, tensors[0]);
    for (std::size_t i = 1; i < tensors.size(); ++i) add_into(out, tensors[i]);
    const std::size_t n = tensors.size();
    // d(sum_i x_i)/dx_i = 1 for every i.
    return record("add_n", out, tensors, [n](const Tensor& g, const GradMask& needs) {
        std::vector<Tensor> grads(n);
        for (std::size_t i = 0; i < n; ++i)
            if (needs[i]) grads[i] = g;
        return grads;
    });
}

Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor out = binary(a, b, "sub", [](auto x, auto y) { return x - y; });
    return record("sub", out, {a, b},
                  [](const Tensor& g, const GradMask& needs) { return std::vector<Tensor>{g, needs[1] ? neg(g) : Tensor()}; });
}

Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor out = binary(a, b, "mul", [](auto x, auto y) { return x * y; });
    if (!needs_grad({a, b})) return out;
    // d(ab)/da = b, d(ab)/db = a. Save each factor only if the other one needs its gradient.
    SavedTensor sa = b.requires_grad() ? SavedTensor(a) : SavedTensor();
    SavedTensor sb = a.requires_grad() ? SavedTensor(b) : SavedTensor();
    return record("mul", out, {a, b}, [sa, sb](const Tensor& g, const GradMask& needs) {
        return std::vector<Tensor>{needs[0] ? mul(g, sb.unpack()) : Tensor(), needs[1] ? mul(g, sa.unpack()) : Tensor()};
    });
}

Tensor div(const Tensor& a, const Tensor& b) {
    Tensor out = binary(a, b, "div", [](auto x, auto y) { return x / y; });
    if (!needs_grad({a, b})) return out;
    // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2. The output is not saved: an in-place write to it later
    // would change it under the backward.
    const SavedTensor sb(b);
    const SavedTensor sa = b.requires_grad() ? SavedTensor(a) : SavedTensor();
    return record("div", out, {a, b}, [sa, sb](const Tensor& g, const GradMask& needs) {
        const Tensor& bv = sb.unpack();
        Tensor ga = div(g, bv);
        return std::vector<Tensor>{needs[0] ? ga : Tensor(), needs[1] ? neg(div(mul(ga, sa.unpack()), bv)) : Tensor()};
    });
}

Tensor neg(const Tensor& a) {
    Tensor out = dispatch(a.dtype(), [&]<class T>() { return kernels::map_unary<T>(a, [](T x) { return -x; }); });
    return record("neg", out, {a}, [](const Tensor& g, const GradMask&) { return std::vector<Tensor>{neg(g)}; });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) { return add(floating(a), scalar_like(s, a)); }
Tensor operator-(const Tensor& a, double s) { return sub(floating(a), scalar_like(s, a)); }
Tensor operator*(const Tensor& a, double s) { return mul(floating(a), scalar_like(s, a)); }
Tensor operator/(const Tensor& a, double s) { return div(floating(a), scalar_like(s, a)); }
Tensor operator+(double s, const Tensor& a) { return add(scalar_like(s, a), floating(a)); }
Tensor operator-(double s, const Tensor& a) { return sub(scalar_like(s, a), floating(a)); }
Tensor operator*(double s, const Tensor& a) { return mul(scalar_like(s, a), floating(a)); }
Tensor operator/(double s, const Tensor& a) { return div(scalar_like(s, a), floating(a)); }

}  // namespace tapegrad
