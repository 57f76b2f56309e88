#pragma once
// Fast float32 activations built on exp, log, tanh and erfc: xsimd vector loops over dense buffers,
// in parallel above the size threshold. Every element, a tail shorter than the vector width
// included, goes through the same vector code, so a value does not depend on where it sits or on
// the thread count. The reference kernels (std::exp per element, float and double) are
// map_unary_reference / map_pair_reference in activation_reference.hpp.
#include <cstdint>

#include "engine/tensor.hpp"

namespace tapegrad::kernels {

enum class Activation : uint8_t { Exp, Log, Sigmoid, Tanh, Silu, Elu, Gelu, GeluTanh };

// Within a few ulp of std:: in float (tests/test_activation_fast.cpp measures it): exp
// overflows to inf and reaches the subnormals before 0, log(0) = -inf and log(x < 0) = NaN,
// sigmoid(-100) = 0 and tanh(+-inf) = +-1 without NaN; NaN stays NaN.
struct ActivationKernel {
    Activation op;
    float alpha = 1.0f;  // elu's alpha; unused by the others
};

// y = f(x) over n contiguous floats.
void activation_forward_fast(ActivationKernel f, const float* x, float* y, int64_t n);
// dx = g * f'(.) over n contiguous floats, from the tensor the op saves: the output y for exp,
// sigmoid and tanh, the input x for log, silu, elu and gelu.
void activation_backward_fast(ActivationKernel f, const float* g, const float* saved, float* dx, int64_t n);

// The same on tensors of any strides: a dense x (row-major or channels-last) keeps its layout
// in the output, anything else is read through a row-major copy. g and saved share a shape;
// dx takes saved's layout when g has it too, else both are read row-major.
Tensor activation_forward_fast(ActivationKernel f, const Tensor& x);
Tensor activation_backward_fast(ActivationKernel f, const Tensor& g, const Tensor& saved);

}  // namespace tapegrad::kernels
