// Tensor's libtorch-style members: each gives what the free function of the same name gives, the
// new computations match PyTorch 1.13 (tests/tensor_members_reference.txt, written by
// tests/tensor_members_reference.py), and the in-place ones follow the in-place rules.
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "tests/reference_values.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

const tg::testing::ReferenceValues& references() {
    static const tg::testing::ReferenceValues refs("tests/tensor_members_reference.txt");
    return refs;
}

void check_reference(const Tensor& t, const std::string& name) { references().check(t, name); }

void check_shape_reference(const tg::Shape& shape, const std::string& name) {
    std::vector<double> dims;
    for (int64_t d : shape) dims.push_back(static_cast<double>(d));
    check_reference(tg::from_vector(dims, {static_cast<int64_t>(dims.size())}, {.dtype = tg::kFloat64}), name);
}

// The same values, shape and dtype.
void check_same(const Tensor& a, const Tensor& b) {
    REQUIRE(a.defined());
    REQUIRE(b.defined());
    CHECK(a.shape() == b.shape());
    CHECK(a.dtype() == b.dtype());
    CHECK(tg::max_abs_diff(a, b) == 0);
}

Tensor f64(std::initializer_list<double> v, bool requires_grad = false) {
    return tg::tensor(v, {.dtype = tg::kFloat64, .requires_grad = requires_grad});
}

}  // namespace

TEST_CASE("members: each gives what the free function of the same name gives") {
    tg::Generator gen(3);
    const Tensor x = tg::randn({3, 4}, gen);
    const Tensor y = tg::randn({3, 4}, gen);
    const Tensor positive = tg::uniform({3, 4}, 0.5, 2.0, gen);
    const Tensor m = tg::randn({4, 2}, gen);
    check_same(x.add(y), tg::add(x, y));
    check_same(x.add(y, 2.5), tg::add(x, y, 2.5));
    check_same(x.add(1.5), x + 1.5);
    check_same(x.sub(y), tg::sub(x, y));
    check_same(x.sub(1.5), x - 1.5);
    check_same(x.mul(y), tg::mul(x, y));
    check_same(x.mul(1.5), x * 1.5);
    check_same(x.div(positive), tg::div(x, positive));
    check_same(x.div(1.5), x / 1.5);
    check_same(x.neg(), tg::neg(x));
    check_same(positive.pow(2.5), tg::pow(positive, 2.5));
    check_same(positive.pow(y), tg::pow(positive, y));
    check_same(x.abs(), tg::abs(x));
    check_same(x.exp(), tg::exp(x));
    check_same(positive.log(), tg::log(positive));
    check_same(positive.sqrt(), tg::sqrt(positive));
    check_same(x.sigmoid(), tg::sigmoid(x));
    check_same(x.tanh(), tg::tanh(x));
    check_same(x.relu(), tg::relu(x));
    check_same(x.clamp(-0.5, 0.5), tg::clamp(x, -0.5, 0.5));
    check_same(x.clamp_min(0.25), tg::clamp(x, 0.25, std::nullopt));
    check_same(x.clamp_max(0.25), tg::clamp(x, std::nullopt, 0.25));
    check_same(x.mm(m), tg::matmul(x, m));
    check_same(tg::mm(x, m), tg::matmul(x, m));
    check_same(x.matmul(m), tg::matmul(x, m));
    check_same(x.t(), tg::transpose(x, 0, 1));
    check_same(x.unsqueeze(1), tg::unsqueeze(x, 1));
    check_same(x.unsqueeze(0).squeeze(), tg::squeeze(tg::unsqueeze(x, 0)));
    check_same(x.unsqueeze(0).squeeze(0), tg::squeeze(tg::unsqueeze(x, 0), 0));
    check_same(x.unsqueeze(0).expand({2, 3, 4}), tg::expand(x, {2, 3, 4}));
    check_same(x.unsqueeze(0).expand({2, -1, -1}), tg::expand(x, {2, 3, 4}));
    check_same(x.expand_as(tg::zeros({2, 3, 4})), tg::expand(x, {2, 3, 4}));
    check_same(x.view_as(tg::zeros({2, 6})), tg::view(x, {2, 6}));
    check_same(x.t().reshape_as(tg::zeros({12})), tg::reshape(x.t(), {12}));
    check_same(x.sum(1), tg::sum(x, {1}));
    check_same(x.sum(-1, true), tg::sum(x, {-1}, true));
    check_same(x.sum({0, 1}), tg::sum(x, {0, 1}));
    check_same(x.sum({}, true), tg::sum(x, {0, 1}, true));  // an empty list is every axis, not axis 0
    check_same(x.mean({}), tg::mean(x));
    check_same(x.mean(0), tg::mean(x, {0}));
    check_same(x.mean(1, true), tg::mean(x, {1}, true));
    check_same(x.max(), tg::max(x));
    check_same(x.min(), tg::min(x));
    const auto [values, indices] = x.max(1, true);
    check_same(values, tg::max_with_indices(x, 1, true).values);
    check_same(indices, tg::max_with_indices(x, 1, true).indices);
    const auto [min_values, min_indices] = x.min(0);
    check_same(min_values, tg::min_with_indices(x, 0).values);
    check_same(min_indices, tg::min_with_indices(x, 0).indices);
    check_same(x.argmax(), tg::argmax(x));
    check_same(x.argmax(1, true), tg::argmax(x, 1, true));
    check_same(x.argmin(), tg::argmin(x));
    check_same(x.argmin(0), tg::argmin(x, 0));
    check_same(x[2], tg::select(x, 0, 2));
    CHECK(x.size(-1) == 4);
    CHECK(x.size(-2) == 3);
}

