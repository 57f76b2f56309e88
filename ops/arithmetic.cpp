#include "ops/arithmetic.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/autograd.hpp"
#include "engine/convert.hpp"
#include "ops/activation.hpp"
#include "ops/compare.hpp"
#include "ops/detail/op.hpp"
#include "ops/detail/scalar.hpp"
#include "ops/kernels/elementwise.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// f(x, y) in T; integers in the unsigned type of their width, where overflow wraps around (as
// PyTorch's integer arithmetic does) instead of being undefined behaviour; bools as 0 and 1, the
// result true when nonzero (PyTorch's bool + bool is or, bool * bool is and).
template <class T, class F>
T wrapping(T x, T y, F f) {
    if constexpr (std::is_same_v<T, bool>) {
        return f(int{x}, int{y}) != 0;
    } else if constexpr (std::is_integral_v<T>) {
        using U = std::make_unsigned_t<T>;
        return static_cast<T>(f(static_cast<U>(x), static_cast<U>(y)));
    } else {
        return f(x, y);
    }
}

struct Plus {
    template <class T> T operator()(T x, T y) const { return wrapping(x, y, [](auto u, auto v) { return u + v; }); }
};
struct Minus {
    template <class T> T operator()(T x, T y) const { return wrapping(x, y, [](auto u, auto v) { return u - v; }); }
};
struct Times {
    template <class T> T operator()(T x, T y) const { return wrapping(x, y, [](auto u, auto v) { return u * v; }); }
};
// -x; for floating point not 0 - x, which would turn -0 into +0. Bools are refused by the entry.
template <class T>
T negate(T x) {
    if constexpr (std::is_same_v<T, bool>) throw std::logic_error("negate: bool reached the kernel");
    else if constexpr (std::is_integral_v<T>) return Minus{}(T(0), x);
    else return -x;
}

// PyTorch refuses subtraction with a bool tensor (and neg's entry refuses negating one): a mask is
// inverted with logical_not, not with a minus.
void refuse_bool_subtraction(const Tensor& a, const Tensor& b) {
    if ((a.defined() && a.dtype() == kBool) || (b.defined() && b.dtype() == kBool))
        throw std::invalid_argument("sub: subtraction with a bool tensor is not supported (inputs " + describe(a) + " and " +
                                    describe(b) + "); use logical_xor for two masks, or convert with .to(tg::kInt64)");
}
// x + alpha y, alpha already in T (a whole number for integers).
template <class T>
struct PlusScaled {
    T alpha;
    T operator()(T x, T y) const { return wrapping(x, y, [al = alpha](auto u, auto v) { return u + static_cast<decltype(v)>(al) * v; }); }
};

// op(a, b) per element of the broadcast shape, in a's dtype (run_op has converted b to it).
template <class Op>
Tensor map_pair(const char* name, const Tensor& a, const Tensor& b, Op op) {
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
    return dispatch_all(a.dtype(), [&]<class T>() {
        return kernels::map_binary<T>(a, b, shape, [op](T x, T y) { return op(x, y); });
    });
}

// alpha in T: PyTorch refuses a floating-point alpha for integer tensors; a double that is a whole
// number within T's range is taken as the integer it is.
template <class T>
T alpha_as(double alpha, DType dtype) {
    if constexpr (std::is_integral_v<T>) {
        if (std::trunc(alpha) != alpha)
            throw std::invalid_argument("add: alpha " + std::to_string(alpha) + " is not a whole number, but the inputs are " +
                                        dtype_name(dtype) + " (PyTorch refuses a floating-point alpha for integer tensors); "
                                        "pass a whole alpha, or convert the inputs with .to(tg::kFloat32)");
        return checked_cast<T>(alpha, "add");
    } else {
        return static_cast<T>(alpha);
    }
}

// ---------------------------------------------------------------- the definitions

