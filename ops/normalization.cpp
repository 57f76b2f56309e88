#include "ops/normalization.hpp"

#include <stdexcept>
#include <string>

#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/compare.hpp"
#include "ops/detail/op.hpp"
#include "ops/detail/scalar_dims.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

std::string str(int64_t v) { return std::to_string(v); }

// The dims as given, or every dimension when empty; the element count they cover.
std::vector<int64_t> resolve_dims(const Tensor& x, const std::vector<int64_t>& dims, int64_t& count, const char* op) {
    std::vector<int64_t> all;
    if (dims.empty())
        for (std::size_t d = 0; d < x.dim(); ++d) all.push_back(static_cast<int64_t>(d));
    const std::vector<int64_t>& use = dims.empty() ? all : dims;
    count = 1;
    for (int64_t d : use) count *= x.shape()[normalize_axis(d, x.dim(), op)];
    return use;
}

// x - mean and sqrt(biased var + eps) over `dims`, kept for broadcasting: x̂ = centered / stdev.
struct Moments {
    Tensor centered, stdev;
};
Moments moments(const Tensor& x, const std::vector<int64_t>& dims, double eps) {
    const Tensor centered = x - mean(x, dims, true);
    const Tensor variance = mean(centered * centered, dims, true);
    return {centered, sqrt(variance + eps)};
}

// The gradient of x̂ = (x - mean x) / stdev over `dims` for the gradient dxhat of x̂:
// dx = (dx̂ - mean dx̂ - x̂ mean(dx̂ x̂)) / stdev, with m and x̂ recomputed from x (with its history,
// so that a second derivative sees how the moments depend on x).
Tensor standardize_backward(const Moments& m, const Tensor& xhat, const Tensor& dxhat, const std::vector<int64_t>& dims) {
    return (dxhat - mean(dxhat, dims, true) - xhat * mean(dxhat * xhat, dims, true)) / m.stdev;
}

// t summed over `dims`, or t itself when there are none (sum over no dims would sum them all).
Tensor sum_over(const Tensor& t, const std::vector<int64_t>& dims) { return dims.empty() ? t : sum(t, dims); }

void check_affine(const char* op, const Tensor& p, const char* what, const Shape& want, const Tensor& x) {
    if (!p.defined()) return;
    if (p.shape() != want)
        throw std::invalid_argument(std::string(op) + ": " + what + " has shape " + to_string(p.shape()) + " but should be " +
                                    to_string(want) + " (input " + to_string(x.shape()) + ")");
    if (p.dtype() != x.dtype())
        throw std::invalid_argument(std::string(op) + ": " + what + " is " + describe(p) + " but the input is " + describe(x) +
                                    "; use one dtype");
}

Tensor affine(const Tensor& y, const Tensor& weight, const Tensor& bias, const Shape& param_shape) {
    Tensor out = y;
    if (weight.defined()) out = out * reshape(weight, param_shape);
    if (bias.defined()) out = out + reshape(bias, param_shape);
    return out;
}

// v = Σ_dims (x - mean x)² / max(n - correction, 0), and s = sqrt(v) (Sqrt). The forward is the
// composition of mean, sub, mul, sum and div, run as this one node.
// dv: dx = 2 (x - mean x) g / max(n - correction, 0), g broadcast back over the reduced dims;
// ds: the same for the gradient g / (2 s) of v (0 where s = 0, as PyTorch).
template <bool Sqrt>
struct Variance {
    static constexpr const char* name = Sqrt ? "std" : "var";
    static constexpr detail::DerivativeDoc doc =
        Sqrt ? detail::DerivativeDoc{
            .section = "Reductions and views",
            .op = "std",
            .forward = "y = √var(x)",
            .gradient = "dx = var's dx for the gradient g / (2 y), 0 where y = 0 (PyTorch's std_backward)",
            .shapes = "as var"}
        : detail::DerivativeDoc{
            .section = "Reductions and views",
            .op = "var",
            .forward = "y = Σ_D (x − mean_D x)² / (n − correction), n = count over dims D",
            .gradient = "dx = 2 (x − mean_D x) g / (n − correction), g broadcast back over D",
            .shapes = "as sum, with keepdim"};
    static constexpr DTypes dtypes = DTypes::Floating;
    std::vector<int64_t> dims;  // resolved by the caller
    int64_t correction = 1;
    bool keepdim = false;
    double divisor = 1;  // max(n - correction, 0)
    Shape kept{};        // the result's shape with the reduced dims kept as 1
    SavedTensor input{};

