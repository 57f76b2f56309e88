#include "ops/view.hpp"

#include <optional>

#include "engine/autograd.hpp"
#include "engine/checked_size.hpp"
#include "engine/strided.hpp"
#include "engine/tensor_math.hpp"
#include "ops/detail/alias.hpp"
#include "ops/detail/scalar_dims.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// Resolves one -1 in a requested shape and checks the element count.
Shape infer_shape(const Shape& requested, int64_t numel, const char* op, const Shape& from) {
    Shape out = requested;
    int64_t known = 1, infer_at = -1;
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] == -1) {
            if (infer_at >= 0)
                throw std::invalid_argument(std::string(op) + ": only one dimension can be -1, got " + to_string(requested));
            infer_at = static_cast<int64_t>(i);
        } else if (out[i] < 0) {
            throw std::invalid_argument(std::string(op) + ": invalid dimension in " + to_string(requested));
        } else {
            known = checked_mul(known, out[i], op, "the product of the sizes", [&] { return " of " + to_string(requested); });
        }
    }
    if (infer_at >= 0) {
        if (known == 0 || numel % known != 0)
            throw std::invalid_argument(std::string(op) + ": cannot reshape " + to_string(from) + " (" +
                                        std::to_string(numel) + " elements) into " + to_string(requested));
        out[static_cast<std::size_t>(infer_at)] = numel / known;
    } else if (known != numel) {
        throw std::invalid_argument(std::string(op) + ": cannot reshape " + to_string(from) + " (" + std::to_string(numel) +
                                    " elements) into " + to_string(requested) + " (" + std::to_string(known) + " elements)");
    }
    // An empty tensor matches any shape with a 0 in it, [0, 2^40, 2^40] too, whose strides overflow.
    checked_numel(out, op);
    return out;
}

// The input check of the ops below that are compositions of views (reshape, flatten, transpose,
// squeeze of one dimension): the op's name when x is undefined.
void check_defined(const char* op, const Tensor& x) { detail::check_op_inputs(op, DTypes::Elements, {&x}); }

// A view whose gradient is g reshaped back to x's shape (view, unsqueeze, squeeze): `Geometry`
// names the op and makes the view of x.
template <class Geometry>
struct ReshapedView {
    static constexpr const char* name = Geometry::name;
    static constexpr detail::DerivativeDoc doc = {
        .section = "Reductions and views",
        .op = "reshape / view / flatten / squeeze / unsqueeze",
        .forward = "same elements, new shape (squeeze without a dim: every size-1 dim dropped)",
        .gradient = "dx = g reshaped to x's shape",
        .shapes = "numel(x) = numel(y)"};
    Geometry geometry;
    Shape input_shape{};
    Tensor forward(const OpContext&, const Tensor& x) {
        input_shape = x.shape();
        return geometry.view_of(x);
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {reshape(g, input_shape)}; }
    std::vector<SavedField> saved_state() const { return {detail::saved("input_shape", to_string(input_shape))}; }
};

// x's elements in `requested` (strides as PyTorch's computeStride).
struct ViewGeometry {
    static constexpr const char* name = "view";
    Shape requested;
    Tensor view_of(const Tensor& x) const {
        const Shape target = infer_shape(requested, x.numel(), "view", x.shape());
        const std::optional<Strides> strides = view_strides(x.shape(), x.strides(), target);
        if (!strides)
            throw std::invalid_argument("view: the size " + to_string(target) + " is not compatible with the tensor " +
                                        describe(x) + " and its strides " + to_string(x.strides()) +
                                        " (at least one dimension spans across two blocks of memory); use reshape(), "
                                        "which copies when it must, or .contiguous() first");
        return detail::alias(x, target, *strides);
    }
};

// x with a dimension of size 1 inserted at d.
struct UnsqueezeGeometry {
    static constexpr const char* name = "unsqueeze";
    std::size_t d;
    Tensor view_of(const Tensor& x) const {
        const auto [shape, strides] = detail::unsqueezed_geometry(x, d);
        return detail::alias(x, shape, strides);
    }
};

