// Trains the ResNet-18 port (examples/models/resnet.hpp, torchvision's layout at a chosen width) on
// Fashion-MNIST for a fixed number of steps and prints the loss curve. The grey 28x28 images are
// repeated over three channels with cat, as one feeds greyscale data to an ImageNet model.
//
//   train_resnet18_fashion_mnist [--steps 300] [--width 16] [--batch 64] [--threads 2]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "examples/models/resnet.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;

int main(int argc, char** argv) {
    int64_t steps = 300, width = 16, batch = 64, threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const int64_t value = std::atoll(argv[i + 1]);
        if (value <= 0) {
            std::fprintf(stderr, "%s expects a positive number, got '%s'\n", flag.c_str(), argv[i + 1]);
            return 2;
        }
        if (flag == "--steps") steps = value;
        else if (flag == "--width") width = value;
        else if (flag == "--batch") batch = value;
        else if (flag == "--threads") threads = value;
        else {
            std::fprintf(stderr, "unknown flag %s (flags: --steps --width --batch --threads)\n", flag.c_str());
            return 2;
        }
    }
    tg::set_num_threads(static_cast<int>(threads));
    tg::Generator gen(0);
    auto model = tg::models::resnet18(10, gen, width);
    nn::AdamW optimizer(model->parameters(), nn::AdamW::defaults());
    nn::DataLoader loader(nn::load_fashion_mnist(), {.batch_size = batch, .drop_last = true});
    std::printf("step,loss,train_accuracy\n");
    int64_t step = 0;
    double loss_sum = 0, correct = 0, seen = 0;
    while (step < steps) {
        for (const nn::Batch& b : loader) {
            const tg::Tensor x = tg::cat({b.images, b.images, b.images}, 1);
            const tg::Tensor logits = model->forward(x);
            const tg::Tensor loss = tg::cross_entropy(logits, b.labels);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            loss_sum += loss.item();
            correct += static_cast<double>(tg::count_equal(tg::argmax(logits, 1), b.labels));
            seen += static_cast<double>(b.labels.numel());
            if (++step % 25 == 0) {
                std::printf("%lld,%.4f,%.4f\n", static_cast<long long>(step), loss_sum / 25, correct / seen);
                std::fflush(stdout);
                loss_sum = correct = seen = 0;
            }
            if (step == steps) break;
        }
    }
    return 0;
}
