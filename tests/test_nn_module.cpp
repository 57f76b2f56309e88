// Module: nested names, parameters versus buffers, train/eval propagation, zero_grad, state_dict
// round trips and strict/non-strict loading. Uses hand-made modules, so it needs no layer ops.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/autograd.hpp"
#include "nn/init.hpp"
#include "nn/module.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {
// y = x * scale + shift, with a counter buffer.
struct Affine : nn::Module {
    Tensor scale, shift, calls;
    explicit Affine(int64_t n) : Module("Affine") {
        scale = register_parameter("scale", tg::ones({n}));
        shift = register_parameter("shift", tg::zeros({n}));
        calls = register_buffer("calls", tg::zeros({1}));
    }
    Tensor forward(const Tensor& x) override { return x * scale + shift; }
};

struct Net : nn::Module {
    std::shared_ptr<nn::Sequential> features;
    std::shared_ptr<Affine> head;
    Net() : Module("Net") {
        features = register_module("features", std::make_shared<nn::Sequential>(
                                                   std::initializer_list<std::shared_ptr<nn::Module>>{
                                                       std::make_shared<Affine>(3), std::make_shared<Affine>(3)}));
        head = register_module("head", std::make_shared<Affine>(3));
    }
    Tensor forward(const Tensor& x) override { return head->forward(features->forward(x)); }
};

std::vector<std::string> names(const nn::NamedTensors& v) {
    std::vector<std::string> out;
    for (const auto& [n, _] : v) out.push_back(n);
    return out;
}
}  // namespace

TEST_CASE("parameters and buffers get nested dotted names in registration order") {
    Net net;
    CHECK(names(net.named_parameters()) == std::vector<std::string>{"features.0.scale", "features.0.shift",
                                                                    "features.1.scale", "features.1.shift",
                                                                    "head.scale", "head.shift"});
    CHECK(names(net.named_buffers()) == std::vector<std::string>{"features.0.calls", "features.1.calls", "head.calls"});
    CHECK(net.parameters().size() == 6);
    CHECK(net.children().size() == 2);
    CHECK(net.child("head") == net.head);
    CHECK_THROWS_AS(net.child("tail"), std::invalid_argument);
    // Parameters require grad; buffers do not.
    for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
    for (const Tensor& b : net.buffers()) CHECK_FALSE(b.requires_grad());
    // state_dict holds both, each module's parameters then buffers.
    CHECK(names(net.state_dict()) == std::vector<std::string>{"features.0.scale", "features.0.shift",
                                                              "features.0.calls", "features.1.scale",
                                                              "features.1.shift", "features.1.calls", "head.scale",
                                                              "head.shift", "head.calls"});
}

TEST_CASE("registration refuses duplicate, dotted and empty names and non-leaf parameters") {
    Affine a(2);
    CHECK_THROWS_AS(a.register_parameter("scale", tg::ones({2})), std::invalid_argument);
    CHECK_THROWS_AS(a.register_buffer("calls", tg::ones({2})), std::invalid_argument);
    CHECK_THROWS_AS(a.register_parameter("a.b", tg::ones({2})), std::invalid_argument);
    CHECK_THROWS_AS(a.register_module("", std::make_shared<Affine>(2)), std::invalid_argument);
    Tensor leaf = tg::ones({2}, {.requires_grad = true});
    CHECK_THROWS_AS(a.register_parameter("derived", leaf * 2.0), std::invalid_argument);
}

TEST_CASE("Sequential names its children 0, 1, ... and chains forward") {
    nn::Sequential seq{std::make_shared<Affine>(2), std::make_shared<Affine>(2)};
    seq.push_back(std::make_shared<Affine>(2));
    CHECK(seq.size() == 3);
    CHECK(seq.named_children()[2].first == "2");
    auto first = std::static_pointer_cast<Affine>(seq[0]);
    {
        tg::NoGradGuard no_grad;
        first->scale.fill_(3.0);
    }
    Tensor y = seq(tg::tensor({1.0, 2.0}));
    CHECK(tg::allclose(y, tg::tensor({3.0, 6.0})));
}

TEST_CASE("train() and eval() reach every descendant") {
    Net net;
    CHECK(net.is_training());
    net.eval();
    CHECK_FALSE(net.is_training());
    CHECK_FALSE(net.features->is_training());
    CHECK_FALSE(net.features->operator[](1)->is_training());
    net.train();
    CHECK(net.head->is_training());
}