// x without the dimensions marked in `drop` (all of size 1).
struct SqueezeGeometry {
    static constexpr const char* name = "squeeze";
    std::vector<bool> drop;
    Tensor view_of(const Tensor& x) const {
        Shape shape;
        Strides strides;
        for (std::size_t d = 0; d < x.dim(); ++d) {
            if (drop[d]) continue;
            shape.push_back(x.shape()[d]);
            strides.push_back(x.strides()[d]);
        }
        return detail::alias(x, shape, strides);
    }
};

// y = x's dimensions in the order `dims`: dx = g permuted back.
struct Permute {
    static constexpr const char* name = "permute";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Reductions and views",
        .op = "transpose / permute",
        .forward = "y = x with dims permuted",
        .gradient = "dx = g with the inverse permutation",
        .shapes = "permuted shape"};
    Shape dims;
    Shape inverse{};
    Tensor forward(const OpContext&, const Tensor& x) {
        if (dims.size() != x.dim())
            throw std::invalid_argument("permute: " + std::to_string(dims.size()) + " dims given for a tensor of shape " +
                                        to_string(x.shape()));
        Shape shape;
        Strides strides;
        inverse.resize(dims.size());
        std::vector<bool> seen(dims.size(), false);
        for (std::size_t i = 0; i < dims.size(); ++i) {
            const std::size_t d = normalize_axis(dims[i], x.dim(), "permute");
            if (seen[d]) throw std::invalid_argument("permute: dimension " + std::to_string(d) + " repeats in " + to_string(dims));
            seen[d] = true;
            shape.push_back(x.shape()[d]);
            strides.push_back(x.strides()[d]);
            inverse[d] = static_cast<int64_t>(i);
        }
        return detail::alias(x, shape, strides);
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {permute(g, inverse)}; }
    std::vector<SavedField> saved_state() const { return {detail::saved("dims", to_string(dims))}; }
};

// y = x broadcast to `sizes` (stride 0 along the broadcast dimensions): dx = g, which the engine
// sums back to x's shape.
struct Expand {
    static constexpr const char* name = "expand";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Reductions and views",
        .op = "expand",
        .forward = "y = x broadcast (stride 0; a size of −1 keeps x's)",
        .gradient = "dx = g summed over the expanded dims",
        .shapes = "x broadcasts to y"};
    Shape sizes;
    Tensor forward(const OpContext&, const Tensor& x) {
        if (sizes.size() < x.dim())
            throw std::invalid_argument("expand: the number of sizes given (" + std::to_string(sizes.size()) +
                                        ") must be at least the number of dimensions of the tensor " + describe(x));
        Shape shape = sizes;
        const std::size_t lead = sizes.size() - x.dim();
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            if (sizes[i] != -1) continue;
            if (i < lead)
                throw std::invalid_argument("expand: the size -1 (keep) at position " + std::to_string(i) + " of " + to_string(sizes) +
                                            " is in a new leading dimension of " + describe(x) +
                                            ", which has no size to keep; give it a size");
            shape[i] = x.shape()[i - lead];
        }
        checked_numel(shape, "expand");
        if (broadcast_shapes(x.shape(), shape, "expand") != shape)
            throw std::invalid_argument("expand: cannot expand " + to_string(x.shape()) + " to " + to_string(shape));
        return detail::alias(x, shape, broadcast_strides(x.shape(), x.strides(), shape));
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {g}; }
    std::vector<SavedField> saved_state() const { return {detail::saved("sizes", to_string(sizes))}; }
};

// The copies: y = x's values in a new tensor (`format`, or x's layout): dx = g.
constexpr detail::DerivativeDoc kCopyDoc = {
    .section = "Reductions and views",
    .op = "contiguous / clone",
    .forward = "y = x (copied)",
    .gradient = "dx = g",
    .shapes = "same"};

