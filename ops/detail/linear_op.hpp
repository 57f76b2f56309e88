#pragma once
// A linear op, y = A x (a pooling average, a pad, an interpolation), as a definition for run_op.
// Its derivative is its adjoint, dx = A^T g, and the adjoint's derivative is A again, so both are
// recorded as ops and derivatives of every order exist. The definition gives:
//   name, adjoint_name, dtypes
//   Tensor apply(Kernels, const Tensor& x) const;     A x, the forward
//   Tensor adjoint(Kernels, const Tensor& g) const;   A^T g, the backward
//   Def linear_part() const;                          optional: A without an affine offset (a
//                                                     constant pad's value), what the adjoint's
//                                                     backward applies
//   std::vector<SavedField> saved_state() const;      optional, as for any definition
#include <vector>

#include "ops/detail/op.hpp"

namespace tapegrad::detail {

// The adjoint's own row of docs/derivatives.md, where the adjoint is a public op (put_add).
template <class Def>
constexpr DerivativeDoc adjoint_doc_of() {
    if constexpr (requires { Def::adjoint_doc; }) return Def::adjoint_doc;
    else return {};
}

template <class Def, bool Transposed = false>
struct LinearOp {
    static constexpr const char* name = Transposed ? Def::adjoint_name : Def::name;
    static constexpr detail::DerivativeDoc doc = Transposed ? adjoint_doc_of<Def>() : doc_of<Def>();
    static constexpr DTypes dtypes = Def::dtypes;
    Def def;

    Tensor forward(const OpContext& ctx, const Tensor& x) const {
        return Transposed ? def.adjoint(ctx.kernels, x) : def.apply(ctx.kernels, x);
    }
    // The spec: the other direction, itself recorded.
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const {
        return {run_op(LinearOp<Def, !Transposed>{backward_definition()}, SourceLocation::current(), g)};
    }
    std::vector<Tensor> fused_backward(Kernels kernels, const Tensor& g, const GradMask&) const {
        return {Transposed ? backward_definition().apply(kernels, g) : def.adjoint(kernels, g)};
    }
    std::vector<SavedField> saved_state() const {
        if constexpr (requires { def.saved_state(); }) return def.saved_state();
        else return {};
    }

private:
    Def backward_definition() const {
        if constexpr (Transposed && requires { def.linear_part(); }) return def.linear_part();
        else return def;
    }
};

// Runs the linear op `def` on x.
template <class Def>
Tensor run_linear_op(Def def, const SourceLocation& loc, const Tensor& x) {
    return run_op(LinearOp<Def>{std::move(def)}, loc, x);
}

}  // namespace tapegrad::detail
