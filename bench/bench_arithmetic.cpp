// add (same shape, and a per-channel bias broadcast over [N,C,H,W]) and sum: memory-bound, so the
// counter is GB/s over nominal traffic (each operand read once, each result written once).
#include "bench/bench_common.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"

namespace tapegrad::bench {
namespace {

constexpr double kF = sizeof(float);

void register_arithmetic() {
    const Shape act{32, 32, 32, 32};
    const double n = static_cast<double>(numel_of(act));
    // Activations come out of conv2d channels-last, so that is what add and sum see in a network.
    const auto cl = MemoryFormat::ChannelsLast;

    // fwd: read a, b, write out; bwd: read g, write da, db.
    register_op({.name = "add [32,32,32,32]+[32,32,32,32]",
                 .layout = "channels-last",
                 .inputs = {input(act, cl), input(act, cl)},
                 .op = [](const std::vector<Tensor>& in) { return add(in[0], in[1]); },
                 .bytes_fwd = 3 * n * kF,
                 .bytes_fwd_bwd = 6 * n * kF});

    // fwd: read x, write out; bwd: read g, write dx, and reduce g to the [1,C,1,1] bias gradient.
    register_op({.name = "add [32,32,32,32]+[1,32,1,1]",
                 .layout = "channels-last",
                 .inputs = {input(act, cl), input({1, 32, 1, 1})},
                 .op = [](const std::vector<Tensor>& in) { return add(in[0], in[1]); },
                 .bytes_fwd = 2 * n * kF,
                 .bytes_fwd_bwd = 5 * n * kF});

    // fwd: read x; bwd: write dx.
    register_op({.name = "sum [32,32,32,32]",
                 .layout = "channels-last",
                 .inputs = {input(act, cl)},
                 .op = [](const std::vector<Tensor>& in) { return sum(in[0]); },
                 .bytes_fwd = n * kF,
                 .bytes_fwd_bwd = 2 * n * kF});
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_arithmetic);
}  // namespace tapegrad::bench
