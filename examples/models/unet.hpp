#pragma once
// A small U-Net (Ronneberger et al., 2015) as PyTorch ports write it: DoubleConv blocks (conv 3x3
// padded, batch norm, ReLU, twice), max-pool down, and decoder blocks called as up(x, skip):
// bilinear upsampling (align_corners) of x, the skip concatenated before it on the channels, then
// a DoubleConv; per-pixel class logits [N, classes, H, W]. Depth 2; H and W must be divisible by 4.
#include <memory>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace tapegrad::models {

class DoubleConv : public nn::Module {
public:
    DoubleConv(int64_t in, int64_t out, Generator& gen) : DoubleConv("DoubleConv", in, out, gen) {}
    Tensor forward(const Tensor& x) override;

protected:
    DoubleConv(std::string type_name, int64_t in, int64_t out, Generator& gen);

private:
    std::shared_ptr<nn::Sequential> block_;
};

// A decoder block with two inputs, called as up(x, skip): x (the coarser map) is upsampled 2x and
// concatenated after skip. Its parameters are its DoubleConv's ("up1.block.0.weight"), as in
// the PyTorch port, which concatenates outside the block.
class Up : public DoubleConv {
public:
    // in = the skip's channels plus x's.
    Up(int64_t in, int64_t out, Generator& gen) : DoubleConv("Up", in, out, gen) {}
    Tensor forward_inputs(const std::vector<Tensor>& inputs) override;
};

class UNet : public nn::Module {
public:
    UNet(int64_t in_channels, int64_t classes, int64_t width, Generator& gen);
    Tensor forward(const Tensor& x) override;

private:
    std::shared_ptr<DoubleConv> inc_, down1_, down2_;
    std::shared_ptr<Up> up1_, up2_;
    std::shared_ptr<nn::Conv2d> outc_;
};

}  // namespace tapegrad::models
