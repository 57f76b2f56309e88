// The layers and Module utilities a port of a torchvision model needs: Conv2d's padding modes,
// BatchNorm1d on [N,C,L], LayerNorm, GroupNorm, Upsample, Identity, the activation layers,
// named Sequential, named_modules, apply, to(dtype), and the data transforms; what the profiler
// and to_dot see of conv_transpose2d and the normalisations.
#include <doctest/doctest.h>

#include <cmath>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

TEST_CASE("Conv2d padding_mode pads the input before a padding-free convolution") {
    tg::Generator gen(0);
    const Tensor x = tg::randn({2, 3, 5, 6}, gen);
    for (auto [mode, pad_mode] : {std::pair{nn::PaddingMode::Reflect, tg::PadMode::Reflect},
                                  std::pair{nn::PaddingMode::Replicate, tg::PadMode::Replicate}}) {
        nn::Conv2d conv(3, 4, 3, gen, {.padding = {1, 2}}, true, mode);
        const Tensor want = tg::conv2d(tg::pad(x, {2, 2, 1, 1}, pad_mode), conv.weight, conv.bias);
        CHECK(tg::allclose(conv(x), want, 1e-6, 1e-6));
        nn::Conv2d same(3, 4, {2, 3}, gen, {.padding = tg::kSame}, true, mode);
        const Tensor y = same(x);
        CHECK(y.shape() == tg::Shape{2, 4, 5, 6});
        // 'same' with an even kernel: the extra row goes to the bottom.
        CHECK(tg::allclose(y, tg::conv2d(tg::pad(x, {1, 1, 0, 1}, pad_mode), same.weight, same.bias), 1e-6, 1e-6));
    }
}

TEST_CASE("BatchNorm1d takes [N,C] and [N,C,L]; BatchNorm2d still refuses 3-D") {
    tg::Generator gen(1);
    nn::BatchNorm1d bn(3);
    const Tensor x = tg::randn({4, 3, 5}, gen);
    const Tensor y = bn(x);
    CHECK(y.shape() == x.shape());
    // Per channel over N and L: mean 0 and biased variance 1 (up to eps).
    const Tensor m = tg::mean(y, {0, 2}), v = tg::var(y, {0, 2}, 0);
    for (int64_t c = 0; c < 3; ++c) {
        CHECK(std::abs(m.at({c})) < 1e-6);
        CHECK(std::abs(v.at({c}) - 1.0) < 1e-3);
    }
    CHECK(bn(tg::randn({4, 3}, gen)).shape() == tg::Shape{4, 3});
    nn::BatchNorm2d bn2(3);
    CHECK_THROWS_AS(bn2(x), std::invalid_argument);
}

TEST_CASE("LayerNorm, GroupNorm, Upsample, Identity and the activation layers") {
    tg::Generator gen(2);
    const Tensor x = tg::randn({2, 4, 3, 3}, gen);
    nn::LayerNorm ln({3, 3});
    CHECK(ln.named_parameters().size() == 2);
    CHECK(tg::allclose(ln(x), tg::layer_norm(x, {3, 3}), 1e-6, 1e-6));
    nn::GroupNorm gn(2, 4);
    CHECK(tg::allclose(gn(x), tg::group_norm(x, 2), 1e-6, 1e-6));
    CHECK_THROWS_AS(nn::GroupNorm(3, 4), std::invalid_argument);
    nn::Upsample up({.scale_factor = 2.0});
    CHECK(up(x).shape() == tg::Shape{2, 4, 6, 6});
    nn::Identity id;
    CHECK(id(x).same(x));
    CHECK(tg::allclose(nn::ReLU6()(x * 10.0), tg::relu6(x * 10.0), 0, 0));
    CHECK(tg::allclose(nn::GELU(tg::GeluApproximate::Tanh)(x), tg::gelu(x, tg::GeluApproximate::Tanh), 0, 0));
    CHECK(tg::allclose(nn::LeakyReLU(0.2)(x), tg::leaky_relu(x, 0.2), 0, 0));
    CHECK(tg::allclose(nn::SiLU()(x), tg::silu(x), 0, 0));
    CHECK(tg::allclose(nn::Hardswish()(x), tg::hardswish(x), 0, 0));
    CHECK(tg::allclose(nn::Hardsigmoid()(x * 4.0), tg::hardsigmoid(x * 4.0), 0, 0));
    CHECK(tg::allclose(nn::Softplus()(x * 30.0), tg::softplus(x * 30.0), 0, 0));
    CHECK(tg::allclose(nn::Softplus(2.0, 3.0)(x), tg::softplus(x, 2.0, 3.0), 0, 0));
    CHECK_FALSE(tg::allclose(nn::Softplus(2.0, 3.0)(x), tg::softplus(x), 1e-3, 1e-3));
}