struct Contiguous {
    static constexpr const char* name = "contiguous";
    static constexpr detail::DerivativeDoc doc = kCopyDoc;
    static constexpr DTypes dtypes = DTypes::Elements;
    MemoryFormat format;
    Tensor forward(const OpContext&, const Tensor& x) {
        Tensor out = empty(x.shape(), format, {.dtype = x.dtype()});
        copy_into(out, x);
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {g}; }
};

struct Clone {
    static constexpr const char* name = "clone";
    static constexpr detail::DerivativeDoc doc = kCopyDoc;
    static constexpr DTypes dtypes = DTypes::Elements;
    Tensor forward(const OpContext&, const Tensor& x) {
        Tensor out = empty_like(x);
        copy_into(out, x);
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {g}; }
};

// y = x's values converted to `dtype` (checked when it is an integer dtype): dx = g converted back.
struct To {
    static constexpr const char* name = "to";
    static constexpr DTypes dtypes = DTypes::Elements;
    DType dtype;
    DType from = kFloat32;
    Tensor forward(const OpContext&, const Tensor& x) {
        Tensor out = empty(x.shape(), x.suggest_memory_format(), {.dtype = dtype});
        copy_into(out, x, "to");
        from = x.dtype();
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {to_dtype(g, from)}; }
    std::vector<SavedField> saved_state() const {
        return {detail::saved("from", dtype_name(from)), detail::saved("to", dtype_name(dtype))};
    }
};

}  // namespace

Tensor view(const Tensor& x, const Shape& shape, SourceLocation loc) { return detail::run_view_op(ReshapedView<ViewGeometry>{.geometry = {shape}}, loc, x); }

Tensor reshape(const Tensor& x, const Shape& shape, SourceLocation loc) {
    detail::OpScope scope("reshape", loc);
    check_defined("reshape", x);
    // Checked here so that an error names reshape, not the view it calls.
    const Shape target = infer_shape(shape, x.numel(), "reshape", x.shape());
    if (view_strides(x.shape(), x.strides(), target)) return view(x, target, loc);
    // A view of a private copy: nothing else sees its base, so it is no view for in-place writes.
    Tensor out = view(contiguous(x, MemoryFormat::Contiguous, loc), target, loc);
    out.impl()->is_view = false;
    return out;
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim, SourceLocation loc) {
    detail::OpScope scope("flatten", loc);
    check_defined("flatten", x);
    if (x.dim() == 0) return reshape(x, Shape{1}, loc);
    const std::size_t s = normalize_axis(start_dim, x.dim(), "flatten");
    const std::size_t e = normalize_axis(end_dim, x.dim(), "flatten");
    if (s > e) throw std::invalid_argument("flatten: start_dim " + std::to_string(start_dim) + " comes after end_dim " + std::to_string(end_dim));
    Shape out;
    for (std::size_t i = 0; i < s; ++i) out.push_back(x.shape()[i]);
    int64_t merged = 1;
    for (std::size_t i = s; i <= e; ++i) merged = checked_mul(merged, x.shape()[i], "flatten", "the merged size");
    out.push_back(merged);
    for (std::size_t i = e + 1; i < x.dim(); ++i) out.push_back(x.shape()[i]);
    return reshape(x, out, loc);
}

Tensor permute(const Tensor& x, const Shape& dims, SourceLocation loc) { return detail::run_view_op(Permute{.dims = dims}, loc, x); }

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1, SourceLocation loc) {
    detail::OpScope scope("transpose", loc);
    check_defined("transpose", x);
    if (detail::is_scalar_along(x, {dim0, dim1}, "transpose")) return permute(x, {}, loc);
    Shape dims;
    for (std::size_t i = 0; i < x.dim(); ++i) dims.push_back(static_cast<int64_t>(i));
    std::swap(dims[normalize_axis(dim0, x.dim(), "transpose")], dims[normalize_axis(dim1, x.dim(), "transpose")]);
    return permute(x, dims, loc);
}

