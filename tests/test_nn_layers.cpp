// Layers: names, initialisation bounds, BatchNorm's running statistics as buffers, train/eval
// behaviour of dropout and batch norm, and a state_dict round trip of a small CNN.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {
std::shared_ptr<nn::Sequential> small_cnn(tg::Generator& gen) {
    auto features = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(1, 4, 3, gen, tg::Conv2dOptions{.padding = 1}), std::make_shared<nn::BatchNorm2d>(4),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2})});
    auto model = std::make_shared<nn::Sequential>();
    model->push_back(features);
    model->push_back(std::make_shared<nn::Flatten>());
    model->push_back(std::make_shared<nn::Linear>(4 * 4 * 4, 3, gen));
    return model;
}

double max_abs(const Tensor& t) {
    double m = 0;
    for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
    return m;
}
}  // namespace

TEST_CASE("a nested CNN names its parameters and buffers like PyTorch") {
    tg::Generator gen(0);
    auto model = small_cnn(gen);
    std::vector<std::string> params, buffers;
    for (auto& [n, _] : model->named_parameters()) params.push_back(n);
    for (auto& [n, _] : model->named_buffers()) buffers.push_back(n);
    CHECK(params == std::vector<std::string>{"0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias", "2.weight", "2.bias"});
    // Running statistics are buffers, not parameters: the optimizer never sees them.
    CHECK(buffers == std::vector<std::string>{"0.1.running_mean", "0.1.running_var", "0.1.num_batches_tracked"});
    CHECK(model->forward(tg::randn({2, 1, 8, 8}, gen)).shape() == tg::Shape{2, 3});
}

TEST_CASE("Conv2d and Linear start with PyTorch's default bounds") {
    tg::Generator gen(5);
    nn::Conv2d conv(16, 32, 3, gen);  // fan_in 144: bound 1/12
    CHECK(max_abs(conv.weight) <= 1.0 / 12.0);
    CHECK(max_abs(conv.weight) > 0.9 / 12.0);
    CHECK(max_abs(conv.bias) <= 1.0 / 12.0);
    nn::Linear fc(400, 10, gen);  // fan_in 400: bound 1/20
    CHECK(max_abs(fc.weight) <= 0.05);
    CHECK(max_abs(fc.weight) > 0.045);
    CHECK(max_abs(fc.bias) <= 0.05);
    nn::Linear no_bias(4, 2, gen, false);
    CHECK_FALSE(no_bias.bias.defined());
    CHECK(no_bias.parameters().size() == 1);
    CHECK_THROWS_AS(nn::Conv2d(3, 4, 3, gen, {.groups = 2}), std::invalid_argument);
    CHECK_THROWS_AS(nn::Linear(0, 2, gen), std::invalid_argument);
}

TEST_CASE("Dropout: zeroes and rescales in training, the identity in eval, reproducible by seed") {
    nn::Dropout drop(0.5, 123);
    const Tensor x = tg::ones({1000});
    const auto y = drop(x).to_vector<float>();
    int zeros = 0;
    for (float v : y) {
        CHECK((v == 0.0f || v == 2.0f));
        zeros += v == 0.0f;
    }
    CHECK(zeros > 400);
    CHECK(zeros < 600);
    drop.eval();
    CHECK(tg::max_abs_diff(drop(x), x) == 0.0);
    nn::Dropout again(0.5, 123);
    CHECK(again(x).to_vector<float>() == y);
    CHECK_THROWS_AS(nn::Dropout(1.5), std::invalid_argument);
}

TEST_CASE("BatchNorm2d: batch statistics and running updates in training, running statistics in eval") {
    nn::BatchNorm2d bn(2);
    tg::Generator gen(1);
    const Tensor x = tg::randn({8, 2, 3, 3}, gen) * 2.0 + 5.0;
    const Tensor y = bn(x);
    // Training output is normalised per channel.
    CHECK(std::abs(y.mean().item()) < 1e-5);
    // running = 0.9 * running + 0.1 * batch (unbiased variance), starting from 0 and 1.
    const Tensor batch_mean = x.mean({0, 2, 3});
    const Tensor centred = x - x.mean({0, 2, 3}, true);
    const Tensor unbiased_var = (centred * centred).sum({0, 2, 3}) / (8.0 * 9.0 - 1.0);
    CHECK(tg::allclose(bn.running_mean, batch_mean * 0.1, 1e-4, 1e-5));
    CHECK(tg::allclose(bn.running_var, unbiased_var * 0.1 + 0.9, 1e-4, 1e-5));
    // Eval uses the running statistics and leaves them alone.
    bn.eval();
    const Tensor before = bn.running_mean.clone();
    const Tensor z = bn(x);
    CHECK(tg::max_abs_diff(bn.running_mean, before) == 0.0);
    const Tensor expected = (x - bn.running_mean.reshape({1, 2, 1, 1})) /
                            tg::sqrt(bn.running_var.reshape({1, 2, 1, 1}) + 1e-5);
    CHECK(tg::allclose(z, expected, 1e-4, 1e-4));
    CHECK_THROWS_AS(bn(tg::ones({2, 2})), std::invalid_argument);
    nn::BatchNorm1d bn1(3);
    CHECK(bn1(tg::randn({4, 3}, gen)).shape() == tg::Shape{4, 3});
}

