#include "ops/reduce.hpp"

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ops/detail/op.hpp"
#include "ops/detail/scalar_dims.hpp"
#include "engine/strided.hpp"
#include "engine/tensor_math.hpp"
#include "ops/index.hpp"
#include "ops/kernels/reduce_fast.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

std::vector<bool> axes_mask(const Tensor& x, const std::vector<int64_t>& axes, const char* op) {
    std::vector<bool> reduce(x.dim(), axes.empty());
    for (int64_t a : axes) {
        const std::size_t d = normalize_axis(a, x.dim(), op);
        if (reduce[d]) throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(a) + " appears twice");
        reduce[d] = true;
    }
    return reduce;
}

// The gradient of a reduction, broadcast back to the input's shape: reshape to keepdim form,
// then an expand view; scale is 1 for sum and 1/count for mean.
Tensor spread(const Tensor& g, const Shape& in_shape, const std::vector<bool>& reduce, double scale) {
    Shape kept;
    for (std::size_t d = 0; d < in_shape.size(); ++d) kept.push_back(reduce[d] ? 1 : in_shape[d]);
    Tensor gk = reshape(g, kept);
    if (scale != 1.0) gk = gk * scale;
    return expand(gk, in_shape);
}

// The sum of an integer tensor: exact, in int64 (PyTorch's dtype for the sum of every integer
// dtype), wrapping around on overflow as PyTorch's does (added as unsigned, where that is defined).
Tensor integer_sum(const Tensor& x, const std::vector<bool>& reduce, bool keepdim) {
    Shape out_shape;
    for (std::size_t d = 0; d < x.dim(); ++d)
        if (!reduce[d]) out_shape.push_back(x.shape()[d]);
        else if (keepdim) out_shape.push_back(1);
    Tensor out = zeros(out_shape, {.dtype = kInt64});
    // out's strides seen from x's dimensions: 0 along the summed ones, so every element adds into its row.
    Strides into;
    for (std::size_t d = 0, j = 0; d < x.dim(); ++d) {
        into.push_back(reduce[d] ? 0 : out.strides()[j]);
        if (!reduce[d] || keepdim) ++j;
    }
    uint64_t* o = reinterpret_cast<uint64_t*>(out.data<int64_t>());
    dispatch_all(x.dtype(), [&]<class T>() {
        if constexpr (std::is_integral_v<T>) {
            const T* xp = x.data<T>();
            for_each_run<2>(x.shape(), {x.strides(), into}, [&](auto off, int64_t n, auto st) {
                for (int64_t i = 0; i < n; ++i) o[off[1] + i * st[1]] += static_cast<uint64_t>(int64_t{xp[off[0] + i * st[0]]});
            });
        }
    });
    return out;
}

// d sum/dx = 1 at every element that was summed; d mean/dx = 1/count.
template <bool Average>
struct SumOrMean {
    static constexpr const char* name = Average ? "mean" : "sum";
    static constexpr detail::DerivativeDoc doc =
        Average ? detail::DerivativeDoc{
            .section = "Reductions and views",
            .op = "mean",
            .forward = "y = (1/n) Σ_{axes} x, n = reduced count",
            .gradient = "dx = g / n expanded over the reduced axes",
            .shapes = "as sum"}
        : detail::DerivativeDoc{
            .section = "Reductions and views",
            .op = "sum",
            .forward = "y = Σ_{axes} x",
            .gradient = "dx = g expanded over the reduced axes",
            .shapes = "x [..]; y drops (or keeps as 1) the axes"};
    // Integers and bools sum exactly in int64, as PyTorch; mean refuses them before the entry.
    static constexpr detail::DTypes dtypes = detail::DTypes::KeepAll;
    std::vector<bool> reduce;  // the dimensions summed
    bool keepdim = false;
    double scale = 1;  // 1/count for mean
    Shape input_shape{};

