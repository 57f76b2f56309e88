#include "ops/gather.hpp"

#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/gather.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// A row-major int64 copy of `index`, refused unless it is an integer tensor of `allowed` dtypes.
Tensor index_values(const char* op, const Tensor& index, bool int32_allowed) {
    if (!index.defined()) throw std::invalid_argument(std::string(op) + ": the index is undefined");
    if (index.dtype() != kInt64 && !(int32_allowed && index.dtype() == kInt32))
        throw std::invalid_argument(std::string(op) + ": expected an int64" + (int32_allowed ? " or int32" : "") +
                                    " index, got " + describe(index) + "; convert with .to(tg::kInt64)");
    return as_contiguous(index.to(kInt64).detach());
}

// Every index value addresses one of `size` entries.
void check_range(const char* op, const Tensor& index, int64_t size, int64_t dim) {
    const int64_t* p = index.data<int64_t>();
    for (int64_t j = 0, n = index.numel(); j < n; ++j)
        if (p[j] < 0 || p[j] >= size)
            throw std::invalid_argument(std::string(op) + ": index " + std::to_string(p[j]) + " is out of range for dimension " +
                                        std::to_string(dim) + " of size " + std::to_string(size));
}

// index has x's rank and, along every dimension but `dim`, no larger a size than `other`'s.
void check_index_shape(const char* op, const Tensor& index, const Tensor& other, std::size_t dim, const char* what) {
    bool fits = index.dim() == other.dim();
    for (std::size_t d = 0; fits && d < index.dim(); ++d)
        if (d != dim && index.shape()[d] > other.shape()[d]) fits = false;
    if (!fits)
        throw std::invalid_argument(std::string(op) + ": index " + to_string(index.shape()) + " must have the rank of " + what + " " +
                                    to_string(other.shape()) + " and no larger a size along every dimension but " +
                                    std::to_string(dim));
}

// y[j] = x[..., index[j], ...]: dx = scatter_add(zeros like x, dim, index, g). `Name` names the op
// (gather, or index_select with its index expanded to the output's shape).
template <class Name>
struct GatherAlong {
    static constexpr const char* name = Name::value;
    static constexpr detail::DerivativeDoc doc = Name::doc;
    static constexpr DTypes dtypes = DTypes::KeepAll;
    int64_t dim;
    Tensor index;  // row-major int64, checked
    Shape x_shape;
    Tensor forward(const OpContext&, const Tensor& x) {
        x_shape = x.shape();
        const Tensor xs = as_contiguous(x);
        Tensor out = empty(index.shape(), {.dtype = x.dtype()});
        dispatch_all(x.dtype(), [&]<class T>() {
            kernels::gather_dim<T>(xs.data<T>(), x_shape, static_cast<std::size_t>(dim), index.data<int64_t>(), index.shape(), out.data<T>());
        });
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const {
        return {scatter_add(zeros(x_shape, {.dtype = g.dtype()}), dim, index, g)};
    }
};
struct GatherName {
    static constexpr const char* value = "gather";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Masks and selection",
        .op = "gather",
        .forward = "y[i][j][k] = x[i][index[i][j][k]][k] (d = 1)",
        .gradient = "dx = scatter_add(zeros like x, d, index, g)",
        .shapes = "y has index's shape"};
};
struct IndexSelectName {
    static constexpr const char* value = "index_select";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Masks and selection",
        .op = "index_select",
        .forward = "y = x with dimension d replaced by the entries `index` picks",
        .gradient = "dx = index_add of g into zeros along d (repeats sum)",
        .shapes = "y: x with size len(index) along d"};
};

// y = x with src added at the indexed places: dx = g, dsrc = gather(g, dim, index).
struct ScatterAdd {
    static constexpr const char* name = "scatter_add";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Masks and selection",
        .op = "scatter_add",
        .forward = "y = x, then y[i][index[i][j][k]][k] += src[i][j][k] (d = 1)",
        .gradient = "dx = g, dsrc = gather(g, d, index)",
        .shapes = "y has x's shape; src has index's shape"};
    static constexpr DTypes dtypes = DTypes::KeepAll;
    int64_t dim;
    Tensor index;
    Tensor forward(const OpContext&, const Tensor& x, const Tensor& src) {
        Tensor out = empty(x.shape(), {.dtype = x.dtype()});
        copy_into(out, x);
        const Tensor s = as_contiguous(src);
        dispatch_all(x.dtype(), [&]<class T>() {
            kernels::scatter_add_dim<T>(s.data<T>(), index.shape(), static_cast<std::size_t>(dim), index.data<int64_t>(), out.shape(), out.data<T>());
        });
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        return {needs[0] ? g : Tensor(), needs[1] ? gather(g, dim, index) : Tensor()};
    }
};

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index, SourceLocation loc) {
    const Tensor idx = index_values("gather", index, false);
    if (!x.defined()) throw std::invalid_argument("gather: the input is undefined");
    const std::size_t d = normalize_axis(dim, x.dim(), "gather");
    check_index_shape("gather", idx, x, d, "the input");
    check_range("gather", idx, x.shape()[d], static_cast<int64_t>(d));
    return detail::run_op(GatherAlong<GatherName>{.dim = static_cast<int64_t>(d), .index = idx}, loc, x);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index, SourceLocation loc) {
    const Tensor idx = index_values("index_select", index, true);
    if (!x.defined()) throw std::invalid_argument("index_select: the input is undefined");
    if (idx.dim() > 1) throw std::invalid_argument("index_select: the index must be 1-D or 0-D, got " + describe(index));
    const std::size_t d = normalize_axis(dim, x.dim(), "index_select");
    check_range("index_select", idx, x.shape()[d], static_cast<int64_t>(d));
    // The index along `dim`, expanded to the output's shape: index_select is then a gather.
    Shape out_shape = x.shape(), along;
    for (std::size_t k = 0; k < x.dim(); ++k) along.push_back(k == d ? idx.numel() : 1);
    out_shape[d] = idx.numel();
    Tensor full_index = empty(out_shape, {.dtype = kInt64});
    copy_into(full_index, expand(idx.reshape(along), out_shape));
    return detail::run_op(GatherAlong<IndexSelectName>{.dim = static_cast<int64_t>(d), .index = full_index}, loc, x);
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, SourceLocation loc) {
    const Tensor idx = index_values("scatter_add", index, false);
    if (!x.defined() || !src.defined()) throw std::invalid_argument("scatter_add: the input or src is undefined");
    if (x.dtype() != src.dtype())
        throw std::invalid_argument("scatter_add: x is " + describe(x) + " but src is " + describe(src) + "; convert one with .to()");
    const std::size_t d = normalize_axis(dim, x.dim(), "scatter_add");
    if (idx.shape() != src.shape())
        throw std::invalid_argument("scatter_add: index " + to_string(idx.shape()) + " and src " + to_string(src.shape()) +
                                    " must have one shape; slice src to the index's shape");
    check_index_shape("scatter_add", idx, x, d, "the input");
    check_range("scatter_add", idx, x.shape()[d], static_cast<int64_t>(d));
    return detail::run_op(ScatterAdd{.dim = static_cast<int64_t>(d), .index = idx}, loc, x, src);
}

}  // namespace tapegrad
