// Integer tensors are exact and range-checked: int64 values never pass through double (2^53 + 1
// survives every path), and NaN, ±inf or an out-of-range value converted to an integer dtype is
// refused as PyTorch 1.13 refuses it ("value cannot be converted to type int64 without overflow").
// PyTorch's side of each case is checked by tests/int_exact_pytorch.py.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "error_text.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;
using tapegrad::testing::contains;
using tapegrad::testing::error_of;

namespace {

constexpr int64_t kMax64 = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min();
constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();
constexpr int32_t kMin32 = std::numeric_limits<int32_t>::min();
constexpr int64_t k2p53p1 = (int64_t{1} << 53) + 1;  // the first integer a double cannot hold
const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// An int64 tensor written element by element, so that what is tested does not depend on from_vector.
Tensor raw_int64(const std::vector<int64_t>& values) {
    Tensor t = tg::empty({static_cast<int64_t>(values.size())}, {.dtype = tg::kInt64});
    for (std::size_t i = 0; i < values.size(); ++i) t.data<int64_t>()[i] = values[i];
    return t;
}

std::vector<int64_t> read_int64(const Tensor& t) {
    const Tensor dense = t.contiguous();
    const int64_t* p = dense.data<int64_t>();
    return std::vector<int64_t>(p, p + dense.numel());
}

// The error names the op, PyTorch's words and the target dtype.
void check_refused(const std::string& error, const std::string& op, const std::string& dtype) {
    INFO(error);
    CHECK(error.rfind(op + ": ", 0) == 0);
    CHECK(contains(error, "cannot be converted to type " + dtype + " without overflow"));
}

}  // namespace

TEST_CASE("int64 values stay exact through from_vector, to_vector, item, at, copies, printing and checkpoints") {
    const std::vector<int64_t> big = {k2p53p1, kMax64 - 1, kMin64, kMax64, -k2p53p1, 3};
    const Tensor t = tg::from_vector(big, {6});
    CHECK(read_int64(t) == big);
    CHECK(raw_int64(big).to_vector<int64_t>() == big);
    CHECK(t.clone().to_vector<int64_t>() == big);
    CHECK(t.reshape({2, 3}).transpose(0, 1).contiguous().to_vector<int64_t>() ==
          std::vector<int64_t>{big[0], big[3], big[1], big[4], big[2], big[5]});
    CHECK(raw_int64(big).at<int64_t>({0}) == k2p53p1);
    CHECK(raw_int64(big).at<int64_t>({1}) == kMax64 - 1);
    CHECK(raw_int64({k2p53p1}).item<int64_t>() == k2p53p1);
    CHECK(raw_int64({kMin64}).reshape({}).item<int64_t>() == kMin64);
    Tensor dst = tg::zeros({6}, {.dtype = tg::kInt64});
    dst.copy_(raw_int64(big));
    CHECK(read_int64(dst) == big);
    // int32 from int64 keeps every value int32 holds.
    CHECK(raw_int64({kMin32, kMax32}).to(tg::kInt32).to_vector<int32_t>() == std::vector<int32_t>{kMin32, kMax32});
    CHECK(tg::from_vector(std::vector<int64_t>{kMin32, kMax32}, {2}, {.dtype = tg::kInt32}).to_vector<int32_t>() ==
          std::vector<int32_t>{kMin32, kMax32});

    CHECK(tg::to_string(raw_int64({k2p53p1, kMin64})) == "tensor([    9007199254740993, -9223372036854775808])");
    CHECK(tg::to_string(raw_int64({kMax64 - 1}).reshape({})) == "tensor(9223372036854775806)");

    const auto bytes = nn::serialize({{"big", raw_int64(big)}});
    const nn::NamedTensors back = nn::deserialize(bytes.data(), bytes.size());
    REQUIRE(back.size() == 1);
    CHECK(back[0].second.to_vector<int64_t>() == big);

    // Integers are compared exactly: 2^53 + 1 and 2^53 are one apart, the extremes 2^64 - 1.
    CHECK_FALSE(tg::allclose(raw_int64({k2p53p1}), raw_int64({k2p53p1 - 1}), 0, 0));
    CHECK(tg::allclose(raw_int64(big), raw_int64(big), 0, 0));
    CHECK(tg::max_abs_diff(raw_int64({k2p53p1}), raw_int64({k2p53p1 - 1})) == 1.0);
    CHECK(tg::max_abs_diff(raw_int64({kMax64}), raw_int64({kMin64})) == 18446744073709551615.0);

    // Converting to a floating-point type rounds, as PyTorch's .double() does.
    CHECK(raw_int64({k2p53p1}).to(tg::kFloat64).item() == 9007199254740992.0);
    CHECK(raw_int64({k2p53p1}).item() == 9007199254740992.0);
}