    Tensor forward(const detail::OpContext& ctx, const Tensor& x) {
        if (!is_floating_point(x.dtype())) return integer_sum(x, reduce, keepdim);
        Tensor out = is_reference(ctx.kernels) ? Tensor() : sum_fast(x);
        if (!out.defined()) out = sum_kernel(x, reduce, keepdim);
        if (Average) {
            dispatch(out.dtype(), [&]<class T>() {
                T* p = out.data<T>();
                for (int64_t i = 0, n = out.numel(); i < n; ++i) p[i] = static_cast<T>(p[i] * scale);
            });
        }
        if (ctx.recording) input_shape = x.shape();
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {spread(g, input_shape, reduce, scale)}; }
    // The float32 sum of a dense x through the bandwidth kernel, or undefined where it does not apply.
    Tensor sum_fast(const Tensor& x) const {
        const std::optional<kernels::DenseSum> geometry = kernels::dense_sum_geometry(x, reduce);
        if (!geometry) return Tensor();
        Shape shape;
        for (std::size_t d = 0; d < x.dim(); ++d)
            if (!reduce[d]) shape.push_back(x.shape()[d]);
            else if (keepdim) shape.push_back(1);
        Tensor out = empty(shape, {.dtype = kFloat32});
        kernels::sum_dense(x.data<float>(), *geometry, out.data<float>());
        return out;
    }
    std::vector<SavedField> saved_state() const {
        std::string dims;
        for (std::size_t d = 0; d < reduce.size(); ++d)
            if (reduce[d]) dims += (dims.empty() ? "" : ",") + std::to_string(d);
        return {detail::saved("dims", "{" + dims + "}"), detail::saved("input_shape", to_string(input_shape)),
                detail::saved("keepdim", keepdim), detail::saved("scale", scale)};
    }
};

template <bool Average>
Tensor reduce_op(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
    const char* op = SumOrMean<Average>::name;
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    if (detail::is_scalar_along(x, axes, op)) return reshape(reduce_op<Average>(reshape(x, {1}), {0}, keepdim), {});
    std::vector<bool> reduce = axes_mask(x, axes, op);
    int64_t count = 1;
    for (std::size_t d = 0; d < x.dim(); ++d)
        if (reduce[d]) count *= x.shape()[d];
    if (Average && !is_floating_point(x.dtype()))
        throw std::invalid_argument(std::string(op) + ": could not infer the output dtype of the " + describe(x) +
                                    " input: PyTorch's mean takes floating-point tensors; convert with .to(tg::kFloat32)");
    // The mean of zero elements is 0 * (1/0) = NaN, as PyTorch's sum / 0.
    const double scale = Average ? 1.0 / static_cast<double>(count) : 1.0;
    return detail::run_op(SumOrMean<Average>{.reduce = std::move(reduce), .keepdim = keepdim, .scale = scale}, SourceLocation::current(), x);
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_op<false>(x, {}, false); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) { return reduce_op<false>(x, axes, keepdim); }
Tensor mean(const Tensor& x) { return reduce_op<true>(x, {}, false); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) { return reduce_op<true>(x, axes, keepdim); }

Tensor Tensor::sum() const { return tapegrad::sum(*this); }
Tensor Tensor::sum(const std::vector<int64_t>& axes, bool keepdim) const { return tapegrad::sum(*this, axes, keepdim); }
Tensor Tensor::mean() const { return tapegrad::mean(*this); }
Tensor Tensor::mean(const std::vector<int64_t>& axes, bool keepdim) const { return tapegrad::mean(*this, axes, keepdim); }

}  // namespace tapegrad

// ---------------------------------------------------------------- max and argmax

namespace tapegrad {
namespace {

// For x seen as row-major [outer, K, inner] around `axis`: the flat row-major index into x of the
// first largest value (smallest, with `smallest`) of each of the outer * inner slices (NaN counts
// as the extreme, as in PyTorch).
template <class T>
std::vector<int64_t> first_extreme_index(const Tensor& x, std::size_t axis, T* values, bool smallest = false) {
    const Tensor xc = x.is_contiguous() ? x : x.detach().contiguous();
    const T* p = xc.data<T>();
    int64_t outer = 1, inner = 1;
    const int64_t K = x.shape()[axis];
    for (std::size_t d = 0; d < axis; ++d) outer *= x.shape()[d];
    for (std::size_t d = axis + 1; d < x.dim(); ++d) inner *= x.shape()[d];
    std::vector<int64_t> index(static_cast<std::size_t>(outer * inner));
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            int64_t best = o * K * inner + i;
            for (int64_t k = 1; k < K; ++k) {
                const int64_t at = (o * K + k) * inner + i;
                const bool beats = smallest ? p[at] < p[best] : p[at] > p[best];
                if (beats || (p[at] != p[at] && p[best] == p[best])) best = at;
            }
            index[o * inner + i] = best;
            if (values) values[o * inner + i] = p[best];
        }
    return index;
}

std::size_t check_max(const Tensor& x, int64_t axis, const char* op) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    detail::check_op_inputs(op, detail::DTypes::KeepAll, {&x});  // bfloat16 refused by name
    const std::size_t d = normalize_axis(axis, x.dim(), op);
    if (x.shape()[d] == 0)
        throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(axis) + " of " + to_string(x.shape()) +
                                    " is empty, so it has no " + (std::string(op).find("min") != std::string::npos ? "minimum" : "maximum"));
    return d;
}

