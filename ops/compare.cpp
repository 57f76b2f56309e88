#include "ops/compare.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/autograd.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/mask.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// ---------------------------------------------------------------- comparisons and logical ops

// pred(a, b) per element of the broadcast shape, a and b already in their common dtype (run_op has
// promoted them). Not differentiable: no backward.
template <class Pred>
struct Compare {
    static constexpr const char* name = Pred::name;
    static constexpr DTypes dtypes = DTypes::Promote;
    Tensor forward(const OpContext&, const Tensor& a, const Tensor& b) {
        const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
        return dispatch_all(a.dtype(), [&]<class T>() { return kernels::predicate_binary<T>(a, b, shape, Pred{}); });
    }
};

struct Eq {
    static constexpr const char* name = "eq";
    template <class T> bool operator()(T x, T y) const { return x == y; }
};
struct Ne {
    static constexpr const char* name = "ne";
    template <class T> bool operator()(T x, T y) const { return x != y; }
};
struct Lt {
    static constexpr const char* name = "lt";
    template <class T> bool operator()(T x, T y) const { return x < y; }
};
struct Le {
    static constexpr const char* name = "le";
    template <class T> bool operator()(T x, T y) const { return x <= y; }
};
struct Gt {
    static constexpr const char* name = "gt";
    template <class T> bool operator()(T x, T y) const { return x > y; }
};
struct Ge {
    static constexpr const char* name = "ge";
    template <class T> bool operator()(T x, T y) const { return x >= y; }
};
// Logical ops see each operand as x != 0 (NaN is true), in the operands' own dtypes.
struct LogicalAnd {
    static constexpr const char* name = "logical_and";
    template <class T> bool operator()(T x, T y) const { return x != T(0) && y != T(0); }
};
struct LogicalOr {
    static constexpr const char* name = "logical_or";
    template <class T> bool operator()(T x, T y) const { return x != T(0) || y != T(0); }
};
struct LogicalXor {
    static constexpr const char* name = "logical_xor";
    template <class T> bool operator()(T x, T y) const { return (x != T(0)) != (y != T(0)); }
};

// not x per element: a bool result. Not differentiable.
struct LogicalNot {
    static constexpr const char* name = "logical_not";
    static constexpr DTypes dtypes = DTypes::KeepAll;
    Tensor forward(const OpContext&, const Tensor& x) {
        return dispatch_all(x.dtype(), [&]<class T>() { return kernels::predicate_unary<T>(x, [](T v) { return v == T(0); }); });
    }
};

void refuse_floating(const char* op, const Tensor& t) {
    if (is_floating_point(t.dtype()))
        throw std::invalid_argument(std::string(op) + ": takes integer or bool tensors, got " + describe(t) +
                                    "; for masks compare first (x > 0), or convert with .to(tg::kInt64)");
}

// a op b bitwise, in the promoted integer or bool dtype. Not differentiable.
template <class Op>
struct Bitwise {
    static constexpr const char* name = Op::name;
    static constexpr DTypes dtypes = DTypes::Promote;
    Tensor forward(const OpContext&, const Tensor& a, const Tensor& b) {
        refuse_floating(name, a);
        const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
        Tensor out = empty(shape, {.dtype = a.dtype()});
        dispatch_all(a.dtype(), [&]<class T>() {
            if constexpr (std::is_integral_v<T>) {
                const Strides sa = broadcast_strides(a.shape(), a.strides(), shape);
                const Strides sb = broadcast_strides(b.shape(), b.strides(), shape);
                const T* ap = a.data<T>();
                const T* bp = b.data<T>();
                T* op = out.data<T>();
                for_each_run_unordered<3>(shape, {out.strides(), sa, sb}, [&](auto off, int64_t n, auto st) {
                    for (int64_t i = 0; i < n; ++i) op[off[0] + i * st[0]] = static_cast<T>(Op{}(ap[off[1] + i * st[1]], bp[off[2] + i * st[2]]));
                });
            }
        });
        return out;
    }
};
struct BitAnd {
    static constexpr const char* name = "bitwise_and";
    template <class T> auto operator()(T x, T y) const { return x & y; }
};
struct BitOr {
    static constexpr const char* name = "bitwise_or";
    template <class T> auto operator()(T x, T y) const { return x | y; }
};
struct BitXor {
    static constexpr const char* name = "bitwise_xor";
    template <class T> auto operator()(T x, T y) const { return x ^ y; }
};

