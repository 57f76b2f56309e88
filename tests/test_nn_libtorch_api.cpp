// The nn API as libtorch programs write it: layers and initialisers without a generator draw from
// the default generator, chained module options, and modules printed as libtorch's pretty_print
// prints them (with tg:: for torch::).
#include <doctest/doctest.h>

#include <algorithm>
#include <sstream>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {
bool same_values(const Tensor& a, const Tensor& b) { return a.to_vector<double>() == b.to_vector<double>(); }

std::pair<double, double> value_range(const Tensor& t) {
    const auto values = t.to_vector<double>();
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    return {*lo, *hi};
}

template <class M>
std::string printed(const M& module) {
    std::ostringstream out;
    out << module;
    return out.str();
}
}  // namespace

TEST_CASE("layers without a generator draw their weights from the default generator, as after torch::manual_seed") {
    tg::manual_seed(7);
    nn::Linear linear(5, 3);
    nn::Conv2d conv(2, 4, 3);
    nn::ConvTranspose2d deconv(nn::ConvTranspose2dOptions(4, 2, 3));
    // The same draws as an explicit generator with the same seed, in the same order.
    tg::Generator gen(7);
    nn::Linear linear_explicit(5, 3, gen);
    nn::Conv2d conv_explicit(2, 4, 3, gen);
    nn::ConvTranspose2d deconv_explicit(4, 2, 3, gen);
    CHECK(same_values(linear.weight, linear_explicit.weight));
    CHECK(same_values(linear.bias, linear_explicit.bias));
    CHECK(same_values(conv.weight, conv_explicit.weight));
    CHECK(same_values(deconv.weight, deconv_explicit.weight));
    CHECK(same_values(deconv.bias, deconv_explicit.bias));
    // Without reseeding, the next layer gets new values.
    nn::Linear next(5, 3);
    CHECK_FALSE(same_values(next.weight, linear.weight));
}

TEST_CASE("the initialisers without a generator draw from the default generator") {
    using namespace tg::nn::init;
    auto fill_all = [](auto&& fill_one) {
        std::vector<Tensor> out;
        for (int i = 0; i < 6; ++i) out.push_back(tg::zeros({4, 6}));
        fill_one(out);
        return out;
    };
    tg::manual_seed(11);
    const auto implicit = fill_all([](std::vector<Tensor>& t) {
        uniform_(t[0], -2.0, 3.0);
        normal_(t[1], 1.0, 0.5);
        kaiming_uniform_(t[2], 0.1);
        kaiming_normal_(t[3], 0.0, FanMode::FanOut, Nonlinearity::ReLU);
        xavier_uniform_(t[4], 2.0);
        xavier_normal_(t[5]);
    });
    tg::Generator gen(11);
    const auto explicit_ = fill_all([&](std::vector<Tensor>& t) {
        uniform_(t[0], -2.0, 3.0, gen);
        normal_(t[1], 1.0, 0.5, gen);
        kaiming_uniform_(t[2], gen, 0.1);
        kaiming_normal_(t[3], gen, 0.0, FanMode::FanOut, Nonlinearity::ReLU);
        xavier_uniform_(t[4], gen, 2.0);
        xavier_normal_(t[5], gen);
    });
    for (std::size_t i = 0; i < implicit.size(); ++i) {
        CAPTURE(i);
        CHECK(same_values(implicit[i], explicit_[i]));
        CHECK(value_range(implicit[i]).first != value_range(implicit[i]).second);
    }
    // torch.nn.init.uniform_'s defaults: [0, 1).
    Tensor t = tg::zeros({1000});
    uniform_(t);
    CHECK(value_range(t).first >= 0.0);
    CHECK(value_range(t).second < 1.0);
}

TEST_CASE("an unseeded Dropout takes its seed from the default generator, so manual_seed reproduces its masks") {
    const Tensor x = tg::ones({64});
    tg::manual_seed(3);
    nn::Dropout first(0.5);
    const Tensor first_mask = first(x);
    tg::manual_seed(3);
    nn::Dropout again(nn::DropoutOptions(0.5));
    CHECK(same_values(again(x), first_mask));
    nn::Dropout other(0.5);  // the next draw of the default generator: another stream
    CHECK_FALSE(same_values(other(x), first_mask));
    // A bad p throws before drawing, leaving the default generator as it was.
    tg::manual_seed(3);
    CHECK_THROWS_WITH_AS(nn::Dropout(1.5), doctest::Contains("Dropout: p must be in [0, 1]"), std::invalid_argument);
    nn::Dropout after_error(0.5);
    CHECK(same_values(after_error(x), first_mask));
}