TEST_CASE("members: pow with a tensor exponent matches PyTorch, its gradients at 0^0 and a negative base included") {
    const Tensor a = f64({0.0, 0.0, 2.0, -1.0, 1.5, 3.0}, true);
    const Tensor b = f64({0.0, 2.0, 0.5, 2.0, -1.5, 0.0}, true);
    const Tensor y = a.pow(b);
    y.backward(f64({1, 2, 3, 4, 5, 6}));
    check_reference(y, "pow_tensor.value");
    check_reference(a.grad(), "pow_tensor.grad_base");
    check_reference(b.grad(), "pow_tensor.grad_exponent");

    const Tensor base = tg::tensor({{1.5, 2.0, 0.5}, {3.0, 1.0, 2.5}}, {.dtype = tg::kFloat64, .requires_grad = true});
    const Tensor exponent = f64({2.0, -0.5, 3.0}, true);
    const Tensor z = base.pow(exponent);
    z.sum().backward();
    check_reference(z, "pow_broadcast.value");
    check_reference(base.grad(), "pow_broadcast.grad_base");
    check_reference(exponent.grad(), "pow_broadcast.grad_exponent");
}

TEST_CASE("members: pow of integer tensors stays integer, and refuses a negative integer scalar exponent") {
    const Tensor p = tg::from_vector(std::vector<int64_t>{2, 3, -2, 7}, {4}).pow(tg::from_vector(std::vector<int64_t>{3, 0, 5, 1}, {4}));
    CHECK(p.dtype() == tg::kInt64);
    check_reference(p, "pow_int.value");
    const Tensor q = tg::from_vector(std::vector<int64_t>{4, 9}, {2}).pow(tg::tensor({0.5, 1.5}));
    CHECK(q.dtype() == tg::kFloat32);
    check_reference(q, "pow_int_float.value");
    CHECK_THROWS_WITH_AS(tg::from_vector(std::vector<int64_t>{2}, {1}).pow(-1),
                         doctest::Contains("pow: integers to negative integer powers are not allowed"), std::invalid_argument);
    // A tensor of negative exponents computes, as PyTorch's powi: 1 for base 1, ±1 for -1, else 0.
    CHECK(tg::from_vector(std::vector<int64_t>{2, 1, -1, -1, 0}, {5}).pow(tg::from_vector(std::vector<int64_t>{-1, -3, -3, -2, -1}, {5}))
              .to_vector<int64_t>() == std::vector<int64_t>{0, 1, -1, 1, 0});
}

TEST_CASE("members: max() and min() share the gradient between ties, as PyTorch does") {
    const Tensor x = tg::tensor({{1.0, 3.0, -2.0}, {3.0, 0.5, 3.0}}, {.requires_grad = true});
    const Tensor m = x.max();
    m.backward();
    check_reference(m, "max_all.value");
    check_reference(x.grad(), "max_all.grad");

    const Tensor w = tg::tensor({{2.0, -1.0}, {-1.0, 5.0}}, {.requires_grad = true});
    const Tensor n = w.min();
    (n * 4.0).backward();
    check_reference(n, "min_all.value");
    check_reference(w.grad(), "min_all.grad");

    const Tensor v = tg::tensor({1.0, NAN, 3.0, NAN}, {.requires_grad = true});
    const Tensor nan_max = v.max();
    nan_max.backward();
    check_reference(nan_max, "max_nan.value");
    check_reference(v.grad(), "max_nan.grad");

    CHECK_THROWS_WITH_AS(tg::zeros({0, 3}).max(), doctest::Contains("max: the input [0,3] float32 is empty"), std::invalid_argument);
    const Tensor big = tg::from_vector(std::vector<int64_t>{(int64_t{1} << 53) + 1, 5}, {2});
    CHECK(big.max().item<int64_t>() == (int64_t{1} << 53) + 1);
}

