// matmul on two shapes, a skinny one (a fully connected layer's) and a square one; bench_sgemm.cpp
// times the two BLAS libraries alone on the same shapes.
// GFLOP/s: 2*M*N*K for the forward, three GEMMs of that size for forward+backward.
#include <string>

#include "bench/bench_common.hpp"
#include "ops/linear.hpp"

namespace tapegrad::bench {
namespace {

void register_linear() {
    for (auto [m, k, n] : {std::array<int64_t, 3>{64, 4096, 128}, std::array<int64_t, 3>{512, 512, 512}}) {
        const double flops = 2.0 * m * n * k;
        register_op({.name = "matmul [" + std::to_string(m) + "," + std::to_string(k) + "]x[" + std::to_string(k) +
                             "," + std::to_string(n) + "]",
                     .layout = "row-major",
                     .inputs = {input({m, k}), input({k, n})},
                     .op = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                     .flops_fwd = flops,
                     .flops_fwd_bwd = 3 * flops});
    }
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_linear);
}  // namespace tapegrad::bench
