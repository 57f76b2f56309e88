// oneDNN's dnnl_sgemm on the matmul shapes, called directly on preallocated buffers: the ceiling
// for tapegrad's matmul ("matmul at >= 90% of dnnl_sgemm" reads off the two rows). fwd is C = A B;
// fwd+bwd adds the two GEMMs of matmul's backward, dA = G B^T and dB = A^T G.
#include <oneapi/dnnl/dnnl.h>

#include <string>

#include "bench/bench_common.hpp"

namespace tapegrad::bench {
namespace {

void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc) {
    if (dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc) != dnnl_success)
        throw std::runtime_error("dnnl_sgemm failed");
}

void run_sgemm(benchmark::State& state, int64_t m, int64_t k, int64_t n, bool backward) {
    const Tensor a = input({m, k}, MemoryFormat::Contiguous, false), b = input({k, n}, MemoryFormat::Contiguous, false);
    const Tensor g = input({m, n}, MemoryFormat::Contiguous, false);
    Tensor c = empty({m, n}), da = empty({m, k}), db = empty({k, n});
    const float *pa = a.data<float>(), *pb = b.data<float>(), *pg = g.data<float>();
    for (auto _ : state) {
        sgemm('N', 'N', m, n, k, pa, k, pb, n, c.data<float>(), n);  // [M,K] x [K,N]
        if (backward) {
            sgemm('N', 'T', m, k, n, pg, n, pb, n, da.data<float>(), k);  // [M,N] x [K,N]^T
            sgemm('T', 'N', k, n, m, pa, k, pg, n, db.data<float>(), n);  // [M,K]^T x [M,N]
        }
        benchmark::ClobberMemory();
    }
    const double flops = 2.0 * m * n * k * (backward ? 3 : 1);
    add_rate_counters(state, flops, 0);
    state.SetLabel("row-major");
}

void register_sgemm() {
    for (auto [m, k, n] : {std::array<int64_t, 3>{64, 4096, 128}, std::array<int64_t, 3>{512, 512, 512}}) {
        const std::string name = "dnnl_sgemm [" + std::to_string(m) + "," + std::to_string(k) + "]x[" +
                                 std::to_string(k) + "," + std::to_string(n) + "]";
        for (bool backward : {false, true})
            timed(benchmark::RegisterBenchmark((name + (backward ? "/fwd+bwd" : "/fwd")).c_str(),
                                               [=](benchmark::State& s) { run_sgemm(s, m, k, n, backward); }));
    }
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_sgemm);
}  // namespace tapegrad::bench
