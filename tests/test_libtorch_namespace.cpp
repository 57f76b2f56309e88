// libtorch.hpp: a libtorch program ports by changing its include and adding
// `namespace torch = tapegrad::libtorch;`. The models below are written as libtorch programs write
// them (torch:: spellings only, module holders, TORCH_MODULE, chained options, torch::optim), and
// each is checked against the same model written with tapegrad's own API (tg::nn modules held by
// std::shared_ptr), built after the same seed: the same weights, the same dropout masks, so the
// same numbers bit for bit.
#include <doctest/doctest.h>

#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "libtorch.hpp"

namespace torch = tapegrad::libtorch;
namespace F = torch::nn::functional;
namespace tg = tapegrad;

namespace {

std::vector<double> values(const tg::Tensor& t) { return t.to_vector<double>(); }

template <class M>
std::string printed(const M& module) {
    std::ostringstream out;
    out << module;
    return out.str();
}

// ---- every holder: torch::nn::X holds tg::nn::X, and torch::nn::XImpl is tg::nn::X.
template <class Holder, class Module>
constexpr bool holds = std::is_same_v<Holder, tg::nn::ModuleHolder<Module>> && std::is_same_v<typename Holder::ContainedType, Module>;
#define CHECK_HOLDER(Name) \
    static_assert(holds<torch::nn::Name, tg::nn::Name> && std::is_same_v<torch::nn::Name##Impl, tg::nn::Name>, #Name)
CHECK_HOLDER(Sequential);
CHECK_HOLDER(Linear);
CHECK_HOLDER(Conv2d);
CHECK_HOLDER(ConvTranspose2d);
CHECK_HOLDER(BatchNorm1d);
CHECK_HOLDER(BatchNorm2d);
CHECK_HOLDER(LayerNorm);
CHECK_HOLDER(GroupNorm);
CHECK_HOLDER(Dropout);
CHECK_HOLDER(Dropout2d);
CHECK_HOLDER(MaxPool2d);
CHECK_HOLDER(AvgPool2d);
CHECK_HOLDER(MaxUnpool2d);
CHECK_HOLDER(AdaptiveAvgPool2d);
CHECK_HOLDER(Flatten);
CHECK_HOLDER(Identity);
CHECK_HOLDER(Upsample);
CHECK_HOLDER(MultiheadAttention);
CHECK_HOLDER(ReLU);
CHECK_HOLDER(ReLU6);
CHECK_HOLDER(LeakyReLU);
CHECK_HOLDER(ELU);
CHECK_HOLDER(GELU);
CHECK_HOLDER(SiLU);
CHECK_HOLDER(Hardswish);
CHECK_HOLDER(Hardsigmoid);
CHECK_HOLDER(Softplus);
CHECK_HOLDER(Hardtanh);
CHECK_HOLDER(Sigmoid);
CHECK_HOLDER(Tanh);
CHECK_HOLDER(BCELoss);
CHECK_HOLDER(BCEWithLogitsLoss);
CHECK_HOLDER(CrossEntropyLoss);
CHECK_HOLDER(NLLLoss);
CHECK_HOLDER(KLDivLoss);
CHECK_HOLDER(MSELoss);
CHECK_HOLDER(L1Loss);
CHECK_HOLDER(SmoothL1Loss);
CHECK_HOLDER(HuberLoss);
#undef CHECK_HOLDER

// Every other name is tapegrad's own.
static_assert(std::is_same_v<torch::Tensor, tg::Tensor>);
static_assert(std::is_same_v<torch::nn::Module, tg::nn::Module>);
static_assert(std::is_same_v<torch::nn::Conv2dOptions, tg::nn::Conv2dOptions>);
static_assert(std::is_same_v<torch::nn::ModuleHolder<tg::nn::Linear>, torch::nn::Linear>);
static_assert(std::is_same_v<torch::optim::SGD, tg::nn::SGD>);
static_assert(std::is_same_v<torch::optim::Adam, tg::nn::Adam>);
static_assert(std::is_same_v<torch::NoGradGuard, tg::NoGradGuard>);
static_assert(torch::kFloat == tg::kFloat32);

// ---- a libtorch program's model: holders as members, one assigned by register_module, a
// functional dropout with libtorch's options.
struct NetImpl : torch::nn::Module {
    NetImpl() : fc1(6, 16), drop(torch::nn::DropoutOptions(0.25)) {
        register_module("fc1", fc1);
        fc2 = register_module("fc2", torch::nn::Linear(torch::nn::LinearOptions(16, 8).bias(false)));
        register_module("drop", drop);
        fc3 = register_module("fc3", torch::nn::Linear(8, 3));
    }
    torch::Tensor forward(torch::Tensor x) {
        x = torch::relu(fc1->forward(x));
        x = F::dropout(x, F::DropoutFuncOptions().p(0.5).training(is_training()));
        x = drop(torch::nn::functional::leaky_relu(fc2(x), F::LeakyReLUFuncOptions().negative_slope(0.2)));
        return torch::log_softmax(fc3->forward(x), /*dim=*/1);
    }
    torch::nn::Linear fc1, fc2{nullptr}, fc3{nullptr};
    torch::nn::Dropout drop;
};
TORCH_MODULE(Net);

// The same model in tapegrad's own API.
struct NativeNet : tg::nn::Module {
    NativeNet() {
        // Built in NetImpl's order (its members before its constructor's body): fc1, drop, fc2, fc3;
        // registered in the same order as there.
        fc1 = register_module("fc1", std::make_shared<tg::nn::Linear>(6, 16));
        auto dropout = std::make_shared<tg::nn::Dropout>(0.25);
        fc2 = register_module("fc2", std::make_shared<tg::nn::Linear>(16, 8, /*bias=*/false));
        drop = register_module("drop", dropout);
        fc3 = register_module("fc3", std::make_shared<tg::nn::Linear>(8, 3));
    }
    tg::Tensor forward(const tg::Tensor& input) override {
        tg::Tensor x = tg::relu(fc1->forward(input));
        x = tg::dropout(x, 0.5, is_training());
        x = (*drop)(tg::leaky_relu((*fc2)(x), 0.2));
        return tg::log_softmax(fc3->forward(x), 1);
    }
    std::shared_ptr<tg::nn::Linear> fc1, fc2, fc3;
    std::shared_ptr<tg::nn::Dropout> drop;
};

// The inputs and labels of a small classification problem, drawn from the default generator.
struct Problem {
    tg::Tensor x, y;
};
Problem make_problem() {
    tg::Tensor x = tg::randn({32, 6});
    // Labels from a fixed rule, so that training has something to learn.
    tg::Tensor y = tg::argmax(x.narrow(1, 0, 3), 1);
    return {x, y};
}

}  // namespace

TEST_CASE("a libtorch model trains as the same model written with tg::nn: the same losses, bit for bit") {
    // The libtorch program.
    torch::manual_seed(5);
    Net net;
    const Problem data = make_problem();
    torch::optim::SGD optimizer(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.5));
    std::vector<double> losses;
    for (int step = 0; step < 8; ++step) {
        optimizer.zero_grad();
        torch::Tensor loss = torch::nll_loss(net->forward(data.x), data.y);
        loss.backward();
        optimizer.step();
        losses.push_back(loss.item<double>());
    }
    net->eval();
    const torch::Tensor eval_output = net(data.x);

