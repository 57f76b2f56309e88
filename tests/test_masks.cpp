// Bool tensors, comparisons, logical ops, where, masked_fill, any and all against PyTorch 1.13:
// tests/masks_reference.txt holds PyTorch's values, written by tests/masks_pytorch.py; each case
// here is built by the same name (maximum, minimum, clamp with tensor bounds, sign, norm,
// index_select, gather and scatter_add too). Then
// bernoulli, dropout2d and nn::Dropout2d.
#include <doctest/doctest.h>

#include <zlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "nn/layers.hpp"
#include "nn/serialize.hpp"
#include "ops/compare.hpp"
#include "ops/dropout.hpp"
#include "ops/gather.hpp"
#include "ops/minmax.hpp"
#include "ops/norm.hpp"
#include "engine/generator.hpp"
#include "ops/reduce.hpp"
#include "ops/reduce_logical.hpp"
#include "tests/error_text.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

const double nan = std::numeric_limits<double>::quiet_NaN();
const double inf = std::numeric_limits<double>::infinity();

Tensor floats(std::initializer_list<double> v, tg::DType dtype = tg::kFloat32) { return tg::tensor(v, {.dtype = dtype}); }
Tensor longs(std::initializer_list<double> v) { return tg::tensor(v, {.dtype = tg::kInt64}); }
Tensor bools(std::initializer_list<double> v) { return tg::tensor(v, {.dtype = tg::kBool}); }
Tensor column(double top, double bottom, tg::DType dtype) { return tg::from_vector(std::vector<double>{top, bottom}, {2, 1}, {.dtype = dtype}); }

// The gradient `leaf` gets from sum(f(leaf) * weights).
Tensor grad_of(const Tensor& leaf, const std::function<Tensor(const Tensor&)>& f, const Tensor& weights) {
    Tensor x = leaf.detach().clone().requires_grad_();
    (f(x) * weights).sum().backward();
    return x.grad();
}

