// Integer tensors (int64, int32): labels and indices as tensors, kept out of autograd as in
// PyTorch; cross_entropy with a label tensor and PyTorch's options (weight, ignore_index,
// label_smoothing) against values written by PyTorch (tests/models/make_reference.py).
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

TEST_CASE("int64 and int32 tensors: creation, access, conversion, printing") {
    const Tensor t = tg::from_vector(std::vector<int64_t>{3, -1, 7, 0}, {2, 2});
    CHECK(t.dtype() == tg::kInt64);
    CHECK(t.at({1, 0}) == 7.0);
    CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{3, -1, 7, 0});
    CHECK(tg::to_string(t) == "tensor([[ 3, -1],\n        [ 7,  0]])");
    CHECK(tg::to_string(t.to(tg::kInt32)) == "tensor([[ 3, -1],\n        [ 7,  0]], dtype=torch.int32)");
    CHECK(tg::arange(4, {.dtype = tg::kInt32}).to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3});
    CHECK(tg::zeros({3}, {.dtype = tg::kInt64}).to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0});
    // float -> int truncates toward zero, as PyTorch's .long().
    CHECK(tg::tensor({1.7, -2.9, 3.0}).to(tg::kInt64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3});
    CHECK(t.to(tg::kFloat64).at({0, 1}) == -1.0);
    CHECK(tg::element_size(tg::kInt32) == 4);
    CHECK(tg::element_size(tg::kInt64) == 8);
}

TEST_CASE("integer tensors stay out of autograd") {
    Tensor labels = tg::from_vector(std::vector<int64_t>{1, 2}, {2});
    CHECK_THROWS_WITH_AS(labels.requires_grad_(), doctest::Contains("only floating-point tensors can require gradients"),
                         std::invalid_argument);
    CHECK_THROWS_AS(tg::zeros({2}, {.dtype = tg::kInt64, .requires_grad = true}), std::invalid_argument);
    CHECK_THROWS_AS(tg::randn({2}, *std::make_unique<tg::Generator>(0), {.dtype = tg::kInt32}), std::invalid_argument);
    // Converting a tensor with history to integers ends the graph there.
    Tensor x = tg::tensor({1.5, 2.5}, {.requires_grad = true});
    Tensor i = (x * 2.0).to(tg::kInt64);
    CHECK(i.is_leaf());
    CHECK_FALSE(i.requires_grad());
    // Floating-point ops refuse integers with a message that names the op and says what to do, as
    // PyTorch refuses silu on int64; ops PyTorch computes on integers compute (relu in int64, exp
    // promoted to float32).
    CHECK_THROWS_WITH_AS(tg::silu(labels), doctest::Contains("silu: this op takes float32 or float64 tensors, got int64"),
                         std::invalid_argument);
    const Tensor signed_labels = tg::from_vector(std::vector<int64_t>{-3, 2}, {2});
    CHECK(tg::relu(signed_labels).dtype() == tg::kInt64);
    CHECK(tg::relu(signed_labels).to_vector<int64_t>() == std::vector<int64_t>{0, 2});
    CHECK(tg::exp(signed_labels).dtype() == tg::kFloat32);
    CHECK(tg::allclose(tg::exp(signed_labels), tg::from_vector(std::vector<float>{std::exp(-3.0f), std::exp(2.0f)}, {2}), 1e-6, 0));
    CHECK((labels + labels).to_vector<int64_t>() == std::vector<int64_t>{2, 4});
}

TEST_CASE("checkpoints keep integer tensors") {
    const nn::NamedTensors in = {{"labels", tg::from_vector(std::vector<int64_t>{5, -3, 1 << 20}, {3})},
                                 {"small", tg::from_vector(std::vector<int64_t>{1, 2}, {2}).to(tg::kInt32)}};
    const auto bytes = nn::serialize(in);
    const nn::NamedTensors out = nn::deserialize(bytes.data(), bytes.size());
    REQUIRE(out.size() == 2);
    CHECK(out[0].second.dtype() == tg::kInt64);
    CHECK(out[0].second.to_vector<int64_t>() == std::vector<int64_t>{5, -3, 1 << 20});
    CHECK(out[1].second.dtype() == tg::kInt32);
    CHECK(out[1].second.to_vector<int32_t>() == std::vector<int32_t>{1, 2});
}

TEST_CASE("cross_entropy with a label tensor equals the vector form, int64 and int32") {
    tg::Generator gen(3);
    const Tensor logits = tg::randn({5, 4}, gen);
    const std::vector<int64_t> v = {0, 3, 1, 1, 2};
    const Tensor labels = tg::from_vector(v, {5});
    for (tg::Reduction r : {tg::Reduction::Mean, tg::Reduction::Sum, tg::Reduction::None}) {
        const Tensor a = tg::cross_entropy(logits, v, r);
        CHECK(tg::allclose(tg::cross_entropy(logits, labels, {.reduction = r}), a, 0, 0));
        CHECK(tg::allclose(tg::cross_entropy(logits, labels.to(tg::kInt32), {.reduction = r}), a, 0, 0));
    }
    CHECK_THROWS_WITH_AS(tg::cross_entropy(logits, labels.to(tg::kFloat32)), doctest::Contains("integer tensor"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::cross_entropy(logits, tg::from_vector(std::vector<int64_t>{0, 4, 1, 1, 2}, {5})),
                         doctest::Contains("label 4 at row 1"), std::invalid_argument);
    CHECK_THROWS_AS(tg::cross_entropy(logits, labels, {.label_smoothing = 1.5}), std::invalid_argument);
}

TEST_CASE("cross_entropy's weight, ignore_index and label_smoothing match PyTorch") {
    std::map<std::string, Tensor> ref;
    for (auto& [name, t] : nn::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/ops_reference.tgck")) ref[name] = t;
    const Tensor labels = ref.at("ce.labels").to(tg::kInt64);
    const Tensor weight = ref.at("ce.weight");
    const std::map<std::string, tg::CrossEntropyOptions> variants = {
        {"weighted_mean", {.weight = weight}},
        {"smoothed_mean", {.label_smoothing = 0.2}},
        {"weighted_smoothed_sum", {.reduction = tg::Reduction::Sum, .weight = weight, .label_smoothing = 0.1}},
        {"weighted_smoothed_none", {.reduction = tg::Reduction::None, .weight = weight, .label_smoothing = 0.3}},
        {"plain_ignore_mean", {}},
    };
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
        for (const auto& [name, options] : variants) {
            INFO(name, " ", std::string(tg::dtype_name(dtype)));
            tg::CrossEntropyOptions o = options;
            if (o.weight.defined()) o.weight = o.weight.to(dtype);
            const Tensor logits = ref.at("ce.logits").to(dtype).detach().requires_grad_();
            const Tensor out = tg::cross_entropy(logits, labels, o);
            const double tol = dtype == tg::kFloat64 ? 1e-12 : 1e-5;
            CHECK(tg::allclose(out.reshape({-1}), ref.at("ce_" + name + ".out"), tol, tol));
            const Tensor cot = ref.at("ce_" + name + ".cot").to(dtype);
            const Tensor g = tg::grad({out}, {logits}, {out.dim() == 0 ? cot.reshape({}) : cot})[0];
            CHECK(tg::allclose(g, ref.at("ce_" + name + ".grad"), tol, tol));
        }
    }
}
