// The bfloat16 dtype: conversion against PyTorch 1.13 bit for bit (tests/bfloat16_reference.txt,
// written by tests/bfloat16_pytorch.py), element access, copies and views, and the ops and autograd
// refusing it by name. Printing is in tests/printing_reference.txt.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "tapegrad.hpp"
#include "tests/error_text.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;
using tg::Tensor;
using tg::testing::contains;
using tg::testing::error_of;

namespace {

bool is_nan_bits(uint16_t b) { return (b & 0x7F80) == 0x7F80 && (b & 0x007F) != 0; }

struct Reference {
    std::vector<uint32_t> f32;
    std::vector<uint64_t> f64;
    std::vector<uint16_t> f32_to, f64_to;
};

Reference read_reference() {
    std::istringstream in(tg::testing::slurp(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/bfloat16_reference.txt"));
    Reference r;
    for (std::string kind, from, to; in >> kind >> from >> to;) {
        if (kind == "f32") {
            r.f32.push_back(static_cast<uint32_t>(std::stoul(from, nullptr, 16)));
            r.f32_to.push_back(static_cast<uint16_t>(std::stoul(to, nullptr, 16)));
        } else {
            r.f64.push_back(std::stoull(from, nullptr, 16));
            r.f64_to.push_back(static_cast<uint16_t>(std::stoul(to, nullptr, 16)));
        }
    }
    return r;
}

std::vector<uint16_t> bits_of(const Tensor& t) {
    std::vector<uint16_t> out;
    const tg::BFloat16* p = t.contiguous().data<tg::BFloat16>();
    for (int64_t i = 0; i < t.numel(); ++i) out.push_back(p[i].bits);
    return out;
}

// PyTorch's NaN comes out as 0xFFFF from its vectorized conversion and 0x7FC0 from its scalar
// one; tapegrad gives 0x7FC0. Either way a NaN.
void check_same(const std::vector<uint16_t>& got, const std::vector<uint16_t>& want, const std::string& what) {
    REQUIRE(got.size() == want.size());
    int differ = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (is_nan_bits(want[i]) ? !is_nan_bits(got[i]) || got[i] != 0x7FC0 : got[i] != want[i]) {
            if (++differ <= 5) MESSAGE(what << " element " << i << ": got " << std::hex << got[i] << ", PyTorch " << want[i]);
        }
    CHECK(differ == 0);
}

}  // namespace

TEST_CASE("bfloat16: float32 and float64 convert as PyTorch's .to(torch.bfloat16), round to nearest even") {
    const Reference r = read_reference();
    REQUIRE(r.f32.size() > 300);
    REQUIRE(r.f64.size() > 50);
    std::vector<float> f32;
    std::vector<uint16_t> scalar;
    for (uint32_t b : r.f32) {
        f32.push_back(std::bit_cast<float>(b));
        scalar.push_back(tg::BFloat16(f32.back()).bits);
    }
    check_same(scalar, r.f32_to, "BFloat16(float)");
    const Tensor x = tg::from_vector(std::vector<double>(f32.begin(), f32.end()), {static_cast<int64_t>(f32.size())});
    check_same(bits_of(x.to(tg::kBFloat16)), r.f32_to, "float32 .to(kBFloat16)");
    std::vector<double> f64;
    for (uint64_t b : r.f64) f64.push_back(std::bit_cast<double>(b));
    const Tensor y = tg::from_vector(f64, {static_cast<int64_t>(f64.size())}, {.dtype = tg::kFloat64});
    check_same(bits_of(y.to(tg::kBFloat16)), r.f64_to, "float64 .to(kBFloat16)");
    // The bulk rounding the autocast kernels use agrees with the scalar one.
    std::vector<float> rounded = f32;
    tg::round_to_bfloat16(rounded.data(), static_cast<int64_t>(rounded.size()));
    std::vector<tg::BFloat16> converted(f32.size());
    tg::to_bfloat16(f32.data(), converted.data(), static_cast<int64_t>(f32.size()));
    for (std::size_t i = 0; i < f32.size(); ++i) {
        CHECK(converted[i].bits == scalar[i]);
        if (is_nan_bits(scalar[i])) CHECK(std::isnan(rounded[i]));
        else CHECK(std::bit_cast<uint32_t>(rounded[i]) == static_cast<uint32_t>(scalar[i]) << 16);
    }
}

TEST_CASE("bfloat16: widening is exact, element access and copies") {
    const Tensor x = tg::tensor({{1.0, -2.5}, {3.140625, 1e-3}}).to(tg::kBFloat16);
    CHECK(x.dtype() == tg::kBFloat16);
    CHECK(std::string(tg::dtype_name(x.dtype())) == "bfloat16");
    CHECK(tg::element_size(tg::kBFloat16) == 2);
    CHECK(x.at({1, 0}) == 3.140625);
    CHECK(x.at<float>({1, 1}) == tg::round_to_bfloat16(1e-3f));
    CHECK(x.at<int64_t>({0, 1}) == -2);
    CHECK(x[0][1].item<double>() == -2.5);
    CHECK(x.to_vector<float>() == std::vector<float>{1.0f, -2.5f, 3.140625f, tg::round_to_bfloat16(1e-3f)});
    // Widening and narrowing again give the same bits; int64 and bool go through float.
    CHECK(bits_of(x.to(tg::kFloat32).to(tg::kBFloat16)) == bits_of(x));
    CHECK(x.to(tg::kInt64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3, 0});
    CHECK(x.to(tg::kBool).to_vector<bool>() == std::vector<bool>{true, true, true, true});
    CHECK(tg::tensor({1e9}, {.dtype = tg::kInt64}).to(tg::kBFloat16).item() == 998244352.0);  // PyTorch's value
    // NaN stays NaN and cannot become an integer.
    const Tensor nan = tg::tensor({NAN}).to(tg::kBFloat16);
    CHECK(std::isnan(nan.item()));
    CHECK(contains(error_of([&] { nan.to(tg::kInt64); }), "cannot be converted to type int64"));
    CHECK(contains(error_of([&] { nan.item<int64_t>(); }), "item"));
    // Views, copies, fills and in-place copies keep the dtype.
    CHECK(x.transpose(0, 1).contiguous().to_vector<float>() == std::vector<float>{1.0f, 3.140625f, -2.5f, tg::round_to_bfloat16(1e-3f)});
    CHECK(x.reshape({4}).dtype() == tg::kBFloat16);
    CHECK(x.clone().to_vector<float>() == x.to_vector<float>());
    Tensor z = tg::zeros({2, 2}, {.dtype = tg::kBFloat16});
    z.copy_(tg::tensor({{0.1, 0.2}, {0.3, 0.4}}));
    CHECK(z.at({0, 0}) == tg::round_to_bfloat16(0.1f));
    z.fill_(1.0 / 3.0);
    CHECK(z.at({1, 1}) == tg::round_to_bfloat16(1.0f / 3.0f));
    CHECK(tg::allclose(x, x.to(tg::kFloat32), 0, 0));
    // Drawing in bfloat16 rounds the float32 draw.
    tg::Generator a(5), b(5);
    CHECK(bits_of(tg::randn({64}, a, {.dtype = tg::kBFloat16})) == bits_of(tg::randn({64}, b).to(tg::kBFloat16)));
}

TEST_CASE("bfloat16: ops refuse it by name, autograd does not run on it") {
    const Tensor x = tg::ones({2, 3}, {.dtype = tg::kBFloat16});
    const Tensor f = tg::ones({2, 3});
    auto refused = [](const std::string& message, const std::string& op) {
        INFO(message);
        CHECK(tg::testing::contains(message, op + ": this op does not take bfloat16 tensors"));
        CHECK(tg::testing::contains(message, ".to(tg::kFloat32)"));
    };
    refused(error_of([&] { tg::relu(x); }), "relu");
    refused(error_of([&] { tg::add(x, f); }), "add");
    refused(error_of([&] { x * 2.0; }), "mul");
    refused(error_of([&] { x.sum(); }), "sum");
    refused(error_of([&] { tg::matmul(x, x.t()); }), "matmul");
    refused(error_of([&] { tg::linear(x, x); }), "linear");
    refused(error_of([&] { tg::softmax(x, 1); }), "softmax");
    refused(error_of([&] { tg::max_pool2d(x.reshape({1, 1, 2, 3}), {}); }), "max_pool2d");
    CHECK(contains(error_of([&] { tg::ones({2}, {.dtype = tg::kBFloat16}).requires_grad_(); }), "autograd does not run on bfloat16"));
    // A module's parameters stay float32: bfloat16 training is autocast's.
    tg::Generator gen(1);
    tg::nn::Linear layer(2, 2, gen);
    CHECK(contains(error_of([&] { layer.to(tg::kBFloat16); }), "to(bfloat16): parameters must stay float32 or float64"));
    CHECK(contains(error_of([&] { layer.to(tg::kBFloat16); }), "tg::AutocastGuard"));
    // A float32 tensor that requires grad converts to a bfloat16 leaf without history.
    const Tensor w = tg::ones({2}, {.requires_grad = true});
    const Tensor wb = w.to(tg::kBFloat16);
    CHECK(wb.is_leaf());
    CHECK_FALSE(wb.requires_grad());
}