// d(a+b)/da = 1, d(a+b)/db = 1; the engine sums broadcast dimensions down.
struct Add {
    static constexpr const char* name = "add";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Elementwise arithmetic",
        .op = "add",
        .forward = "y = a + b",
        .gradient = "da = g, db = g",
        .shapes = "a, b broadcast to y"};
    static constexpr DTypes dtypes = DTypes::Promote;
    Tensor forward(const OpContext&, const Tensor& a, const Tensor& b) { return map_pair(name, a, b, Plus{}); }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {g, g}; }
};

// d(a + alpha b)/da = 1, d/db = alpha.
struct AddScaled {
    static constexpr const char* name = "add";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Elementwise arithmetic",
        .op = "add (alpha)",
        .forward = "y = a + α b",
        .gradient = "da = g, db = α g",
        .shapes = "a, b broadcast to y"};
    static constexpr DTypes dtypes = DTypes::Promote;
    double alpha;
    Tensor forward(const OpContext&, const Tensor& a, const Tensor& b) {
        const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
        return dispatch_all(a.dtype(), [&]<class T>() {
            return kernels::map_binary<T>(a, b, shape, PlusScaled<T>{alpha_as<T>(alpha, a.dtype())});
        });
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const { return {g, needs[1] ? g * alpha : Tensor()}; }
};

// d(a-b)/da = 1, d(a-b)/db = -1.
struct Sub {
    static constexpr const char* name = "sub";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Elementwise arithmetic",
        .op = "sub",
        .forward = "y = a − b",
        .gradient = "da = g, db = −g",
        .shapes = "a, b broadcast to y"};
    static constexpr DTypes dtypes = DTypes::Promote;
    Tensor forward(const OpContext&, const Tensor& a, const Tensor& b) { return map_pair(name, a, b, Minus{}); }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const { return {g, needs[1] ? neg(g) : Tensor()}; }
};

// d(ab)/da = b, d(ab)/db = a. Each factor is saved only if the other one needs its gradient.
struct Mul {
    static constexpr const char* name = "mul";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Elementwise arithmetic",
        .op = "mul",
        .forward = "y = a ⊙ b",
        .gradient = "da = g ⊙ b, db = g ⊙ a",
        .shapes = "a, b broadcast to y"};
    static constexpr DTypes dtypes = DTypes::Promote;
    SavedTensor a, b;
    Tensor forward(const OpContext& ctx, const Tensor& x, const Tensor& y) {
        if (ctx.recording) {
            if (y.requires_grad()) a = x;
            if (x.requires_grad()) b = y;
        }
        return map_pair(name, x, y, Times{});
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        return {needs[0] ? g * b.unpack() : Tensor(), needs[1] ? g * a.unpack() : Tensor()};
    }
    // Both gradients in one pass over g when everything has one dense layout; the spec otherwise.
    std::vector<Tensor> fused_backward(Kernels kernels, const Tensor& g, const GradMask& needs) const {
        if (is_reference(kernels) || !needs[0] || !needs[1]) return backward(g, needs);
        const Tensor x = a.unpack(), y = b.unpack();
        if (!kernels::same_dense_layout(g, x) || !kernels::same_dense_layout(g, y)) return backward(g, needs);
        const auto grads = dispatch(g.dtype(), [&]<class T>() { return kernels::product_gradients<T>(g, x, y); });
        return {grads[0], grads[1]};
    }
};

// d(a/b)/da = 1/b, d(a/b)/db = -a/b^2. The output is not saved: an in-place write to it later
// would change it under the backward.
struct Div {
    static constexpr const char* name = "div";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Elementwise arithmetic",
        .op = "div",
        .forward = "y = a / b",
        .gradient = "da = g / b, db = −g ⊙ a / b² (a and b are saved, not y, which a later in-place write could change)",
        .shapes = "a, b broadcast to y"};
    static constexpr DTypes dtypes = DTypes::PromoteToFloating;
    SavedTensor a, b;
    Tensor forward(const OpContext& ctx, const Tensor& x, const Tensor& y) {
        if (ctx.recording) {
            b = y;
            if (y.requires_grad()) a = x;
        }
        const Shape shape = broadcast_shapes(x.shape(), y.shape(), name);
        return dispatch(x.dtype(), [&]<class T>() { return kernels::map_binary<T>(x, y, shape, [](T u, T v) { return u / v; }); });
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        const Tensor bv = b.unpack();
        const Tensor ga = g / bv;
        return {needs[0] ? ga : Tensor(), needs[1] ? -(ga * a.unpack() / bv) : Tensor()};
    }
};

