// cross_entropy (fused log-softmax + NLL, mean reduction) on a classifier head ([64,10]) and a
// wide one ([512,1000]). GB/s over nominal traffic: read the logits; the backward writes dlogits.
#include <string>

#include "bench/bench_common.hpp"
#include "engine/generator.hpp"
#include "ops/loss.hpp"

namespace tapegrad::bench {
namespace {

void register_loss() {
    Generator gen(7);
    for (auto [n, k] : {std::array<int64_t, 2>{64, 10}, std::array<int64_t, 2>{512, 1000}}) {
        std::vector<int64_t> labels(n);
        for (auto& l : labels) l = static_cast<int64_t>(gen.below(k));
        const double bytes = static_cast<double>(n * k) * sizeof(float);
        register_op({.name = "cross_entropy [" + std::to_string(n) + "," + std::to_string(k) + "]",
                     .layout = "row-major",
                     .inputs = {input({n, k})},
                     .op = [labels](const std::vector<Tensor>& in) { return cross_entropy(in[0], labels); },
                     .bytes_fwd = bytes,
                     .bytes_fwd_bwd = 3 * bytes});
    }
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_loss);
}  // namespace tapegrad::bench
