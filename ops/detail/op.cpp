#include "ops/detail/op.hpp"

#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace tapegrad::detail {
namespace {

std::string which_input(std::span<const Tensor* const> inputs, std::size_t i) {
    return inputs.size() == 1 ? "the input" : "input " + std::to_string(i);
}

bool promotes(DTypes policy) { return policy == DTypes::Promote || policy == DTypes::PromoteToFloating; }

// PyTorch's categories of dtype: a higher one wins a promotion whatever the widths.
int category(DType t) { return t == kBool ? 0 : is_floating_point(t) ? 2 : 1; }

// PyTorch's promote_types for tapegrad's dtypes: floating point over integer over bool, then the wider.
DType promote_types(DType a, DType b) {
    if (category(a) != category(b)) return category(a) > category(b) ? a : b;
    return element_size(a) >= element_size(b) ? a : b;
}

}  // namespace

void check_op_inputs(const char* op, DTypes policy, std::span<const Tensor* const> inputs, std::size_t required) {
    for (std::size_t i = 0; i < inputs.size() && i < required; ++i)
        if (!inputs[i]->defined()) throw std::invalid_argument(std::string(op) + ": " + which_input(inputs, i) + " is undefined");
    for (std::size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i]->defined() && inputs[i]->dtype() == kBFloat16 && policy != DTypes::Elements)
            throw std::invalid_argument(std::string(op) + ": this op does not take bfloat16 tensors (" + which_input(inputs, i) + ", " +
                                        to_string(inputs[i]->shape()) + "); convert with .to(tg::kFloat32). Under tg::AutocastGuard, "
                                        "conv2d, conv_transpose2d, linear and matmul compute in bfloat16 on float32 tensors");
    if (promotes(policy)) return;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& t = *inputs[i];
        if (!t.defined()) continue;
        if (t.dtype() == kBool && policy == DTypes::KeepIntegers)
            throw std::invalid_argument(std::string(op) + ": this op does not take bool tensors (" + which_input(inputs, i) +
                                        ", " + to_string(t.shape()) + "); convert with .to(tg::kFloat32) or .to(tg::kInt64)");
        if (!is_floating_point(t.dtype()) && policy == DTypes::Floating)
            throw std::invalid_argument(std::string(op) + ": this op takes float32 or float64 tensors, got " +
                                        dtype_name(t.dtype()) + " (" + which_input(inputs, i) + ", " +
                                        to_string(t.shape()) + "); convert with .to(tg::kFloat32)");
        const Tensor& first = *inputs[0];
        if (is_floating_point(t.dtype()) && is_floating_point(first.dtype()) && t.dtype() != first.dtype())
            throw std::invalid_argument(std::string(op) + ": expected every input to have one dtype, but input 0 is " +
                                        dtype_name(first.dtype()) + " " + to_string(first.shape()) + " and input " +
                                        std::to_string(i) + " is " + dtype_name(t.dtype()) + " " + to_string(t.shape()) +
                                        "; convert one with .to()");
    }
}

SavedField saved(std::string name, const SavedTensor& t) {
    if (const std::optional<SavedTensorInfo> info = t.info()) return {std::move(name), {}, info};
    return {std::move(name), "(no values kept)", std::nullopt};
}
SavedField saved(std::string name, std::string value) { return {std::move(name), std::move(value), std::nullopt}; }
SavedField saved(std::string name, const char* value) { return {std::move(name), value, std::nullopt}; }
SavedField saved(std::string name, double value) {
    std::ostringstream text;
    text << value;
    return {std::move(name), text.str(), std::nullopt};
}
SavedField saved(std::string name, int64_t value) { return {std::move(name), std::to_string(value), std::nullopt}; }
SavedField saved(std::string name, bool value) { return {std::move(name), value ? "true" : "false", std::nullopt}; }
SavedField saved(std::string name, const std::vector<double>& values) {
    const auto n = static_cast<int64_t>(values.size());
    return {std::move(name), {}, SavedTensorInfo{{n}, kFloat64, values.size() * sizeof(double)}};
}

namespace {
struct DeclaredDerivatives {
    std::mutex mutex;
    std::vector<std::pair<std::string, DerivativeDoc>> list;
};
DeclaredDerivatives& derivatives() {
    static DeclaredDerivatives declared;
    return declared;
}
}  // namespace

void declare_derivative(const char* op, const DerivativeDoc& doc) {
    DeclaredDerivatives& d = derivatives();
    const std::lock_guard lock(d.mutex);
    d.list.emplace_back(op, doc);
}

std::vector<std::pair<std::string, DerivativeDoc>> declared_derivatives() {
    DeclaredDerivatives& d = derivatives();
    const std::lock_guard lock(d.mutex);
    return d.list;
}

DType result_type(std::span<const Tensor* const> inputs) {
    std::optional<DType> dimensioned, zero_dim;
    for (const Tensor* t : inputs) {
        if (!t->defined()) continue;
        std::optional<DType>& slot = t->dim() == 0 ? zero_dim : dimensioned;
        slot = slot ? promote_types(*slot, t->dtype()) : t->dtype();
    }
    if (!dimensioned) return zero_dim.value_or(kFloat32);
    if (zero_dim && category(*zero_dim) > category(*dimensioned)) return promote_types(*dimensioned, *zero_dim);
    return *dimensioned;
}

DType computing_dtype(DTypes policy, std::span<const Tensor* const> inputs) {
    DType dtype = kFloat32;
    if (promotes(policy)) dtype = result_type(inputs);
    else if (!inputs.empty() && inputs[0]->defined()) dtype = inputs[0]->dtype();
    const bool integers_to_float = policy == DTypes::PromoteIntegers || policy == DTypes::PromoteToFloating;
    return integers_to_float && !is_floating_point(dtype) ? kFloat32 : dtype;
}

Tensor computing_input(DTypes policy, DType dtype, const Tensor& t) {
    if (!t.defined()) return t;
    if (promotes(policy)) return t.dtype() == dtype ? t : t.to(dtype);
    if (policy == DTypes::PromoteIntegers && !is_floating_point(t.dtype())) return t.to(kFloat32);
    return t;
}

}  // namespace tapegrad::detail