TEST_CASE("full, scalar_tensor, fill_, from_vector and tensor refuse a value an integer dtype cannot hold") {
    const std::vector<double> refused64 = {kNan, kInf, -kInf, 1e30, -1e30, 0x1p63};
    const std::vector<double> refused32 = {kNan, kInf, 0x1p31, -0x1p31 - 1, 0x1p40, 0x1p31 - 0.5, -0x1p31 - 0.5, 1e30};
    for (const auto& [dtype, refused] : {std::pair{tg::kInt64, refused64}, std::pair{tg::kInt32, refused32}}) {
        const std::string name = tg::dtype_name(dtype);
        for (double v : refused) {
            INFO(name, " ", v);
            check_refused(error_of([&] { tg::full({2}, v, {.dtype = dtype}); }), "full", name);
            check_refused(error_of([&] { tg::scalar_tensor(v, {.dtype = dtype}); }), "scalar_tensor", name);
            check_refused(error_of([&] { tg::from_vector(std::vector<double>{1.0, v}, {2}, {.dtype = dtype}); }),
                          "from_vector", name);
            check_refused(error_of([&] { tg::tensor({v, 1.0}, {.dtype = dtype}); }), "tensor", name);
            // fill_ is refused before anything is written.
            Tensor z = tg::from_vector(std::vector<int64_t>{4, 5}, {2}, {.dtype = dtype});
            const uint64_t version = z.version();
            check_refused(error_of([&] { z.fill_(v); }), "fill_", name);
            CHECK(z.to_vector<int64_t>() == std::vector<int64_t>{4, 5});
            CHECK(z.version() == version);
        }
    }
    CHECK(contains(error_of([] { tg::full({1}, kNan, {.dtype = tg::kInt64}); }),
                   "full: value nan cannot be converted to type int64 without overflow (int64 holds the integers from "
                   "-9223372036854775808 to 9223372036854775807)"));
    check_refused(error_of([] { tg::from_vector(std::vector<int64_t>{1, int64_t{1} << 40}, {2}, {.dtype = tg::kInt32}); }),
                  "from_vector", "int32");
    check_refused(error_of([] { tg::from_vector(std::vector<float>{std::nanf("")}, {1}, {.dtype = tg::kInt64}); }),
                  "from_vector", "int64");

    // What fits is kept, truncated toward zero, PyTorch's full(..., 1.7, dtype=torch.int64).
    CHECK(tg::full({1}, -0x1p63, {.dtype = tg::kInt64}).to_vector<int64_t>()[0] == kMin64);
    CHECK(tg::full({1}, 0x1p63 - 1024, {.dtype = tg::kInt64}).to_vector<int64_t>()[0] == 9223372036854774784);
    CHECK(tg::full({1}, -0x1p31, {.dtype = tg::kInt32}).to_vector<int32_t>()[0] == kMin32);
    CHECK(tg::full({1}, 2147483647.0, {.dtype = tg::kInt32}).to_vector<int32_t>()[0] == kMax32);
    CHECK(tg::tensor({1.7, -2.9, -0.5}, {.dtype = tg::kInt64}).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 0});
    Tensor z = tg::zeros({2}, {.dtype = tg::kInt64});
    z.fill_(1.7);
    CHECK(z.to_vector<int64_t>() == std::vector<int64_t>{1, 1});
}