TEST_CASE("named Sequential, named_modules and apply walk the tree as PyTorch does") {
    tg::Generator gen(3);
    auto block = std::make_shared<nn::Sequential>(std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>>{
        {"conv", std::make_shared<nn::Conv2d>(1, 2, 3, gen)}, {"bn", std::make_shared<nn::BatchNorm2d>(2)}, {"act", std::make_shared<nn::ReLU>()}});
    nn::Sequential model{block, std::make_shared<nn::Flatten>(), block};  // shared: listed once
    std::vector<std::string> names;
    for (const auto& [name, m] : model.named_modules()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"", "0", "0.conv", "0.bn", "0.act", "1"});
    CHECK(model.state_dict().front().first == "0.conv.weight");
    std::vector<std::string> order;
    model.apply([&](nn::Module& m) { order.push_back(m.type_name()); });
    // Children before their parent; a child registered twice is visited once, as PyTorch's apply
    // (which walks children(), unique modules).
    CHECK(order == std::vector<std::string>{"Conv2d", "BatchNorm2d", "ReLU", "Sequential", "Flatten", "Sequential"});
    int convs = 0;
    model.apply([&](nn::Module& m) {
        if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) {
            nn::init::zeros_(c->weight);
            ++convs;
        }
    });
    CHECK(convs == 1);
    CHECK(block->child("conv")->named_parameters()[0].second.sum().item() == 0.0);
}

TEST_CASE("Module::to(float64) converts parameters and buffers in place, as model.double()") {
    tg::Generator gen(4);
    nn::Sequential model{std::make_shared<nn::Conv2d>(1, 2, 3, gen), std::make_shared<nn::BatchNorm2d>(2), std::make_shared<nn::ReLU>()};
    auto conv = std::dynamic_pointer_cast<nn::Conv2d>(model[0]);
    const std::vector<double> before = conv->weight.to_vector<double>();
    model.to(tg::kFloat64);
    CHECK(conv->weight.dtype() == tg::kFloat64);  // the layer's own handle sees it
    CHECK(conv->weight.to_vector<double>() == before);
    // Floating-point tensors only: the batch count stays int64, as in PyTorch.
    for (const auto& [name, t] : model.state_dict())
        CHECK_MESSAGE(t.dtype() == (name.ends_with("num_batches_tracked") ? tg::kInt64 : tg::kFloat64), name);
    CHECK(conv->weight.requires_grad());
    const Tensor y = model(tg::randn({2, 1, 5, 5}, gen, {.dtype = tg::kFloat64}));
    y.sum().backward();
    CHECK(conv->weight.grad().dtype() == tg::kFloat64);
    CHECK_THROWS_AS(model.to(tg::kInt64), std::invalid_argument);
    CHECK(conv->weight.dtype() == tg::kFloat64);  // untouched by the refused call
    model.to(tg::kFloat32);
    CHECK(conv->weight.dtype() == tg::kFloat32);
    CHECK_FALSE(conv->weight.grad().defined());  // dropped: it had the old dtype
}

TEST_CASE("transforms: crop, flip and normalise per image, reproducibly, also through the loader") {
    tg::Generator gen(5);
    const Tensor x = tg::randn({3, 2, 4, 5}, gen);
    // A crop of the whole image without padding is the image.
    tg::Generator g1(1), g7(7), g7_again(7);
    CHECK(tg::allclose(nn::random_crop({4, 5})(x, g1), x, 0, 0));
    const Tensor crop = nn::random_crop({4, 5}, 2)(x, g7);
    CHECK(crop.shape() == x.shape());
    CHECK(tg::allclose(nn::random_crop({4, 5}, 2)(x, g7_again), crop, 0, 0));  // same seed, same crops
    // Flipping with p = 1 twice gives the image back; p = 0 leaves it.
    const auto flip = nn::random_horizontal_flip(1.0);
    CHECK(tg::allclose(flip(flip(x, g1), g1), x, 0, 0));
    CHECK(flip(x, g1).at({0, 1, 2, 0}) == x.at({0, 1, 2, 4}));
    CHECK(tg::allclose(nn::random_horizontal_flip(0.0)(x, g1), x, 0, 0));
    const Tensor n = nn::normalize({1.0, -2.0}, {2.0, 0.5})(x, g1);
    CHECK(std::abs(n.at({1, 1, 3, 2}) - (x.at({1, 1, 3, 2}) + 2.0) / 0.5) < 1e-6);
    CHECK_THROWS_AS(nn::normalize({1.0, 2.0, 3.0}, {1.0, 1.0, 1.0})(x, g1), std::invalid_argument);

    nn::ImageDataset data;
    data.count = 4, data.rows = 2, data.cols = 3;
    for (int i = 0; i < 24; ++i) data.pixels.push_back(static_cast<uint8_t>(i * 10));
    data.labels = {0, 1, 2, 3};
    nn::DataLoader plain(data, {.batch_size = 4, .shuffle = false});
    nn::DataLoader flipped(data, {.batch_size = 4, .shuffle = false, .transform = nn::random_horizontal_flip(1.0)});
    const Tensor a = (*plain.begin()).images, b = (*flipped.begin()).images;
    CHECK(b.at({2, 0, 1, 0}) == a.at({2, 0, 1, 2}));
}

