// add, sub, mul, div, neg and their in-place forms follow PyTorch 1.13's type promotion: integers
// are computed exactly in their own dtype (wrapping on overflow), div of integers is true division
// in float32, mixed dtypes compute in torch.result_type (0-dim tensors taking part only across
// categories), in-place writes refuse a float result for an integer tensor, and every input's
// gradient comes back in its own dtype. sum, max, min, take, put_add and constant pad compute on
// integers as PyTorch's do. PyTorch's side of each case is checked by tests/type_promotion_pytorch.py.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "error_text.hpp"
#include "ops/index.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
using tg::DType;
using tg::Tensor;
using tapegrad::testing::contains;
using tapegrad::testing::error_of;

namespace {

// [3, 6] in `dtype`, or the 0-dim 3.
Tensor operand(DType dtype, bool zero_dim) {
    const Tensor t = zero_dim ? tg::scalar_tensor(3.0, {.dtype = dtype}) : tg::tensor({3.0, 6.0}, {.dtype = dtype});
    return t;
}

Tensor int64s(const std::vector<int64_t>& values) { return tg::from_vector(values, {static_cast<int64_t>(values.size())}); }
Tensor int32s(const std::vector<int64_t>& values) { return int64s(values).to(tg::kInt32); }

struct ResultType {
    DType a;
    bool a_zero_dim;
    DType b;
    bool b_zero_dim;
    DType add;  // sub and mul too; div gives float32 where this is an integer dtype
};

constexpr DType F32 = tg::kFloat32, F64 = tg::kFloat64, I64 = tg::kInt64, I32 = tg::kInt32;
const ResultType kResultTypes[] = {
    {F32, false, F64, false, F64}, {F64, false, F32, false, F64}, {I64, false, I32, false, I64},
    {I32, false, I64, false, I64}, {I64, false, F32, false, F32}, {I32, false, F64, false, F64},
    {F32, false, I64, false, F32}, {I32, false, I32, false, I32},
    {F32, false, F64, true, F32},  {F64, true, F32, false, F32},  {I64, false, F64, true, F64},
    {I32, false, F32, true, F32},  {I32, false, I64, true, I32},  {I64, true, I32, false, I32},
    {F32, false, I64, true, F32},  {F32, true, F64, true, F64},   {I32, true, I64, true, I64},
    {I64, true, F32, true, F32},
};

}  // namespace

TEST_CASE("add, sub, mul and div give PyTorch's result type for every pair of dtypes, 0-dim tensors included") {
    for (const ResultType& r : kResultTypes) {
        const Tensor a = operand(r.a, r.a_zero_dim), b = operand(r.b, r.b_zero_dim);
        INFO(tg::describe(a) << " with " << tg::describe(b));
        CHECK((a + b).dtype() == r.add);
        CHECK((a - b).dtype() == r.add);
        CHECK((a * b).dtype() == r.add);
        const Tensor q = a / b;
        CHECK(q.dtype() == (tg::is_floating_point(r.add) ? r.add : F32));
        // The values are those of float64 arithmetic on the same numbers (all exact here).
        const Tensor a64 = a.to(F64), b64 = b.to(F64);
        CHECK(tg::allclose((a + b).to(F64), a64 + b64, 0, 0));
        CHECK(tg::allclose((a * b).to(F64), a64 * b64, 0, 0));
        CHECK(tg::allclose(q.to(F64), a64 / b64, 0, 0));
    }
}

TEST_CASE("integer arithmetic is exact in int64 and wraps around on overflow, as PyTorch's") {
    constexpr int64_t big = (int64_t{1} << 53) + 1;  // no double holds it
    constexpr int64_t max64 = std::numeric_limits<int64_t>::max(), min64 = std::numeric_limits<int64_t>::min();
    CHECK((int64s({big}) + int64s({2})).to_vector<int64_t>() == std::vector<int64_t>{big + 2});
    CHECK((int64s({big}) * int64s({-1})).to_vector<int64_t>() == std::vector<int64_t>{-big});
    CHECK((int64s({big}) - int64s({big - 1})).to_vector<int64_t>() == std::vector<int64_t>{1});
    CHECK((int64s({max64}) + int64s({1})).to_vector<int64_t>() == std::vector<int64_t>{min64});
    CHECK((int32s({65536}) * int32s({65536})).to_vector<int32_t>() == std::vector<int32_t>{0});
    const Tensor widened = int32s({65536}) * int64s({65536});
    CHECK(widened.dtype() == I64);
    CHECK(widened.to_vector<int64_t>() == std::vector<int64_t>{int64_t{1} << 32});
    const Tensor negated = -int64s({min64, 5});
    CHECK(negated.to_vector<int64_t>() == std::vector<int64_t>{min64, -5});
    CHECK((-int32s({7})).dtype() == I32);
    CHECK(tg::add_n({int64s({big}), int64s({1}), int32s({1})}).to_vector<int64_t>() == std::vector<int64_t>{big + 2});

    const Tensor q = int64s({7, -7}) / int64s({2, 2});
    CHECK(q.dtype() == F32);
    CHECK(q.to_vector<float>() == std::vector<float>{3.5f, -3.5f});

    CHECK(tg::add(int64s({1, 2}), int64s({10, 20}), -3.0).to_vector<int64_t>() == std::vector<int64_t>{-29, -58});
    CHECK(tg::add(tg::tensor({1.0}), int64s({3}), 0.5).to_vector<float>() == std::vector<float>{2.5f});
    const std::string alpha = error_of([] { (void)tg::add(int64s({1}), int64s({1}), 0.5); });
    CHECK(alpha.rfind("add: alpha 0.5", 0) == 0);
    CHECK(contains(alpha, "inputs are int64"));
}