    Tensor forward(const OpContext& ctx, const Tensor& x) {
        if (ctx.recording) input = SavedTensor(x);
        const NoGradGuard no_grad;
        return Sqrt ? sqrt(variance(x)) : variance(x);
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const {
        const Tensor x = input.unpack();
        const Tensor dv = Sqrt ? std_to_var_grad(g, sqrt(variance(x))) : g;
        return {(x - mean(x, dims, true)) * (reshape(dv, kept) / divisor) * 2.0};
    }
    std::vector<SavedField> saved_state() const {
        std::string text;
        for (int64_t d : dims) text += (text.empty() ? "" : ",") + str(d);
        return {detail::saved("input", input), detail::saved("dims", "{" + text + "}"), detail::saved("correction", correction),
                detail::saved("keepdim", keepdim)};
    }

private:
    // g / (2 s), and 0 where s = 0 (a constant input), as PyTorch's std_backward: the derivative of
    // sqrt there is infinite, but the variance's is 0, and a constant feature gets no gradient.
    static Tensor std_to_var_grad(const Tensor& g, const Tensor& s) { return masked_fill(g / (2.0 * s), s == 0.0, 0.0); }
    Tensor variance(const Tensor& x) const {
        const Tensor centered = x - mean(x, dims, true);
        return sum(centered * centered, dims, keepdim) / divisor;
    }
};

// var and std: the checks, then the definition.
template <bool Sqrt>
Tensor variance_op(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim, SourceLocation loc) {
    const char* op = Variance<Sqrt>::name;
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    detail::check_op_inputs(op, DTypes::Floating, {&x});
    if (correction < 0) throw std::invalid_argument("var: correction must not be negative, got " + str(correction));
    if (detail::is_scalar_along(x, dims, op)) return reshape(variance_op<Sqrt>(reshape(x, {1}), {0}, correction, keepdim, loc), {});
    int64_t count = 0;
    const std::vector<int64_t> use = resolve_dims(x, dims, count, "var");
    Shape kept = x.shape();
    for (int64_t d : use) kept[normalize_axis(d, x.dim(), op)] = 1;
    return detail::run_op(Variance<Sqrt>{.dims = use,
                                         .correction = correction,
                                         .keepdim = keepdim,
                                         .divisor = static_cast<double>(std::max<int64_t>(count - correction, 0)),
                                         .kept = kept},
                          loc, x);
}

// layer_norm: x̂ standardised over the trailing dims S given by normalized_shape (biased variance),
// y = w ⊙ x̂ + b with w, b of normalized_shape. group_norm: x [N,C,*] viewed as [N,G,M], x̂
// standardised over M (a group's C/G channels and all their positions), y = w_c x̂ + b_c.
// The forward is the composition of mean, sub, mul, sqrt, div (and the affine mul and add), run as
// this one node. With dx̂ = g w: dx = (dx̂ - mean dx̂ - x̂ mean(dx̂ x̂)) / sqrt(var + eps) over S (over M
// for groups); dw = Σ g x̂ and db = Σ g over the dimensions w does not have.
template <class Layout>
struct Normalization {
    static constexpr const char* name = Layout::name;
    static constexpr detail::DerivativeDoc doc = Layout::doc;
    static constexpr DTypes dtypes = DTypes::Floating;
    static constexpr std::size_t required_inputs = 1;  // the weight and the bias are optional
    Layout layout;  // checked by the caller
    double eps = 1e-5;
    SavedTensor input{}, weight{};

    Tensor forward(const OpContext& ctx, const Tensor& x, const Tensor& w, const Tensor& b) {
        if (ctx.recording) {
            input = SavedTensor(x);
            if (w.defined() && x.requires_grad()) weight = SavedTensor(w);
        }
        const NoGradGuard no_grad;
        const Moments m = moments(layout.grouped(x), layout.normalized_dims(x), eps);
        return affine(reshape(m.centered / m.stdev, x.shape()), w, b, layout.param_shape(x));
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        const Tensor x = input.unpack();
        const std::vector<int64_t> dims = layout.normalized_dims(x);
        const Moments m = moments(layout.grouped(x), dims, eps);
        const Tensor xhat = m.centered / m.stdev;
        std::vector<Tensor> grads(3);
        if (needs[0]) {
            const Tensor dxhat = weight.defined() ? g * reshape(weight.unpack(), layout.param_shape(x)) : g;
            grads[0] = reshape(standardize_backward(m, xhat, layout.grouped(dxhat), dims), x.shape());
        }
        if (needs[1]) grads[1] = reshape(sum_over(g * reshape(xhat, x.shape()), layout.param_free_dims(x)), layout.param(x));
        if (needs[2]) grads[2] = reshape(sum_over(g, layout.param_free_dims(x)), layout.param(x));
        return grads;
    }
    std::vector<SavedField> saved_state() const {
        return {detail::saved("input", input), detail::saved("weight", weight), layout.saved(), detail::saved("eps", eps)};
    }
};

// The trailing dims given by normalized_shape.
struct LayerNormLayout {
    static constexpr const char* name = "layer_norm";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Layer and group normalisation",
        .op = "layer_norm",
        .forward = "S = the trailing dims given by normalized_shape; y = γ ⊙ x̂ + β",
        .gradient = "with dx̂ = g γ and m = |S|: dx = (1/m)/√(σ² + ε) · (m dx̂ − Σ_S dx̂ − x̂ Σ_S dx̂ x̂); dγ = "
                    "Σ_{other dims} g x̂; dβ = Σ_{other dims} g",
        .shapes = "x [.., *normalized_shape]; γ, β normalized_shape"};
    Shape normalized_shape;