std::map<std::string, std::function<Tensor()>> cases() {
    const Tensor a = floats({1.0, nan, 2.0, -0.0, inf}), b = floats({1.0, nan, 3.0, 0.0, inf});
    const Tensor ints = longs({1, 2, 3, 4, 5});
    const Tensor mask = bools({1, 0, 1, 0, 1});
    const Tensor m = tg::tensor({{0.0, 1.0, 0.0}, {0.0, 0.0, 0.0}});
    const Tensor norm_v = tg::tensor({{3.0, 0.0, -4.0}, {1.0, -2.0, 2.0}});
    auto norm_grad_at_zero = [](double p) {
        return grad_of(tg::tensor({{0.0, 0.0, 0.0}, {1.0, 0.0, -3.0}}), [p](const Tensor& x) { return tg::norm(x, p, {1}); }, tg::ones({2}));
    };
    const Tensor base = tg::arange(12).reshape({3, 4}).to(tg::kFloat32);
    auto idx = [](std::vector<int64_t> v, const tg::Shape& shape, tg::DType dtype = tg::kInt64) { return tg::from_vector(v, shape, {.dtype = dtype}); };
    const Tensor clamp_x = floats({1, 2, 3, 0, 5}), clamp_lo = floats({1, 0, 3.5, 0, 6}), clamp_hi = floats({3, 2, 4, 0, 4});
    return {
        {"eq_nan", [=] { return a == b; }},
        {"ne_nan", [=] { return a != b; }},
        {"lt_nan", [=] { return a < b; }},
        {"le_nan", [=] { return a <= b; }},
        {"gt_nan", [=] { return a > b; }},
        {"ge_nan", [=] { return a >= b; }},
        {"ge_broadcast_promote", [] { return column(1, 2, tg::kFloat64) >= floats({0.5, 1.0, 2.0}); }},
        {"lt_int_float", [=] { return ints < floats({1.5, 2.5, 2.5, 4.5, 4.5}); }},
        {"int_gt_scalar_half", [=] { return ints > 2.5; }},
        {"int_eq_scalar_whole", [=] { return ints == 3; }},
        {"float_eq_scalar", [] { return floats({0.1, 0.2}) == 0.1; }},
        {"f32_eq_f64", [] { return tg::eq(floats({0.1, 0.5}), floats({0.1, 0.5}, tg::kFloat64)); }},
        {"big_int_eq_float", [] {
             return tg::from_vector(std::vector<int64_t>{(int64_t{1} << 53) + 1, int64_t{1} << 53}, {2}) ==
                    floats({9007199254740992.0, 9007199254740992.0}, tg::kFloat64);
         }},
        {"bool_lt_int", [=] { return mask < longs({1, 1, 0, 0, 2}); }},
        {"bool_eq_one", [=] { return mask == 1; }},
        {"logical_and", [] { return tg::logical_and(longs({1, 0, 2, 0}), floats({1, 1, nan, 0})); }},
        {"logical_or", [] { return tg::logical_or(longs({1, 0, 2, 0}), floats({1, 1, nan, 0})); }},
        {"logical_xor", [] { return tg::logical_xor(longs({1, 0, 2, 0}), floats({1, 1, nan, 0})); }},
        {"logical_not", [] { return tg::logical_not(floats({0.0, nan, 2.0, -0.0})); }},
        {"and_bool", [=] { return mask & bools({1, 1, 0, 0, 1}); }},
        {"or_bool", [=] { return mask | bools({1, 1, 0, 0, 0}); }},
        {"xor_bool", [=] { return mask ^ bools({1, 1, 0, 0, 1}); }},
        {"not_bool", [=] { return ~mask; }},
        {"and_int", [] { return longs({12, 5, -1}) & longs({10, 3, 7}); }},
        {"not_int", [] { return ~longs({0, 5, -1}); }},
        {"bool_add", [=] { return mask + bools({1, 1, 0, 0, 0}); }},
        {"bool_mul", [=] { return mask * bools({1, 1, 0, 0, 1}); }},
        {"bool_add_int", [=] { return mask + ints; }},
        {"bool_add_float", [=] { return mask + floats({0.5, 0.5, 0.5, 0.5, 0.5}); }},
        {"bool_mul_scalar", [=] { return mask * 2.5; }},
        {"bool_div", [=] { return mask / bools({1, 1, 1, 1, 1}); }},
        {"bool_sum", [=] { return mask.sum(); }},
        {"bool_exp", [=] { return tg::exp(mask); }},
        {"bool_to_float", [=] { return mask.to(tg::kFloat32); }},
        {"float_to_bool", [] { return floats({0.0, -0.0, nan, 0.5, -inf}).to(tg::kBool); }},
        {"int_to_bool", [] { return longs({0, -3, 7}).to(tg::kBool); }},
        {"where_promote", [=] { return tg::where(mask, ints, floats({0.5, 0.5, 0.5, 0.5, 0.5})); }},
        {"where_broadcast", [] { return tg::where(column(1, 0, tg::kBool), floats({1, 2, 3}), tg::scalar_tensor(-1.0)); }},
        {"where_scalar", [=] { return tg::where(mask, floats({1, 2, 3, 4, 5}), 0.0); }},
        {"masked_fill", [=] { return tg::masked_fill(floats({1, 2, 3, 4, 5}), mask, nan); }},
        {"masked_fill_broadcast", [] { return tg::masked_fill(tg::zeros({3}), column(1, 0, tg::kBool), 1.0); }},
        {"masked_fill_int_truncates", [=] { return tg::masked_fill(ints, mask, 1.5); }},
        {"masked_fill_bool", [=] { return tg::masked_fill(mask, bools({1, 1, 0, 0, 0}), 1.0); }},
        {"any_all", [=] { return tg::any(m); }},
        {"all_all", [=] { return tg::all(m); }},
        {"any_dim1", [=] { return tg::any(m, 1); }},
        {"all_dim0_keepdim", [] { return tg::all(tg::tensor({{1.0, nan, 0.0}, {2.0, 1.0, 1.0}}), 0, true); }},
        {"any_empty", [] { return tg::any(tg::zeros({0})); }},
        {"all_empty", [] { return tg::all(tg::zeros({0})); }},
        {"all_int_dim_neg", [] { return tg::all(tg::tensor({{1, 2}, {0, 3}}, {.dtype = tg::kInt64}), -1); }},
        {"where_grad_a", [] {
             const Tensor cond = bools({1, 0, 1}), y = floats({4, 5, 6});
             return grad_of(floats({1, 2, 3}), [&](const Tensor& x) { return tg::where(cond, x, y); }, floats({1, 2, 3}));
         }},
        {"where_grad_b", [] {
             const Tensor cond = bools({1, 0, 1}), x = floats({1, 2, 3});
             return grad_of(floats({4, 5, 6}), [&](const Tensor& y) { return tg::where(cond, x, y); }, floats({1, 2, 3}));
         }},
        {"masked_fill_grad", [] {
             const Tensor mask2 = tg::tensor({{1.0, 0.0, 0.0}, {0.0, 0.0, 1.0}}, {.dtype = tg::kBool});
             return grad_of(floats({1, 2, 3}), [&](const Tensor& x) { return tg::masked_fill(x, mask2, 0.0); }, tg::full({2, 3}, 2.0));
         }},
        {"maximum_nan", [] { return tg::maximum(floats({1, 2, 3, nan}), floats({1, 3, 2, 0})); }},
        {"minimum_int_float", [] { return tg::minimum(longs({1, 5}), floats({1.5, 1.5})); }},
        {"maximum_grad_a", [] { return grad_of(floats({1, 2, 3}), [](const Tensor& x) { return tg::maximum(x, floats({1, 3, 2})); }, tg::ones({3})); }},
        {"maximum_grad_b", [] { return grad_of(floats({1, 3, 2}), [](const Tensor& y) { return tg::maximum(floats({1, 2, 3}), y); }, tg::ones({3})); }},
        {"minimum_grad_a", [] { return grad_of(floats({1, 2, 3}), [](const Tensor& x) { return tg::minimum(x, floats({1, 3, 2})); }, tg::ones({3})); }},
        {"minimum_grad_b", [] { return grad_of(floats({1, 3, 2}), [](const Tensor& y) { return tg::minimum(floats({1, 2, 3}), y); }, tg::ones({3})); }},
        {"clamp_tensors", [=] { return tg::clamp(clamp_x, clamp_lo, clamp_hi); }},
        {"clamp_grad_x", [=] { return grad_of(clamp_x, [&](const Tensor& v) { return tg::clamp(v, clamp_lo, clamp_hi); }, tg::ones({5})); }},
        {"clamp_grad_min", [=] { return grad_of(clamp_lo, [&](const Tensor& v) { return tg::clamp(clamp_x, v, clamp_hi); }, tg::ones({5})); }},
        {"clamp_grad_max", [=] { return grad_of(clamp_hi, [&](const Tensor& v) { return tg::clamp(clamp_x, clamp_lo, v); }, tg::ones({5})); }},
        {"clamp_nan_bound", [] { return tg::clamp(floats({1, 5}), floats({nan, 0}), Tensor()); }},
        {"sign", [] { return tg::sign(floats({-2.0, 0.0, -0.0, 3.0, nan})); }},
        {"sign_int", [] { return tg::sign(longs({-2, 0, 3})); }},
        {"norm_p2", [=] { return tg::norm(norm_v, 2.0, {1}); }},
        {"norm_p1", [=] { return tg::norm(norm_v, 1.0, {1}); }},
        {"norm_pinf", [=] { return tg::norm(norm_v, inf, {1}); }},
        {"norm_pminus_inf", [=] { return tg::norm(norm_v, -inf, {1}); }},
        {"norm_p0", [=] { return tg::norm(norm_v, 0.0, {1}); }},
        {"norm_p3", [=] { return tg::norm(norm_v, 3.0, {1}); }},
        {"norm_p0.5", [=] { return tg::norm(norm_v, 0.5, {1}); }},
        {"norm_pminus1", [=] { return tg::norm(norm_v, -1.0, {1}); }},
        {"norm_frobenius", [=] { return tg::norm(norm_v); }},
        {"norm_empty", [] { return tg::norm(tg::zeros({0})); }},
        {"norm_grad_zero_p2", [=] { return norm_grad_at_zero(2.0); }},
        {"norm_grad_zero_p1", [=] { return norm_grad_at_zero(1.0); }},
        {"norm_grad_zero_pinf", [=] { return norm_grad_at_zero(inf); }},
        {"norm_grad_zero_p3", [=] { return norm_grad_at_zero(3.0); }},
        {"norm_grad_zero_p0.5", [=] { return norm_grad_at_zero(0.5); }},
        {"norm_grad_zero_pminus1", [=] { return norm_grad_at_zero(-1.0); }},
        {"index_select_dim0", [=] { return tg::index_select(base, 0, idx({2, 0, 2}, {3})); }},
        {"index_select_dim1_int32", [=] { return tg::index_select(base, 1, idx({3, 1}, {2}, tg::kInt32)); }},
        {"gather_dim1", [=] { return tg::gather(base, 1, idx({0, 3, 1, 1, 3, 2}, {3, 2})); }},
        {"scatter_add_dim0", [=] {
             return tg::scatter_add(tg::ones({3, 4}, {.dtype = tg::kInt64}), 0, idx({2, 0, 2, 2}, {1, 4}), idx({5, 6, 7, 8}, {1, 4}));
         }},
        {"index_select_grad", [=] {
             return grad_of(base, [&](const Tensor& x) { return tg::index_select(x, 0, idx({2, 0, 2}, {3})); }, tg::arange(12).reshape({3, 4}).to(tg::kFloat32));
         }},
        {"gather_grad", [=] {
             return grad_of(base, [&](const Tensor& x) { return tg::gather(x, 1, idx({0, 0, 1, 1, 3, 2}, {3, 2})); }, tg::tensor({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}}));
         }},
        {"scatter_add_grad_src", [=] {
             return grad_of(tg::tensor({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}}),
                            [&](const Tensor& src) { return tg::scatter_add(tg::zeros({3, 4}), 1, idx({1, 1, 0, 3, 2, 2}, {3, 2}), src); }, base);
         }},
        {"norm_grad_inf_ties", [] { return grad_of(floats({1, 3, -3, -2}), [](const Tensor& x) { return tg::norm(x, inf); }, tg::ones({})); }},
    };
}

