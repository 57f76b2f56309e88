// One training step of each model port in examples/models (zero_grad, forward, cross_entropy,
// backward, AdamW step with lr 1e-3 and weight decay 1e-2) at a realistic batch, named as in
// pytorch_reference.py, which runs torchvision's ResNet-18 and MobileNetV2 and the same U-Net:
//   ResNet-18 and MobileNetV2 (width 1.0, 10 classes) on batch 32 of 3x32x32;
//   the U-Net at width 16 on batch 8 of 3x64x64, per-pixel cross-entropy over 3 classes.
// A model, its optimizer and its batch are built on the first run and kept, and one untimed step
// fills the optimizer's state, so every timed step is a steady-state one. "... bf16" rows run the
// forward and the loss under tg::AutocastGuard(kBFloat16), as pytorch_reference.py's bf16 steps
// under torch.autocast("cpu", dtype=torch.bfloat16).
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bench/bench_common.hpp"
#include "engine/generator.hpp"
#include "examples/models/mobilenet_v2.hpp"
#include "examples/models/resnet.hpp"
#include "examples/models/unet.hpp"
#include "nn/optim.hpp"
#include "ops/autocast.hpp"
#include "ops/loss.hpp"

namespace tapegrad::bench {
namespace {

struct ModelStep {
    std::shared_ptr<nn::Module> model;
    std::unique_ptr<nn::AdamW> optimizer;
    Tensor x, labels;
    std::function<Tensor(const Tensor&)> logits_of;  // the model's output as [rows, classes]
    bool bf16 = false;

    void run() {
        optimizer->zero_grad();
        Tensor loss;
        {
            const AutocastGuard autocast(kBFloat16, bf16);
            loss = cross_entropy(logits_of((*model)(x)), labels);
        }
        loss.backward();
        optimizer->step();
    }
};

using Builder = std::function<ModelStep(Generator&)>;

void register_model_step(const std::string& name, Builder build, MemoryFormat format, bool bf16 = false) {
    auto step = std::make_shared<std::optional<ModelStep>>();
    timed(benchmark::RegisterBenchmark((name + "/train step").c_str(), [step, build, format, bf16](benchmark::State& state) {
        if (!*step) {
            Generator gen(0);
            ModelStep& s = step->emplace(build(gen));
            s.bf16 = bf16;
            s.model->to(format);
            s.x = s.x.contiguous(format);
            s.model->train();
            s.optimizer = std::make_unique<nn::AdamW>(s.model->parameters(), nn::AdamWOptions{.lr = 1e-3, .weight_decay = 1e-2});
            s.run();
        }
        for (auto _ : state) (*step)->run();
        state.SetLabel(std::string(format == MemoryFormat::ChannelsLast ? "channels-last" : "row-major") +
                       (!bf16                          ? ""
                        : autocast_is_accelerated() ? ", bf16 autocast"
                                                    : ", bf16 autocast (not accelerated)"));
    }));
}

// Each model in both layouts: "<name>" in the one measured faster for it (docs/performance.md,
// "Memory format"), the row pytorch_reference.py compares with PyTorch's faster layout, and
// "<name> row-major" or "<name> channels-last" in the other. Channels-last is model.to(ChannelsLast)
// and a channels-last input, as pytorch_reference.py's channels_last side.
void register_model(const std::string& name, MemoryFormat faster, Builder build) {
    const MemoryFormat other = faster == MemoryFormat::ChannelsLast ? MemoryFormat::Contiguous : MemoryFormat::ChannelsLast;
    register_model_step(name, build, faster);
    register_model_step(name + (other == MemoryFormat::ChannelsLast ? " channels-last" : " row-major"), build, other);
}

Tensor class_labels(int64_t n, int64_t classes, Generator& gen) {
    Tensor out = empty({n}, {.dtype = kInt64});
    for (int64_t i = 0; i < n; ++i) out.data<int64_t>()[i] = static_cast<int64_t>(gen.below(static_cast<uint64_t>(classes)));
    return out;
}

void register_models() {
    const auto identity = [](const Tensor& t) { return t; };
    const Builder resnet18 = [identity](Generator& gen) {
        return ModelStep{models::resnet18(10, gen), nullptr, input({32, 3, 32, 32}, MemoryFormat::Contiguous, false),
                         class_labels(32, 10, gen), identity};
    };
    register_model("model resnet18 step b32 3x32x32", MemoryFormat::ChannelsLast, resnet18);
    register_model_step("model resnet18 step b32 3x32x32 bf16", resnet18, MemoryFormat::ChannelsLast, /*bf16=*/true);
    register_model("model mobilenet_v2 step b32 3x32x32", MemoryFormat::ChannelsLast, [identity](Generator& gen) {
        return ModelStep{std::make_shared<models::MobileNetV2>(10, gen), nullptr,
                         input({32, 3, 32, 32}, MemoryFormat::Contiguous, false), class_labels(32, 10, gen), identity};
    });
    register_model("model unet w16 step b8 3x64x64", MemoryFormat::Contiguous, [](Generator& gen) {
        // Per-pixel logits [8,3,64,64] as rows [8*64*64, 3], as pytorch_reference.py does.
        const auto rows = [](const Tensor& out) { return out.permute({0, 2, 3, 1}).reshape({-1, out.size(1)}); };
        return ModelStep{std::make_shared<models::UNet>(3, 3, 16, gen), nullptr,
                         input({8, 3, 64, 64}, MemoryFormat::Contiguous, false), class_labels(8 * 64 * 64, 3, gen), rows};
    });
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_models);
}  // namespace tapegrad::bench