TEST_CASE("-0.0 and NaN keep their bits through neg") {
    const Tensor x = tg::tensor({0.0, -0.0});
    const std::vector<float> y = (-x).to_vector<float>();
    CHECK(std::signbit(y[0]));
    CHECK_FALSE(std::signbit(y[1]));
}

TEST_CASE("in-place ops compute in the promoted dtype and cast to self's, or refuse a float result for an integer tensor") {
    // float64 arithmetic rounded once to float32: 1 + 2^-24 + 2^-50 rounds up, where rounding the
    // operand to float32 first would give a tie that rounds to 1.
    const double tiny = std::ldexp(1.0, -24) + std::ldexp(1.0, -50);
    Tensor one = tg::tensor({1.0});
    one.add_(tg::tensor({tiny}, {.dtype = F64}));
    CHECK(one.dtype() == F32);
    CHECK(one.to_vector<float>() == std::vector<float>{1.0f + std::ldexp(1.0f, -23)});

    Tensor i32 = int32s({5});
    const uint64_t version = i32.version();
    i32.add_(int64s({7}));
    CHECK(i32.dtype() == I32);
    CHECK(i32.to_vector<int32_t>() == std::vector<int32_t>{12});
    CHECK(i32.version() == version + 1);
    Tensor i64 = int64s({5});
    i64.sub_(int64s({7}));
    CHECK(i64.to_vector<int64_t>() == std::vector<int64_t>{-2});
    i64.mul_(int32s({-7}));
    CHECK(i64.to_vector<int64_t>() == std::vector<int64_t>{14});
    Tensor f = tg::tensor({1.5});
    f.mul_(int64s({3}));
    CHECK(f.to_vector<float>() == std::vector<float>{4.5f});

    // An int64 result that int32 cannot hold is refused (PyTorch wraps it), naming the op and
    // writing nothing.
    Tensor small = int32s({std::numeric_limits<int32_t>::max()});
    const std::string overflow = error_of([&] { small.add_(int64s({1})); });
    CHECK(overflow.rfind("add_: ", 0) == 0);
    CHECK(contains(overflow, "without overflow"));
    CHECK(small.to_vector<int32_t>() == std::vector<int32_t>{std::numeric_limits<int32_t>::max()});

    Tensor target = int64s({4, 6});
    const uint64_t before = target.version();
    const std::string add = error_of([&] { target.add_(tg::tensor({1.0, 1.0})); });
    CHECK(contains(add, "add_: the [2] int64 tensor and the [2] float32 tensor give a float32 result, which can't be cast "
                        "to the int64 tensor written in place"));
    CHECK(error_of([&] { target.sub_(tg::tensor({1.0, 1.0})); }).rfind("sub_: ", 0) == 0);
    CHECK(error_of([&] { target.mul_(tg::tensor({1.0, 1.0}, {.dtype = F64})); }).rfind("mul_: ", 0) == 0);
    const std::string div = error_of([&] { target.div_(int64s({2, 2})); });
    CHECK(contains(div, "div_: the [2] int64 tensor and the [2] int64 tensor give a float32 result"));
    CHECK(error_of([&] { int32s({4}).div_(int32s({2})); }).rfind("div_: ", 0) == 0);
    CHECK(target.to_vector<int64_t>() == std::vector<int64_t>{4, 6});
    CHECK(target.version() == before);
}

