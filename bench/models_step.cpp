// One training step (zero_grad, forward, cross_entropy, backward, AdamW step) of each model port
// in examples/models, timed as the median of --runs steps after 3 warm-up steps, in ms. The
// shapes match bench/pytorch_models.py; scripts/bench_models.sh runs both and prints them side by
// side.
//
//   models_step [--runs 10] [--threads 2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "examples/models/mobilenet_v2.hpp"
#include "examples/models/resnet.hpp"
#include "examples/models/unet.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;

namespace {

double median_step_ms(nn::Module& model, const tg::Tensor& x, const std::vector<int64_t>& labels, int runs,
                      const std::function<tg::Tensor(const tg::Tensor&)>& logits_of) {
    nn::AdamW optimizer(model.parameters(), {.lr = 1e-3, .weight_decay = 1e-2});
    model.train();
    auto step = [&] {
        optimizer.zero_grad();
        tg::Tensor loss = tg::cross_entropy(logits_of(model.forward(x)), labels);
        loss.backward();
        optimizer.step();
    };
    for (int i = 0; i < 3; ++i) step();
    std::vector<double> ms;
    for (int i = 0; i < runs; ++i) {
        const auto start = std::chrono::steady_clock::now();
        step();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    return ms[ms.size() / 2];
}

std::vector<int64_t> random_labels(int64_t n, int64_t classes, tg::Generator& gen) {
    std::vector<int64_t> labels(static_cast<std::size_t>(n));
    for (auto& l : labels) l = static_cast<int64_t>(gen.below(static_cast<uint64_t>(classes)));
    return labels;
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 10, threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--runs") runs = std::max(1, std::atoi(argv[i + 1]));
        else if (flag == "--threads") threads = std::max(1, std::atoi(argv[i + 1]));
    }
    tg::set_num_threads(threads);
    tg::Generator gen(0);
    const auto identity = [](const tg::Tensor& t) { return t; };
    {
        auto model = tg::models::resnet18(10, gen);
        const tg::Tensor x = tg::randn({32, 3, 32, 32}, gen);
        std::printf("resnet18 b32 3x32x32,%d,%.3f\n", threads, median_step_ms(*model, x, random_labels(32, 10, gen), runs, identity));
    }
    {
        tg::models::MobileNetV2 model(10, gen);
        const tg::Tensor x = tg::randn({32, 3, 32, 32}, gen);
        std::printf("mobilenet_v2 b32 3x32x32,%d,%.3f\n", threads, median_step_ms(model, x, random_labels(32, 10, gen), runs, identity));
    }
    {
        tg::models::UNet model(3, 3, 16, gen);
        const tg::Tensor x = tg::randn({8, 3, 64, 64}, gen);
        const auto rows = [](const tg::Tensor& out) { return out.permute({0, 2, 3, 1}).reshape({-1, out.size(1)}); };
        std::printf("unet w16 b8 3x64x64,%d,%.3f\n", threads, median_step_ms(model, x, random_labels(8 * 64 * 64, 3, gen), runs, rows));
    }
    return 0;
}