Tensor unsqueeze(const Tensor& x, int64_t dim, SourceLocation loc) {
    check_defined("unsqueeze", x);
    if (x.dim() == kMaxDims)
        throw std::invalid_argument("unsqueeze: the input " + to_string(x.shape()) + " already has " + std::to_string(kMaxDims) +
                                    " dimensions, the most a tensor may have");
    const std::size_t d = normalize_axis(dim, x.dim() + 1, "unsqueeze");
    return detail::run_view_op(ReshapedView<UnsqueezeGeometry>{.geometry = {d}}, loc, x);
}

Tensor squeeze(const Tensor& x, SourceLocation loc) {
    check_defined("squeeze", x);
    std::vector<bool> drop(x.dim());
    for (std::size_t d = 0; d < x.dim(); ++d) drop[d] = x.shape()[d] == 1;
    return detail::run_view_op(ReshapedView<SqueezeGeometry>{.geometry = {std::move(drop)}}, loc, x);
}

Tensor squeeze(const Tensor& x, int64_t dim, SourceLocation loc) {
    check_defined("squeeze", x);
    if (detail::is_scalar_along(x, {dim}, "squeeze")) return x;  // as a dim of size other than 1
    const std::size_t d = normalize_axis(dim, x.dim(), "squeeze");
    if (x.shape()[d] != 1) return x;
    std::vector<bool> drop(x.dim(), false);
    drop[d] = true;
    return detail::run_view_op(ReshapedView<SqueezeGeometry>{.geometry = {std::move(drop)}}, loc, x);
}

Tensor expand(const Tensor& x, const Shape& sizes, SourceLocation loc) { return detail::run_view_op(Expand{.sizes = sizes}, loc, x); }

Tensor contiguous(const Tensor& x, MemoryFormat format, SourceLocation loc) {
    if (x.defined() && x.is_contiguous(format)) return x;
    return detail::run_op(Contiguous{.format = format}, loc, x);
}

Tensor clone(const Tensor& x, SourceLocation loc) { return detail::run_op(Clone{}, loc, x); }

Tensor to_dtype(const Tensor& x, DType dtype, SourceLocation loc) {
    if (x.defined() && x.dtype() == dtype) return x;
    // Integers carry no gradient, nor does bfloat16 (autograd does not run on it).
    std::optional<NoGradGuard> no_grad;
    if (!is_floating_point(dtype) || dtype == kBFloat16) no_grad.emplace();
    return detail::run_op(To{.dtype = dtype}, loc, x);
}

// Tensor's member spellings.
Tensor Tensor::reshape(const Shape& shape) const { return tapegrad::reshape(*this, shape); }
Tensor Tensor::view(const Shape& shape) const { return tapegrad::view(*this, shape); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const { return tapegrad::flatten(*this, start_dim, end_dim); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const { return tapegrad::transpose(*this, dim0, dim1); }
Tensor Tensor::permute(const Shape& dims) const { return tapegrad::permute(*this, dims); }
Tensor Tensor::contiguous(MemoryFormat format) const { return tapegrad::contiguous(*this, format); }
Tensor Tensor::clone() const { return tapegrad::clone(*this); }
Tensor Tensor::to(DType dtype) const { return to_dtype(*this, dtype); }
Tensor Tensor::squeeze() const { return tapegrad::squeeze(*this); }
Tensor Tensor::squeeze(int64_t dim) const { return tapegrad::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int64_t dim) const { return tapegrad::unsqueeze(*this, dim); }
Tensor Tensor::expand(const Shape& sizes) const { return tapegrad::expand(*this, sizes); }
Tensor Tensor::expand_as(const Tensor& other) const { return tapegrad::expand(*this, other.shape()); }
Tensor Tensor::view_as(const Tensor& other) const { return tapegrad::view(*this, other.shape()); }
Tensor Tensor::reshape_as(const Tensor& other) const { return tapegrad::reshape(*this, other.shape()); }
Tensor Tensor::t() const {
    if (dim() > 2)
        throw std::invalid_argument("t: expects a tensor with at most 2 dimensions, but got " + describe(*this) +
                                    "; use transpose(dim0, dim1) or permute(dims)");
    return dim() < 2 ? *this : tapegrad::transpose(*this, 0, 1);
}

}  // namespace tapegrad
