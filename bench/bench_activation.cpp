// relu on a conv-sized activation. GB/s over nominal traffic: read x, write out; the backward
// reads g and the saved input or output, and writes dx.
#include "bench/bench_common.hpp"
#include "ops/activation.hpp"

namespace tapegrad::bench {
namespace {

void register_activation() {
    const Shape act{32, 32, 32, 32};
    const double bytes = static_cast<double>(numel_of(act)) * sizeof(float);
    register_op({.name = "relu x[32,32,32,32]",
                 .layout = "channels-last",
                 .inputs = {input(act, MemoryFormat::ChannelsLast)},
                 .op = [](const std::vector<Tensor>& in) { return relu(in[0]); },
                 .bytes_fwd = 2 * bytes,
                 .bytes_fwd_bwd = 5 * bytes});
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_activation);
}  // namespace tapegrad::bench
