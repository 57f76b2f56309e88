// tapegrad_bench: Google Benchmark's main plus --threads=N, which sets the thread count of
// tapegrad's OpenMP loops and of oneDNN before anything runs (and is recorded in the JSON context
// as tapegrad_threads, for bench/compare.py).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "bench/bench_common.hpp"
#include "engine/threads.hpp"

namespace {

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

}  // namespace

int main(int argc, char** argv) {
    const int threads = take_threads_flag(argc, argv);
    if (threads > 0) tapegrad::set_num_threads(threads);
    benchmark::AddCustomContext("tapegrad_threads", std::to_string(tapegrad::get_num_threads()));
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    tapegrad::bench::run_registrars();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