TEST_CASE("to(), copy_ and to_vector refuse an element an integer dtype cannot hold, writing nothing") {
    const std::string nan_to_int64 = error_of([] { tg::tensor({1.5, std::nan(""), 3.0}).to(tg::kInt64); });
    check_refused(nan_to_int64, "to", "int64");
    CHECK(contains(nan_to_int64, "to: element 1 (row-major) of the [3] float32 tensor: value nan"));
    check_refused(error_of([] { tg::tensor({1.0, 1e30}).to(tg::kInt64); }), "to", "int64");
    check_refused(error_of([] { tg::tensor({-kInf}, {.dtype = tg::kFloat64}).to(tg::kInt32); }), "to", "int32");
    check_refused(error_of([] { tg::tensor({-0x1p31 - 1}, {.dtype = tg::kFloat64}).to(tg::kInt32); }), "to", "int32");
    const std::string wide = error_of([] { raw_int64({1, int64_t{1} << 40}).to(tg::kInt32); });
    check_refused(wide, "to", "int32");
    CHECK(contains(wide, "element 1 (row-major) of the [2] int64 tensor: value 1099511627776"));
    check_refused(error_of([] { raw_int64({kMin64}).to(tg::kInt32); }), "to", "int32");
    check_refused(error_of([] { raw_int64({int64_t{1} << 31}).to(tg::kInt32); }), "to", "int32");
    // The element is counted in row-major order whatever the layout.
    CHECK(contains(error_of([] { tg::tensor({{1.0, kNan}, {3.0, 4.0}}).transpose(0, 1).to(tg::kInt64); }),
                   "element 2 (row-major) of the [2,2] float32 tensor"));
    check_refused(error_of([] { tg::tensor({kInf}).to_vector<int64_t>(); }), "to_vector", "int64");
    check_refused(error_of([] { raw_int64({int64_t{1} << 31}).to_vector<int32_t>(); }), "to_vector", "int32");

    Tensor dst = tg::from_vector(std::vector<int64_t>{7, 8, 9}, {3});
    const uint64_t version = dst.version();
    check_refused(error_of([&] { dst.copy_(tg::tensor({1.0, 2.0, kNan}, {.dtype = tg::kFloat64})); }), "copy_", "int64");
    CHECK(dst.to_vector<int64_t>() == std::vector<int64_t>{7, 8, 9});
    CHECK(dst.version() == version);

    // Values in range convert, truncated toward zero; int32's extremes are kept.
    CHECK(tg::tensor({1.7, -2.9, -0.5}).to(tg::kInt64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 0});
    CHECK(tg::tensor({-0x1p31, 2147483647.0}, {.dtype = tg::kFloat64}).to(tg::kInt32).to_vector<int32_t>() ==
          std::vector<int32_t>{kMin32, kMax32});
}

TEST_CASE("item<T>() and at<T>() refuse a value T cannot hold, as PyTorch's item<T>()") {
    check_refused(error_of([] { raw_int64({int64_t{1} << 40}).item<int32_t>(); }), "item", "int32");
    check_refused(error_of([] { raw_int64({int64_t{1} << 31}).item<int32_t>(); }), "item", "int32");
    check_refused(error_of([] { raw_int64({int64_t{kMin32} - 1}).item<int32_t>(); }), "item", "int32");
    CHECK(raw_int64({kMin32}).item<int32_t>() == kMin32);
    check_refused(error_of([] { tg::tensor({kNan}).item<int64_t>(); }), "item", "int64");
    check_refused(error_of([] { tg::tensor({1e30}).item<int64_t>(); }), "item", "int64");
    check_refused(error_of([] { tg::tensor({-kInf}).item<int32_t>(); }), "item", "int32");
    CHECK(tg::tensor({-2.9}).item<int64_t>() == -2);
    check_refused(error_of([] { tg::tensor({1.0, kNan}).at<int64_t>({1}); }), "at", "int64");
    check_refused(error_of([] { raw_int64({0, kMax64}).at<int32_t>({1}); }), "at", "int32");
    CHECK(raw_int64({0, kMax64}).at<int64_t>({1}) == kMax64);
}

TEST_CASE("an integer tensor with a double scalar computes in float32; add_ and mul_ of one are refused, as PyTorch") {
    const Tensor i = tg::from_vector(std::vector<int64_t>{1, 2}, {2});
    const Tensor huge = i + 1e30;
    CHECK(huge.dtype() == tg::kFloat32);
    CHECK(huge.to_vector<float>() == std::vector<float>{1e30f, 1e30f});
    CHECK((i + 1.5).to_vector<float>() == std::vector<float>{2.5f, 3.5f});
    CHECK((i - 0.5).to_vector<float>() == std::vector<float>{0.5f, 1.5f});
    CHECK((i * 2.0).to_vector<float>() == std::vector<float>{2.0f, 4.0f});
    CHECK((i / 4.0).to_vector<float>() == std::vector<float>{0.25f, 0.5f});
    CHECK((1.0 - i).to_vector<float>() == std::vector<float>{0.0f, -1.0f});
    CHECK((4.0 / i).to_vector<float>() == std::vector<float>{4.0f, 2.0f});
    CHECK((3.0 * i.to(tg::kInt32)).dtype() == tg::kFloat32);
    CHECK((0.5 + i).to_vector<float>() == std::vector<float>{1.5f, 2.5f});
    const Tensor nan = i + kNan;
    CHECK(std::isnan(nan.to_vector<float>()[0]));

    Tensor target = tg::from_vector(std::vector<int64_t>{1, 2}, {2});
    for (double v : {1e30, 1.5, 2.0}) {
        const std::string add = error_of([&] { target.add_(v); });
        CHECK(contains(add, "add_: the [2] int64 tensor and a floating-point scalar give a float32 result, which can't "
                            "be cast to the int64 tensor written in place"));
        CHECK(contains(error_of([&] { target.mul_(v); }), "mul_: the [2] int64 tensor and a floating-point scalar"));
    }
    CHECK(target.to_vector<int64_t>() == std::vector<int64_t>{1, 2});
}