TEST_CASE("module options chain as libtorch's and build the same layers as the positional constructors") {
    tg::manual_seed(0);
    nn::Conv2d conv(nn::Conv2dOptions(1, 64, 4).stride(2).padding(1).bias(false));
    CHECK(conv.weight.shape() == tg::Shape{64, 1, 4, 4});
    CHECK_FALSE(conv.bias.defined());
    CHECK(conv.options.stride.h == 2);
    CHECK(conv.options.padding.w == 1);
    CHECK(conv(tg::zeros({2, 1, 8, 8})).shape() == tg::Shape{2, 64, 4, 4});

    const auto options = nn::Conv2dOptions(3, 6, {3, 5}).dilation(2).groups(3).padding_mode(nn::PaddingMode::Reflect);
    CHECK(options.in_channels() == 3);
    CHECK(options.kernel_size().w == 5);
    CHECK(options.dilation().h == 2);
    CHECK(options.stride().h == 1);
    CHECK(options.bias());
    nn::Conv2d grouped(options);
    CHECK(grouped.weight.shape() == tg::Shape{6, 1, 3, 5});
    CHECK(grouped.padding_mode == nn::PaddingMode::Reflect);

    nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(4, 2, 3).stride(2).padding(1).output_padding(1));
    CHECK(up(tg::zeros({1, 4, 5, 5})).shape() == tg::Shape{1, 2, 10, 10});

    nn::Linear linear(nn::LinearOptions(10, 20).bias(false));
    CHECK(linear.weight.shape() == tg::Shape{20, 10});
    CHECK(linear.parameters().size() == 1);

    nn::BatchNorm2d bn(nn::BatchNorm2dOptions(8).eps(1e-3).momentum(0.2).affine(false).track_running_stats(false));
    CHECK(bn.config.eps == 1e-3);
    CHECK(bn.config.momentum == 0.2);
    CHECK(bn.parameters().empty());
    CHECK(bn.buffers().empty());
    nn::BatchNorm1d bn1(nn::BatchNorm1dOptions(4));
    CHECK(bn1.parameters().size() == 2);

    const Tensor x = tg::arange(2 * 3 * 7 * 7, {.dtype = tg::kFloat32}).reshape({2, 3, 7, 7});
    nn::MaxPool2d max_pool(nn::MaxPool2dOptions(3).stride(2));
    CHECK(max_pool(x).shape() == tg::Shape{2, 3, 3, 3});
    CHECK(same_values(max_pool(x), tg::max_pool2d(x, {.kernel_size = 3, .stride = 2})));
    nn::AvgPool2d avg_pool(nn::AvgPool2dOptions(2).padding(1).count_include_pad(false));
    CHECK(same_values(avg_pool(x), tg::avg_pool2d(x, {.kernel_size = 2, .padding = 1, .count_include_pad = false})));

    CHECK(nn::Dropout(nn::DropoutOptions(0.2)).p == 0.2);
    CHECK(nn::Dropout(nn::DropoutOptions()).p == 0.5);
}