TEST_CASE("ConvTranspose2d: PyTorch's weight layout and init bound, and the functional op") {
    tg::Generator gen(6);
    nn::ConvTranspose2d up(4, 6, 2, gen, {.stride = 2, .groups = 2});
    CHECK(up.weight.shape() == tg::Shape{4, 3, 2, 2});
    CHECK(up.bias.shape() == tg::Shape{6});
    // kaiming_uniform(a = sqrt(5)): bound 1/sqrt(fan_in), fan_in = weight.size(1) * kh * kw = 12.
    for (double v : up.weight.to_vector<double>()) CHECK(std::abs(v) <= 1.0 / std::sqrt(12.0));
    const Tensor x = tg::randn({2, 4, 3, 3}, gen);
    const Tensor y = up(x);
    CHECK(y.shape() == tg::Shape{2, 6, 6, 6});
    CHECK(tg::allclose(y, tg::conv_transpose2d(x, up.weight, up.bias, {.stride = 2, .groups = 2}), 0, 0));
}

// conv_transpose2d and the normalisations are nodes of their own (on the op entry): the profiler
// times each forward and backward once, and to_dot names what each saved.
TEST_CASE("conv_transpose2d, layer_norm, group_norm, std and var: profiled forward and backward, saved state by name") {
    tg::Generator gen(5);
    const Tensor x = tg::randn({1, 2, 3, 3}, gen).requires_grad_(), w = tg::randn({2, 3, 2, 2}, gen).requires_grad_();
    const Tensor lw = tg::randn({6}, gen).requires_grad_(), lb = tg::randn({6}, gen).requires_grad_();
    tg::Profiler profiler;
    const Tensor up = tg::conv_transpose2d(x, w, Tensor(), {.stride = 2});  // [1,3,6,6]
    const Tensor normed = tg::group_norm(tg::layer_norm(up, {6}, lw, lb), 3);
    const Tensor loss = tg::sum(tg::std(normed, {2, 3})) + tg::var(normed);
    const std::string dot = tg::to_dot(loss);
    loss.backward();
    profiler.stop();
    for (const char* op : {"conv_transpose2d", "layer_norm", "group_norm", "std", "var"}) {
        INFO(op);
        bool found = false;
        for (const tg::Profiler::Stats& r : profiler.by_op()) {
            if (r.name != op) continue;
            found = true;
            CHECK(r.forward_calls == 1);
            CHECK(r.backward_calls == 1);
            CHECK(r.forward_total_ms > 0);
            CHECK(r.backward_total_ms > 0);
        }
        CHECK(found);
    }
    for (const char* label : {"ConvTranspose2dBackward0 (conv_transpose2d)\\n[1,3,6,6] float32\\nsaved input: [1,2,3,3] float32 72 B"
                              "\\nsaved weight: [2,3,2,2] float32 96 B\\nsaved stride: {2,2}\\nsaved padding: {0,0}"
                              "\\nsaved dilation: {1,1}\\nsaved groups: 1\\nsaved kernels: fast\"",
                              "LayerNormBackward0 (layer_norm)\\n[1,3,6,6] float32\\nsaved input: [1,3,6,6] float32 432 B"
                              "\\nsaved weight: [6] float32 24 B\\nsaved normalized_shape: [6]\\nsaved eps: 1e-05\"",
                              "GroupNormBackward0 (group_norm)\\n[1,3,6,6] float32\\nsaved input: [1,3,6,6] float32 432 B"
                              "\\nsaved weight: (no values kept)\\nsaved num_groups: 3\\nsaved eps: 1e-05\"",
                              "StdBackward0 (std)\\n[1,3] float32\\nsaved input: [1,3,6,6] float32 432 B\\nsaved dims: {2,3}"
                              "\\nsaved correction: 1\\nsaved keepdim: false\"",
                              "VarBackward0 (var)\\n[] float32\\nsaved input: [1,3,6,6] float32 432 B\\nsaved dims: {0,1,2,3}"
                              "\\nsaved correction: 1\\nsaved keepdim: false\""})
        CHECK_MESSAGE(dot.find(label) != std::string::npos, label << " not in\n" << dot);
}
