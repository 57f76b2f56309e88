// The cost of averaging gradients over MPI ranks, for docs/distributed.md:
//   mpirun -np 2 build/bench/distributed_step [steps]
// 1. a blocking MPI all-reduce of the SmallCNN's gradient (1.61 MiB), alone: what there is to hide;
// 2. SmallCNN training steps (batch 32 per rank, synthetic data) with the all-reduces overlapping
//    backward (1 MiB buckets) and started after it, in alternating blocks of 10 steps, so that
//    the machine's load changes hit both alike. Medians, printed by rank 0.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "distributed/data_parallel.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace dist = tapegrad::distributed;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

std::shared_ptr<nn::Sequential> small_cnn(tg::Generator& gen) {
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(1, 32, 3, gen, tg::Conv2dOptions{.padding = 1}),
        std::make_shared<nn::BatchNorm2d>(32), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2}),
        std::make_shared<nn::Conv2d>(32, 64, 3, gen, tg::Conv2dOptions{.padding = 1}),
        std::make_shared<nn::BatchNorm2d>(64), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2}), std::make_shared<nn::Flatten>(),
        std::make_shared<nn::Linear>(64 * 7 * 7, 128, gen), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(128, 10, gen)});
}

struct StepTimes {
    std::vector<double> step_ms, wait_ms;
};

}  // namespace

int main(int argc, char** argv) {
    const int steps = argc > 1 ? std::stoi(argv[1]) : 200;
    tg::set_num_threads(1);
    dist::ProcessGroup& group = dist::ProcessGroup::world();
    tg::Generator gen(0);

    // 1. The all-reduce alone.
    auto probe = small_cnn(gen);
    int64_t numel = 0;
    for (const tg::Tensor& p : probe->parameters()) numel += p.numel();
    const tg::Tensor gradient = tg::zeros({numel});
    std::vector<double> reduce_ms;
    for (int i = 0; i < steps; ++i) {
        group.barrier();
        const auto start = Clock::now();
        group.all_reduce_sum(gradient);
        reduce_ms.push_back(ms_since(start));
    }

    // 2. Training steps, the two modes side by side.
    const tg::Tensor images = tg::randn({32, 1, 28, 28}, gen);
    std::vector<int64_t> labels;
    for (int i = 0; i < 32; ++i) labels.push_back(static_cast<int64_t>(gen.below(10)));
    struct Mode {
        const char* name;
        std::shared_ptr<dist::DistributedDataParallel> ddp;
        StepTimes times;
    };
    std::vector<Mode> modes;
    for (bool overlap : {true, false}) {
        tg::Generator init(1);
        modes.push_back({overlap ? "overlapped with backward" : "after backward",
                         std::make_shared<dist::DistributedDataParallel>(
                             small_cnn(init), dist::DataParallelOptions{.bucket_cap_mb = 1, .overlap_with_backward = overlap}),
                         {}});
    }
    for (int block = 0; block < steps / 10; ++block)
        for (Mode& mode : modes)
            for (int i = 0; i < 10; ++i) {
                group.barrier();
                const double waited = mode.ddp->stats().wait_seconds;
                const auto start = Clock::now();
                mode.ddp->zero_grad();
                tg::cross_entropy(mode.ddp->forward(images), labels).backward();
                mode.ddp->synchronize();
                if (block > 0) {  // the first block warms caches and primitives up
                    mode.times.step_ms.push_back(ms_since(start));
                    mode.times.wait_ms.push_back(1e3 * (mode.ddp->stats().wait_seconds - waited));
                }
            }
    if (group.is_main()) {
        std::printf("%d ranks, 1 thread each, %d samples per figure, medians\n", group.size(), steps - 10);
        std::printf("blocking all-reduce of %lld floats (%.2f MiB): %.3f ms\n", static_cast<long long>(numel),
                    numel * 4.0 / (1 << 20), median(reduce_ms));
        for (const Mode& mode : modes)
            std::printf("step (forward + backward + synchronize), %zu buckets, all-reduces %s: %.2f ms, of which "
                        "waiting for them %.3f ms\n",
                        mode.ddp->bucket_layout().size(), mode.name, median(mode.times.step_ms),
                        median(mode.times.wait_ms));
    }
    return 0;
}