// d(-a)/da = -1.
struct Neg {
    static constexpr const char* name = "neg";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Elementwise arithmetic",
        .op = "neg",
        .forward = "y = −x",
        .gradient = "dx = −g",
        .shapes = "x = y"};
    static constexpr DTypes dtypes = DTypes::KeepIntegers;
    Tensor forward(const OpContext&, const Tensor& x) {
        return dispatch_all(x.dtype(), [&]<class T>() { return kernels::map_unary<T>(x, [](T v) { return negate(v); }); });
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {-g}; }
};

// x^e for integers: by squaring, wrapping on overflow as PyTorch's integer pow does. A negative
// e gives what PyTorch's powi gives: 1 for x = 1, ±1 for x = -1, 0 for every other x (0 included).
template <class T>
T integer_power(T x, T e) {
    if (e < 0) return x == 1 ? T(1) : x == -1 ? T(e % 2 == 0 ? 1 : -1) : T(0);
    T result = 1;
    for (; e > 0; e >>= 1) {
        if (e & 1) result = Times{}(result, x);
        x = Times{}(x, x);
    }
    return result;
}

// A constant (no history) of the broadcast shape of a and b: 1 where pred(a, b), else 0.
template <class Pred>
Tensor indicator(const Tensor& a, const Tensor& b, Pred pred) {
    const Tensor u = a.detach(), v = b.detach();
    const Shape shape = broadcast_shapes(u.shape(), v.shape(), "pow");
    return dispatch(u.dtype(), [&]<class T>() { return kernels::map_binary<T>(u, v, shape, [pred](T x, T e) { return T(pred(x, e)); }); });
}

// y = a^b: da = g b a^(b-1), 0 where b = 0; db = g a^b log a, 0 where a = 0 and b >= 0 (PyTorch's
// pow_backward_self and pow_backward_exponent). Those zeros come from constants that move the
// formula to a point where it gives 0: exponent 0 (b a^0 = 0 for b = 0) and log 1 = 0.
struct PowTensor {
    static constexpr const char* name = "pow";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Activations (elementwise)",
        .op = "pow (tensor exponent)",
        .forward = "y = a^b",
        .gradient = "da = g ⊙ b a^{b−1}, 0 where b = 0; db = g ⊙ a^b ln a, 0 where a = 0 and b ≥ 0 (PyTorch's "
                    "pow_backward_self / pow_backward_exponent)",
        .shapes = "a, b broadcast to y, promoted dtype"};
    static constexpr DTypes dtypes = DTypes::Promote;
    SavedTensor a, b;
    Tensor forward(const OpContext& ctx, const Tensor& x, const Tensor& e) {
        if (ctx.recording) {
            a = x;
            b = e;
        }
        const Shape shape = broadcast_shapes(x.shape(), e.shape(), name);
        if (x.dtype() == kBool)
            throw std::invalid_argument("pow: this op does not take a bool base with a bool exponent (" + describe(x) + ", " +
                                        describe(e) + "), as PyTorch; convert one with .to(tg::kInt64)");
        return dispatch_all(x.dtype(), [&]<class T>() {
            if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
                return kernels::map_binary<T>(x, e, shape, [](T u, T v) { return integer_power(u, v); });
            } else if constexpr (std::is_same_v<T, bool>) {
                return Tensor();  // refused above
            } else {
                return kernels::map_binary<T>(x, e, shape, [](T u, T v) { return std::pow(u, v); });
            }
        });
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        const Tensor x = a.unpack(), e = b.unpack();
        Tensor ga, gb;
        // masked, not multiplied by 0: an exponent of -0.0 gives +0, as PyTorch's where does
        if (needs[0]) ga = masked_fill(g * e * pow(x, e - 1.0 + indicator(x, e, [](auto, auto p) { return p == 0; })), eq(e, 0.0), 0.0);
        if (needs[1]) gb = g * pow(x, e) * log(x + indicator(x, e, [](auto base, auto p) { return base == 0 && p >= 0; }));
        return {ga, gb};
    }
};

