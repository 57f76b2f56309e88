#pragma once
// The op registry: every op appears here with sample inputs, once. One driver
// (tests/test_op_registry.cpp) runs every row through the same checks:
//   - gradcheck in float64 for every input that takes a gradient;
//   - gradgradcheck in float64: the gradient of the vector-Jacobian product (create_graph);
//   - the fast float32 kernel against the reference kernel, in every layout the fast kernel takes;
//   - backward is linear in grad_output;
//   - every subset of the differentiable inputs requiring grad gives the same gradients;
//   - a NaN in the first input reaches the output (unless the row says the op may drop it);
//   - zero-size rows run forward and backward and give gradients of the inputs' shapes.
// A completeness test keeps this table, the ops declared in ops/*.hpp and docs/derivatives.md in
// step. A new op is a new row: add a RegisterOps object with its cases in tests/registry/cases_<family>.cpp.
#include <functional>
#include <string>
#include <vector>

#include "engine/generator.hpp"
#include "engine/tensor.hpp"

namespace tapegrad::testing {

struct OpCase {
    std::string name;                // "conv2d/stride2_pad1"
    std::vector<Shape> input_shapes;  // inputs drawn from N(0,1) unless make_inputs is set
    std::function<Tensor(const std::vector<Tensor>&)> fn;
    // Custom inputs (positive values for log, tie-free values for max_pool, ...). Must honour dtype.
    std::function<std::vector<Tensor>(Generator&, DType)> make_inputs = nullptr;
    // Which inputs get requires_grad; empty means all.
    std::vector<bool> differentiable = {};
    double rtol = 1e-4;  // fast float32 vs reference float32
    double atol = 1e-4;
    bool gradcheck_fast_mode = false;  // u^T J v instead of the full Jacobian, for big inputs
    // An input has no elements: gradcheck has nothing to check, the other checks still run.
    bool zero_size = false;
    // False where a NaN at the first element of the first input can be legitimately absent from
    // the output (an exponent of 0, a label that selects another element).
    bool nan_propagates = true;
};

// The rows, or only those of one op when the environment names it (TAPEGRAD_OP=conv2d): the
// registry's tests, the PyTorch comparisons and the benchmarks all honour the filter.
std::vector<OpCase>& op_registry();
// The op TAPEGRAD_OP selects, or "" for every op.
const std::string& selected_op();
// The op a row tests: its name up to the first '/'.
std::string op_of(const OpCase& c);

// A row's inputs in `dtype`, drawn from a generator seeded with `seed`; those the row
// differentiates require grad.
std::vector<Tensor> make_case_inputs(const OpCase& c, DType dtype, uint64_t seed);

struct RegisterOps {
    explicit RegisterOps(std::vector<OpCase> cases);
};

}  // namespace tapegrad::testing
