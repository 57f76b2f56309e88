#pragma once
// gradcheck: compares the gradients autograd computes with central finite differences, in float64,
// with PyTorch's defaults. Full mode builds both Jacobians element by element; fast mode compares
// u^T J v for random u and v, for inputs too big for a full Jacobian.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

struct GradcheckOptions {
    double eps = 1e-6;
    double atol = 1e-5;
    double rtol = 1e-3;
    bool fast_mode = false;
    uint64_t seed = 0;  // for fast mode's random vectors
};

struct GradcheckResult {
    bool passed = false;
    std::string message;  // on failure: which input, which element, numerical vs analytical
    explicit operator bool() const { return passed; }
};

using DifferentiableFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks d fn(inputs) / d inputs[i] for every input that requires grad. Those inputs must be
// float64. `fn` may be called many times and must be deterministic.
GradcheckResult gradcheck(const DifferentiableFn& fn, const std::vector<Tensor>& inputs, GradcheckOptions options = {});

}  // namespace tapegrad