// d(sum_i x_i)/dx_i = 1 for every i.
struct AddN {
    static constexpr const char* name = "add_n";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Elementwise arithmetic",
        .op = "add_n",
        .forward = "y = Σ_i x_i",
        .gradient = "dx_i = g",
        .shapes = "all x_i the same shape as y"};
    static constexpr DTypes dtypes = DTypes::Promote;
    std::size_t n = 0;
    Tensor forward(const OpContext&, const std::vector<Tensor>& tensors) {
        n = tensors.size();
        for (std::size_t i = 1; i < n; ++i)
            if (tensors[i].shape() != tensors[0].shape())
                throw std::invalid_argument("add_n: tensor " + std::to_string(i) + " has shape " + to_string(tensors[i].shape()) +
                                            " but tensor 0 has " + to_string(tensors[0].shape()) + "; all shapes must match");
        if (n == 1) {
            Tensor copy = empty(tensors[0].shape(), {.dtype = tensors[0].dtype()});
            copy_into(copy, tensors[0]);
            return copy;
        }
        Tensor sum = map_pair(name, tensors[0], tensors[1], Plus{});
        for (std::size_t i = 2; i < n; ++i) sum = map_pair(name, sum, tensors[i], Plus{});
        return sum;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        std::vector<Tensor> grads(n);
        for (std::size_t i = 0; i < n; ++i)
            if (needs[i]) grads[i] = g;
        return grads;
    }
};

// A double scalar as a 0-dim tensor: of a floating-point tensor's dtype, or float32 with an integer
// tensor, PyTorch's result type for an integer tensor and a Python float (int64 [1, 2] + 1.5 is
// float32 [2.5, 3.5]); the scalar is never converted to an integer type.
// An undefined tensor gets a float32 scalar and the op refuses it by name.
Tensor scalar_for(double s, const Tensor& a) {
    return scalar_tensor(s, {.dtype = a.defined() && is_floating_point(a.dtype()) ? a.dtype() : kFloat32});
}

}  // namespace

// An integer scalar as a 0-dim tensor: the double's for a floating-point tensor, else of the integer
// tensor's dtype, int64 for a bool tensor (libtorch's integral Scalar: int64 [1, 2] * 2 is int64).
Tensor detail::scalar_for(IntegerScalar s, const Tensor& a) {
    if (a.defined() && is_floating_point(a.dtype())) return tapegrad::scalar_for(static_cast<double>(s.value), a);
    return from_vector(std::vector<int64_t>{s.value}, {}, {.dtype = a.defined() && a.dtype() != kBool ? a.dtype() : kInt64});
}

// ---------------------------------------------------------------- the ops

