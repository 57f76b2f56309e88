#pragma once
// What every benchmark file shares: random inputs in a chosen memory format, and one way to turn
// an op into a "fwd" and a "fwd+bwd" benchmark whose names match bench/pytorch_reference.py, so
// that bench/compare.py can join the two. The op rows are the op registry's (bench_ops.cpp); the
// SmallCNN's layers (bench_smallcnn.cpp) are timed the same way.
#include <benchmark/benchmark.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad::bench {

// Values uniform in [-1, 1) (fixed seed), dense in `format`; a leaf that requires grad when asked.
Tensor input(const Shape& shape, MemoryFormat format = MemoryFormat::Contiguous, bool requires_grad = true);

// A timed case: a registry row's bench shape, or a layer of the SmallCNN.
struct OpCase {
    std::string name;    // exactly as in pytorch_reference.py
    std::string layout;  // the layout our op is fed, as it would see it inside a network
    std::vector<Tensor> inputs;
    std::function<Tensor(const std::vector<Tensor>&)> op;
    // Work per run for the counters: flops (conv, matmul) or nominal bytes, every operand read
    // once and every result written once (memory-bound ops). Zero leaves the counter out.
    double flops_fwd = 0, flops_fwd_bwd = 0;
    double bytes_fwd = 0, bytes_fwd_bwd = 0;
};

// Registers "<name>/fwd" (under NoGradGuard) and "<name>/fwd+bwd" (drop the input gradients as
// PyTorch's set_to_none, forward, backward of a fixed random grad_output in the output's layout,
// or of the scalar loss). Times are wall-clock in ms.
void register_op(OpCase c);

// Every benchmark reports in ms: wall-clock time (the figure compared with PyTorch) and the CPU
// time of the whole process, all threads (steadier than wall-clock on a shared machine).
benchmark::internal::Benchmark* timed(benchmark::internal::Benchmark* b);

// Adds the counters "GFLOP" or "GB", per second of wall-clock time (printed as GFLOP=.../s).
void add_rate_counters(benchmark::State& state, double flops, double bytes);

// Each benchmark file registers its cases from a function run by main() after the thread count
// is set (tensors must not be made during static initialisation). With TAPEGRAD_OP set, only the
// op registry's rows run (bench_ops.cpp, registered with op_rows), and only that op's.
using Registrar = void (*)();
int add_registrar(Registrar r, bool op_rows = false);
void run_registrars();

// s as a JSON string, quoted and escaped.
std::string json_string(const std::string& s);

// Prints the op benchmarks (bench_ops.cpp), one JSON line each: name, op, input shapes, PyTorch's
// expression, whether our inputs are channels-last, whether PyTorch runs in our layout only.
void list_op_benchmarks();

}  // namespace tapegrad::bench

#define TAPEGRAD_BENCHMARKS(fn) \
    [[maybe_unused]] static const int tapegrad_bench_registered_##fn = ::tapegrad::bench::add_registrar(&fn)
#define TAPEGRAD_OP_BENCHMARKS(fn) \
    [[maybe_unused]] static const int tapegrad_bench_registered_##fn = ::tapegrad::bench::add_registrar(&fn, true)
