#include "ops/normalization.hpp"

#include <stdexcept>
#include <string>

#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/detail/op.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

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

// (x - mean) / sqrt(biased var + eps) over `dims`, kept for broadcasting.
Tensor standardize(const Tensor& x, const std::vector<int64_t>& dims, double eps) {
    const Tensor centered = x - mean(x, dims, true);
    const Tensor variance = mean(centered * centered, dims, true);
    return centered / sqrt(variance + eps);
}

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

}  // namespace

// dvar/dx = 2 (x - mean) / (n - correction), through mean, sub, mul and sum.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
    if (!x.defined()) throw std::invalid_argument("var: the input is undefined");
    detail::check_op_inputs("var", detail::DTypes::Floating, {&x});
    if (correction < 0) throw std::invalid_argument("var: correction must not be negative, got " + str(correction));
    int64_t count = 0;
    const std::vector<int64_t> use = resolve_dims(x, dims, count, "var");
    if (count == 0) throw std::invalid_argument("var: the variance of zero elements is undefined (input " + describe(x) + ")");
    const Tensor centered = x - mean(x, use, true);
    return sum(centered * centered, use, keepdim) / static_cast<double>(std::max<int64_t>(count - correction, 0));
}

Tensor std(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
    if (!x.defined()) throw std::invalid_argument("std: the input is undefined");
    detail::check_op_inputs("std", detail::DTypes::Floating, {&x});
    return sqrt(var(x, dims, correction, keepdim));
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
    if (!x.defined()) throw std::invalid_argument("layer_norm: the input is undefined");
    detail::check_op_inputs("layer_norm", detail::DTypes::Floating, {&x});
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
    std::vector<int64_t> dims;
    for (std::size_t i = x.dim() - k; i < x.dim(); ++i) dims.push_back(static_cast<int64_t>(i));
    // weight and bias broadcast from the trailing dimensions as they are.
    return affine(standardize(x, dims, eps), weight, bias, normalized_shape);
}

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
    if (!x.defined()) throw std::invalid_argument("group_norm: the input is undefined");
    detail::check_op_inputs("group_norm", detail::DTypes::Floating, {&x});
    if (x.dim() < 2) throw std::invalid_argument("group_norm: expects an input [N,C,*], got " + to_string(x.shape()));
    const int64_t N = x.shape()[0], C = x.shape()[1];
    if (num_groups <= 0 || C % num_groups != 0)
        throw std::invalid_argument("group_norm: num_groups " + str(num_groups) + " must be positive and divide the " + str(C) +
                                    " channels (input " + to_string(x.shape()) + ")");
    if (x.numel() == 0) throw std::invalid_argument("group_norm: the input " + to_string(x.shape()) + " is empty");
    if (!(eps > 0)) throw std::invalid_argument("group_norm: eps must be positive, got " + std::to_string(eps));
    check_affine("group_norm", weight, "weight", Shape{C}, x);
    check_affine("group_norm", bias, "bias", Shape{C}, x);
    const Tensor y = reshape(standardize(reshape(x, Shape{N, num_groups, -1}), {2}, eps), x.shape());
    Shape param_shape;
    param_shape.resize(x.dim(), 1);
    param_shape[1] = C;
    return affine(y, weight, bias, param_shape);
}

}  // namespace tapegrad