Shape reduced_shape(const Shape& shape, std::size_t axis, bool keepdim) {
    Shape out;
    for (std::size_t i = 0; i < shape.size(); ++i)
        if (i != axis) out.push_back(shape[i]);
        else if (keepdim) out.push_back(1);
    return out;
}

// Flat indices into x (from first_extreme_index) -> their positions along axis `d`, as int64.
Tensor positions_along(const std::vector<int64_t>& flat, const Tensor& x, std::size_t d, bool keepdim) {
    Tensor out = empty(reduced_shape(x.shape(), d, keepdim), {.dtype = kInt64});
    int64_t* indices = out.data<int64_t>();
    // Flat index (o * K + k) * inner + i -> k.
    int64_t inner = 1;
    for (std::size_t i = d + 1; i < x.dim(); ++i) inner *= x.shape()[i];
    const int64_t K = x.shape()[d];
    for (std::size_t j = 0; j < flat.size(); ++j) indices[j] = (flat[j] / inner) % K;
    return out;
}

Tensor arg_extreme(const Tensor& x, int64_t axis, bool keepdim, bool smallest, const char* op) {
    if (x.defined() && x.dtype() == kBool)  // PyTorch has no argmax of bools (max of them it has)
        throw std::invalid_argument(std::string(op) + ": this op does not take bool tensors (" + describe(x) +
                                    "); convert with .to(tg::kInt64)");
    if (detail::is_scalar_along(x, {axis}, op)) return reshape(arg_extreme(reshape(x.detach(), {1}), 0, keepdim, smallest, op), {});
    const std::size_t d = check_max(x, axis, op);
    const std::vector<int64_t> flat =
        dispatch_all(x.dtype(), [&]<class T>() { return first_extreme_index<T>(x, d, static_cast<T*>(nullptr), smallest); });
    return positions_along(flat, x, d, keepdim);
}

Tensor arg_extreme_flat(const Tensor& x, bool smallest, const char* op) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    return arg_extreme(reshape(x.detach(), {x.numel()}), 0, false, smallest, op).reshape({});
}

// max and min along an axis: the values and, with indices, their positions along it (int64, no
// gradient). y = x[first extreme]: dx [x's shape] = g there, 0 elsewhere.
template <class Kind>
struct Extreme {
    static constexpr const char* name = Kind::name;
    // with indices: the row "values: as max (min)" states no formula of its own
    static constexpr detail::DerivativeDoc doc = Kind::with_indices
        ? detail::DerivativeDoc{}
        : detail::DerivativeDoc{
            .section = "Reductions and views",
            .op = "max (axis) / min (axis)",
            .forward = "y = max_k x[.., k, ..] (min_k)",
            .gradient = "dx[.., k*, ..] = g at the first maximum (minimum) k* (row-major order), 0 elsewhere",
            .shapes = "x [.., K, ..] → y without K (or K = 1 with keepdim)"};
    static constexpr detail::DTypes dtypes = detail::DTypes::KeepAll;  // bool too: x.max(1) of a mask is whether any is true
    std::size_t axis;  // checked by the caller
    bool keepdim = false;
    std::shared_ptr<const std::vector<int64_t>> index{};  // flat row-major indices into x of the extremes
    Shape input_shape{};

