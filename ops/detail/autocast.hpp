#pragma once
// What the autocast ops (conv2d, conv_transpose2d, matmul, linear) read from the guard, at their
// public function: the precision they compute in, which their definitions keep for the backward
// and hand to the kernels as an argument.
#include <vector>

#include "engine/autograd.hpp"
#include "engine/tensor.hpp"
#include "ops/kernels/kernel_choice.hpp"

namespace tapegrad::detail {

// Float32 outside an AutocastGuard or for a tensor that is not float32; else BFloat16 where the
// guard asks for the best path, `kernels` are the fast ones and the processor runs bf16 kernels,
// BFloat16Reference otherwise.
Precision autocast_precision(DType dtype, Kernels kernels);

// Reopens the autocast state that `precision` was chosen under, for a backward spec that records
// the op again (create_graph): its products then compute as the forward's did.
class PrecisionGuard {
public:
    explicit PrecisionGuard(Precision precision);
    ~PrecisionGuard();
    PrecisionGuard(const PrecisionGuard&) = delete;
    PrecisionGuard& operator=(const PrecisionGuard&) = delete;

private:
    uint8_t previous_;
};

// t as the reference path computes with it: a float32 copy rounded to bfloat16 under
// BFloat16Reference, else t itself (the bf16 kernels convert their inputs themselves).
Tensor autocast_input(Precision precision, const Tensor& t);
// t's values rounded to bfloat16, a float32 copy, under either bfloat16 precision (what no bf16
// kernel converts: a bias added after the product, a bias gradient summed by a plain reduction);
// t itself under Float32.
Tensor bfloat16_values(Precision precision, const Tensor& t);
// Rounds a result the op has just made to bfloat16 in place (any precision but Float32) and
// returns it.
Tensor autocast_output(Precision precision, Tensor t);

// An autocast op's saved state for to_dot: `fields`, and "precision" when it is not float32.
std::vector<SavedField> with_precision(std::vector<SavedField> fields, Precision precision);

}  // namespace tapegrad::detail
