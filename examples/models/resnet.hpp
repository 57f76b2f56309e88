#pragma once
// ResNet-18 written the way torchvision writes it (torchvision/models/resnet.py): BasicBlock,
// _make_layer, the same module names ("layer1.0.conv1", "layer2.0.downsample.0") and the same
// initialisation, so that a torchvision state_dict loads as is. `width` is the first stage's
// channels (64 in torchvision; smaller widths keep test files small).
#include <memory>

#include "tapegrad.hpp"

namespace tapegrad::models {

class BasicBlock : public nn::Module {
public:
    static constexpr int64_t expansion = 1;
    BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, std::shared_ptr<nn::Module> downsample, Generator& gen);
    Tensor forward(const Tensor& x) override;

private:
    std::shared_ptr<nn::Conv2d> conv1_, conv2_;
    std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_;
    std::shared_ptr<nn::ReLU> relu_;
    std::shared_ptr<nn::Module> downsample_;  // null when the shapes already agree
};

class ResNet : public nn::Module {
public:
    // layers: blocks per stage ({2, 2, 2, 2} is ResNet-18).
    ResNet(std::array<int64_t, 4> layers, int64_t num_classes, Generator& gen, int64_t width = 64);
    Tensor forward(const Tensor& x) override;

private:
    std::shared_ptr<nn::Sequential> make_layer(int64_t planes, int64_t blocks, int64_t stride, Generator& gen);
    int64_t inplanes_;
    std::shared_ptr<nn::Conv2d> conv1_;
    std::shared_ptr<nn::BatchNorm2d> bn1_;
    std::shared_ptr<nn::ReLU> relu_;
    std::shared_ptr<nn::MaxPool2d> maxpool_;
    std::shared_ptr<nn::Sequential> layer1_, layer2_, layer3_, layer4_;
    std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool_;
    std::shared_ptr<nn::Linear> fc_;
};

std::shared_ptr<ResNet> resnet18(int64_t num_classes, Generator& gen, int64_t width = 64);

}  // namespace tapegrad::models