    std::tuple<Tensor, Tensor> forward(const detail::OpContext& ctx, const Tensor& x) {
        Tensor out = empty(reduced_shape(x.shape(), axis, keepdim), {.dtype = x.dtype()});
        auto flat = std::make_shared<const std::vector<int64_t>>(
            dispatch_all(x.dtype(), [&]<class T>() { return first_extreme_index<T>(x, axis, out.data<T>(), Kind::smallest); }));
        Tensor indices = Kind::with_indices ? positions_along(*flat, x, axis, keepdim) : Tensor();
        if (ctx.recording) {
            index = std::move(flat);
            input_shape = x.shape();
        }
        return {out, indices};
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {put_add(input_shape, *index, g)}; }
    std::vector<Tensor> fused_backward(Kernels, const Tensor& g_in, const GradMask&) const {
        const Tensor g = g_in.is_contiguous() ? g_in : g_in.contiguous();
        Tensor dx = zeros(input_shape, {.dtype = g.dtype()});
        dispatch(g.dtype(), [&]<class T>() {
            const T* gp = g.data<T>();
            T* dp = dx.data<T>();
            for (std::size_t j = 0; j < index->size(); ++j) dp[(*index)[j]] = gp[j];
        });
        return {dx};
    }
    std::vector<SavedField> saved_state() const {
        return {detail::saved("index", std::to_string(index ? index->size() : 0) + " flat int64 positions"),
                detail::saved("input_shape", to_string(input_shape)), detail::saved("axis", axis), detail::saved("keepdim", keepdim)};
    }
};

struct Max {
    static constexpr const char* name = "max";
    static constexpr bool smallest = false, with_indices = false;
};
struct Min {
    static constexpr const char* name = "min";
    static constexpr bool smallest = true, with_indices = false;
};
struct MaxWithIndices {
    static constexpr const char* name = "max_with_indices";
    static constexpr bool smallest = false, with_indices = true;
};
struct MinWithIndices {
    static constexpr const char* name = "min_with_indices";
    static constexpr bool smallest = true, with_indices = true;
};

template <class Kind>
ValuesIndices extreme(const Tensor& x, int64_t axis, bool keepdim) {
    if (detail::is_scalar_along(x, {axis}, Kind::name)) {
        ValuesIndices along = extreme<Kind>(reshape(x, {1}), 0, keepdim);
        return {reshape(along.values, {}), along.indices.defined() ? reshape(along.indices, {}) : Tensor()};
    }
    const std::size_t d = check_max(x, axis, Kind::name);
    auto [values, indices] = detail::run_op(Extreme<Kind>{.axis = d, .keepdim = keepdim}, SourceLocation::current(), x);
    return {std::move(values), std::move(indices)};
}

// The largest (smallest) element: dx = g / n at each of the n elements equal to it (every NaN
// when it is NaN), 0 elsewhere, as PyTorch shares the gradient of x.max() between ties.
template <bool Smallest>
struct ExtremeOfAll {
    static constexpr const char* name = Smallest ? "min" : "max";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Reductions and views",
        .op = "max (all elements) / min (all elements)",
        .forward = "y = the largest (smallest) element, 0-d; NaN if x has one",
        .gradient = "dx = g / n at each of the n elements equal to y (all NaNs when y is NaN), 0 elsewhere (PyTorch's "
                    "x.max())",
        .shapes = "x non-empty, any shape; y 0-d"};
    static constexpr detail::DTypes dtypes = detail::DTypes::KeepAll;
    Tensor share{};  // 1/n at the ties, 0 elsewhere, of x's shape: a constant

    Tensor forward(const detail::OpContext& ctx, const Tensor& x) {
        const Tensor flat = as_contiguous(x.detach()).reshape({x.numel()});
        return dispatch_all(x.dtype(), [&]<class T>() {
            Tensor out = empty({}, {.dtype = x.dtype()});
            T* best = out.data<T>();
            first_extreme_index<T>(flat, 0, best, Smallest);
            if (!ctx.recording) return out;
            const T* p = flat.data<T>();
            const auto ties = [&](int64_t i) { return p[i] == *best || (p[i] != p[i] && *best != *best); };
            int64_t count = 0;
            for (int64_t i = 0; i < flat.numel(); ++i) count += ties(i);
            share = zeros(x.shape(), {.dtype = x.dtype()});
            T* s = share.data<T>();
            for (int64_t i = 0; i < flat.numel(); ++i)
                if (ties(i)) s[i] = static_cast<T>(1.0 / static_cast<double>(count));
            return out;
        });
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const { return {g * share}; }
    std::vector<SavedField> saved_state() const {
        const std::size_t bytes = static_cast<std::size_t>(share.numel()) * element_size(share.dtype());
        return {SavedField{"share", {}, SavedTensorInfo{share.shape(), share.dtype(), bytes}}};
    }
};

