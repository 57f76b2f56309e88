// max_pool2d k2 s2 on a conv-sized activation. GB/s over nominal traffic: read x, write the
// quarter-sized output; the backward reads g and writes dx.
#include "bench/bench_common.hpp"
#include "ops/pooling.hpp"

namespace tapegrad::bench {
namespace {

void register_pooling() {
    const Shape act{32, 32, 32, 32};
    const double bytes = static_cast<double>(numel_of(act)) * sizeof(float);
    register_op({.name = "max_pool2d x[32,32,32,32] k2 s2",
                 .layout = "channels-last",
                 .inputs = {input(act, MemoryFormat::ChannelsLast)},
                 .op = [](const std::vector<Tensor>& in) { return max_pool2d(in[0], {.kernel_size = 2, .stride = Pair(2)}); },
                 .bytes_fwd = 1.25 * bytes,
                 .bytes_fwd_bwd = 2.5 * bytes});
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_pooling);
}  // namespace tapegrad::bench
