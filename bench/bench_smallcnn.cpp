// One training step of the SmallCNN (seed 003, section 2.8; docs/measured.md): batch 64 of 3x32x32,
// conv3-32 bn relu pool, conv32-64 bn relu pool, fc 4096-128 relu dropout 0.5, fc 128-10,
// cross-entropy, AdamW lr 1e-3 (weight decay 1e-2, PyTorch's default). A step is zero_grad,
// forward, backward, optimizer step, as in pytorch_reference.py.
#include <memory>
#include <optional>

#include "bench/bench_common.hpp"
#include "engine/generator.hpp"
#include "engine/profiler.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"
#include "ops/loss.hpp"

namespace tapegrad::bench {
namespace {

std::shared_ptr<nn::Sequential> small_cnn(Generator& gen) {
    using std::make_shared;
    const Pool2dOptions pool{.kernel_size = 2, .stride = Pair(2)};
    return make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        make_shared<nn::Conv2d>(3, 32, 3, gen, Conv2dOptions{.padding = 1}), make_shared<nn::BatchNorm2d>(32),
        make_shared<nn::ReLU>(), make_shared<nn::MaxPool2d>(pool),
        make_shared<nn::Conv2d>(32, 64, 3, gen, Conv2dOptions{.padding = 1}), make_shared<nn::BatchNorm2d>(64),
        make_shared<nn::ReLU>(), make_shared<nn::MaxPool2d>(pool),
        make_shared<nn::Flatten>(), make_shared<nn::Linear>(64 * 8 * 8, 128, gen), make_shared<nn::ReLU>(),
        make_shared<nn::Dropout>(0.5), make_shared<nn::Linear>(128, 10, gen)});
}

// With `profiled`, each step runs under its own tg::Profiler (the cost of --profile); without, the
// profiler is off, which must cost nothing measurable.
void run_step(benchmark::State& state, bool profiled) {
    Generator gen(0);
    auto model = small_cnn(gen);
    model->train();
    nn::AdamW optimizer(model->parameters(), {.lr = 1e-3, .weight_decay = 1e-2});
    const Tensor x = input({64, 3, 32, 32}, MemoryFormat::Contiguous, false);
    std::vector<int64_t> labels(64);
    for (auto& l : labels) l = static_cast<int64_t>(gen.below(10));
    for (auto _ : state) {
        std::optional<Profiler> profiler;
        if (profiled) profiler.emplace();
        optimizer.zero_grad();
        Tensor loss = cross_entropy((*model)(x), labels);
        loss.backward();
        optimizer.step();
    }
    state.SetLabel(profiled ? "input row-major, profiler on" : "input row-major");
}

void register_smallcnn() {
    timed(benchmark::RegisterBenchmark("smallcnn step b64/train step", run_step, false));
    timed(benchmark::RegisterBenchmark("smallcnn step b64 profiled/train step", run_step, true));
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_smallcnn);
}  // namespace tapegrad::bench