    Tensor grouped(const Tensor& x) const { return x; }
    std::vector<int64_t> normalized_dims(const Tensor& x) const {
        std::vector<int64_t> dims;
        for (std::size_t i = x.dim() - normalized_shape.size(); i < x.dim(); ++i) dims.push_back(static_cast<int64_t>(i));
        return dims;
    }
    // weight and bias broadcast from the trailing dimensions as they are.
    Shape param_shape(const Tensor&) const { return normalized_shape; }
    Shape param(const Tensor&) const { return normalized_shape; }
    std::vector<int64_t> param_free_dims(const Tensor& x) const {
        std::vector<int64_t> dims;
        for (std::size_t i = 0; i < x.dim() - normalized_shape.size(); ++i) dims.push_back(static_cast<int64_t>(i));
        return dims;
    }
    SavedField saved() const { return detail::saved("normalized_shape", to_string(normalized_shape)); }
};

// x [N,C,*] as [N,G,M]; weight and bias [C], broadcast as [1,C,1,..].
struct GroupNormLayout {
    static constexpr const char* name = "group_norm";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Layer and group normalisation",
        .op = "group_norm",
        .forward = "S = one sample's C/G channels of a group and all their positions; y = γ_c x̂ + β_c",
        .gradient = "as layer_norm over each group; dγ_c = Σ_{n,positions} g x̂, dβ_c = Σ g",
        .shapes = "x [N,C,*]; γ, β [C]"};
    int64_t num_groups;

    Tensor grouped(const Tensor& x) const { return reshape(x, Shape{x.shape()[0], num_groups, -1}); }
    std::vector<int64_t> normalized_dims(const Tensor&) const { return {2}; }
    Shape param_shape(const Tensor& x) const {
        Shape s;
        s.resize(x.dim(), 1);
        s[1] = x.shape()[1];
        return s;
    }
    Shape param(const Tensor& x) const { return {x.shape()[1]}; }
    std::vector<int64_t> param_free_dims(const Tensor& x) const {
        std::vector<int64_t> dims{0};
        for (std::size_t i = 2; i < x.dim(); ++i) dims.push_back(static_cast<int64_t>(i));
        return dims;
    }
    SavedField saved() const { return detail::saved("num_groups", num_groups); }
};

}  // namespace

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim, SourceLocation loc) {
    return variance_op<false>(x, dims, correction, keepdim, loc);
}

Tensor std(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim, SourceLocation loc) {
    return variance_op<true>(x, dims, correction, keepdim, loc);
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps,
                  SourceLocation loc) {
    if (!x.defined()) throw std::invalid_argument("layer_norm: the input is undefined");
    detail::check_op_inputs("layer_norm", DTypes::Floating, {&x});
    const std::size_t k = normalized_shape.size();
    bool fits = k >= 1 && k <= x.dim();
    for (std::size_t i = 0; fits && i < k; ++i) fits = x.shape()[x.dim() - k + i] == normalized_shape[i];
    if (!fits)
        throw std::invalid_argument("layer_norm: normalized_shape " + to_string(normalized_shape) +
                                    " must be the trailing dimensions of the input " + to_string(x.shape()));
    if (numel_of(normalized_shape) == 0) throw std::invalid_argument("layer_norm: normalized_shape " + to_string(normalized_shape) + " is empty");
    if (!(eps > 0)) throw std::invalid_argument("layer_norm: eps must be positive, got " + std::to_string(eps));
    check_affine("layer_norm", weight, "weight", normalized_shape, x);
    check_affine("layer_norm", bias, "bias", normalized_shape, x);
    return detail::run_op(Normalization<LayerNormLayout>{.layout = {normalized_shape}, .eps = eps}, loc, x, weight, bias);
}

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps, SourceLocation loc) {
    if (!x.defined()) throw std::invalid_argument("group_norm: the input is undefined");
    detail::check_op_inputs("group_norm", DTypes::Floating, {&x});
    if (x.dim() < 2) throw std::invalid_argument("group_norm: expects an input [N,C,*], got " + to_string(x.shape()));
    const int64_t C = x.shape()[1];
    if (num_groups <= 0 || C % num_groups != 0)
        throw std::invalid_argument("group_norm: num_groups " + str(num_groups) + " must be positive and divide the " + str(C) +
                                    " channels (input " + to_string(x.shape()) + ")");
    if (x.numel() == 0) throw std::invalid_argument("group_norm: the input " + to_string(x.shape()) + " is empty");
    if (!(eps > 0)) throw std::invalid_argument("group_norm: eps must be positive, got " + std::to_string(eps));
    check_affine("group_norm", weight, "weight", Shape{C}, x);
    check_affine("group_norm", bias, "bias", Shape{C}, x);
    return detail::run_op(Normalization<GroupNormLayout>{.layout = {num_groups}, .eps = eps}, loc, x, weight, bias);
}

}  // namespace tapegrad