struct Reference {
    std::string dtype;
    tg::Shape shape;
    std::vector<double> values;
};

std::map<std::string, Reference> read_reference() {
    std::ifstream file(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/masks_reference.txt");
    REQUIRE(file.good());
    std::map<std::string, Reference> out;
    std::string line;
    while (std::getline(file, line)) {
        std::istringstream in(line);
        std::string name, colon;
        Reference r;
        std::size_t ndim = 0;
        in >> name >> r.dtype >> ndim;
        r.shape.resize(ndim);
        for (auto& d : r.shape) in >> d;
        in >> colon;
        for (std::string v; in >> v;) r.values.push_back(std::stod(v));
        out[name] = r;
    }
    return out;
}

// Equal, NaN included; float32 results computed another way may differ in the last bits.
bool same_value(double got, double want, bool floating) {
    if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
    return floating ? std::abs(got - want) <= 1e-6 * std::max(1.0, std::abs(want)) : got == want;
}

}  // namespace

TEST_CASE("bool tensors, comparisons, logical ops, where, masked_fill, any and all give PyTorch's values, dtypes and shapes") {
    const auto reference = read_reference();
    const auto built = cases();
    REQUIRE(reference.size() == built.size());
    for (const auto& [name, make] : built) {
        INFO(name);
        REQUIRE(reference.count(name) == 1);
        const Reference& want = reference.at(name);
        const Tensor got = make();
        CHECK(std::string(tg::dtype_name(got.dtype())) == want.dtype);
        REQUIRE(got.shape() == want.shape);
        const auto values = got.to_vector<double>();
        for (std::size_t i = 0; i < values.size(); ++i)
            CHECK_MESSAGE(same_value(values[i], want.values[i], tg::is_floating_point(got.dtype())), "element " << i << ": " << values[i] << " != " << want.values[i]);
    }
}

