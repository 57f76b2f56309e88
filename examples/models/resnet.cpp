#include "examples/models/resnet.hpp"

namespace tapegrad::models {
namespace {

std::shared_ptr<nn::Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride, Generator& gen) {
    return std::make_shared<nn::Conv2d>(in, out, 3, gen, Conv2dOptions{.stride = stride, .padding = 1}, /*bias=*/false);
}

std::shared_ptr<nn::Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride, Generator& gen) {
    return std::make_shared<nn::Conv2d>(in, out, 1, gen, Conv2dOptions{.stride = stride}, /*bias=*/false);
}

}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, std::shared_ptr<nn::Module> downsample, Generator& gen)
    : Module("BasicBlock") {
    conv1_ = register_module("conv1", conv3x3(inplanes, planes, stride, gen));
    bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
    relu_ = register_module("relu", std::make_shared<nn::ReLU>());
    conv2_ = register_module("conv2", conv3x3(planes, planes, 1, gen));
    bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
    if (downsample) downsample_ = register_module("downsample", downsample);
}

Tensor BasicBlock::forward(const Tensor& x) {
    const Tensor identity = downsample_ ? downsample_->forward(x) : x;
    Tensor out = relu_->forward(bn1_->forward(conv1_->forward(x)));
    out = bn2_->forward(conv2_->forward(out));
    return relu_->forward(out + identity);
}

ResNet::ResNet(std::array<int64_t, 4> layers, int64_t num_classes, Generator& gen, int64_t width)
    : Module("ResNet"), inplanes_(width) {
    conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(3, width, 7, gen, Conv2dOptions{.stride = 2, .padding = 3}, false));
    bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(width));
    relu_ = register_module("relu", std::make_shared<nn::ReLU>());
    maxpool_ = register_module("maxpool", std::make_shared<nn::MaxPool2d>(Pool2dOptions{.kernel_size = 3, .stride = 2, .padding = 1}));
    layer1_ = register_module("layer1", make_layer(width, layers[0], 1, gen));
    layer2_ = register_module("layer2", make_layer(width * 2, layers[1], 2, gen));
    layer3_ = register_module("layer3", make_layer(width * 4, layers[2], 2, gen));
    layer4_ = register_module("layer4", make_layer(width * 8, layers[3], 2, gen));
    avgpool_ = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
    fc_ = register_module("fc", std::make_shared<nn::Linear>(width * 8 * BasicBlock::expansion, num_classes, gen));
    // torchvision: kaiming_normal_(fan_out, relu) for every conv; batch norms start at 1 and 0
    // (their constructors already do).
    apply([&](nn::Module& m) {
        if (auto* conv = dynamic_cast<nn::Conv2d*>(&m))
            nn::init::kaiming_normal_(conv->weight, gen, 0.0, nn::init::FanMode::FanOut, nn::init::Nonlinearity::ReLU);
    });
}

std::shared_ptr<nn::Sequential> ResNet::make_layer(int64_t planes, int64_t blocks, int64_t stride, Generator& gen) {
    std::shared_ptr<nn::Module> downsample;
    if (stride != 1 || inplanes_ != planes * BasicBlock::expansion) {
        downsample = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
            conv1x1(inplanes_, planes * BasicBlock::expansion, stride, gen),
            std::make_shared<nn::BatchNorm2d>(planes * BasicBlock::expansion)});
    }
    auto layer = std::make_shared<nn::Sequential>();
    layer->push_back(std::make_shared<BasicBlock>(inplanes_, planes, stride, downsample, gen));
    inplanes_ = planes * BasicBlock::expansion;
    for (int64_t i = 1; i < blocks; ++i) layer->push_back(std::make_shared<BasicBlock>(inplanes_, planes, 1, nullptr, gen));
    return layer;
}

Tensor ResNet::forward(const Tensor& x) {
    Tensor y = maxpool_->forward(relu_->forward(bn1_->forward(conv1_->forward(x))));
    y = layer4_->forward(layer3_->forward(layer2_->forward(layer1_->forward(y))));
    return fc_->forward(avgpool_->forward(y).flatten(1));
}

std::shared_ptr<ResNet> resnet18(int64_t num_classes, Generator& gen, int64_t width) {
    return std::make_shared<ResNet>(std::array<int64_t, 4>{2, 2, 2, 2}, num_classes, gen, width);
}

}  // namespace tapegrad::models