    // The same in tapegrad's own API.
    tg::manual_seed(5);
    NativeNet native;
    const Problem native_data = make_problem();
    tg::nn::SGD native_optimizer(native.parameters(), {.lr = 0.1, .momentum = 0.5});
    std::vector<double> native_losses;
    for (int step = 0; step < 8; ++step) {
        native_optimizer.zero_grad();
        tg::Tensor loss = tg::nll_loss(native.forward(native_data.x), native_data.y);
        loss.backward();
        native_optimizer.step();
        native_losses.push_back(loss.item<double>());
    }
    native.eval();

    CHECK(losses == native_losses);
    CHECK(losses.back() < losses.front());
    CHECK(values(eval_output) == values(native(native_data.x)));
    // The same parameters under the same names.
    const auto named = net->named_parameters();
    const auto native_named = native.named_parameters();
    REQUIRE(named.size() == native_named.size());
    for (std::size_t i = 0; i < named.size(); ++i) {
        CAPTURE(named[i].first);
        CHECK(named[i].first == native_named[i].first);
        CHECK(values(named[i].second) == values(native_named[i].second));
    }
    // The children print alike (the first line is each model's own class name).
    const std::string text = printed(net), native_text = printed(native);
    CHECK(text.substr(text.find('\n')) == native_text.substr(native_text.find('\n')));
}