TEST_CASE("a bool tensor prints, converts and reads back as PyTorch's") {
    CHECK(tg::to_string(bools({1, 0, 1})) == "tensor([ True, False,  True])");
    CHECK(tg::to_string(bools({1, 1})) == "tensor([True, True])");
    CHECK(tg::to_string(tg::scalar_tensor(1, {.dtype = tg::kBool})) == "tensor(True)");
    CHECK(tg::element_size(tg::kBool) == 1);
    CHECK(bools({0}).item<bool>() == false);
    CHECK(bools({0, 1}).at<bool>({1}) == true);
    CHECK(tg::full({2}, 0.25, {.dtype = tg::kBool}).at<int64_t>({0}) == 1);
}

TEST_CASE("comparisons and any/all return tensors without history; where and masked_fill record one") {
    Tensor x = tg::randn({3}).requires_grad_();
    CHECK_FALSE((x > 0).requires_grad());
    CHECK(x.grad_fn() == nullptr);
    CHECK_FALSE(tg::any(x).requires_grad());
    CHECK(tg::where(x > 0, x, 0.0).requires_grad());
    CHECK(tg::masked_fill(x, x < 0, 0.0).requires_grad());
}

TEST_CASE("masked_fill_ writes in place, bumps the version and refuses a mask it would have to broadcast into") {
    Tensor x = floats({1, 2, 3});
    const uint64_t before = x.version();
    x.masked_fill_(bools({0, 1, 0}), -1.0);
    CHECK(x.version() == before + 1);
    CHECK(x.to_vector<float>() == std::vector<float>{1, -1, 3});
    CHECK_THROWS_WITH_AS(x.masked_fill_(tg::ones({2, 3}, {.dtype = tg::kBool}), 0.0), doctest::Contains("masked_fill_"), std::invalid_argument);
    CHECK(x.to_vector<float>() == std::vector<float>{1, -1, 3});
}

