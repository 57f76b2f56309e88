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

// PyTorch's gradgradcheck: checks the second derivatives of fn by running gradcheck on the
// function (inputs, grad_output) -> d fn(inputs)/d inputs . grad_output, computed with
// create_graph, i.e. on the gradient of the vector-Jacobian product with respect to both the
// inputs and grad_output. grad_output defaults to a random float64 tensor (from options.seed) of
// the output's shape. Inputs as for gradcheck.
GradcheckResult gradgradcheck(const DifferentiableFn& fn, const std::vector<Tensor>& inputs, const Tensor& grad_output = Tensor(),
                              GradcheckOptions options = {});

}  // namespace tapegrad
