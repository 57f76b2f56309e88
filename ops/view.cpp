#include "ops/view.hpp"

#include <numeric>

#include "engine/autograd.hpp"
#include "engine/checked_size.hpp"
#include "engine/strided.hpp"
#include "engine/tensor_math.hpp"
#include "ops/detail/alias.hpp"

namespace tapegrad {
namespace {

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

}  // namespace

namespace detail {
Tensor alias_with_grad(const char* op, const Tensor& x, const Shape& shape, const Strides& strides, BackwardFn fn,
                       int64_t offset) {
    Tensor out = as_strided(x, shape, strides, offset);
    out.impl()->is_view = true;
    if (!needs_grad({x})) return out;
    return record(op, out, {x}, [base = SavedTensor::version_of(x), fn = std::move(fn)](const Tensor& g, const GradMask& needs) {
        base.check();
        return fn(g, needs);
    });
}
}  // namespace detail
using detail::alias_with_grad;

Tensor view(const Tensor& x, const Shape& shape) {
    const Shape target = infer_shape(shape, x.numel(), "view", x.shape());
    const std::optional<Strides> strides = view_strides(x.shape(), x.strides(), target);
    if (!strides)
        throw std::invalid_argument("view: the size " + to_string(target) + " is not compatible with the tensor " +
                                    describe(x) + " and its strides " + to_string(x.strides()) +
                                    " (at least one dimension spans across two blocks of memory); use reshape(), "
                                    "which copies when it must, or .contiguous() first");
    const Shape from = x.shape();
    return alias_with_grad("view", x, target, *strides,
                           [from](const Tensor& g, const GradMask&) { return std::vector<Tensor>{reshape(g, from)}; });
}

Tensor reshape(const Tensor& x, const Shape& shape) {
    // Checked here so that an error names reshape, not the view it calls.
    const Shape target = infer_shape(shape, x.numel(), "reshape", x.shape());
    if (view_strides(x.shape(), x.strides(), target)) return view(x, target);
    // A view of a private copy: nothing else sees its base, so it is no view for in-place writes.
    Tensor out = view(contiguous(x), target);
    out.impl()->is_view = false;
    return out;
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
    if (x.dim() == 0) return reshape(x, Shape{1});
    const std::size_t s = normalize_axis(start_dim, x.dim(), "flatten");
    const std::size_t e = normalize_axis(end_dim, x.dim(), "flatten");
    if (s > e) throw std::invalid_argument("flatten: start_dim " + std::to_string(start_dim) + " comes after end_dim " + std::to_string(end_dim));
    Shape out;
    for (std::size_t i = 0; i < s; ++i) out.push_back(x.shape()[i]);
    int64_t merged = 1;
    for (std::size_t i = s; i <= e; ++i) merged = checked_mul(merged, x.shape()[i], "flatten", "the merged size");
    out.push_back(merged);
    for (std::size_t i = e + 1; i < x.dim(); ++i) out.push_back(x.shape()[i]);
    return reshape(x, out);
}

Tensor permute(const Tensor& x, const Shape& dims) {
    if (dims.size() != x.dim())
        throw std::invalid_argument("permute: " + std::to_string(dims.size()) + " dims given for a tensor of shape " + to_string(x.shape()));
    Shape shape, inverse;
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
    return alias_with_grad("permute", x, shape, strides,
                           [inverse](const Tensor& g, const GradMask&) { return std::vector<Tensor>{permute(g, inverse)}; });
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
    Shape dims;
    for (std::size_t i = 0; i < x.dim(); ++i) dims.push_back(static_cast<int64_t>(i));
    std::swap(dims[normalize_axis(dim0, x.dim(), "transpose")], dims[normalize_axis(dim1, x.dim(), "transpose")]);
    return permute(x, dims);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
    if (x.dim() == kMaxDims)
        throw std::invalid_argument("unsqueeze: the input " + to_string(x.shape()) + " already has " + std::to_string(kMaxDims) +
                                    " dimensions, the most a tensor may have");
    const std::size_t d = normalize_axis(dim, x.dim() + 1, "unsqueeze");
    Shape shape = x.shape();
    Strides strides = x.strides();
    shape.push_back(0);
    strides.push_back(0);
    for (std::size_t i = shape.size() - 1; i > d; --i) {
        shape[i] = shape[i - 1];
        strides[i] = strides[i - 1];
    }
    shape[d] = 1;
    strides[d] = d + 1 < shape.size() ? strides[d + 1] * shape[d + 1] : 1;
    const Shape from = x.shape();
    return alias_with_grad("unsqueeze", x, shape, strides,
                           [from](const Tensor& g, const GradMask&) { return std::vector<Tensor>{reshape(g, from)}; });
}

namespace {
// x without the dimensions marked in `drop` (all of size 1), as a view.
Tensor squeeze_dims(const Tensor& x, const std::vector<bool>& drop) {
    Shape shape;
    Strides strides;
    for (std::size_t d = 0; d < x.dim(); ++d) {
        if (drop[d]) continue;
        shape.push_back(x.shape()[d]);
        strides.push_back(x.strides()[d]);
    }
    const Shape from = x.shape();
    return alias_with_grad("squeeze", x, shape, strides,
                           [from](const Tensor& g, const GradMask&) { return std::vector<Tensor>{reshape(g, from)}; });
}
}  // namespace

Tensor squeeze(const Tensor& x) {
    if (!x.defined()) throw std::invalid_argument("squeeze: the input is undefined");
    std::vector<bool> drop(x.dim());
    for (std::size_t d = 0; d < x.dim(); ++d) drop[d] = x.shape()[d] == 1;
    return squeeze_dims(x, drop);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
    const std::size_t d = normalize_axis(dim, x.dim(), "squeeze");
    if (x.shape()[d] != 1) return x;
    std::vector<bool> drop(x.dim(), false);
    drop[d] = true;
    return squeeze_dims(x, drop);
}

Tensor expand(const Tensor& x, const Shape& sizes) {
    if (!x.defined()) throw std::invalid_argument("expand: the input is undefined");
    if (sizes.size() < x.dim())
        throw std::invalid_argument("expand: the number of sizes given (" + std::to_string(sizes.size()) +
                                    ") must be at least the number of dimensions of the tensor " + describe(x));
    Shape shape = sizes;
    const std::size_t lead = sizes.size() - x.dim();
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (sizes[i] != -1) continue;
        if (i < lead)
            throw std::invalid_argument("expand: the size -1 (keep) at position " + std::to_string(i) + " of " + to_string(sizes) +
                                        " is in a new leading dimension of " + describe(x) + ", which has no size to keep; give it a size");
        shape[i] = x.shape()[i - lead];
    }
    checked_numel(shape, "expand");
    if (broadcast_shapes(x.shape(), shape, "expand") != shape)
        throw std::invalid_argument("expand: cannot expand " + to_string(x.shape()) + " to " + to_string(shape));
    // The engine reduces the gradient back to x's shape.
    return alias_with_grad("expand", x, shape, broadcast_strides(x.shape(), x.strides(), shape),
                           [](const Tensor& g, const GradMask&) { return std::vector<Tensor>{g}; });
}

Tensor contiguous(const Tensor& x, MemoryFormat format) {
    if (x.is_contiguous(format)) return x;
    Tensor out = empty(x.shape(), format, {.dtype = x.dtype()});
    copy_into(out, x);
    return record("contiguous", out, {x}, [](const Tensor& g, const GradMask&) { return std::vector<Tensor>{g}; });
}

Tensor clone(const Tensor& x) {
    Tensor out = empty_like(x);
    copy_into(out, x);
    return record("clone", out, {x}, [](const Tensor& g, const GradMask&) { return std::vector<Tensor>{g}; });
}

Tensor to_dtype(const Tensor& x, DType dtype) {
    if (x.dtype() == dtype) return x;
    Tensor out = empty(x.shape(), x.suggest_memory_format(), {.dtype = dtype});
    copy_into(out, x, "to");
    if (!is_floating_point(dtype)) return out;  // integers carry no gradient
    const DType from = x.dtype();
    return record("to", out, {x}, [from](const Tensor& g, const GradMask&) { return std::vector<Tensor>{to_dtype(g, from)}; });
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