TEST_CASE("each input's gradient has the input's dtype, in first and second derivatives") {
    const Tensor a = tg::tensor({1.5, -2.0}, {.requires_grad = true});
    const Tensor b = tg::tensor({0.5, 4.0}, {.dtype = F64, .requires_grad = true});
    struct Case {
        const char* op;
        std::function<Tensor(const Tensor&, const Tensor&)> fn;
        std::vector<double> da, db;
    };
    const Case cases[] = {
        {"mul", [](auto& x, auto& y) { return x * y; }, {0.5, 4.0}, {1.5, -2.0}},
        {"div", [](auto& x, auto& y) { return x / y; }, {2.0, 0.25}, {-6.0, 0.125}},
        {"sub", [](auto& x, auto& y) { return x - y; }, {1.0, 1.0}, {-1.0, -1.0}},
    };
    for (const Case& c : cases) {
        INFO(c.op);
        const Tensor y = c.fn(a, b);
        CHECK(y.dtype() == F64);
        CHECK(y.grad_fn()->name() == c.op);
        const auto g = tg::grad({y.sum()}, {a, b});
        CHECK(g[0].dtype() == F32);
        CHECK(g[1].dtype() == F64);
        CHECK(tg::allclose(g[0].to(F64), tg::from_vector(c.da, {2}, {.dtype = F64}), 0, 0));
        CHECK(tg::allclose(g[1], tg::from_vector(c.db, {2}, {.dtype = F64}), 0, 0));
    }
    // y = sum(a a b): dy/da = 2ab (float32), and d/db of sum(dy/da) = 2a (float64).
    const auto da = tg::grad({(a * a * b).sum()}, {a}, {}, std::nullopt, /*create_graph=*/true);
    CHECK(da[0].dtype() == F32);
    CHECK(tg::allclose(da[0].to(F64), tg::tensor({1.5, -16.0}, {.dtype = F64}), 0, 0));
    const auto db = tg::grad({da[0].sum()}, {b});
    CHECK(db[0].dtype() == F64);
    CHECK(tg::allclose(db[0], tg::tensor({3.0, -4.0}, {.dtype = F64}), 0, 0));

    // In place: self keeps float32 and its history ends in float32; other's gradient is float64.
    Tensor self = a * 1.0;
    self.add_(b, 2.0);
    CHECK(self.dtype() == F32);
    const auto gi = tg::grad({self.sum()}, {a, b});
    CHECK(gi[0].dtype() == F32);
    CHECK(gi[1].dtype() == F64);
    CHECK(tg::allclose(gi[1], tg::tensor({2.0, 2.0}, {.dtype = F64}), 0, 0));
}

TEST_CASE("sum, max, min, take, put_add and constant pad compute on integers as PyTorch; mean and reflect pad refuse them") {
    constexpr int64_t big = (int64_t{1} << 53) + 1;
    const Tensor total = int64s({big, 1}).sum();
    CHECK(total.dtype() == I64);
    CHECK(total.item<int64_t>() == big + 1);
    const Tensor rows = tg::sum(int32s({1, 2, 3, 4}).reshape({2, 2}), {1}, true);
    CHECK(rows.dtype() == I64);
    CHECK(rows.shape() == tg::Shape{2, 1});
    CHECK(rows.to_vector<int64_t>() == std::vector<int64_t>{3, 7});
    CHECK(int32s({1}).sum().dtype() == I64);
    CHECK(int64s({std::numeric_limits<int64_t>::max(), 1}).sum().item<int64_t>() == std::numeric_limits<int64_t>::min());
    CHECK(tg::scalar_tensor(4.0, {.dtype = I32}).sum().item<int64_t>() == 4);
    const std::string mean = error_of([] { (void)int64s({1, 2}).mean(); });
    CHECK(mean.rfind("mean: could not infer the output dtype", 0) == 0);

    CHECK(tg::max(int64s({1, big, 3, 2}).reshape({2, 2}), 1).to_vector<int64_t>() == std::vector<int64_t>{big, 3});
    const Tensor smallest = tg::min(int32s({1, 5, 3, 2}).reshape({2, 2}), 0);
    CHECK(smallest.dtype() == I32);
    CHECK(smallest.to_vector<int32_t>() == std::vector<int32_t>{1, 2});

    CHECK(tg::take(int64s({big, 2, 3, 4}).reshape({2, 2}), {3, 0, 0}, {3}).to_vector<int64_t>() == std::vector<int64_t>{4, big, big});
    CHECK(tg::put_add({3}, {2, 0, 2}, int64s({big, 5, 1})).to_vector<int64_t>() == std::vector<int64_t>{5, 0, big + 1});

    const Tensor padded = tg::pad(int64s({1, 2}).reshape({1, 2}), {1, 0}, tg::PadMode::Constant, 2.7);
    CHECK(padded.dtype() == I64);
    CHECK(padded.to_vector<int64_t>() == std::vector<int64_t>{2, 1, 2});
    CHECK(contains(error_of([] { (void)tg::pad(int64s({1, 2}).reshape({1, 2}), {1, 0}, tg::PadMode::Constant, 1e30); }),
                   "pad: value 1e+30 cannot be converted to type int64 without overflow"));
    CHECK(error_of([] { (void)tg::pad(int64s({1, 2, 3}).reshape({1, 1, 3}), {1, 1}, tg::PadMode::Reflect); })
              .rfind("pad: reflect mode takes float32 or float64 tensors, got int64", 0) == 0);
}
