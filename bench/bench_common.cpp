#include "bench/bench_common.hpp"

#include <utility>

#include "engine/autograd.hpp"
#include "engine/generator.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::bench {

Tensor input(const Shape& shape, MemoryFormat format, bool requires_grad) {
    // Uniform rather than normal: every case's inputs are made at start-up, and Box-Muller's
    // log and cos would cost more than some of the benchmarks.
    static Generator gen(42);
    Tensor values = uniform(shape, -1.0, 1.0, gen);
    Tensor t = format == MemoryFormat::Contiguous ? values : values.contiguous(format);
    if (requires_grad) t.requires_grad_();
    return t;
}

void add_rate_counters(benchmark::State& state, double flops, double bytes) {
    // kIsIterationInvariantRate: work * iterations / time; the benchmarks use real time, so the
    // rate is over wall-clock time (what matters with several threads).
    if (flops > 0) state.counters["GFLOP"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    if (bytes > 0) state.counters["GB"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

namespace {

void run_forward(benchmark::State& state, const OpCase& c) {
    NoGradGuard no_grad;
    for (auto _ : state) {
        Tensor out = c.op(c.inputs);
        benchmark::DoNotOptimize(out.data_ptr());
    }
    add_rate_counters(state, c.flops_fwd, c.bytes_fwd);
    state.SetLabel(c.layout);
}

void run_forward_backward(benchmark::State& state, const OpCase& c) {
    Tensor grad_output;
    {
        NoGradGuard no_grad;
        Tensor out = c.op(c.inputs);
        if (out.dim() > 0) {
            grad_output = empty_like(out);  // keeps the output's memory format
            grad_output.copy_(input(out.shape(), MemoryFormat::Contiguous, false));
        }
    }
    for (auto _ : state) {
        for (Tensor t : c.inputs)
            if (t.requires_grad()) t.zero_grad();
        Tensor out = c.op(c.inputs);
        out.backward(grad_output);
    }
    add_rate_counters(state, c.flops_fwd_bwd, c.bytes_fwd_bwd);
    state.SetLabel(c.layout);
}

std::vector<std::pair<Registrar, bool>>& registrars() {  // with whether it registers op rows
    static std::vector<std::pair<Registrar, bool>> list;
    return list;
}

}  // namespace

benchmark::internal::Benchmark* timed(benchmark::internal::Benchmark* b) {
    return b->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
}

void register_op(OpCase c) {
    auto shared = std::make_shared<const OpCase>(std::move(c));
    timed(benchmark::RegisterBenchmark((shared->name + "/fwd").c_str(),
                                       [shared](benchmark::State& s) { run_forward(s, *shared); }));
    timed(benchmark::RegisterBenchmark((shared->name + "/fwd+bwd").c_str(),
                                       [shared](benchmark::State& s) { run_forward_backward(s, *shared); }));
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

int add_registrar(Registrar r, bool op_rows) {
    registrars().emplace_back(r, op_rows);
    return static_cast<int>(registrars().size());
}

void run_registrars() {
    for (const auto& [r, op_rows] : registrars())
        if (op_rows || testing::selected_op().empty()) r();
}

}  // namespace tapegrad::bench
