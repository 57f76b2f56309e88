// The two BLAS behind kernels::gemm, each called directly on preallocated buffers, on the matmul
// shapes: "dnnl_sgemm [..]" and "openblas_sgemm [..]" (when linked). The faster of the two is the
// ceiling for tapegrad's matmul (target: at least 95% of it). fwd is C = A B; fwd+bwd adds the
// two GEMMs of matmul's backward, dA = G B^T and dB = A^T G.
#include <string>

#include "bench/bench_common.hpp"
#include "ops/kernels/gemm_backend.hpp"

namespace tapegrad::bench {
namespace {

using kernels::GemmBackend;

void run_sgemm(benchmark::State& state, GemmBackend backend, int64_t m, int64_t k, int64_t n, bool backward) {
    const Tensor a = input({m, k}, MemoryFormat::Contiguous, false), b = input({k, n}, MemoryFormat::Contiguous, false);
    const Tensor g = input({m, n}, MemoryFormat::Contiguous, false);
    Tensor c = empty({m, n}), da = empty({m, k}), db = empty({k, n});
    const float *pa = a.data<float>(), *pb = b.data<float>(), *pg = g.data<float>();
    for (auto _ : state) {
        kernels::sgemm_on(backend, false, false, m, n, k, 1.0f, pa, k, pb, n, 0.0f, c.data<float>(), n);  // [M,K] x [K,N]
        if (backward) {
            kernels::sgemm_on(backend, false, true, m, k, n, 1.0f, pg, n, pb, n, 0.0f, da.data<float>(), k);  // [M,N] x [K,N]^T
            kernels::sgemm_on(backend, true, false, k, n, m, 1.0f, pa, k, pg, n, 0.0f, db.data<float>(), n);  // [M,K]^T x [M,N]
        }
        benchmark::ClobberMemory();
    }
    const double flops = 2.0 * m * n * k * (backward ? 3 : 1);
    add_rate_counters(state, flops, 0);
    state.SetLabel("row-major");
}

void register_sgemm() {
    for (GemmBackend backend : {GemmBackend::OneDnn, GemmBackend::OpenBlas}) {
        if (backend == GemmBackend::OpenBlas && !kernels::have_openblas()) continue;
        const std::string library = backend == GemmBackend::OneDnn ? "dnnl_sgemm" : "openblas_sgemm";
        for (auto [m, k, n] : {std::array<int64_t, 3>{64, 4096, 128}, std::array<int64_t, 3>{512, 512, 512}}) {
            const std::string name = library + " [" + std::to_string(m) + "," + std::to_string(k) + "]x[" +
                                     std::to_string(k) + "," + std::to_string(n) + "]";
            for (bool backward : {false, true})
                timed(benchmark::RegisterBenchmark((name + (backward ? "/fwd+bwd" : "/fwd")).c_str(),
                                                   [=](benchmark::State& s) { run_sgemm(s, backend, m, k, n, backward); }));
        }
    }
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_sgemm);
}  // namespace tapegrad::bench
