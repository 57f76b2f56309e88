#pragma once
// A small U-Net (Ronneberger et al., 2015) as PyTorch ports write it: DoubleConv blocks (conv 3x3
// padded, batch norm, ReLU, twice), max-pool down, bilinear upsampling (align_corners) and the
// skip concatenated on the channels; per-pixel class logits [N, classes, H, W]. Depth 2; H and W
// must be divisible by 4.
#include <memory>

#include "tapegrad.hpp"

namespace tapegrad::models {

class DoubleConv : public nn::Module {
public:
    DoubleConv(int64_t in, int64_t out, Generator& gen);
    Tensor forward(const Tensor& x) override;

private:
    std::shared_ptr<nn::Sequential> block_;
};

class UNet : public nn::Module {
public:
    UNet(int64_t in_channels, int64_t classes, int64_t width, Generator& gen);
    Tensor forward(const Tensor& x) override;

private:
    std::shared_ptr<DoubleConv> inc_, down1_, down2_, up1_, up2_;
    std::shared_ptr<nn::Conv2d> outc_;
};

}  // namespace tapegrad::models
