// Residual blocks: out = relu(bn(conv(relu(bn(conv(x))))) + x). The skip connection's add sends
// the incoming gradient down both paths, and autograd sums them at x. A small residual network is
// trained for a few hundred steps on Fashion-MNIST, printing the loss as it falls.
#include <cstdio>
#include <iostream>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

struct ResBlock : nn::Module {
    std::shared_ptr<nn::Conv2d> c1, c2;
    std::shared_ptr<nn::BatchNorm2d> b1, b2;
    ResBlock(int64_t channels, tg::Generator& gen) : Module("ResBlock") {
        c1 = register_module("c1", std::make_shared<nn::Conv2d>(channels, channels, 3, gen, tg::Conv2dOptions{.padding = 1}));
        b1 = register_module("b1", std::make_shared<nn::BatchNorm2d>(channels));
        c2 = register_module("c2", std::make_shared<nn::Conv2d>(channels, channels, 3, gen, tg::Conv2dOptions{.padding = 1}));
        b2 = register_module("b2", std::make_shared<nn::BatchNorm2d>(channels));
    }
    Tensor forward(const Tensor& x) override {
        Tensor out = tg::relu(b1->forward(c1->forward(x)));
        out = b2->forward(c2->forward(out));
        return tg::relu(out + x);  // the skip connection
    }
};

int main(int argc, char** argv) try {
    const std::string data_dir = argc > 1 ? argv[1] : nn::kFashionMnistDir;
    const int steps = argc > 2 ? std::stoi(argv[2]) : 300;
    tg::Generator gen(0);
    // stem -> two residual blocks -> global average pooling -> classifier
    nn::Sequential model{std::make_shared<nn::Conv2d>(1, 16, 3, gen, tg::Conv2dOptions{.padding = 1}),
                         std::make_shared<nn::BatchNorm2d>(16),
                         std::make_shared<nn::ReLU>(),
                         std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2}),
                         std::make_shared<ResBlock>(16, gen),
                         std::make_shared<ResBlock>(16, gen),
                         std::make_shared<nn::AdaptiveAvgPool2d>(1),
                         std::make_shared<nn::Flatten>(),
                         std::make_shared<nn::Linear>(16, 10, gen)};
    std::cout << model.to_string();

    nn::ImageDataset train_set = nn::load_mnist(data_dir, nn::Split::Train).head(20000);
    const auto [mean, stddev] = train_set.pixel_mean_std();
    nn::DataLoader train(std::move(train_set), {.batch_size = 64, .seed = 1, .mean = mean, .std = stddev});
    nn::AdamW optimizer(model.parameters(), {.lr = 3e-3, .weight_decay = 1e-2});
    int step = 0;
    double running = 0;
    while (step < steps) {
        for (const nn::Batch& batch : train) {
            Tensor loss = tg::cross_entropy(model(batch.images), batch.labels);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            running += loss.item();
            if (++step % 25 == 0) {
                std::printf("step %4d  loss %.4f\n", step, running / 25);
                running = 0;
            }
            if (step == steps) break;
        }
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "resnet_block: error: " << e.what() << "\n";
    return 1;
}
