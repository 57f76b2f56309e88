#pragma once
// MobileNetV2 written the way torchvision writes it (torchvision/models/mobilenetv2.py):
// Conv2dNormActivation, InvertedResidual, _make_divisible, the same module names
// ("features.1.conv.0.0") and initialisation, so that a torchvision state_dict loads as is.
#include <memory>
#include <vector>

#include "tapegrad.hpp"

namespace tapegrad::models {

// conv (padding (k-1)/2, no bias), BatchNorm2d, ReLU6: a Sequential named "0", "1", "2".
std::shared_ptr<nn::Sequential> conv_norm_relu6(int64_t in, int64_t out, int64_t kernel_size, int64_t stride, int64_t groups,
                                                Generator& gen);

class InvertedResidual : public nn::Module {
public:
    InvertedResidual(int64_t inp, int64_t oup, int64_t stride, int64_t expand_ratio, Generator& gen);
    Tensor forward(const Tensor& x) override;

private:
    bool use_res_connect_;
    std::shared_ptr<nn::Sequential> conv_;
};

// One row of the inverted-residual setting: expansion t, channels c, repeats n, first stride s.
struct InvertedResidualSetting {
    int64_t t, c, n, s;
};

class MobileNetV2 : public nn::Module {
public:
    // The default setting is torchvision's (seven rows, 17 blocks).
    MobileNetV2(int64_t num_classes, Generator& gen, double width_mult = 1.0,
                std::vector<InvertedResidualSetting> setting = {}, int64_t round_nearest = 8, double dropout = 0.2);
    Tensor forward(const Tensor& x) override;

private:
    std::shared_ptr<nn::Sequential> features_, classifier_;
};

}  // namespace tapegrad::models
