#pragma once
// The machinery of elementwise ops y = f(x) (ops/activation.cpp, ops/activation_smooth.cpp): an
// op gives its formulas, and Elementwise turns them into a definition the op entry runs (forward
// in both kernel families, saved state, the spec and the fused backward).
#include <optional>
#include <type_traits>

#include "ops/detail/op.hpp"
#include "ops/kernels/activation_fast.hpp"
#include "ops/kernels/activation_reference.hpp"
#include "ops/kernels/elementwise.hpp"

namespace tapegrad::detail {

// Which tensor the backward needs: the input (log, pow) or the output (relu, sigmoid, tanh, exp,
// sqrt, whose derivatives are cheapest in terms of y).
enum class Saves { Input, Output };

// An op's double parameter (a bound, a slope) in the element type. Converting a captured double
// inside the per-element lambda kept GCC from vectorising the loop: relu6 ran 30x slower than
// relu (4.6 against 0.15 ms forward on [32,96,16,16]).
struct TypedScalar {
    double value;
    float as_float = static_cast<float>(value);
    template <class T>
    T as() const {
        if constexpr (std::is_same_v<T, float>)
            return as_float;
        else
            return static_cast<T>(value);
    }
};

// The definition of an elementwise op y = f(x), from its formulas `Math`:
//   name, dtypes, saves;
//   value(x)            f, per element;
//   grad(g, s)          g f'(x) per element from the saved tensor s: the fused backward;
//   derivative(g, s)    the same in differentiable ops: the spec, which create_graph records;
//   vectorised()        optional: the xsimd kernel that float32's fast path runs, forward and
//                       backward, for ops built on exp, log or tanh.
// The fast path keeps x's dense layout (row-major or channels-last) for the output and, through
// map_binary, for the gradient.
template <class Math>
struct Elementwise {
    static constexpr const char* name = Math::name;
    static constexpr detail::DerivativeDoc doc = detail::doc_of<Math>();
    static constexpr DTypes dtypes = Math::dtypes;
    Math math;
    SavedTensor saved;  // x or y, as Math::saves says
    std::optional<kernels::ActivationKernel> vector_kernel;

    Tensor forward(const OpContext& ctx, const Tensor& x) {
        if constexpr (requires { math.vectorised(); })
            if (!is_reference(ctx.kernels) && x.dtype() == kFloat32) vector_kernel = math.vectorised();
        Tensor out = vector_kernel ? kernels::activation_forward_fast(*vector_kernel, x) : map(ctx.kernels, x);
        if (ctx.recording) saved = Math::saves == Saves::Input ? SavedTensor(x) : SavedTensor::output(out);
        return out;
    }

    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {math.derivative(g, saved.unpack())}; }

    std::vector<SavedField> saved_state() const { return {detail::saved(Math::saves == Saves::Input ? "input" : "result", saved)}; }

    std::vector<Tensor> fused_backward(Kernels kernels, const Tensor& g, const GradMask&) const {
        const Tensor s = saved.unpack();
        if (vector_kernel && g.dtype() == kFloat32) return {kernels::activation_backward_fast(*vector_kernel, g, s)};
        return {dispatch(g.dtype(), [&]<class T>() {
            auto f = [m = math](T gv, T sv) { return static_cast<T>(m.grad(gv, sv)); };
            return is_reference(kernels) ? kernels::map_pair_reference<T>(g, s, f) : kernels::map_binary<T>(g, s, g.shape(), f);
        })};
    }

private:
    Tensor map(Kernels kernels, const Tensor& x) const {
        auto each = [&]<class T>() {
            auto f = [m = math](T v) { return static_cast<T>(m.value(v)); };
            return is_reference(kernels) ? kernels::map_unary_reference<T>(x, f) : kernels::map_unary<T>(x, f);
        };
        if constexpr (Math::dtypes == DTypes::KeepIntegers) return dispatch_all(x.dtype(), each);
        else return dispatch(x.dtype(), each);
    }
};

template <class Math>
Tensor elementwise(Math math, const SourceLocation& loc, const Tensor& x) {
    return detail::run_op(Elementwise<Math>{std::move(math)}, loc, x);
}

// A derivative that is piecewise constant (relu's step, abs's sign): f(s) per element, with no
// history, since its own derivative is 0 almost everywhere (also f'' in FirstDerivative).
template <class F>
Tensor piecewise_constant(const Tensor& s, F f) {
    const Tensor v = s.detach();
    return dispatch(v.dtype(), [&]<class T>() { return kernels::map_unary<T>(v, [f](T e) { return static_cast<T>(f(e)); }); });
}

// f'(x) as an elementwise op whose own derivative is f''(x): the first derivative of an activation
// that the public differentiable ops cannot spell (gelu needs erf), so that the activation's spec
// can be differentiated once more. `Form` gives derivative_name, first(x) and second(x); f'' is
// taken as a constant (no third derivative).
template <class Form>
struct FirstDerivative {
    static constexpr const char* name = Form::derivative_name;
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr Saves saves = Saves::Input;
    Form form;
    template <class T> T value(T v) const { return form.first(v); }
    template <class T> T grad(T g, T v) const { return g * form.second(v); }
    Tensor derivative(const Tensor& g, const Tensor& v) const {
        return g * piecewise_constant(v, [f = form](auto e) { return f.second(e); });
    }
};

template <class Form>
Tensor first_derivative(Form form, const Tensor& x) {
    return elementwise(FirstDerivative<Form>{std::move(form)}, SourceLocation::current(), x);
}

}  // namespace tapegrad::detail