struct BitwiseNot {
    static constexpr const char* name = "bitwise_not";
    static constexpr DTypes dtypes = DTypes::KeepAll;
    Tensor forward(const OpContext&, const Tensor& x) {
        refuse_floating(name, x);
        if (x.dtype() == kBool) return kernels::predicate_unary<bool>(x, [](bool v) { return !v; });
        Tensor out = empty(x.shape(), {.dtype = x.dtype()});
        dispatch_all(x.dtype(), [&]<class T>() {
            if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
                const T* xp = x.data<T>();
                T* op = out.data<T>();
                for_each_run_unordered<2>(x.shape(), {out.strides(), x.strides()}, [&](auto off, int64_t n, auto st) {
                    for (int64_t i = 0; i < n; ++i) op[off[0] + i * st[0]] = static_cast<T>(~xp[off[1] + i * st[1]]);
                });
            }
        });
        return out;
    }
};

// PyTorch's wrapped scalar for a comparison: in a floating-point tensor's dtype; with an integer
// or bool tensor an int64 when the value is a whole number that int64 holds, else float32.
Tensor comparison_scalar(double s, const Tensor& t) {
    if (t.defined() && is_floating_point(t.dtype())) return scalar_tensor(s, {.dtype = t.dtype()});
    const bool whole = std::trunc(s) == s && std::abs(s) < 9.2e18;
    return scalar_tensor(s, {.dtype = whole ? kInt64 : kFloat32});
}

template <class Pred>
Tensor compare(const Tensor& a, const Tensor& b, const SourceLocation& loc) {
    return detail::run_op(Compare<Pred>{}, loc, a, b);
}

// ---------------------------------------------------------------- where and masked_fill

void check_mask(const char* op, const char* what, const Tensor& mask) {
    if (!mask.defined()) throw std::invalid_argument(std::string(op) + ": the " + what + " is undefined");
    if (mask.dtype() != kBool)
        throw std::invalid_argument(std::string(op) + ": expected the " + what + " to be a bool tensor, got " + describe(mask) +
                                    "; make one with a comparison (x > 0) or .to(tg::kBool)");
}

// y = cond ? a : b: da = g where cond (0 elsewhere), db = g where !cond.
struct Where {
    static constexpr const char* name = "where";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Masks and selection",
        .op = "where",
        .forward = "y = c ? a : b (c bool; a, b promoted)",
        .gradient = "da = g ⊙ [c], db = g ⊙ [¬c] (masked_fill of g)",
        .shapes = "c, a, b broadcast to y"};
    static constexpr DTypes dtypes = DTypes::Promote;
    SavedTensor cond;
    Tensor forward(const OpContext& ctx, const Tensor& a, const Tensor& b) {
        const Tensor c = cond.unpack();
        const Shape shape = broadcast_shapes(broadcast_shapes(c.shape(), a.shape(), name), b.shape(), name);
        if (!ctx.recording) cond = SavedTensor();
        return dispatch_all(a.dtype(), [&]<class T>() { return kernels::select<T>(c, a, b, shape); });
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        const Tensor c = cond.unpack();
        return {needs[0] ? masked_fill(g, logical_not(c), 0.0) : Tensor(), needs[1] ? masked_fill(g, c, 0.0) : Tensor()};
    }
};

// y = mask ? value : x, in x's dtype: dx = g where !mask.
struct MaskedFill {
    static constexpr const char* name = "masked_fill";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Masks and selection",
        .op = "masked_fill / masked_fill_",
        .forward = "y = m ? v : x (v converted to x's dtype)",
        .gradient = "dx = g ⊙ [¬m]",
        .shapes = "m broadcasts to x (masked_fill_: to self's shape)"};
    static constexpr DTypes dtypes = DTypes::KeepAll;
    SavedTensor mask;
    double value;
    Tensor forward(const OpContext& ctx, const Tensor& x) {
        const Tensor m = mask.unpack();
        const Shape shape = broadcast_shapes(x.shape(), m.shape(), name);
        if (!ctx.recording) mask = SavedTensor();
        const Tensor fill = scalar_tensor(value, {.dtype = x.dtype()});
        return dispatch_all(x.dtype(), [&]<class T>() { return kernels::select<T>(m, fill, x, shape); });
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {masked_fill(g, mask.unpack(), 0.0)}; }
};

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b, SourceLocation loc) { return compare<Eq>(a, b, loc); }
Tensor ne(const Tensor& a, const Tensor& b, SourceLocation loc) { return compare<Ne>(a, b, loc); }
Tensor lt(const Tensor& a, const Tensor& b, SourceLocation loc) { return compare<Lt>(a, b, loc); }
Tensor le(const Tensor& a, const Tensor& b, SourceLocation loc) { return compare<Le>(a, b, loc); }
Tensor gt(const Tensor& a, const Tensor& b, SourceLocation loc) { return compare<Gt>(a, b, loc); }
Tensor ge(const Tensor& a, const Tensor& b, SourceLocation loc) { return compare<Ge>(a, b, loc); }
Tensor eq(const Tensor& a, double b, SourceLocation loc) { return compare<Eq>(a, comparison_scalar(b, a), loc); }
Tensor ne(const Tensor& a, double b, SourceLocation loc) { return compare<Ne>(a, comparison_scalar(b, a), loc); }
Tensor lt(const Tensor& a, double b, SourceLocation loc) { return compare<Lt>(a, comparison_scalar(b, a), loc); }
Tensor le(const Tensor& a, double b, SourceLocation loc) { return compare<Le>(a, comparison_scalar(b, a), loc); }
Tensor gt(const Tensor& a, double b, SourceLocation loc) { return compare<Gt>(a, comparison_scalar(b, a), loc); }
Tensor ge(const Tensor& a, double b, SourceLocation loc) { return compare<Ge>(a, comparison_scalar(b, a), loc); }

