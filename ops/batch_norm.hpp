#pragma once
// Batch normalisation per channel: over N,H,W for [N,C,H,W], over N,L for [N,C,L], over N for [N,C].
#include "engine/tensor.hpp"

namespace tapegrad {

struct BatchNormOptions {
    bool training = true;
    double momentum = 0.1;
    double eps = 1e-5;
};

// training: normalise with the batch statistics (biased variance) and, when running_mean and
// running_var are defined, update them in place: running = (1-momentum)*running + momentum*batch,
// with the unbiased batch variance. eval: normalise with the running statistics.
// weight (gamma) and bias (beta) are [C] or undefined. The backward is the closed form.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, const BatchNormOptions& options = {}, SourceLocation loc = SourceLocation::current());

// relu(batch_norm(...)) with the same arguments, in one pass each way on the float32 fast
// kernels: the forward clamps as it writes, and the backward recomputes from x where the output
// was positive instead of reading it back. The reference kernels (float64, ReferenceKernelsGuard)
// run the two ops unfused, which is what the registry compares the fused kernels with.
Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, const BatchNormOptions& options = {}, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