TEST_CASE("a libtorch Sequential of holders with chained options: the DCGAN discriminator's spelling") {
    auto discriminator_of = [](int64_t channels) {
        return torch::nn::Sequential(
            torch::nn::Conv2d(torch::nn::Conv2dOptions(1, channels, 4).stride(2).padding(1).bias(false)),
            torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)),
            torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 2 * channels, 4).stride(2).padding(1).bias(false)),
            torch::nn::BatchNorm2d(2 * channels),
            torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
    };
    torch::manual_seed(3);
    torch::nn::Sequential discriminator = discriminator_of(4);
    discriminator->push_back(torch::nn::Flatten());
    discriminator->push_back(torch::nn::Linear(8 * 2 * 2, 1));
    discriminator->push_back(torch::nn::Sigmoid());
    const torch::Tensor images = torch::randn({5, 1, 8, 8});
    const torch::Tensor labels = torch::full({5, 1}, 0.9);

    tg::manual_seed(3);
    auto native = std::make_shared<tg::nn::Sequential>(
        std::make_shared<tg::nn::Conv2d>(1, 4, 4, tg::Conv2dOptions{.stride = 2, .padding = 1}, /*bias=*/false),
        std::make_shared<tg::nn::LeakyReLU>(0.2),
        std::make_shared<tg::nn::Conv2d>(4, 8, 4, tg::Conv2dOptions{.stride = 2, .padding = 1}, /*bias=*/false),
        std::make_shared<tg::nn::BatchNorm2d>(8), std::make_shared<tg::nn::LeakyReLU>(0.2));
    native->push_back(std::make_shared<tg::nn::Flatten>());
    native->push_back(std::make_shared<tg::nn::Linear>(8 * 2 * 2, 1));
    native->push_back(std::make_shared<tg::nn::Sigmoid>());
    const tg::Tensor native_images = tg::randn({5, 1, 8, 8});
    REQUIRE(values(native_images) == values(images));
    // The order in which a call's arguments are built (so which layer draws its weights first) is
    // the compiler's: take the same weights by name, which also checks that the names agree.
    native->load_state_dict(discriminator->state_dict());

    CHECK(printed(discriminator) == printed(*native));
    CHECK(discriminator->size() == 8);
    CHECK(discriminator[1].get() == discriminator->named_children()[1].second.get());
    CHECK(discriminator->at<torch::nn::LeakyReLUImpl>(1).negative_slope == 0.2);
    CHECK_FALSE(discriminator->at<torch::nn::Conv2dImpl>(0).bias.defined());

    // Two Adam steps with libtorch's options, against the aggregate form.
    torch::optim::Adam optimizer(discriminator->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.5}));
    tg::nn::Adam native_optimizer(native->parameters(), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.5});
    for (int step = 0; step < 2; ++step) {
        discriminator->zero_grad();
        torch::Tensor loss = torch::binary_cross_entropy(discriminator->forward(images), labels);
        loss.backward();
        optimizer.step();
        native->zero_grad();
        tg::Tensor native_loss = tg::binary_cross_entropy(native->forward(native_images), labels);
        native_loss.backward();
        native_optimizer.step();
        CHECK(loss.item<double>() == native_loss.item<double>());
    }
    CHECK(values(discriminator->parameters().back()) == values(native->parameters().back()));
}

namespace {
// A libtorch module of two inputs: its holder calls its own forward, as libtorch's does.
struct SkipAddImpl : torch::nn::Module {
    torch::Tensor forward(torch::Tensor x, torch::Tensor skip) { return x + skip; }
};
TORCH_MODULE(SkipAdd);
}  // namespace

TEST_CASE("an empty holder is filled by assignment and refuses use before, as libtorch's") {
    torch::nn::Linear fc{nullptr};
    CHECK(fc.is_empty());
    CHECK_FALSE(static_cast<bool>(fc));
    CHECK_THROWS_WITH_AS(fc->forward(torch::ones({1, 2})), doctest::Contains("the holder is empty"), std::invalid_argument);
    torch::manual_seed(0);
    fc = torch::nn::Linear(2, 3);
    CHECK(fc->weight.shape() == tg::Shape{3, 2});
    const torch::Tensor x = torch::ones({4, 2});
    CHECK(values(fc(x)) == values(torch::linear(x, fc->weight, fc->bias)));
    // A copy shares the module.
    torch::nn::Linear alias = fc;
    CHECK(alias.get() == fc.get());
    // A loss holder is called with two inputs, and so is a libtorch module of two inputs.
    CHECK(torch::nn::MSELoss()(x, torch::zeros({4, 2})).item<double>() == 1.0);
    SkipAdd skip_add;
    CHECK(values(skip_add(x, x)) == values(x * 2.0));
}