TEST_CASE("members: max(dim), min(dim), argmax and argmin match PyTorch") {
    const Tensor x = tg::tensor({{1.0, 5.0, 5.0}, {7.0, 2.0, 7.0}});
    const auto [values, indices] = x.max(1);
    check_reference(values, "max_dim.values");
    check_reference(indices, "max_dim.indices");
    CHECK(indices.dtype() == tg::kInt64);
    const auto [min_values, min_indices] = x.min(0, true);
    check_reference(min_values, "min_dim_keepdim.values");
    check_reference(min_indices, "min_dim_keepdim.indices");
    check_reference(x.argmax(), "argmax_flat");
    check_reference(x.argmax(1, true), "argmax_dim_keepdim");
    check_reference(x.argmin(), "argmin_flat");
}

TEST_CASE("members: squeeze, expand with -1, t, sum and mean over one dimension match PyTorch") {
    const Tensor z = tg::zeros({1, 2, 1, 3, 1});
    check_shape_reference(z.squeeze().shape(), "squeeze_all.shape");
    check_shape_reference(z.squeeze(2).shape(), "squeeze_dim.shape");
    check_shape_reference(z.squeeze(1).shape(), "squeeze_not_one.shape");
    check_shape_reference(tg::zeros({3, 1}).expand({2, -1, 4}).shape(), "expand_keep.shape");
    CHECK_THROWS_WITH_AS(tg::zeros({3, 1}).expand({-1, 3, 1}), doctest::Contains("expand: the size -1 (keep) at position 0"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::zeros({3, 1}).expand({4}), doctest::Contains("expand: the number of sizes given (1)"), std::invalid_argument);

    const Tensor x = tg::arange(24, {.dtype = tg::kFloat32}).reshape({2, 3, 4});
    check_reference(x.sum(1), "sum_dim");
    check_reference(x.mean(-1, true), "mean_dim_keepdim");
    check_reference(x.sum({0, 2}), "sum_dims");
    check_reference(tg::arange(6, {.dtype = tg::kFloat32}).reshape({2, 3}).t(), "t");
    const Tensor v = tg::tensor({1.0, 2.0});
    CHECK(v.t().same(v));
    CHECK_THROWS_WITH_AS(x.t(), doctest::Contains("t: expects a tensor with at most 2 dimensions"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(x.mm(tg::zeros({4, 2})), doctest::Contains("mm: multiplies two matrices"), std::invalid_argument);
}

TEST_CASE("members: x[i] is a view sharing x's elements, and differentiable") {
    Tensor base = tg::arange(12, {.dtype = tg::kFloat32}).reshape({3, 4});
    Tensor row = base[1];
    CHECK(row.shape() == tg::Shape{4});
    CHECK(row.data_ptr() == static_cast<float*>(base.data_ptr()) + 4);
    row.fill_(-1.0);
    CHECK(base.at({1, 2}) == -1.0);
    CHECK(base.at({0, 2}) == 2.0);
    CHECK(base[-1].at({0}) == 8.0);
    CHECK(base[1][2].item() == -1.0);

    const Tensor x = tg::arange(12, {.dtype = tg::kFloat32}).reshape({3, 4}).requires_grad_();
    (x[1] * tg::tensor({1.0, 2.0, 3.0, 4.0}) + x[-1]).sum().backward();
    check_reference(x.grad(), "index.grad");

    CHECK_THROWS_WITH_AS(base[3], doctest::Contains("select: index 3 is out of range"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::scalar_tensor(2.0)[0], doctest::Contains("operator[]: invalid index 0 of a 0-dim tensor"),
                         std::invalid_argument);
}

TEST_CASE("members: +=, -=, *=, /= record on a tensor with history and give PyTorch's gradients") {
    const Tensor x = tg::tensor({1.0, -2.0, 4.0}, {.requires_grad = true});
    const Tensor w = tg::tensor({0.5, 3.0, -1.0}, {.requires_grad = true});
    Tensor y = x * 1.0;
    y += w;
    y *= w;
    y -= 2.0;
    y /= tg::tensor({2.0, 4.0, 8.0});
    y *= 3.0;
    y.sum().backward();
    check_reference(y, "compound.value");
    check_reference(x.grad(), "compound.grad_x");
    check_reference(w.grad(), "compound.grad_w");
}

TEST_CASE("members: every in-place member bumps the version counter") {
    tg::Generator gen(1);
    Tensor t = tg::ones({2, 3});
    const Tensor view = t[0];
    uint64_t version = t.version();
    const auto bumped = [&] {
        CHECK(t.version() == version + 1);
        CHECK(view.version() == t.version());  // shared with views
        version = t.version();
    };
    t += tg::ones({3});
    bumped();
    t += 1.0;
    bumped();
    t -= tg::ones({2, 3});
    bumped();
    t -= 0.5;
    bumped();
    t *= tg::full({2, 3}, 2.0);
    bumped();
    t *= 2.0;
    bumped();
    t /= tg::full({3}, 4.0);
    bumped();
    t /= 2.0;
    bumped();
    CHECK(tg::allclose(t, tg::full({2, 3}, (3.0 - 1.0 - 0.5) * 4.0 / 4.0 / 2.0)));
    t.uniform_(-1.0, 1.0, gen);
    bumped();
    t.normal_(0.0, 1.0, gen);
    bumped();
}

TEST_CASE("members: in-place members are refused on a leaf that requires grad while grad mode is on, as in PyTorch") {
    tg::Generator gen(1);
    Tensor p = tg::ones({3}, {.requires_grad = true});
    const auto refused = [&](auto write, const char* op) {
        INFO(op);
        const uint64_t version = p.version();
        CHECK_THROWS_WITH_AS(write(), doctest::Contains((std::string(op) + ": a leaf tensor that requires grad").c_str()), std::invalid_argument);
        CHECK(p.version() == version);
        CHECK(tg::allclose(p.detach(), tg::ones({3})));
    };
    refused([&] { p += tg::ones({3}); }, "add_");
    refused([&] { p += 1.0; }, "add_");
    refused([&] { p -= tg::ones({3}); }, "sub_");
    refused([&] { p -= 1.0; }, "sub_");
    refused([&] { p *= tg::ones({3}); }, "mul_");
    refused([&] { p *= 2.0; }, "mul_");
    refused([&] { p /= tg::ones({3}); }, "div_");
    refused([&] { p /= 2.0; }, "div_");
    const tg::Generator::State before = gen.state();
    refused([&] { p.uniform_(0.0, 1.0, gen); }, "uniform_");
    refused([&] { p.normal_(0.0, 1.0, gen); }, "normal_");
    CHECK(gen.state().s == before.s);  // nothing drawn

    tg::NoGradGuard no_grad;
    p *= 3.0;
    p.uniform_(2.0, 3.0, gen);
    CHECK(p.min().item() >= 2.0);
    CHECK(p.is_leaf());
}

TEST_CASE("members: uniform_ and normal_ draw what uniform() and randn() draw from the same generator state") {
    tg::Generator a(11), b(11);
    Tensor u = tg::zeros({4, 5}, {.dtype = tg::kFloat64});
    u.uniform_(-2.0, 3.0, a);
    check_same(u, tg::uniform({4, 5}, -2.0, 3.0, b, {.dtype = tg::kFloat64}));
    Tensor n = tg::zeros({4, 5});
    n.normal_(1.5, 0.25, a);
    check_same(n, tg::randn({4, 5}, b) * 0.25 + 1.5);
    // A view is filled through: the base's other elements are untouched.
    Tensor base = tg::zeros({3, 4});
    base[1].uniform_(5.0, 6.0, a);
    CHECK(base[0].abs().max().item() == 0.0);
    CHECK(base[1].min().item() >= 5.0);

    Tensor i = tg::zeros({3}, {.dtype = tg::kInt64});
    CHECK_THROWS_WITH_AS(i.normal_(0.0, 1.0, a), doctest::Contains("normal_: draws floating-point values"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(n.normal_(0.0, -1.0, a), doctest::Contains("normal_: std must be at least 0"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(n.uniform_(2.0, 1.0, a), doctest::Contains("uniform_: from (2.000000) must not exceed to"),
                         std::invalid_argument);
}

TEST_CASE("members: a floating-point scalar written into an integer tensor is refused, as PyTorch refuses it") {
    Tensor i = tg::from_vector(std::vector<int64_t>{1, 2}, {2});
    const uint64_t version = i.version();
    CHECK_THROWS_WITH_AS(i -= 0.5, doctest::Contains("sub_:"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(i /= 2.0, doctest::Contains("div_:"), std::invalid_argument);
    CHECK(i.version() == version);
    i += tg::from_vector(std::vector<int64_t>{10, 20}, {2});
    CHECK(i.at<int64_t>({1}) == 22);
}