TEST_CASE("BatchNorm counts its training batches in num_batches_tracked; momentum=None averages them, as PyTorch") {
    tg::Generator gen(2);
    nn::BatchNorm2d bn(2);
    CHECK(bn.num_batches_tracked.dtype() == tg::kInt64);
    CHECK(bn.num_batches_tracked.dim() == 0);
    bn(tg::randn({4, 2, 3, 3}, gen));
    bn(tg::randn({4, 2, 3, 3}, gen));
    CHECK(bn.num_batches_tracked.item<int64_t>() == 2);
    // A refused input counts nothing.
    CHECK_THROWS_AS(bn(tg::ones({2, 2})), std::invalid_argument);
    CHECK(bn.num_batches_tracked.item<int64_t>() == 2);
    bn.eval();
    bn(tg::randn({4, 2, 3, 3}, gen));
    CHECK(bn.num_batches_tracked.item<int64_t>() == 2);
    // model.double() converts the statistics, not the count.
    bn.to(tg::kFloat64);
    CHECK(bn.running_mean.dtype() == tg::kFloat64);
    CHECK(bn.num_batches_tracked.dtype() == tg::kInt64);
    // Without running statistics there is nothing to count, as PyTorch's (None).
    nn::BatchNorm2d untracked(2, {.track_running_stats = false});
    CHECK(untracked.named_buffers().empty());

    // momentum=None: the running statistics are the plain average over the batches so far
    // (weight 1/n for the n-th), so the initial 0 and 1 are forgotten after the first.
    nn::BatchNorm2d average(2, {.momentum = std::nullopt});
    const Tensor a = tg::randn({4, 2, 3, 3}, gen) + 3.0, b = tg::randn({4, 2, 3, 3}, gen) * 2.0;
    average(a);
    average(b);
    auto unbiased_var = [](const Tensor& x) {
        const Tensor centred = x - x.mean({0, 2, 3}, true);
        return (centred * centred).sum({0, 2, 3}) / (4.0 * 9.0 - 1.0);
    };
    CHECK(tg::allclose(average.running_mean, (a.mean({0, 2, 3}) + b.mean({0, 2, 3})) * 0.5, 1e-5, 1e-6));
    CHECK(tg::allclose(average.running_var, (unbiased_var(a) + unbiased_var(b)) * 0.5, 1e-5, 1e-6));
}

TEST_CASE("pooling layers, Flatten and ReLU do what their ops do") {
    tg::Generator gen(2);
    const Tensor x = tg::randn({2, 3, 8, 8}, gen);
    CHECK(nn::AdaptiveAvgPool2d(1)(x).shape() == tg::Shape{2, 3, 1, 1});
    CHECK(tg::allclose(nn::AdaptiveAvgPool2d(1)(x).flatten(1), x.mean({2, 3}), 1e-5, 1e-6));
    CHECK(nn::AvgPool2d({.kernel_size = 2})(x).shape() == tg::Shape{2, 3, 4, 4});
    CHECK(nn::MaxPool2d({.kernel_size = 2, .stride = 2})(x).shape() == tg::Shape{2, 3, 4, 4});
    CHECK(nn::Flatten()(x).shape() == tg::Shape{2, 192});
    CHECK(nn::ReLU()(tg::tensor({-1.0, 2.0})).to_vector<float>() == std::vector<float>{0.0f, 2.0f});
}

TEST_CASE("a CNN's state_dict (running statistics included) round-trips through a checkpoint") {
    tg::Generator gen(3), other(4);
    auto a = small_cnn(gen);
    auto b = small_cnn(other);
    a->forward(tg::randn({4, 1, 8, 8}, gen));  // moves a's running statistics
    const std::string path = "tapegrad_test_layers.tgck";
    nn::save(a->state_dict(), path);
    b->load_state_dict(nn::load(path));
    std::remove(path.c_str());
    a->eval();
    b->eval();
    const Tensor x = tg::randn({3, 1, 8, 8}, gen);
    CHECK(tg::max_abs_diff(a->forward(x), b->forward(x)) == 0.0);
}