TEST_CASE("libtorch's module options build the layers they name") {
    torch::manual_seed(0);
    CHECK(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.3))->negative_slope == 0.3);
    CHECK(torch::nn::LeakyReLU()->negative_slope == 0.01);
    CHECK(torch::nn::ELU(torch::nn::ELUOptions().alpha(0.5))->alpha == 0.5);
    const torch::nn::Softplus softplus(torch::nn::SoftplusOptions().beta(2.0).threshold(6.0));
    CHECK(softplus->beta == 2.0);
    CHECK(softplus->threshold == 6.0);
    CHECK(torch::nn::Softplus()->threshold == 20.0);
    const torch::nn::Hardtanh hardtanh(torch::nn::HardtanhOptions().min_val(-2.0).max_val(3.0));
    CHECK(hardtanh->min_val == -2.0);
    CHECK(hardtanh->max_val == 3.0);

    const torch::nn::LayerNorm layer_norm(torch::nn::LayerNormOptions({4, 5}).eps(1e-3).elementwise_affine(false));
    CHECK(layer_norm->normalized_shape == tg::Shape{4, 5});
    CHECK(layer_norm->eps == 1e-3);
    CHECK(layer_norm->parameters().empty());
    const torch::nn::GroupNorm group_norm(torch::nn::GroupNormOptions(2, 6).eps(1e-4));
    CHECK(group_norm->num_groups == 2);
    CHECK(group_norm->num_channels == 6);
    CHECK(group_norm->eps == 1e-4);
    CHECK(group_norm->weight.shape() == tg::Shape{6});

    CHECK(torch::nn::Flatten(torch::nn::FlattenOptions().start_dim(2).end_dim(3))->forward(torch::zeros({2, 3, 4, 5})).shape() ==
          tg::Shape{2, 3, 20});
    CHECK(torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({2, 3}))->forward(torch::zeros({1, 1, 6, 6})).shape() ==
          tg::Shape{1, 1, 2, 3});
    const torch::nn::MaxUnpool2d unpool(torch::nn::MaxUnpool2dOptions(2).stride(2).padding(0));
    CHECK(unpool->kernel_size.h == 2);
    CHECK(unpool->stride->w == 2);
    CHECK(torch::nn::Dropout2d(torch::nn::Dropout2dOptions(0.3))->p == 0.3);
    CHECK(torch::nn::Dropout(torch::nn::DropoutOptions().p(0.2))->p == 0.2);
    CHECK(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2))->options.stride->h == 2);
    CHECK(torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(4).momentum(0.3))->config.momentum == 0.3);
}

