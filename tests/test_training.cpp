// End to end on a slice of Fashion-MNIST: a small CNN's loss falls within a couple of hundred
// steps, and the same seed gives bit-identical losses twice.
#include <doctest/doctest.h>

#include <filesystem>
#include <numeric>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {
std::vector<double> train_losses(const nn::ImageDataset& data, uint64_t seed, int steps) {
    tg::Generator gen(seed);
    nn::Sequential model{std::make_shared<nn::Conv2d>(1, 8, 3, gen, tg::Conv2dOptions{.padding = 1}),
                         std::make_shared<nn::BatchNorm2d>(8),
                         std::make_shared<nn::ReLU>(),
                         std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2}),
                         std::make_shared<nn::Flatten>(),
                         std::make_shared<nn::Dropout>(0.2, seed),
                         std::make_shared<nn::Linear>(8 * 14 * 14, 10, gen)};
    nn::AdamW optimizer(model.parameters(), {.lr = 2e-3, .weight_decay = 1e-2});
    const auto [mean, stddev] = data.pixel_mean_std();
    nn::DataLoader loader(data, {.batch_size = 32, .seed = seed, .mean = mean, .std = stddev});
    std::vector<double> losses;
    while (static_cast<int>(losses.size()) < steps) {
        for (const nn::Batch& batch : loader) {
            Tensor loss = tg::cross_entropy(model(batch.images), batch.labels);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            losses.push_back(loss.item());
            if (static_cast<int>(losses.size()) == steps) break;
        }
    }
    return losses;
}

double mean_of(const std::vector<double>& v, std::size_t first, std::size_t count) {
    return std::accumulate(v.begin() + first, v.begin() + first + count, 0.0) / count;
}
}  // namespace

TEST_CASE("a small CNN learns Fashion-MNIST, reproducibly") {
    if (!std::filesystem::exists(nn::kFashionMnistDir)) {
        MESSAGE("skipped: ", nn::kFashionMnistDir, " is not installed");
        return;
    }
    const nn::ImageDataset data = nn::load_fashion_mnist(nn::kFashionMnistDir, nn::Split::Train).head(2000);
    const int steps = 150;
    const auto first = train_losses(data, 0, steps);
    // From ln(10) = 2.30 at the start to well under 1 on average over the last 30 steps.
    CHECK(mean_of(first, 0, 5) > 1.5);
    CHECK(mean_of(first, steps - 30, 30) < 0.9);
    const auto second = train_losses(data, 0, steps);
    CHECK(first == second);
    const auto other_seed = train_losses(data, 1, 10);
    CHECK(other_seed != std::vector<double>(first.begin(), first.begin() + 10));
}