TEST_CASE("zero_grad drops the gradients of every parameter") {
    Net net;
    net(tg::tensor({1.0, 2.0, 3.0})).sum().backward();
    for (const Tensor& p : net.parameters()) CHECK(p.grad().defined());
    net.zero_grad();
    for (const Tensor& p : net.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("state_dict round trip copies values and aliases the module's storage") {
    Net a, b;
    {
        tg::NoGradGuard no_grad;
        a.head->scale.copy_(tg::tensor({2.0, 3.0, 4.0}).to(tg::kFloat32));
        a.features->operator[](0)->named_buffers()[0].second.fill_(7.0);
    }
    auto sd = a.state_dict();
    // Entries alias the module's storage, as PyTorch's state_dict does.
    CHECK(sd[6].first == "head.scale");
    CHECK(sd[6].second.data_ptr() == a.head->scale.data_ptr());
    const auto result = b.load_state_dict(sd);
    CHECK(result.missing_keys.empty());
    CHECK(result.unexpected_keys.empty());
    CHECK(tg::allclose(b.head->scale, tg::tensor({2.0, 3.0, 4.0})));
    CHECK(b.state_dict()[2].second.item() == 7.0);
    // The target keeps its own storage: it was copied into, not replaced.
    CHECK(b.head->scale.data_ptr() != a.head->scale.data_ptr());
    CHECK(b.head->scale.requires_grad());
}

TEST_CASE("strict loading lists missing and unexpected keys; non-strict returns them") {
    Net net;
    auto sd = net.state_dict();
    sd.erase(sd.begin() + 1);  // features.0.shift
    sd.emplace_back("head.extra", tg::ones({1}));
    try {
        net.load_state_dict(sd);
        FAIL("expected an error");
    } catch (const std::invalid_argument& e) {
        const std::string msg = e.what();
        CHECK(msg.find("missing: features.0.shift") != std::string::npos);
        CHECK(msg.find("unexpected: head.extra") != std::string::npos);
    }
    const auto result = net.load_state_dict(sd, false);
    CHECK(result.missing_keys == std::vector<std::string>{"features.0.shift"});
    CHECK(result.unexpected_keys == std::vector<std::string>{"head.extra"});
}

TEST_CASE("a shape mismatch names the parameter and leaves the module untouched") {
    Net net;
    auto sd = net.state_dict();
    sd[0].second = tg::full({3}, 5.0);  // features.0.scale: would be loaded first
    sd[6].second = tg::ones({4});       // head.scale has 3 elements
    try {
        net.load_state_dict(sd, false);
        FAIL("expected an error");
    } catch (const std::invalid_argument& e) {
        const std::string msg = e.what();
        CHECK(msg.find("head.scale") != std::string::npos);
        CHECK(msg.find("[4]") != std::string::npos);
        CHECK(msg.find("[3]") != std::string::npos);
    }
    CHECK(net.features->named_children().size() == 2);
    CHECK(std::static_pointer_cast<Affine>((*net.features)[0])->scale.at({0}) == 1.0);
}

TEST_CASE("init: fans and bounds follow PyTorch") {
    tg::Generator gen(1);
    Tensor w = tg::empty({8, 3, 5, 5});
    CHECK(nn::init::fan_in_and_fan_out(w) == std::pair<int64_t, int64_t>{75, 200});
    CHECK_THROWS_AS(nn::init::fan_in_and_fan_out(tg::empty({4})), std::invalid_argument);
    // kaiming_uniform with a = sqrt(5): bound = 1/sqrt(fan_in) = 0.11547 (PyTorch's Conv2d default).
    nn::init::kaiming_uniform_(w, gen, std::sqrt(5.0));
    const auto v = w.to_vector<float>();
    const float m = *std::max_element(v.begin(), v.end(), [](float a, float b) { return std::abs(a) < std::abs(b); });
    CHECK(std::abs(m) <= 0.11547006f);
    CHECK(std::abs(m) > 0.10f);
    // Same seed, same values.
    tg::Generator again(1);
    Tensor w2 = tg::empty({8, 3, 5, 5});
    nn::init::kaiming_uniform_(w2, again, std::sqrt(5.0));
    CHECK(tg::max_abs_diff(w, w2) == 0.0);
    // xavier_normal: std = sqrt(2 / (fan_in + fan_out)) = sqrt(2/600) ~ 0.0577 over 60,000 draws.
    Tensor big = tg::empty({300, 300});
    nn::init::xavier_normal_(big, gen);
    const auto b = big.to_vector<float>();
    double ss = 0;
    for (float x : b) ss += double(x) * x;
    CHECK(std::sqrt(ss / b.size()) == doctest::Approx(std::sqrt(2.0 / 600.0)).epsilon(0.02));
    CHECK(nn::init::calculate_gain(nn::init::Nonlinearity::ReLU) == doctest::Approx(std::sqrt(2.0)));
    CHECK(nn::init::calculate_gain(nn::init::Nonlinearity::Tanh) == doctest::Approx(5.0 / 3.0));
    nn::init::ones_(big);
    CHECK(big.sum().item() == 90000.0);
}