TEST_CASE("torch::nn::functional: tapegrad's ops, and libtorch's option objects where libtorch takes one") {
    torch::manual_seed(1);
    const torch::Tensor x = torch::randn({2, 3, 6, 6});
    const torch::Tensor w = torch::randn({4, 3, 3, 3});
    const torch::Tensor b = torch::randn({4});
    CHECK(values(F::relu(x)) == values(tg::relu(x)));
    CHECK(values(F::conv2d(x, w, F::Conv2dFuncOptions().bias(b).stride(2).padding(1))) ==
          values(tg::conv2d(x, w, b, {.stride = 2, .padding = 1})));
    CHECK(values(F::conv2d(x, w, F::Conv2dFuncOptions().dilation(2))) == values(tg::conv2d(x, w, {}, {.dilation = 2})));
    CHECK(values(F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1))) ==
          values(tg::max_pool2d(x, {.kernel_size = 3, .stride = 2, .padding = 1})));
    CHECK(values(F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).count_include_pad(false))) ==
          values(tg::avg_pool2d(x, {.kernel_size = 2, .count_include_pad = false})));
    CHECK(values(F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(0.3))) == values(tg::leaky_relu(x, 0.3)));
    CHECK(values(F::softplus(x, F::SoftplusFuncOptions().beta(2.0).threshold(1.0))) == values(tg::softplus(x, 2.0, 1.0)));
    CHECK(values(F::softplus(x)) == values(tg::softplus(x)));
    // tapegrad's own overloads stay reachable next to the libtorch ones.
    CHECK(values(F::max_pool2d(x, 2)) == values(tg::max_pool2d(x, 2)));
    CHECK(values(F::leaky_relu(x, 0.3)) == values(tg::leaky_relu(x, 0.3)));

    // Dropout: the identity outside training; in training the masks of tg::dropout from the same seed.
    CHECK(values(F::dropout(x, F::DropoutFuncOptions().p(0.5).training(false))) == values(x));
    torch::manual_seed(9);
    const torch::Tensor dropped = F::dropout(x, F::DropoutFuncOptions().p(0.4));
    const torch::Tensor dropped2d = F::dropout2d(x, F::Dropout2dFuncOptions().p(0.4));
    tg::manual_seed(9);
    CHECK(values(dropped) == values(tg::dropout(x, 0.4, true)));
    CHECK(values(dropped2d) == values(tg::dropout2d(x, 0.4, true)));
    CHECK(values(dropped) != values(x));
}

namespace {
// A user's own options class with libtorch's TORCH_ARG.
struct BlockOptions {
    TORCH_ARG(int64_t, width) = 4;
    TORCH_ARG(double, scale) = 1.0;
};
}  // namespace

TEST_CASE("TORCH_ARG declares a chained option, as libtorch's") {
    const auto options = BlockOptions().width(8).scale(0.5);
    CHECK(options.width() == 8);
    CHECK(options.scale() == 0.5);
    CHECK(BlockOptions().width() == 4);
}

TEST_CASE("TORCH_CHECK and AT_ASSERT throw with libtorch's message when the condition is false") {
    CHECK_NOTHROW(TORCH_CHECK(1 + 1 == 2, "never"));
    CHECK_THROWS_WITH_AS(TORCH_CHECK(1 + 1 == 3, "sizes differ: ", 2, " vs ", 3), doctest::Contains("sizes differ: 2 vs 3"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(AT_ASSERT(1 > 2), doctest::Contains("Expected 1 > 2 to be true, but got false."), std::runtime_error);
}

TEST_CASE("a program that picks a device runs on the CPU: cuda is never available and the CPU device changes nothing") {
    // The device selection of libtorch's examples.
    torch::Device device(torch::kCPU);
    if (torch::cuda::is_available()) device = torch::Device(torch::kCUDA);
    CHECK(device.is_cpu());
    CHECK(torch::cuda::device_count() == 0);
    CHECK(device == torch::Device("cpu"));
    CHECK(torch::Device("cuda:1").index() == 1);
    CHECK(torch::Device("cuda:1").str() == "cuda:1");
    CHECK_THROWS_WITH_AS(torch::Device("gpu"), doctest::Contains("expected \"cpu\", \"cuda\" or \"cuda:<index>\""), std::invalid_argument);
    CHECK_THROWS_WITH_AS(torch::Device("cuda:x"), doctest::Contains("a device number after the colon"), std::invalid_argument);

    torch::manual_seed(2);
    torch::nn::Linear fc(3, 2);
    const std::vector<double> weight = values(fc->weight);
    fc->to(device);
    CHECK(values(fc->weight) == weight);
    fc->to(torch::kCPU);
    CHECK_THROWS_WITH_AS(fc->to(torch::Device(torch::kCUDA, 0)),
                         doctest::Contains("Linear.to: tapegrad runs on the CPU only, so device cuda:0 cannot be used"),
                         std::invalid_argument);

    // Factories take the device as their options.
    torch::manual_seed(4);
    const torch::Tensor noise = torch::randn({2, 3}, device);
    torch::manual_seed(4);
    CHECK(values(noise) == values(tg::randn({2, 3})));
    CHECK(torch::zeros(4, device).shape() == tg::Shape{4});
    CHECK(torch::empty(3, device).dtype() == torch::kFloat);
    CHECK_THROWS_WITH_AS(torch::ones({2}, torch::Device(torch::kCUDA)), doctest::Contains("tensor factory: tapegrad runs on the CPU only"),
                         std::invalid_argument);
}