Tensor add(const Tensor& a, const Tensor& b, SourceLocation loc) { return detail::run_op(Add{}, loc, a, b); }
Tensor add(const Tensor& a, const Tensor& b, double alpha, SourceLocation loc) {
    return detail::run_op(AddScaled{alpha}, loc, a, b);
}
Tensor sub(const Tensor& a, const Tensor& b, SourceLocation loc) {
    refuse_bool_subtraction(a, b);
    return detail::run_op(Sub{}, loc, a, b);
}
Tensor mul(const Tensor& a, const Tensor& b, SourceLocation loc) { return detail::run_op(Mul{}, loc, a, b); }
Tensor div(const Tensor& a, const Tensor& b, SourceLocation loc) { return detail::run_op(Div{}, loc, a, b); }
Tensor neg(const Tensor& a, SourceLocation loc) { return detail::run_op(Neg{}, loc, a); }
Tensor pow(const Tensor& a, const Tensor& b, SourceLocation loc) { return detail::run_op(PowTensor{}, loc, a, b); }
// A floating-point tensor takes the scalar exponent's op (its derivative needs no exponent
// gradient); an integer one stays integer, and refuses a negative scalar power, as PyTorch (a
// tensor of negative exponents it computes, as powi does).
Tensor pow(const Tensor& x, IntegerScalar exponent, SourceLocation loc) {
    if (x.defined() && is_floating_point(x.dtype())) return pow(x, static_cast<double>(exponent.value), loc);
    if (x.defined() && exponent.value < 0)
        throw std::invalid_argument("pow: integers to negative integer powers are not allowed (exponent " +
                                    std::to_string(exponent.value) + ", base " + describe(x) + "); convert the base with .to(tg::kFloat32)");
    return pow(x, detail::scalar_for(exponent, x), loc);
}

Tensor add_n(const std::vector<Tensor>& tensors, SourceLocation loc) {
    if (tensors.empty()) throw std::invalid_argument("add_n: needs at least one tensor");
    return detail::run_op_list(AddN{}, loc, tensors);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) { return add(a, scalar_for(s, a)); }
Tensor operator-(const Tensor& a, double s) { return sub(a, scalar_for(s, a)); }
Tensor operator*(const Tensor& a, double s) { return mul(a, scalar_for(s, a)); }
Tensor operator/(const Tensor& a, double s) { return div(a, scalar_for(s, a)); }
Tensor operator+(const Tensor& a, IntegerScalar s) { return add(a, detail::scalar_for(s, a)); }
Tensor operator-(const Tensor& a, IntegerScalar s) { return sub(a, detail::scalar_for(s, a)); }
Tensor operator*(const Tensor& a, IntegerScalar s) { return mul(a, detail::scalar_for(s, a)); }
Tensor operator+(IntegerScalar s, const Tensor& a) { return add(detail::scalar_for(s, a), a); }
Tensor operator-(IntegerScalar s, const Tensor& a) { return sub(detail::scalar_for(s, a), a); }
Tensor operator*(IntegerScalar s, const Tensor& a) { return mul(detail::scalar_for(s, a), a); }
Tensor operator+(double s, const Tensor& a) { return add(scalar_for(s, a), a); }
Tensor operator-(double s, const Tensor& a) { return sub(scalar_for(s, a), a); }
Tensor operator*(double s, const Tensor& a) { return mul(scalar_for(s, a), a); }
Tensor operator/(double s, const Tensor& a) { return div(scalar_for(s, a), a); }

// Tensor's member spellings.
Tensor Tensor::add(const Tensor& other, double alpha) const {
    return alpha == 1.0 ? tapegrad::add(*this, other) : tapegrad::add(*this, other, alpha);
}
Tensor Tensor::add(double other) const { return *this + other; }
Tensor Tensor::sub(const Tensor& other) const { return tapegrad::sub(*this, other); }
Tensor Tensor::sub(double other) const { return *this - other; }
Tensor Tensor::mul(const Tensor& other) const { return tapegrad::mul(*this, other); }
Tensor Tensor::mul(double other) const { return *this * other; }
Tensor Tensor::add(IntegerScalar other) const { return *this + other; }
Tensor Tensor::sub(IntegerScalar other) const { return *this - other; }
Tensor Tensor::mul(IntegerScalar other) const { return *this * other; }
Tensor Tensor::pow(IntegerScalar exponent) const { return tapegrad::pow(*this, exponent); }
Tensor Tensor::div(const Tensor& other) const { return tapegrad::div(*this, other); }
Tensor Tensor::div(double other) const { return *this / other; }
Tensor Tensor::neg() const { return tapegrad::neg(*this); }
Tensor Tensor::pow(const Tensor& exponent) const { return tapegrad::pow(*this, exponent); }

}  // namespace tapegrad
