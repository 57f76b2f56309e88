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

// A row's benchmark (bench/, scripts/bench.sh): the row's fn timed forward and forward+backward
// on inputs of these shapes, against PyTorch's `torch` expression (bench/pytorch_reference.py,
// which reads these through `tapegrad_bench --list-ops`).
struct BenchShape {
    std::string name;                   // as bench/compare.py and docs/performance.md name it: "relu x[32,32,32,32]"
    std::vector<Shape> shapes;          // one per input
    std::vector<MemoryFormat> formats{};  // per input, as a network hands them to the op; missing ones row-major
    std::string layout;                 // the label of that layout: "channels-last", "x row-major"
    std::string torch;                  // PyTorch's expression of the inputs x[0], x[1], ...: "F.relu(x[0])"
    // PyTorch in our layout only (a row that compares layouts), not the faster of NCHW and channels_last.
    bool torch_in_our_layout = false;
    // Work per run for the counters: flops (conv, matmul) or nominal bytes, every operand read once
    // and every result written once (memory-bound ops); zero leaves the counter out.
    double flops_fwd = 0, flops_fwd_bwd = 0;
    double bytes_fwd = 0, bytes_fwd_bwd = 0;
};

// The benchmarks' conv-sized activation (4 MiB of float32), the shape of the memory-bound rows.
inline const Shape kActivation = {32, 32, 32, 32};

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
    std::vector<BenchShape> bench = {};
};

// The rows, or only those of one op when the environment names it (TAPEGRAD_OP=conv2d): the
// registry's tests, the benchmarks (bench/bench_ops.cpp) and bench/pytorch_reference.py all
// honour the filter.
std::vector<OpCase>& op_registry();
// The op TAPEGRAD_OP selects, or "" for every op.
const std::string& selected_op();
// The op a row tests: its name up to the first '/'.
std::string op_of(const OpCase& c);

// A row's inputs in `dtype`, drawn from a generator seeded with `seed`; those the row
// differentiates require grad.
std::vector<Tensor> make_case_inputs(const OpCase& c, DType dtype, uint64_t seed);

// The row c with benchmarks.
OpCase with_bench(OpCase c, std::vector<BenchShape> bench);
// The bytes of a float32 tensor of this shape, for the counters of a memory-bound benchmark.
double float_bytes(const Shape& shape);

struct RegisterOps {
    explicit RegisterOps(std::vector<OpCase> cases);
};

}  // namespace tapegrad::testing
