// Built against an installed tapegrad (tests/consumer/check_install.sh): exercises the engine, a
// oneDNN convolution, a GEMM and an optimizer, so that every dependency the package brings in is
// linked and used. Exits non-zero when a result is wrong.
#include <cmath>
#include <cstdio>
#include <memory>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;

int main() {
    // y = sum(x * x): dy/dx = 2x.
    tg::Tensor x = tg::tensor({1.0, -2.0, 3.0}, {.requires_grad = true});
    (x * x).sum().backward();
    const auto dx = x.grad().to_vector<float>();
    if (dx != std::vector<float>{2.0f, -4.0f, 6.0f}) {
        std::fprintf(stderr, "consumer: d(sum x^2)/dx is wrong\n");
        return 1;
    }

    // A few AdamW steps on a conv + linear model lower the loss on a fixed batch.
    tg::Generator gen(0);
    auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(1, 4, 3, gen, tg::Conv2dOptions{.padding = 1}),
        std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Flatten>(),
        std::make_shared<nn::Linear>(4 * 8 * 8, 3, gen),
    });
    nn::AdamW optimizer(model->parameters(), {.lr = 1e-2});
    const tg::Tensor images = tg::randn({8, 1, 8, 8}, gen);
    const std::vector<int64_t> labels{0, 1, 2, 0, 1, 2, 0, 1};
    float first = 0, last = 0;
    for (int step = 0; step < 20; ++step) {
        tg::Tensor loss = tg::cross_entropy(model->forward(images), labels);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        (step == 0 ? first : last) = loss.item<float>();
    }
    std::printf("consumer: loss %.4f -> %.4f after 20 steps\n", first, last);
    if (!std::isfinite(last) || !(last < 0.5f * first)) {
        std::fprintf(stderr, "consumer: training did not lower the loss\n");
        return 1;
    }
    return 0;
}
