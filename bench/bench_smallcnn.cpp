// One training step of the SmallCNN (docs/measured.md): batch 64 of 3x32x32,
// conv3-32 bn relu pool, conv32-64 bn relu pool, fc 4096-128 relu dropout 0.5, fc 128-10,
// cross-entropy, AdamW lr 1e-3 (weight decay 1e-2, PyTorch's default). A step is zero_grad,
// forward, backward, optimizer step, as in pytorch_reference.py.
#include <array>
#include <memory>
#include <optional>
#include <string>

#include "bench/bench_common.hpp"
#include "engine/generator.hpp"
#include "engine/profiler.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"
#include "ops/activation.hpp"
#include "ops/autocast.hpp"
#include "ops/batch_norm.hpp"
#include "ops/conv.hpp"
#include "ops/linear.hpp"
#include "ops/loss.hpp"
#include "ops/pooling.hpp"

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

// Plain: the step as a user writes it, opted in to channels-last (model.to(ChannelsLast) and a
// channels-last input, as pytorch_reference.py's channels_last side). RowMajor: the same step in
// the default layout, where every convolution reorders its activations to NHWC and back (the
// default's cost). Profiled: each step under its own tg::Profiler (the cost of --profile; with the
// profiler off it must cost nothing measurable). Unfused: the model's layers called one by one
// instead of through Sequential, which fuses adjacent layers (nn/layers.cpp): what the fusions save.
// Bf16: Plain with the forward and the loss under tg::AutocastGuard(kBFloat16), as
// pytorch_reference.py's bf16 step runs them under torch.autocast("cpu", dtype=torch.bfloat16).
enum class StepMode { Plain, RowMajor, Profiled, Unfused, Bf16 };

void run_step(benchmark::State& state, StepMode mode) {
    Generator gen(0);
    auto model = small_cnn(gen);
    model->train();
    const MemoryFormat format = mode == StepMode::RowMajor ? MemoryFormat::Contiguous : MemoryFormat::ChannelsLast;
    model->to(format);
    nn::AdamW optimizer(model->parameters(), {.lr = 1e-3, .weight_decay = 1e-2});
    const Tensor x = input({64, 3, 32, 32}, format, false);
    std::vector<int64_t> labels(64);
    for (auto& l : labels) l = static_cast<int64_t>(gen.below(10));
    auto forward = [&] {
        if (mode != StepMode::Unfused) return (*model)(x);
        Tensor h = x;
        for (const auto& [_, layer] : model->named_children()) h = (*layer)(h);
        return h;
    };
    for (auto _ : state) {
        std::optional<Profiler> profiler;
        if (mode == StepMode::Profiled) profiler.emplace();
        optimizer.zero_grad();
        Tensor loss;
        {
            const AutocastGuard autocast(kBFloat16, mode == StepMode::Bf16);
            loss = cross_entropy(forward(), labels);
        }
        loss.backward();
        optimizer.step();
    }
    state.SetLabel(mode == StepMode::RowMajor   ? "row-major"
                   : mode == StepMode::Profiled ? "channels-last, profiler on"
                   : mode == StepMode::Unfused  ? "channels-last, layers unfused"
                   : mode == StepMode::Bf16     ? (autocast_is_accelerated() ? "channels-last, bf16 autocast"
                                                                             : "channels-last, bf16 autocast (not accelerated)")
                                                : "channels-last");
}