TEST_CASE("module options are checked as the positional constructors are") {
    CHECK_THROWS_WITH_AS(nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)), doctest::Contains("divisible by groups"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(nn::Linear(nn::LinearOptions(0, 4)), doctest::Contains("Linear: in_features must be positive"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(nn::BatchNorm2d(nn::BatchNorm2dOptions(-1)), doctest::Contains("num_features must be positive"),
                         std::invalid_argument);
}

// libtorch's pretty_print, written out by hand from torch/csrc/api/src/nn/modules/*.cpp (1.13).
TEST_CASE("each built-in layer prints its options as libtorch's pretty_print") {
    tg::manual_seed(0);
    CHECK(printed(nn::Conv2d(1, 10, 5)) == "tg::nn::Conv2d(1, 10, kernel_size=[5, 5], stride=[1, 1])");
    CHECK(printed(nn::Conv2d(nn::Conv2dOptions(1, 64, {4, 3}).stride(2).padding(1).bias(false))) ==
          "tg::nn::Conv2d(1, 64, kernel_size=[4, 3], stride=[2, 2], padding=[1, 1], bias=false)");
    CHECK(printed(nn::Conv2d(nn::Conv2dOptions(4, 8, 3).padding(tg::PaddingKind::Same).dilation(2).groups(2).padding_mode(
              nn::PaddingMode::Reflect))) ==
          "tg::nn::Conv2d(4, 8, kernel_size=[3, 3], stride=[1, 1], padding='same', dilation=[2, 2], groups=2, "
          "padding_mode=kReflect)");
    CHECK(printed(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(16, 8, 4).stride(2).padding(1).output_padding(1))) ==
          "tg::nn::ConvTranspose2d(16, 8, kernel_size=[4, 4], stride=[2, 2], padding=[1, 1], output_padding=[1, 1])");
    CHECK(printed(nn::Linear(10, 20)) == "tg::nn::Linear(in_features=10, out_features=20, bias=true)");
    CHECK(printed(nn::BatchNorm2d(64)) == "tg::nn::BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)");
    CHECK(printed(nn::BatchNorm1d(nn::BatchNorm1dOptions(3).affine(false))) ==
          "tg::nn::BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=false, track_running_stats=true)");
    CHECK(printed(nn::BatchNorm2d(4, {.momentum = std::nullopt})) ==
          "tg::nn::BatchNorm2d(4, eps=1e-05, momentum=None, affine=true, track_running_stats=true)");
    CHECK(printed(nn::MaxPool2d(2)) ==
          "tg::nn::MaxPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0], dilation=[1, 1], ceil_mode=false)");
    CHECK(printed(nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(1))) ==
          "tg::nn::AvgPool2d(kernel_size=[3, 3], stride=[1, 1], padding=[0, 0])");
    CHECK(printed(nn::AdaptiveAvgPool2d(1)) == "tg::nn::AdaptiveAvgPool2d(output_size=[1, 1])");
    CHECK(printed(nn::Dropout(0.25)) == "tg::nn::Dropout(p=0.25)");
    CHECK(printed(nn::Flatten()) == "tg::nn::Flatten(start_dim=1, end_dim=-1)");
    CHECK(printed(nn::ReLU()) == "tg::nn::ReLU()");
    CHECK(printed(nn::LeakyReLU(0.2)) == "tg::nn::LeakyReLU(negative_slope=0.2)");
    CHECK(printed(nn::LayerNorm({10})) == "tg::nn::LayerNorm([10], eps=1e-05, elementwise_affine=true)");
    CHECK(printed(nn::GroupNorm(2, 4)) == "tg::nn::GroupNorm(2, 4, eps=1e-05, affine=true)");
    CHECK(printed(nn::CrossEntropyLoss()) == "tg::nn::CrossEntropyLoss()");
}

namespace {
struct Net : nn::Module {
    Net() {
        conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 10, 5));
        conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(10, 20, 5).bias(false)));
        body = register_module("body", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                           std::make_shared<nn::Linear>(320, 50), std::make_shared<nn::ReLU>()}));
    }
    std::shared_ptr<nn::Conv2d> conv1, conv2;
    std::shared_ptr<nn::Sequential> body;
};

struct Named : nn::Module {
    Named() : nn::Module("Encoder") {}
};
}  // namespace

TEST_CASE("a model prints as a tree of its children, each with its options, as libtorch's operator<<") {
    tg::manual_seed(0);
    const Net net;
    CHECK(printed(net) ==
          "(anonymous namespace)::Net(\n"
          "  (conv1): tg::nn::Conv2d(1, 10, kernel_size=[5, 5], stride=[1, 1])\n"
          "  (conv2): tg::nn::Conv2d(10, 20, kernel_size=[5, 5], stride=[1, 1], bias=false)\n"
          "  (body): tg::nn::Sequential(\n"
          "    (0): tg::nn::Linear(in_features=320, out_features=50, bias=true)\n"
          "    (1): tg::nn::ReLU()\n"
          "  )\n"
          ")");
    // A module given a name prints it; one without children prints no parentheses.
    CHECK(printed(Named()) == "Encoder");
}

