// tapegrad_bench: Google Benchmark's main plus two flags of ours.
//   --threads=N  sets the thread count of tapegrad's OpenMP loops, of oneDNN and of OpenBLAS
//                before anything runs (recorded in the JSON context as tapegrad_threads).
//   --serve      reads commands from stdin, one a line, and answers each with JSON lines on
//                stdout, so that bench/pytorch_reference.py can time our case and PyTorch's
//                alternately, case by case (a ratio taken minutes apart on a shared machine moves
//                by 30%):
//                  info            -> {"onednn_isa": ..., "openblas": ..., "gemm": {...}}
//                  threads N       -> {"threads": N}
//                  run REGEX       -> {"name", "ms", "cpu_ms", "label", "iterations", and the
//                                     counters "GFLOP" or "GB" per second when set} for each
//                                     benchmark whose name matches (once each, at least
//                                     --benchmark_min_time seconds), then {"end": true}
//   --list-ops   prints the op benchmarks, which come from the op registry (bench_ops.cpp), one
//                JSON line each, and exits: bench/pytorch_reference.py builds PyTorch's side from them.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "bench/bench_common.hpp"
#include "engine/threads.hpp"
#include "ops/kernels/cpu_isa.hpp"
#include "ops/kernels/gemm_backend.hpp"

namespace {

using tapegrad::bench::json_string;

// Removes --threads=N from argv (Google Benchmark rejects flags it does not know); 0 if absent.
int take_threads_flag(int& argc, char** argv) {
    int threads = 0;
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "--threads=", 10) == 0) {
            threads = std::atoi(argv[i] + 10);
            if (threads < 1) {
                std::cerr << "tapegrad_bench: --threads wants a number >= 1, got '" << argv[i] + 10 << "'\n";
                std::exit(2);
            }
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    return threads;
}

bool take_flag(int& argc, char** argv, const char* flag) {
    bool found = false;
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], flag) == 0)
            found = true;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    return found;
}

// One JSON line per finished benchmark run, in ms.
class LineReporter : public benchmark::BenchmarkReporter {
public:
    bool ReportContext(const Context&) override { return true; }
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& r : runs) {
            if (r.error_occurred) {
                std::cout << "{\"name\": " << json_string(r.benchmark_name()) << ", \"error\": " << json_string(r.error_message)
                          << "}\n";
                continue;
            }
            const double scale = benchmark::GetTimeUnitMultiplier(benchmark::kMillisecond) /
                                 benchmark::GetTimeUnitMultiplier(r.time_unit);
            std::cout << "{\"name\": " << json_string(r.run_name.str()) << ", \"ms\": " << r.GetAdjustedRealTime() * scale
                      << ", \"cpu_ms\": " << r.GetAdjustedCPUTime() * scale << ", \"label\": " << json_string(r.report_label)
                      << ", \"iterations\": " << r.iterations;
            // The rate counters of add_rate_counters, per second of wall-clock time.
            for (const auto& [name, counter] : r.counters) std::cout << ", " << json_string(name) << ": " << counter.value;
            std::cout << "}\n";
        }
        std::cout.flush();
    }
};

std::string gemm_choices() {
    using tapegrad::kernels::gemm_backend;
    using tapegrad::kernels::gemm_backend_name;
    // The products of the matmul cases and of the SmallCNN's first fully connected layer.
    struct Product {
        const char* name;
        bool ta, tb;
        int64_t m, n, k;
    };
    const Product products[] = {{"[512,512]x[512,512]", false, false, 512, 512, 512},
                                {"[64,4096]x[4096,128]", false, false, 64, 128, 4096},
                                {"[64,128]x[4096,128]^T", false, true, 64, 4096, 128},
                                {"[64,4096]^T x[64,128]", true, false, 4096, 128, 64}, {"[64,128]^T x[64,4096]", true, false, 128, 4096, 64}};
    std::string out = "{";
    for (const Product& p : products)
        out += std::string(out.size() > 1 ? ", " : "") + json_string(p.name) + ": " +
               json_string(gemm_backend_name(gemm_backend(p.ta, p.tb, p.m, p.n, p.k)));
    return out + "}";
}

void serve() {
    LineReporter reporter;
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line == "info") {
            std::cout << "{\"onednn_isa\": " << json_string(tapegrad::kernels::onednn_isa_name())
                      << ", \"openblas\": " << (tapegrad::kernels::have_openblas() ? "true" : "false")
                      << ", \"threads\": " << tapegrad::get_num_threads() << ", \"gemm\": " << gemm_choices() << "}\n";
        } else if (line.rfind("threads ", 0) == 0) {
            tapegrad::set_num_threads(std::atoi(line.c_str() + 8));
            std::cout << "{\"threads\": " << tapegrad::get_num_threads() << "}\n";
        } else if (line.rfind("run ", 0) == 0) {
            benchmark::RunSpecifiedBenchmarks(&reporter, line.substr(4));
            std::cout << "{\"end\": true}\n";
        } else {
            std::cout << "{\"error\": " << json_string("unknown command: " + line) << "}\n";
        }
        std::cout.flush();
    }
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = take_threads_flag(argc, argv);
    const bool serving = take_flag(argc, argv, "--serve");
    if (take_flag(argc, argv, "--list-ops")) {
        tapegrad::bench::list_op_benchmarks();
        return 0;
    }
    if (threads > 0) tapegrad::set_num_threads(threads);
    benchmark::AddCustomContext("tapegrad_threads", std::to_string(tapegrad::get_num_threads()));
    benchmark::AddCustomContext("onednn_isa", tapegrad::kernels::onednn_isa_name());
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    tapegrad::bench::run_registrars();
    if (serving)
        serve();
    else
        benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
