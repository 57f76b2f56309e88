#include "examples/models/mobilenet_v2.hpp"

#include <algorithm>
#include <cmath>

namespace tapegrad::models {
namespace {

// torchvision's _make_divisible: the nearest multiple of divisor, never 10% below v.
int64_t make_divisible(double v, int64_t divisor) {
    int64_t new_v = std::max(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
    if (new_v < 0.9 * v) new_v += divisor;
    return new_v;
}

}  // namespace

std::shared_ptr<nn::Sequential> conv_norm_relu6(int64_t in, int64_t out, int64_t kernel_size, int64_t stride, int64_t groups,
                                                Generator& gen) {
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(in, out, kernel_size, gen,
                                     Conv2dOptions{.stride = stride, .padding = (kernel_size - 1) / 2, .groups = groups}, false),
        std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::ReLU6>()});
}

InvertedResidual::InvertedResidual(int64_t inp, int64_t oup, int64_t stride, int64_t expand_ratio, Generator& gen)
    : Module("InvertedResidual"), use_res_connect_(stride == 1 && inp == oup) {
    const auto hidden = static_cast<int64_t>(std::round(static_cast<double>(inp * expand_ratio)));
    conv_ = register_module("conv", std::make_shared<nn::Sequential>());
    if (expand_ratio != 1) conv_->push_back(conv_norm_relu6(inp, hidden, 1, 1, 1, gen));
    conv_->push_back(conv_norm_relu6(hidden, hidden, 3, stride, hidden, gen));  // depthwise
    conv_->push_back(std::make_shared<nn::Conv2d>(hidden, oup, 1, gen, Conv2dOptions{}, false));
    conv_->push_back(std::make_shared<nn::BatchNorm2d>(oup));
}

Tensor InvertedResidual::forward(const Tensor& x) { return use_res_connect_ ? x + conv_->forward(x) : conv_->forward(x); }

MobileNetV2::MobileNetV2(int64_t num_classes, Generator& gen, double width_mult, std::vector<InvertedResidualSetting> setting,
                         int64_t round_nearest, double dropout)
    : Module("MobileNetV2") {
    if (setting.empty())
        setting = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    int64_t input_channel = make_divisible(32 * width_mult, round_nearest);
    const int64_t last_channel = make_divisible(1280 * std::max(1.0, width_mult), round_nearest);
    features_ = register_module("features", std::make_shared<nn::Sequential>());
    features_->push_back(conv_norm_relu6(3, input_channel, 3, 2, 1, gen));
    for (const auto& [t, c, n, s] : setting) {
        const int64_t output_channel = make_divisible(static_cast<double>(c) * width_mult, round_nearest);
        for (int64_t i = 0; i < n; ++i) {
            features_->push_back(std::make_shared<InvertedResidual>(input_channel, output_channel, i == 0 ? s : 1, t, gen));
            input_channel = output_channel;
        }
    }
    features_->push_back(conv_norm_relu6(input_channel, last_channel, 1, 1, 1, gen));
    classifier_ = register_module("classifier", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                                     std::make_shared<nn::Dropout>(dropout), std::make_shared<nn::Linear>(last_channel, num_classes, gen)}));
    // torchvision: kaiming_normal_(fan_out) for convs with zero bias, batch norm 1 and 0, linear
    // normal(0, 0.01) with zero bias.
    apply([&](nn::Module& m) {
        if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
            nn::init::kaiming_normal_(conv->weight, gen, 0.0, nn::init::FanMode::FanOut);
            if (conv->bias.defined()) nn::init::zeros_(conv->bias);
        } else if (auto* fc = dynamic_cast<nn::Linear*>(&m)) {
            nn::init::normal_(fc->weight, 0.0, 0.01, gen);
            nn::init::zeros_(fc->bias);
        }
    });
}

Tensor MobileNetV2::forward(const Tensor& x) {
    return classifier_->forward(adaptive_avg_pool2d(features_->forward(x), 1).flatten(1));
}

}  // namespace tapegrad::models
