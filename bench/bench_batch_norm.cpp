// batch_norm in training mode (batch statistics, running statistics updated) on a conv-sized
// activation, with weight and bias. GB/s over nominal traffic: read x, write out; the backward
// reads g and x and writes dx.
#include "bench/bench_common.hpp"
#include "ops/batch_norm.hpp"

namespace tapegrad::bench {
namespace {

void register_batch_norm() {
    const Shape act{32, 32, 32, 32};
    const double bytes = static_cast<double>(numel_of(act)) * sizeof(float);
    Tensor running_mean = zeros({32}), running_var = ones({32});
    register_op({.name = "batch_norm train x[32,32,32,32]",
                 .layout = "channels-last",
                 .inputs = {input(act, MemoryFormat::ChannelsLast), ones({32}).requires_grad_(),
                            zeros({32}).requires_grad_()},
                 .op = [running_mean, running_var](const std::vector<Tensor>& in) {
                     return batch_norm(in[0], running_mean, running_var, in[1], in[2], {.training = true});
                 },
                 .bytes_fwd = 2 * bytes,
                 .bytes_fwd_bwd = 5 * bytes});
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_batch_norm);
}  // namespace tapegrad::bench
