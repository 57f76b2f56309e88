#pragma once
// For op files that make views: the one way to return a tensor sharing its input's elements, and
// the definition that runs a view op through the op entry.
#include <utility>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "ops/detail/op.hpp"

namespace tapegrad::detail {

// x's elements under a new geometry (shape, strides, offset in elements from x's first element),
// marked as a view: it shares x's storage and version counter.
inline Tensor alias(const Tensor& x, const Shape& shape, const Strides& strides, int64_t offset = 0) {
    Tensor out = as_strided(x, shape, strides, offset);
    out.impl()->is_view = true;
    return out;
}

// x's shape and strides with a dimension of size 1 inserted at d (0 <= d <= x.dim()), as unsqueeze
// views it: its stride is that of the dimension it stands before times that dimension's size.
inline std::pair<Shape, Strides> unsqueezed_geometry(const Tensor& x, std::size_t d) {
    Shape shape;
    Strides strides;
    for (std::size_t k = 0; k <= x.dim(); ++k) {
        if (k == d) {
            shape.push_back(1);
            strides.push_back(k < x.dim() ? x.strides()[k] * x.shape()[k] : 1);
        }
        if (k < x.dim()) {
            shape.push_back(x.shape()[k]);
            strides.push_back(x.strides()[k]);
        }
    }
    return {shape, strides};
}

// A view op (view, permute, slice, ...) as a definition for run_op. Def gives
//   name
//   Tensor forward(const OpContext&, const Tensor& x);   the view, through alias(); keeps what the
//                                                         backward needs (x's shape)
//   std::vector<Tensor> backward(const Tensor& g, const GradMask&) const;   the spec, in
//                                                         differentiable ops
//   std::vector<SavedField> saved_state() const;          optional
// Every dtype, bool and bfloat16 included, has views. The backward is right only while x holds what it held at
// the forward, so the node keeps x's version and refuses an in-place write to x since then.
template <class Def>
struct ViewOp {
    static constexpr const char* name = Def::name;
    static constexpr detail::DerivativeDoc doc = doc_of<Def>();
    static constexpr DTypes dtypes = DTypes::Elements;
    Def def;
    SavedTensor base{};  // x's version only

    Tensor forward(const OpContext& ctx, const Tensor& x) {
        if (ctx.recording) base = SavedTensor::version_of(x);
        return def.forward(ctx, x);
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        base.check();
        return def.backward(g, needs);
    }
    std::vector<SavedField> saved_state() const {
        if constexpr (requires { def.saved_state(); }) return def.saved_state();
        else return {};
    }
};

// Runs the view op `def` on x.
template <class Def>
Tensor run_view_op(Def def, const SourceLocation& loc, const Tensor& x) {
    return run_op(ViewOp<Def>{std::move(def)}, loc, x);
}

}  // namespace tapegrad::detail