// The step's layers one by one, at their shapes in the step, in the layout each gets there: where
// the time goes ("smallcnn layer ..." rows; pytorch_reference.py has the same, and compare.py
// prints the breakdown). Flatten, dropout, the last relu and the optimizer are left out.
void register_layers() {
    const Pool2dOptions pool{.kernel_size = 2, .stride = Pair(2)};
    const auto cl = MemoryFormat::ChannelsLast;
    auto conv = [](std::string name, const Shape& x, const Shape& w, MemoryFormat format, const char* layout) {
        const double flops = 2.0 * x[0] * w[0] * x[2] * x[3] * w[1] * w[2] * w[3];  // pad 1, stride 1: OH = H
        register_op({.name = std::move(name),
                     .layout = layout,
                     .inputs = {input(x, format), input(w), input({w[0]})},
                     .op = [](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], {.padding = 1}); },
                     .flops_fwd = flops,
                     .flops_fwd_bwd = 3 * flops});
    };
    // The nominal traffic in activations' sizes, as the registry's rows of the same ops count it:
    // batch norm and relu read x and write y (fwd), then read g and x and write dx (fwd+bwd); the
    // 2x2 pool reads x and writes a quarter of it, then reads g and writes dx.
    auto memory_bound = [&](std::string name, const Shape& x, int op) {
        const int64_t c = x[1];
        const double activation_bytes = 4.0 * static_cast<double>(x[0] * x[1] * x[2] * x[3]);
        Tensor running_mean = zeros({c}), running_var = ones({c});
        register_op({.name = std::move(name),
                     .layout = "channels-last",
                     .inputs = {input(x, cl), ones({c}).requires_grad_(), zeros({c}).requires_grad_()},
                     .op = [op, pool, running_mean, running_var](const std::vector<Tensor>& in) {
                         if (op == 0) return batch_norm(in[0], running_mean, running_var, in[1], in[2], {.training = true});
                         return op == 1 ? relu(in[0]) : max_pool2d(in[0], pool);
                     },
                     .bytes_fwd = (op == 2 ? 1.25 : 2.0) * activation_bytes,
                     .bytes_fwd_bwd = (op == 2 ? 2.5 : 5.0) * activation_bytes});
    };
    conv("smallcnn layer conv1 x[64,3,32,32] w[32,3,3,3]+b p1", {64, 3, 32, 32}, {32, 3, 3, 3}, MemoryFormat::Contiguous,
         "x row-major");
    memory_bound("smallcnn layer bn1 x[64,32,32,32]", {64, 32, 32, 32}, 0);
    memory_bound("smallcnn layer relu1 x[64,32,32,32]", {64, 32, 32, 32}, 1);
    memory_bound("smallcnn layer pool1 x[64,32,32,32]", {64, 32, 32, 32}, 2);
    conv("smallcnn layer conv2 x[64,32,16,16] w[64,32,3,3]+b p1", {64, 32, 16, 16}, {64, 32, 3, 3}, cl, "x channels-last");
    memory_bound("smallcnn layer bn2 x[64,64,16,16]", {64, 64, 16, 16}, 0);
    memory_bound("smallcnn layer relu2 x[64,64,16,16]", {64, 64, 16, 16}, 1);
    memory_bound("smallcnn layer pool2 x[64,64,16,16]", {64, 64, 16, 16}, 2);
    for (auto [in, out] : {std::array<int64_t, 2>{4096, 128}, std::array<int64_t, 2>{128, 10}})
        register_op({.name = "smallcnn layer fc" + std::string(in == 4096 ? "1" : "2") + " x[64," + std::to_string(in) +
                             "] w[" + std::to_string(out) + "," + std::to_string(in) + "]+b",
                     .layout = "row-major",
                     .inputs = {input({64, in}), input({out, in}), input({out})},
                     .op = [](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); },
                     .flops_fwd = 2.0 * 64 * in * out,
                     .flops_fwd_bwd = 6.0 * 64 * in * out});
}

void register_smallcnn() {
    timed(benchmark::RegisterBenchmark("smallcnn step b64/train step", run_step, StepMode::Plain));
    timed(benchmark::RegisterBenchmark("smallcnn step b64 row-major/train step", run_step, StepMode::RowMajor));
    timed(benchmark::RegisterBenchmark("smallcnn step b64 profiled/train step", run_step, StepMode::Profiled));
    timed(benchmark::RegisterBenchmark("smallcnn step b64 unfused/train step", run_step, StepMode::Unfused));
    timed(benchmark::RegisterBenchmark("smallcnn step b64 bf16/train step", run_step, StepMode::Bf16));
    register_layers();
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_smallcnn);
}  // namespace tapegrad::bench
