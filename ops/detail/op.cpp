#include "ops/detail/op.hpp"

#include <stdexcept>

namespace tapegrad::detail {
namespace {

std::string which_input(std::span<const Tensor* const> inputs, std::size_t i) {
    return inputs.size() == 1 ? "the input" : "input " + std::to_string(i);
}

}  // namespace

void check_op_inputs(const char* op, DTypes policy, std::span<const Tensor* const> inputs, std::size_t required) {
    for (std::size_t i = 0; i < inputs.size() && i < required; ++i)
        if (!inputs[i]->defined()) throw std::invalid_argument(std::string(op) + ": " + which_input(inputs, i) + " is undefined");
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& t = *inputs[i];
        if (!t.defined()) continue;
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

Tensor promote_integer(const Tensor& t) { return !t.defined() || is_floating_point(t.dtype()) ? t : t.to(kFloat32); }

}  // namespace tapegrad::detail