Tensor logical_and(const Tensor& a, const Tensor& b, SourceLocation loc) { return compare<LogicalAnd>(a, b, loc); }
Tensor logical_or(const Tensor& a, const Tensor& b, SourceLocation loc) { return compare<LogicalOr>(a, b, loc); }
Tensor logical_xor(const Tensor& a, const Tensor& b, SourceLocation loc) { return compare<LogicalXor>(a, b, loc); }
Tensor logical_not(const Tensor& x, SourceLocation loc) { return detail::run_op(LogicalNot{}, loc, x); }
Tensor bitwise_and(const Tensor& a, const Tensor& b, SourceLocation loc) { return detail::run_op(Bitwise<BitAnd>{}, loc, a, b); }
Tensor bitwise_or(const Tensor& a, const Tensor& b, SourceLocation loc) { return detail::run_op(Bitwise<BitOr>{}, loc, a, b); }
Tensor bitwise_xor(const Tensor& a, const Tensor& b, SourceLocation loc) { return detail::run_op(Bitwise<BitXor>{}, loc, a, b); }
Tensor bitwise_not(const Tensor& x, SourceLocation loc) { return detail::run_op(BitwiseNot{}, loc, x); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b, SourceLocation loc) {
    check_mask("where", "condition", cond);
    return detail::run_op(Where{.cond = cond}, loc, a, b);
}
Tensor where(const Tensor& cond, const Tensor& a, double b, SourceLocation loc) {
    return where(cond, a, scalar_tensor(b, {.dtype = a.defined() && is_floating_point(a.dtype()) ? a.dtype() : kFloat32}), loc);
}
Tensor where(const Tensor& cond, double a, const Tensor& b, SourceLocation loc) {
    return where(cond, scalar_tensor(a, {.dtype = b.defined() && is_floating_point(b.dtype()) ? b.dtype() : kFloat32}), b, loc);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value, SourceLocation loc) {
    check_mask("masked_fill", "mask", mask);
    return detail::run_op(MaskedFill{.mask = mask, .value = value}, loc, x);
}

Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, double b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, double b) { return ne(a, b); }
Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }
// s op t is t op' s with op' the mirrored comparison.
Tensor operator==(double a, const Tensor& b) { return eq(b, a); }
Tensor operator!=(double a, const Tensor& b) { return ne(b, a); }
Tensor operator<(double a, const Tensor& b) { return gt(b, a); }
Tensor operator<=(double a, const Tensor& b) { return ge(b, a); }
Tensor operator>(double a, const Tensor& b) { return lt(b, a); }
Tensor operator>=(double a, const Tensor& b) { return le(b, a); }
Tensor operator&(const Tensor& a, const Tensor& b) { return bitwise_and(a, b); }
Tensor operator|(const Tensor& a, const Tensor& b) { return bitwise_or(a, b); }
Tensor operator^(const Tensor& a, const Tensor& b) { return bitwise_xor(a, b); }
Tensor operator~(const Tensor& x) { return bitwise_not(x); }
Tensor operator!(const Tensor& x) { return logical_not(x); }

// libtorch's members.
Tensor Tensor::eq(const Tensor& other) const { return tapegrad::eq(*this, other); }
Tensor Tensor::ne(const Tensor& other) const { return tapegrad::ne(*this, other); }
Tensor Tensor::lt(const Tensor& other) const { return tapegrad::lt(*this, other); }
Tensor Tensor::le(const Tensor& other) const { return tapegrad::le(*this, other); }
Tensor Tensor::gt(const Tensor& other) const { return tapegrad::gt(*this, other); }
Tensor Tensor::ge(const Tensor& other) const { return tapegrad::ge(*this, other); }
Tensor Tensor::eq(double other) const { return tapegrad::eq(*this, other); }
Tensor Tensor::ne(double other) const { return tapegrad::ne(*this, other); }
Tensor Tensor::lt(double other) const { return tapegrad::lt(*this, other); }
Tensor Tensor::le(double other) const { return tapegrad::le(*this, other); }
Tensor Tensor::gt(double other) const { return tapegrad::gt(*this, other); }
Tensor Tensor::ge(double other) const { return tapegrad::ge(*this, other); }

}  // namespace tapegrad
