// No allocation in the steady state: once a training step has run (and filled the optimizer's
// state), a step that repeats the same graph takes every block of tensor storage from the caching
// allocator's cache. What is counted is the allocator's calls to the system (aligned_alloc and
// free): every tensor's storage, oneDNN's scratchpads and the kernels' work buffers go through it.
// Small heap objects (the tape's nodes, shapes, closures) are not counted; glibc serves them from
// its own free lists.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <functional>
#include <memory>

#include "examples/models/resnet.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

struct SystemCalls {
    std::size_t allocations, frees;
};

// Pages the process touched for the first time so far (minor page faults): what a step costs
// when it does ask the system, as glibc maps fresh memory for large blocks.
long minor_faults() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

SystemCalls system_calls() {
    const tg::AllocatorStats s = tg::allocator().stats(0);
    return {s.system_allocations, s.system_frees};
}

// One training step as bench/ times it: zero_grad, forward, cross_entropy, backward, AdamW.
struct Trainer {
    std::shared_ptr<nn::Module> model;
    std::unique_ptr<nn::AdamW> optimizer;

    Trainer(std::shared_ptr<nn::Module> m, tg::MemoryFormat format) : model(std::move(m)) {
        model->to(format);
        model->train();
        optimizer = std::make_unique<nn::AdamW>(model->parameters(), nn::AdamWOptions{.lr = 1e-3, .weight_decay = 1e-2});
    }
    void step(const Tensor& x, const std::vector<int64_t>& labels) {
        optimizer->zero_grad();
        Tensor loss = tg::cross_entropy((*model)(x), labels);
        loss.backward();
        optimizer->step();
    }
};

std::shared_ptr<nn::Module> small_cnn(tg::Generator& gen) {
    using std::make_shared;
    const tg::Pool2dOptions pool{.kernel_size = 2, .stride = tg::Pair(2)};
    return make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        make_shared<nn::Conv2d>(3, 32, 3, gen, tg::Conv2dOptions{.padding = 1}), make_shared<nn::BatchNorm2d>(32),
        make_shared<nn::ReLU>(), make_shared<nn::MaxPool2d>(pool),
        make_shared<nn::Conv2d>(32, 64, 3, gen, tg::Conv2dOptions{.padding = 1}), make_shared<nn::BatchNorm2d>(64),
        make_shared<nn::ReLU>(), make_shared<nn::MaxPool2d>(pool), make_shared<nn::Flatten>(),
        make_shared<nn::Linear>(64 * 8 * 8, 128, gen), make_shared<nn::ReLU>(), make_shared<nn::Dropout>(0.5),
        make_shared<nn::Linear>(128, 10, gen)});
}

// Two warm-up steps, then two measured ones: the measured steps must not call the system. Then
// a step at a larger batch, which needs larger blocks, must (the counter does count).
void check_steady_state(const std::shared_ptr<nn::Module>& model, tg::MemoryFormat format, int64_t batch) {
    tg::Generator gen(5);
    Trainer trainer(model, format);
    auto inputs = [&](int64_t n) {
        std::vector<int64_t> labels(static_cast<std::size_t>(n));
        for (auto& l : labels) l = static_cast<int64_t>(gen.below(10));
        return std::make_pair(tg::randn({n, 3, 32, 32}, gen).contiguous(format), labels);
    };
    const auto [x, labels] = inputs(batch);
    for (int i = 0; i < 2; ++i) trainer.step(x, labels);
    const SystemCalls before = system_calls();
    const long faults = minor_faults();
    for (int i = 0; i < 2; ++i) trainer.step(x, labels);
    const SystemCalls after = system_calls();
    MESSAGE("2 steady steps: ", minor_faults() - faults, " minor page faults");
    CHECK(after.allocations == before.allocations);
    CHECK(after.frees == before.frees);

    const auto [bigger, bigger_labels] = inputs(2 * batch);
    trainer.step(bigger, bigger_labels);
    CHECK(system_calls().allocations > after.allocations);
}

}  // namespace

TEST_CASE("steady state: a SmallCNN training step asks the system for no memory after warm-up") {
    tg::Generator gen(1);
    check_steady_state(small_cnn(gen), tg::MemoryFormat::ChannelsLast, 4);
}

TEST_CASE("steady state: a SmallCNN training step in row-major asks the system for no memory after warm-up") {
    tg::Generator gen(2);
    check_steady_state(small_cnn(gen), tg::MemoryFormat::Contiguous, 4);
}

TEST_CASE("steady state: a ResNet-18 training step asks the system for no memory after warm-up") {
    tg::Generator gen(3);
    check_steady_state(tg::models::resnet18(10, gen, 8), tg::MemoryFormat::ChannelsLast, 2);
}