namespace {
struct BlockImpl : nn::Module {
    explicit BlockImpl(int64_t features) : nn::Module("Block") {
        fc = register_module("fc", nn::ModuleHolder<nn::Linear>(features, features));
        scale = register_parameter("scale", tg::ones({features}));
        offset = register_buffer("offset", tg::zeros({features}));
    }
    Tensor forward(const Tensor& x) override { return fc(x) * scale + offset; }
    nn::ModuleHolder<nn::Linear> fc{nullptr};
    Tensor scale, offset;
};
TG_MODULE(Block);

struct ModelImpl : nn::Module {
    ModelImpl() : nn::Module("Model") { block = register_module("block", Block(4)); }
    Block block{nullptr};
};
TG_MODULE(Model);
}  // namespace

TEST_CASE("module holders work the libtorch way: empty, assigned by register_module, called through ->") {
    tg::manual_seed(0);
    Model model;
    REQUIRE_FALSE(model->block.is_empty());
    // The holder, the registered child and the parameters are the same module and tensors.
    CHECK(model->child("block").get() == model->block.ptr().get());
    CHECK(model->block->fc->weight.shape() == tg::Shape{4, 4});
    const auto names = model->named_parameters();
    REQUIRE(names.size() == 3);
    CHECK(names[0].first == "block.scale");
    CHECK(names[1].first == "block.fc.weight");
    CHECK(model->named_buffers().at(0).first == "block.offset");
    // register_parameter and register_buffer return the registered tensor itself.
    {
        tg::NoGradGuard no_grad;
        model->block->scale.fill_(2.0);
    }
    CHECK(model->named_parameters()[0].second.to_vector<double>() == std::vector<double>{2, 2, 2, 2});

    const Tensor x = tg::ones({3, 4});
    const Tensor expected = tg::linear(x, model->block->fc->weight, model->block->fc->bias) * 2.0;
    CHECK(tg::allclose(model->block(x), expected, 1e-6, 1e-6));
    CHECK(tg::allclose(model->block->forward(x), expected, 1e-6, 1e-6));

    Block empty{nullptr};
    CHECK(empty.is_empty());
    CHECK_THROWS_WITH_AS(empty->forward(x), doctest::Contains("the holder is empty"), std::invalid_argument);
    CHECK(printed(model) == "Model(\n  (block): Block(\n    (fc): tg::nn::Linear(in_features=4, out_features=4, bias=true)\n  )\n)");
}

TEST_CASE("Sequential is built from modules directly, grows by push_back and is indexed as libtorch's") {
    tg::manual_seed(0);
    auto linear = std::make_shared<nn::Linear>(4, 3);
    nn::ModuleHolder<nn::ReLU> relu;
    auto seq = std::make_shared<nn::Sequential>(linear, relu, Block(3));
    seq->push_back(std::make_shared<nn::Flatten>());
    seq->push_back(nn::ModuleHolder<nn::Tanh>());
    REQUIRE(seq->size() == 5);
    CHECK((*seq)[0].get() == linear.get());
    CHECK(&seq->at<nn::Linear>(0) == linear.get());
    CHECK(seq->named_children()[4].first == "4");
    CHECK_THROWS_WITH_AS(seq->at<nn::Linear>(1), doctest::Contains("module 1 is a ReLU, not the type asked for"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(seq->at<nn::Linear>(9), doctest::Contains("index 9 is out of range for a Sequential of 5"), std::invalid_argument);

    const Tensor x = tg::ones({2, 4});
    const Tensor by_hand = seq->at<nn::Tanh>(4)(seq->at<BlockImpl>(2)(tg::relu(linear->forward(x))));
    CHECK(tg::allclose(seq->forward(x), by_hand, 1e-6, 1e-6));
    CHECK(printed(*seq) ==
          "tg::nn::Sequential(\n"
          "  (0): tg::nn::Linear(in_features=4, out_features=3, bias=true)\n"
          "  (1): tg::nn::ReLU()\n"
          "  (2): Block(\n"
          "    (fc): tg::nn::Linear(in_features=3, out_features=3, bias=true)\n"
          "  )\n"
          "  (3): tg::nn::Flatten(start_dim=1, end_dim=-1)\n"
          "  (4): tg::nn::Tanh()\n"
          ")");
}
