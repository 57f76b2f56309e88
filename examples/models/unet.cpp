#include "examples/models/unet.hpp"

namespace tapegrad::models {

DoubleConv::DoubleConv(std::string type_name, int64_t in, int64_t out, Generator& gen) : Module(std::move(type_name)) {
    block_ = register_module("block", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                          std::make_shared<nn::Conv2d>(in, out, 3, gen, Conv2dOptions{.padding = 1}, false),
                                          std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::ReLU>(),
                                          std::make_shared<nn::Conv2d>(out, out, 3, gen, Conv2dOptions{.padding = 1}, false),
                                          std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::ReLU>()}));
}

Tensor DoubleConv::forward(const Tensor& x) { return block_->forward(x); }

Tensor Up::forward_inputs(const std::vector<Tensor>& inputs) {
    if (inputs.size() != 2)
        throw std::invalid_argument("Up: takes (x, skip), 2 inputs, but got " + std::to_string(inputs.size()));
    const InterpolateOptions up{.scale_factor = 2.0, .mode = InterpolateMode::Bilinear, .align_corners = true};
    return forward(cat({inputs[1], interpolate(inputs[0], up)}, 1));
}

UNet::UNet(int64_t in_channels, int64_t classes, int64_t width, Generator& gen) : Module("UNet") {
    inc_ = register_module("inc", std::make_shared<DoubleConv>(in_channels, width, gen));
    down1_ = register_module("down1", std::make_shared<DoubleConv>(width, width * 2, gen));
    down2_ = register_module("down2", std::make_shared<DoubleConv>(width * 2, width * 4, gen));
    up1_ = register_module("up1", std::make_shared<Up>(width * 4 + width * 2, width * 2, gen));
    up2_ = register_module("up2", std::make_shared<Up>(width * 2 + width, width, gen));
    outc_ = register_module("outc", std::make_shared<nn::Conv2d>(width, classes, 1, gen));
}

Tensor UNet::forward(const Tensor& x) {
    const Tensor x1 = inc_->forward(x);
    const Tensor x2 = down1_->forward(max_pool2d(x1, {.kernel_size = 2}));
    const Tensor x3 = down2_->forward(max_pool2d(x2, {.kernel_size = 2}));
    return outc_->forward((*up2_)((*up1_)(x3, x2), x1));
}

}  // namespace tapegrad::models
