#include "examples/models/unet.hpp"

namespace tapegrad::models {

DoubleConv::DoubleConv(int64_t in, int64_t out, Generator& gen) : Module("DoubleConv") {
    block_ = register_module("block", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                          std::make_shared<nn::Conv2d>(in, out, 3, gen, Conv2dOptions{.padding = 1}, false),
                                          std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::ReLU>(),
                                          std::make_shared<nn::Conv2d>(out, out, 3, gen, Conv2dOptions{.padding = 1}, false),
                                          std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::ReLU>()}));
}

Tensor DoubleConv::forward(const Tensor& x) { return block_->forward(x); }

UNet::UNet(int64_t in_channels, int64_t classes, int64_t width, Generator& gen) : Module("UNet") {
    inc_ = register_module("inc", std::make_shared<DoubleConv>(in_channels, width, gen));
    down1_ = register_module("down1", std::make_shared<DoubleConv>(width, width * 2, gen));
    down2_ = register_module("down2", std::make_shared<DoubleConv>(width * 2, width * 4, gen));
    up1_ = register_module("up1", std::make_shared<DoubleConv>(width * 4 + width * 2, width * 2, gen));
    up2_ = register_module("up2", std::make_shared<DoubleConv>(width * 2 + width, width, gen));
    outc_ = register_module("outc", std::make_shared<nn::Conv2d>(width, classes, 1, gen));
}

Tensor UNet::forward(const Tensor& x) {
    const InterpolateOptions up{.scale_factor = 2.0, .mode = InterpolateMode::Bilinear, .align_corners = true};
    const Tensor x1 = inc_->forward(x);
    const Tensor x2 = down1_->forward(max_pool2d(x1, {.kernel_size = 2}));
    const Tensor x3 = down2_->forward(max_pool2d(x2, {.kernel_size = 2}));
    Tensor y = up1_->forward(cat({x2, interpolate(x3, up)}, 1));
    y = up2_->forward(cat({x1, interpolate(y, up)}, 1));
    return outc_->forward(y);
}

}  // namespace tapegrad::models