template <bool Smallest>
Tensor extreme_of_all(const Tensor& x) {
    const char* op = ExtremeOfAll<Smallest>::name;
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    detail::check_op_inputs(op, detail::DTypes::KeepAll, {&x});  // bfloat16 refused by name
    if (x.numel() == 0)
        throw std::invalid_argument(std::string(op) + ": the input " + describe(x) + " is empty, so it has no " +
                                    (Smallest ? "minimum" : "maximum") + "; check numel() first");
    return detail::run_op(ExtremeOfAll<Smallest>{}, SourceLocation::current(), x);
}

}  // namespace

Tensor max(const Tensor& x) { return extreme_of_all<false>(x); }
Tensor min(const Tensor& x) { return extreme_of_all<true>(x); }
Tensor max(const Tensor& x, int64_t axis, bool keepdim) { return extreme<Max>(x, axis, keepdim).values; }
Tensor min(const Tensor& x, int64_t axis, bool keepdim) { return extreme<Min>(x, axis, keepdim).values; }
ValuesIndices max_with_indices(const Tensor& x, int64_t axis, bool keepdim) { return extreme<MaxWithIndices>(x, axis, keepdim); }
ValuesIndices min_with_indices(const Tensor& x, int64_t axis, bool keepdim) { return extreme<MinWithIndices>(x, axis, keepdim); }

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) { return arg_extreme(x, axis, keepdim, false, "argmax"); }
Tensor argmax(const Tensor& x) { return arg_extreme_flat(x, false, "argmax"); }
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim) { return arg_extreme(x, axis, keepdim, true, "argmin"); }
Tensor argmin(const Tensor& x) { return arg_extreme_flat(x, true, "argmin"); }

int64_t count_equal(const Tensor& a, const Tensor& b) {
    if (!a.defined() || !b.defined()) throw std::invalid_argument("count_equal: an input is undefined");
    if (a.shape() != b.shape())
        throw std::invalid_argument("count_equal: the shapes differ (" + describe(a) + " and " + describe(b) +
                                    "); compare tensors of one shape");
    // Mixed dtypes compare as float64 values (int64 label 3 equals 3.0, not 3.5).
    const DType common = a.dtype() == b.dtype() ? a.dtype() : kFloat64;
    const Tensor ac = a.detach().to(common).contiguous();
    const Tensor bc = b.detach().to(common).contiguous();
    return dispatch_all(common, [&]<class T>() {
        const T* ap = ac.data<T>();
        const T* bp = bc.data<T>();
        int64_t n = 0;
        for (int64_t i = 0, e = ac.numel(); i < e; ++i) n += ap[i] == bp[i];
        return n;
    });
}

// Tensor's member spellings.
Tensor Tensor::max() const { return tapegrad::max(*this); }
Tensor Tensor::min() const { return tapegrad::min(*this); }
std::tuple<Tensor, Tensor> Tensor::max(int64_t axis, bool keepdim) const {
    auto [values, indices] = max_with_indices(*this, axis, keepdim);
    return {values, indices};
}
std::tuple<Tensor, Tensor> Tensor::min(int64_t axis, bool keepdim) const {
    auto [values, indices] = min_with_indices(*this, axis, keepdim);
    return {values, indices};
}
Tensor Tensor::argmax() const { return tapegrad::argmax(*this); }
Tensor Tensor::argmax(int64_t axis, bool keepdim) const { return tapegrad::argmax(*this, axis, keepdim); }
Tensor Tensor::argmin() const { return tapegrad::argmin(*this); }
Tensor Tensor::argmin(int64_t axis, bool keepdim) const { return tapegrad::argmin(*this, axis, keepdim); }

}  // namespace tapegrad