TEST_CASE("bool inputs are refused by name where PyTorch refuses them") {
    const Tensor mask = bools({1, 0});
    CHECK_THROWS_WITH_AS(mask - mask, doctest::Contains("sub: subtraction with a bool tensor"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(mask - longs({1, 2}), doctest::Contains("sub: "), std::invalid_argument);
    CHECK_THROWS_WITH_AS(-mask, doctest::Contains("neg: this op does not take bool tensors"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::relu(mask), doctest::Contains("relu: this op does not take bool tensors"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::where(longs({1, 0}), floats({1, 2}), 0.0), doctest::Contains("where: expected the condition to be a bool tensor"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::masked_fill(floats({1, 2}), longs({1, 0}), 0.0), doctest::Contains("masked_fill: expected the mask to be a bool tensor"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(floats({1, 2}) & floats({1, 2}), doctest::Contains("bitwise_and: takes integer or bool tensors"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::lt(floats({1, 2}), floats({1, 2, 3})), doctest::Contains("lt"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Tensor(bools({1})).requires_grad_(), doctest::Contains("requires_grad_"), std::invalid_argument);
}

TEST_CASE("dropout2d zeroes whole channels and scales the rest by 1/(1-p); the same generator state draws the same channels") {
    const Tensor x = tg::ones({4, 8, 3, 3});
    tg::Generator gen(5), same(5);
    const Tensor y = tg::dropout2d(x, 0.5, true, gen);
    CHECK(tg::allclose(y, tg::dropout2d(x, 0.5, true, same)));
    int zeroed = 0;
    for (int64_t n = 0; n < 4; ++n)
        for (int64_t c = 0; c < 8; ++c) {
            const Tensor channel = y.select(0, n).select(0, c);
            const double first = channel.at({0, 0});
            CHECK((first == 0.0 || first == 2.0));
            CHECK(tg::allclose(channel, tg::full({3, 3}, first)));
            zeroed += first == 0.0;
        }
    CHECK(zeroed > 0);
    CHECK(zeroed < 32);
    CHECK(tg::dropout2d(x, 0.5, false, gen).same(x));
    const Tensor y3 = tg::dropout2d(tg::ones({2, 3, 5}), 0.5, true, gen);
    for (int64_t n = 0; n < 2; ++n)
        for (int64_t c = 0; c < 3; ++c) CHECK(tg::allclose(y3.select(0, n).select(0, c), tg::full({5}, y3.at({n, c, 0}))));
    CHECK_THROWS_WITH_AS(tg::dropout2d(tg::ones({2, 3}), 0.5, true, gen), doctest::Contains("dropout2d: expects a 4-D"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::dropout2d(x, 1.5, true, gen), doctest::Contains("dropout2d: probability"), std::invalid_argument);
}

TEST_CASE("dropout, dropout2d and bernoulli without a generator draw from the default generator") {
    const Tensor x = tg::ones({2, 6, 2, 2});
    tg::manual_seed(3);
    const Tensor first = tg::dropout2d(x, 0.5, true), drop = tg::dropout(x, 0.5, true), draws = tg::bernoulli(tg::full({16}, 0.5));
    tg::manual_seed(3);
    CHECK(tg::allclose(tg::dropout2d(x, 0.5, true), first));
    CHECK(tg::allclose(tg::dropout(x, 0.5, true), drop));
    CHECK(tg::allclose(tg::bernoulli(tg::full({16}, 0.5)), draws));
}

TEST_CASE("bernoulli draws 0 and 1 with the given probabilities, in the input's dtype; bernoulli_ writes in place") {
    tg::Generator gen(9);
    const Tensor p = floats({0, 1, 0, 1});
    CHECK(tg::bernoulli(p, gen).to_vector<float>() == std::vector<float>{0, 1, 0, 1});
    const Tensor many = tg::bernoulli(tg::zeros({10000}, {.dtype = tg::kFloat64}), 0.25, gen);
    CHECK(many.dtype() == tg::kFloat64);
    const double mean = many.sum().item() / 10000.0;
    CHECK(mean > 0.2);
    CHECK(mean < 0.3);
    CHECK(tg::bernoulli(bools({0, 0}), 1.0, gen).to_vector<bool>() == std::vector<bool>{true, true});
    CHECK_THROWS_WITH_AS(tg::bernoulli(floats({0.5, 1.5}), gen), doctest::Contains("bernoulli: every probability must be in [0, 1]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::bernoulli(longs({0, 1}), gen), doctest::Contains("bernoulli: the probabilities must be a floating-point"), std::invalid_argument);
    Tensor x = longs({5, 5, 5});
    const uint64_t before = x.version();
    x.bernoulli_(1.0, gen);
    CHECK(x.version() == before + 1);
    CHECK(x.to_vector<int64_t>() == std::vector<int64_t>{1, 1, 1});
    CHECK_THROWS_WITH_AS(x.bernoulli_(1.5, gen), doctest::Contains("bernoulli: probability must be in [0, 1]"), std::invalid_argument);
    CHECK(x.to_vector<int64_t>() == std::vector<int64_t>{1, 1, 1});
}

TEST_CASE("nn::Dropout2d drops channels in training and is the identity in evaluation") {
    tg::nn::Dropout2d layer(0.5, uint64_t{4});
    const Tensor x = tg::ones({2, 8, 2, 2});
    const Tensor y = layer.forward(x);
    CHECK(tg::allclose(y.select(0, 0).select(0, 0), tg::full({2, 2}, y.at({0, 0, 0, 0}))));
    layer.eval();
    CHECK(tg::allclose(layer.forward(x), x));
    CHECK_THROWS_WITH_AS(tg::nn::Dropout2d(2.0), doctest::Contains("Dropout2d: p must be in [0, 1]"), std::invalid_argument);
}

TEST_CASE("a bool tensor serializes and reads back; a bool byte other than 0 and 1 is refused") {
    const tg::nn::NamedTensors saved{{"mask", bools({1, 0, 1})}};
    std::vector<uint8_t> bytes = tg::nn::serialize(saved);
    const auto loaded = tg::nn::deserialize(bytes.data(), bytes.size());
    REQUIRE(loaded.size() == 1);
    CHECK(loaded[0].second.dtype() == tg::kBool);
    CHECK(loaded[0].second.to_vector<bool>() == std::vector<bool>{true, false, true});
    // The three data bytes end the payload, which follows the 28-byte header whose last 4 bytes are
    // the payload's CRC-32: a crafted file with a matching CRC.
    bytes[bytes.size() - 3] = 7;
    const uint32_t crc = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), bytes.data() + 28, static_cast<uInt>(bytes.size() - 28)));
    std::memcpy(bytes.data() + 24, &crc, 4);
    CHECK_THROWS_WITH_AS(tg::nn::deserialize(bytes.data(), bytes.size()), doctest::Contains("byte other than 0 and 1"), std::exception);
}

TEST_CASE("index_select, gather and scatter_add refuse an out-of-range index before reading or writing, naming the op, value and size") {
    const Tensor x = tg::arange(12).reshape({3, 4}).to(tg::kFloat32);
    auto idx = [](std::vector<int64_t> v, const tg::Shape& shape) { return tg::from_vector(v, shape); };
    CHECK_THROWS_WITH_AS(tg::index_select(x, 0, idx({0, 3}, {2})), doctest::Contains("index_select: index 3 is out of range for dimension 0 of size 3"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::gather(x, 1, idx({-1, 0}, {1, 2})), doctest::Contains("gather: index -1 is out of range for dimension 1 of size 4"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::gather(x, 1, idx({0, 0}, {2})), doctest::Contains("gather: index [2] must have the rank of the input [3,4]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::gather(x, 1, tg::zeros({1, 1})), doctest::Contains("gather: expected an int64 index"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::scatter_add(x, 0, idx({7}, {1, 1}), tg::ones({1, 1})), doctest::Contains("scatter_add: index 7 is out of range for dimension 0 of size 3"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::scatter_add(x, 0, idx({1}, {1, 1}), tg::ones({1, 1}, {.dtype = tg::kFloat64})), doctest::Contains("scatter_add: x is"),
                         std::invalid_argument);
}
