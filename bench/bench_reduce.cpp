// Reductions against memory bandwidth: a float32 copy of 4 MiB (the activations' size, so from the
// same level of the cache hierarchy; GB/s counts the bytes read plus the bytes written, as
// pytorch_reference.py's copy_gbs), the yardstick of the sums a training step does over that much
// data, each in GB/s of bytes read: the full sum and the per-channel sum over N, H and W in both
// layouts (op registry rows, bench_ops.cpp), and here batch norm's statistics in both layouts.
// Target (docs/performance.md): every sum within 20% of the copy's GB/s at the same thread count.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "bench/bench_common.hpp"
#include "engine/strided.hpp"
#include "ops/kernels/batch_norm.hpp"

namespace tapegrad::bench {
namespace {

constexpr double kF = sizeof(float);
const Shape kAct{32, 32, 32, 32};

// memcpy of fixed chunks, split over the threads like our own elementwise loops.
void run_copy(benchmark::State& state) {
    const Tensor a = input(kAct, MemoryFormat::Contiguous, false);
    Tensor b = empty(kAct);
    const int64_t n = a.numel(), chunk = kParallelThreshold;
    const float* src = a.data<float>();
    float* dst = b.data<float>();
    for (auto _ : state) {
#pragma omp parallel for schedule(static)
        for (int64_t at = 0; at < n; at += chunk) std::memcpy(dst + at, src + at, std::min(chunk, n - at) * sizeof(float));
        benchmark::ClobberMemory();
    }
    add_rate_counters(state, 0, 2.0 * static_cast<double>(n) * kF);
    state.SetLabel("memcpy");
}

void run_bn_stats(benchmark::State& state, MemoryFormat format) {
    const Tensor x = input(kAct, format, false);
    for (auto _ : state) {
        kernels::ChannelStats s = kernels::batch_norm_stats_fast(x);
        benchmark::DoNotOptimize(s.mean.data());
    }
    add_rate_counters(state, 0, static_cast<double>(x.numel()) * kF);
    state.SetLabel(format == MemoryFormat::ChannelsLast ? "channels-last" : "row-major");
}

void register_reduce() {
    timed(benchmark::RegisterBenchmark("reduce copy [32,32,32,32]/fwd", run_copy));
    for (const auto format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        const std::string layout = format == MemoryFormat::ChannelsLast ? "channels-last" : "row-major";
        timed(benchmark::RegisterBenchmark(("reduce batch_norm stats [32,32,32,32] " + layout + "/fwd").c_str(), run_bn_stats, format));
    }
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_reduce);
}  // namespace tapegrad::bench