TEST_CASE("an integer scalar keeps an integer tensor's dtype, as libtorch's integral Scalar (tests/int_exact_pytorch.py)") {
    const Tensor i = tg::from_vector(std::vector<int64_t>{1, 2}, {2});
    const Tensor i32 = i.to(tg::kInt32);
    const Tensor b = i < 2;  // [true, false]
    auto is = [](const Tensor& t, tg::DType dtype, std::vector<int64_t> values) {
        return t.dtype() == dtype && t.to_vector<int64_t>() == values;
    };
    CHECK(is(i * 2, tg::kInt64, {2, 4}));
    CHECK(is(i + 1, tg::kInt64, {2, 3}));
    CHECK(is(10 - i, tg::kInt64, {9, 8}));
    CHECK(is(3 * i32, tg::kInt32, {3, 6}));
    CHECK((i32 - 1).dtype() == tg::kInt32);
    CHECK(is(b * 2, tg::kInt64, {2, 0}));
    CHECK(is(b + 1, tg::kInt64, {2, 1}));
    CHECK(is(i.mul(3), tg::kInt64, {3, 6}));
    CHECK(is(i.add(int64_t{1} << 40), tg::kInt64, {(int64_t{1} << 40) + 1, (int64_t{1} << 40) + 2}));  // exact, past float's 2^24
    CHECK(is(tg::from_vector(std::vector<int64_t>{int64_t{1} << 62}, {1}) * 4, tg::kInt64, {0}));   // wraps, as PyTorch
    CHECK((i / 2).dtype() == tg::kFloat32);  // true division
    CHECK((i / 2).to_vector<float>() == std::vector<float>{0.5f, 1.0f});
    CHECK(is(i.pow(2), tg::kInt64, {1, 4}));
    CHECK(is(tg::pow(i, 3u), tg::kInt64, {1, 8}));
    CHECK(contains(error_of([&] { (void)i.pow(-1); }), "negative"));
    // A floating-point tensor: the same number as the double, the same op and node.
    const Tensor x = tg::tensor({1.5, -2.0}).requires_grad_();
    const Tensor y = x.pow(2) * 3 - 1;
    CHECK(y.dtype() == tg::kFloat32);
    CHECK(y.to_vector<float>() == (x.pow(2.0) * 3.0 - 1.0).to_vector<float>());
    CHECK(x.pow(2).grad_fn()->name() == x.pow(2.0).grad_fn()->name());
    // In place: written in the tensor's own dtype.
    Tensor counter = i.clone();
    counter += 1;
    counter *= 3;
    counter -= 2;
    CHECK(is(counter, tg::kInt64, {4, 7}));
    Tensor c32 = i32.clone();
    c32.add_(5);
    CHECK(is(c32, tg::kInt32, {6, 7}));
    Tensor mask = b.clone();
    CHECK(contains(error_of([&] { mask += 1; }), "add_"));  // int64 result into a bool tensor, refused as PyTorch
    CHECK(is(mask, tg::kBool, {1, 0}));
}

TEST_CASE("load_state_dict refuses a value an integer buffer cannot hold before writing anything") {
    nn::Module m("Counter");
    Tensor& weight = m.register_parameter("weight", tg::tensor({1.0, 2.0}));
    Tensor& counts = m.register_buffer("counts", tg::from_vector(std::vector<int64_t>{3, 4}, {2}));
    const std::string error = error_of([&] {
        m.load_state_dict({{"weight", tg::tensor({5.0, 6.0})}, {"counts", tg::tensor({1.0, kNan})}});
    });
    CHECK(error.rfind("load_state_dict: 'counts': to: element 1 (row-major) of the [2] float32 tensor: value nan", 0) == 0);
    CHECK(weight.to_vector<float>() == std::vector<float>{1.0f, 2.0f});
    CHECK(counts.to_vector<int64_t>() == std::vector<int64_t>{3, 4});
    // In range, the float values load, converted.
    m.load_state_dict({{"weight", tg::tensor({5.0, 6.0})}, {"counts", tg::tensor({7.0, 8.0})}});
    CHECK(counts.dtype() == tg::kInt64);
    CHECK(counts.to_vector<int64_t>() == std::vector<int64_t>{7, 8});
}
