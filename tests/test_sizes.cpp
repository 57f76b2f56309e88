// Sizes and geometries at the edges of int64: every op either computes PyTorch's answer or
// refuses with a std::invalid_argument that names it, quickly, before allocating anything large.
// PyTorch's answers are what tests/sizes_reference.py prints.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/checked_size.hpp"
#include "ops/conv.hpp"
#include "ops/conv_transpose.hpp"
#include "ops/kernels/gemm_backend.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/pad.hpp"
#include "ops/pooling.hpp"
#include "ops/reduce.hpp"
#include "ops/shape_ops.hpp"
#include "ops/view.hpp"
#include "tests/error_text.hpp"

namespace tg = tapegrad;
using tg::Pair;
using tg::Tensor;
using tg::testing::contains;
using tg::testing::error_of;

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t k2e30 = int64_t{1} << 30, k2e31 = int64_t{1} << 31, k2e40 = int64_t{1} << 40, k2e62 = int64_t{1} << 62;

// [1,1,4,4] holding 0..15 row-major, in `dtype`.
Tensor ramp(tg::DType dtype = tg::kFloat32) {
    std::vector<double> v(16);
    for (int i = 0; i < 16; ++i) v[i] = i;
    return tg::from_vector(v, {1, 1, 4, 4}, {.dtype = dtype});
}

std::vector<double> values(const Tensor& t) {
    const Tensor c = t.detach().contiguous().to(tg::kFloat64);
    return {c.data<double>(), c.data<double>() + c.numel()};
}

// The error f throws, checked to be a std::invalid_argument that names `op`.
template <class F>
std::string refusal(const char* op, F&& f) {
    const std::string e = error_of(f);
    CHECK_MESSAGE(contains(e, std::string(op) + ":"), "expected an error naming ", op, ", got \"", e, "\"");
    return e;
}

}  // namespace

TEST_CASE("checked_size: the arithmetic refuses overflow, naming the op, and computes exactly where it fits") {
    CHECK(tg::checked_mul(k2e31, k2e31, "op", "x") == k2e62);
    CHECK(contains(refusal("some_op", [] { tg::checked_mul(k2e40, k2e40, "some_op", "the thing"); }), "the thing"));
    CHECK(contains(refusal("some_op", [] { tg::checked_add(kMax, 1, "some_op", "the sum"); }), "overflows int64"));
    refusal("some_op", [] { tg::checked_sub(kMin, 1, "some_op", "the difference"); });
    CHECK(tg::ceil_div(kMax, kMax) == 1);
    CHECK(tg::ceil_div(0, 3) == 0);
    // i * in / out for in = out = 2^40: i * in overflows, the quotient is i.
    CHECK(tg::mul_div_floor(k2e40 - 1, k2e40, k2e40) == k2e40 - 1);
    CHECK(tg::mul_div_floor(3, k2e62, k2e62 + 1) == 2);
    CHECK(tg::mul_div_ceil(3, k2e62, k2e62 + 1) == 3);
    // A window of 3 taps on 4 + 2 pad, every 2^62: one output.
    CHECK(tg::conv_output_size({4, 3, k2e62, 1}, "op") == 1);
    refusal("conv2d", [] { tg::conv_output_size({4, 3, 1, k2e62}, "conv2d"); });  // 2 * pad
    refusal("conv2d", [] { tg::conv_output_size({4, 3, 1, 0, k2e62}, "conv2d"); });  // dilation * (kernel - 1)
    CHECK(tg::conv_output_size({4, 5, 1, 0}, "op") == 0);                          // the kernel does not fit
}

TEST_CASE("numel and the factories: a shape of 2^80 elements is refused naming the factory, before allocating") {
    CHECK(contains(refusal("zeros", [] { tg::zeros({k2e40, k2e40}); }), "2^40"));
    refusal("ones", [] { tg::ones({k2e40, k2e40}); });
    refusal("numel", [] { tg::numel_of({k2e40, k2e40}); });
    refusal("from_vector", [] { tg::from_vector(std::vector<float>{}, {k2e40, k2e40}); });
    // 2^40 floats fit the element limit but no machine's memory: a clear error, not std::bad_alloc.
    CHECK(contains(refusal("zeros", [] { tg::zeros({k2e40}); }), "memory"));
    // An empty tensor matches any shape with a zero, but not one whose strides overflow.
    refusal("view", [] { tg::zeros({0}).view({0, k2e40, k2e40}); });
    refusal("reshape", [] { tg::zeros({0}).reshape({0, k2e40, -1}); });
}

TEST_CASE("adaptive_avg_pool2d: an output of 2^40 rows is refused at once; an empty batch gets PyTorch's empty answer") {
    const std::string e = refusal("adaptive_avg_pool2d", [] { tg::adaptive_avg_pool2d(ramp(), Pair(k2e40, 1)); });
    CHECK(contains(e, "[1,1,1099511627776,1]"));
    refusal("adaptive_avg_pool2d", [] { tg::adaptive_avg_pool2d(ramp(), Pair(kMax, kMax)); });
    const Tensor empty = tg::adaptive_avg_pool2d(tg::zeros({0, 1, 4, 4}), Pair(k2e40, 1));
    CHECK(empty.shape() == tg::Shape{0, 1, k2e40, 1});
    CHECK(tg::adaptive_avg_pool2d(tg::zeros({1, 0, 4, 4}, {.requires_grad = true}), Pair(k2e40, 1)).shape() == tg::Shape{1, 0, k2e40, 1});
}

TEST_CASE("pools of an empty batch whose rows are 2^30 long answer at once, forward and backward") {
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        CAPTURE(tg::dtype_name(dtype));
        const Tensor x = tg::zeros({0, 1, 1, k2e30}, {.dtype = dtype, .requires_grad = true});
        const Tensor m = tg::max_pool2d(x, {.kernel_size = Pair(1, 2)});
        CHECK(m.shape() == tg::Shape{0, 1, 1, k2e30 / 2});
        m.sum().backward();
        const Tensor a = tg::avg_pool2d(x, {.kernel_size = Pair(1, 2)});
        CHECK(a.shape() == tg::Shape{0, 1, 1, k2e30 / 2});
        a.sum().backward();
        CHECK(x.grad().shape() == x.shape());
        // 2^31 - 1 images of no channels: no loop over the images.
        const Tensor none = tg::zeros({k2e31 - 1, 0, 5, 3}, {.dtype = dtype, .requires_grad = true});
        const Tensor y = tg::max_pool2d(none, {.kernel_size = 1});
        CHECK(y.shape() == none.shape());
        y.sum().backward(Tensor(), std::nullopt, true);
    }
}

TEST_CASE("pools: kernels of 2^31 and more are refused as in PyTorch; 2^31 - 1 computes PyTorch's answer") {
    refusal("max_pool2d", [] { tg::max_pool2d(ramp(), {.kernel_size = Pair(k2e40, 1), .padding = Pair(k2e40 / 2, 0)}); });
    refusal("max_pool2d", [] { tg::max_pool2d(ramp(), {.kernel_size = Pair(k2e31, 1), .padding = Pair(k2e30, 0)}); });
    refusal("max_pool2d", [] { tg::max_pool2d(ramp(), {.kernel_size = 1, .dilation = Pair(k2e40, 1)}); });
    // With count_include_pad the divisor was (2^40)^2, past int64: the result was inf.
    refusal("avg_pool2d", [] { tg::avg_pool2d(ramp(), {.kernel_size = k2e40, .padding = k2e40 / 2}); });
    refusal("avg_pool2d", [] { tg::avg_pool2d(ramp(), {.kernel_size = 2, .stride = k2e62}); });
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        CAPTURE(tg::dtype_name(dtype));
        // Each row's window of 2^31 - 1 columns covers the whole row: its maximum.
        const Tensor y = tg::max_pool2d(ramp(dtype), {.kernel_size = Pair(1, k2e31 - 1), .padding = Pair(0, k2e30 - 1)});
        CHECK(y.shape() == tg::Shape{1, 1, 4, 1});
        CHECK(values(y) == std::vector<double>{3, 7, 11, 15});
        // One window of 2^30 x 2^30 over 4x4 plus 2^29 padding on each side: 16 ones over 2^60 taps.
        const Tensor ones = tg::ones({1, 1, 4, 4}, {.dtype = dtype});
        const Tensor a = tg::avg_pool2d(ones, {.kernel_size = k2e30, .padding = k2e30 / 2});
        CHECK(values(a) == std::vector<double>{static_cast<double>(static_cast<float>(1.3877787807814457e-17))});
        const Tensor b = tg::avg_pool2d(ramp(dtype), {.kernel_size = k2e30, .padding = k2e30 / 2, .count_include_pad = false});
        CHECK(values(b) == std::vector<double>{7.5});
    }
}

TEST_CASE("slice, narrow, split and chunk near INT64_MAX follow PyTorch's clamping, without overflow") {
    const Tensor x = ramp();
    // start 1, end clamped to 4, a step past the end: one row.
    CHECK(values(tg::slice(x, 2, 1, kMax, kMax)) == std::vector<double>{4, 5, 6, 7});
    CHECK(values(tg::slice(x, 2, kMin, kMax, 2)) == std::vector<double>{0, 1, 2, 3, 8, 9, 10, 11});
    CHECK(tg::slice(x, 2, kMax, kMin, 1).shape() == tg::Shape{1, 1, 0, 4});
    CHECK(contains(refusal("narrow", [&] { tg::narrow(x, 2, 1, kMax); }), "exceeds"));
    refusal("narrow", [&] { tg::narrow(x, 2, kMax, 1); });
    CHECK(values(tg::narrow(x, 2, -1, 1)) == std::vector<double>{12, 13, 14, 15});
    const std::vector<Tensor> whole = tg::split(x, kMax, 2);
    REQUIRE(whole.size() == 1);
    CHECK(whole[0].shape() == x.shape());
    CHECK(contains(refusal("split", [&] { tg::split(x, std::vector<int64_t>{kMax, kMax, 2}, 2); }), "more than"));
    // ceil(4 / INT64_MAX) = 1 row per chunk.
    const std::vector<Tensor> rows = tg::chunk(x, kMax, 2);
    REQUIRE(rows.size() == 4);
    CHECK(values(rows[3]) == std::vector<double>{12, 13, 14, 15});
    CHECK(tg::chunk(x, 3, 2).size() == 2);
    // 2^40 one-column parts of an empty tensor would never finish: refused at once.
    CHECK(contains(refusal("split", [] { tg::split(tg::zeros({0, k2e40}), int64_t{1}, 1); }), "memory"));
}

TEST_CASE("conv2d: a stride of 2^40 gives PyTorch's 1x1 answer, forward and backward; 0 input channels is refused") {
    for (bool reference : {false, true}) {
        CAPTURE(reference);
        const tg::ReferenceKernelsGuard guard(reference);
        for (int64_t stride : {k2e40, k2e62, kMax}) {
            CAPTURE(stride);
            const Tensor x = ramp().requires_grad_();
            // The one window: the top-left 3x3 of 0..15, summing to 45.
            const Tensor y = tg::conv2d(x, tg::ones({2, 1, 3, 3}), Tensor(), {.stride = stride});
            CHECK(y.shape() == tg::Shape{1, 2, 1, 1});
            CHECK(values(y) == std::vector<double>{45, 45});
            y.sum().backward();
            CHECK(values(x.grad()) == std::vector<double>{2, 2, 2, 0, 2, 2, 2, 0, 2, 2, 2, 0, 0, 0, 0, 0});
        }
        // Padding and dilation 2^30: only each window's middle tap reads the input, so the output is x.
        // (oneDNN takes time that grows with the padding to set this up; it must not be asked.)
        CHECK(values(tg::conv2d(ramp(), tg::ones({1, 1, 3, 3}), Tensor(), {.padding = k2e30, .dilation = k2e30})) == values(ramp()));
        // A one-tap kernel never applies its dilation (oneDNN refused 2^62 all the same).
        CHECK(values(tg::conv2d(ramp(), tg::ones({1, 1, 1, 1}), Tensor(), {.dilation = k2e62})) == values(ramp()));
        // A 1x1 kernel with a stride (the subsampling path) and a transposed convolution of one pixel.
        CHECK(values(tg::conv2d(ramp(), tg::ones({1, 1, 1, 1}), Tensor(), {.stride = k2e62})) == std::vector<double>{0});
        const Tensor t = tg::conv_transpose2d(tg::full({1, 1, 1, 1}, 2.0), tg::ones({1, 1, 3, 3}), Tensor(), {.stride = k2e40});
        CHECK(values(t) == std::vector<double>(9, 2.0));
    }
    CHECK(contains(refusal("conv2d", [] { tg::conv2d(tg::ones({1, 0, 4, 4}), tg::ones({2, 0, 3, 3})); }), "no channels"));
    refusal("conv_transpose2d", [] { tg::conv_transpose2d(tg::ones({1, 0, 4, 4}), tg::ones({0, 2, 3, 3})); });
    refusal("conv2d", [] { tg::conv2d(tg::ones({1, 1, 4, 4}), tg::ones({1, 1, 3, 3}), Tensor(), {.padding = k2e62}); });
    refusal("conv2d", [] { tg::conv2d(tg::ones({1, 1, 4, 4}), tg::ones({1, 1, 3, 3}), Tensor(), {.dilation = k2e62}); });
    refusal("conv2d", [] { tg::conv2d(tg::ones({1, 1, 4, 4}), tg::ones({1, 1, 3, 3}), Tensor(), {.padding = tg::kSame, .dilation = k2e62}); });
    refusal("conv_transpose2d", [] { tg::conv_transpose2d(tg::ones({1, 1, 4, 4}), tg::ones({1, 1, 3, 3}), Tensor(), {.stride = k2e62}); });
    // 'same' with an even kernel pads the input first; an empty input is refused before that copy
    // ([2^36,1,1,1], 256 GiB) is made.
    refusal("conv2d", [] { tg::conv2d(tg::zeros({int64_t{1} << 36, 1, 0, 0}), tg::ones({1, 1, 2, 2}), Tensor(), {.padding = tg::kSame}); });
}

TEST_CASE("errors name the op: unsqueeze past 8 dimensions, a conv2d output past 2^40 elements") {
    const Tensor eight = tg::zeros({1, 1, 1, 1, 1, 1, 1, 1});
    CHECK(contains(refusal("unsqueeze", [&] { tg::unsqueeze(eight, 0); }), "8 dimensions"));
    refusal("stack", [&] { tg::stack({eight, eight}, 0); });
    // [1, 2^21, 2049, 2049]: 2^43 elements.
    const std::string e = refusal("conv2d", [] { tg::conv2d(tg::ones({1, 1, 1, 1}), tg::ones({1 << 21, 1, 1, 1}), Tensor(), {.padding = 1024}); });
    CHECK(contains(e, "2^40"));
}

TEST_CASE("pad: an empty tensor padded to 2^40 gets PyTorch's empty answer; a pad past int64 is refused") {
    const Tensor y = tg::pad(tg::zeros({0, 4}), {k2e40 - 4, 0});
    CHECK(y.shape() == tg::Shape{0, k2e40});
    CHECK(contains(refusal("pad", [] { tg::pad(tg::zeros({0, 4}), {k2e40, 0}); }), "2^40"));  // past the largest tensor
    refusal("pad", [] { tg::pad(tg::zeros({0, 4}), {k2e62, k2e62}); });
    refusal("pad", [] { tg::pad(tg::zeros({2, 4}), {kMin, 0}); });
    refusal("pad", [] { tg::pad(tg::zeros({2, 4}), {k2e40, 0}); });  // 2^41 floats: more than any machine's memory
    // Cropping 2^63 - 1 and padding as much back leaves one element of padding, as (-5, 5) would.
    const Tensor crop = tg::pad(tg::ones({1, 1}), {-kMax, kMax});
    CHECK(values(crop) == std::vector<double>{0});
}

TEST_CASE("views of an empty tensor at an offset keep a valid pointer") {
    // narrow of [0,4] at column 1 offset the empty storage's null data (UBSan reported it).
    const Tensor x = tg::zeros({0, 4});
    CHECK(tg::narrow(x, 1, 1, 2).shape() == tg::Shape{0, 2});
    CHECK(tg::slice(x, 1, 3, 4).shape() == tg::Shape{0, 1});
    CHECK(tg::split(x, int64_t{3}, 1).size() == 2);
}

TEST_CASE("gemm: no size or stride of 2^31 or more reaches OpenBLAS, whose sizes are 32-bit") {
    using tg::kernels::GemmBackend;
    // On AVX-512 processors every product goes to oneDNN anyway; on AVX2 ones these went to OpenBLAS.
    CHECK(tg::kernels::gemm_backend(true, false, 1, 1, k2e31) == GemmBackend::OneDnn);
    CHECK(tg::kernels::gemm_backend(false, false, k2e31, 512, 512) == GemmBackend::OneDnn);
    CHECK(tg::kernels::gemm_backend(true, false, k2e40, k2e40, k2e40) == GemmBackend::OneDnn);  // M*N*K past int64
    if (!tg::kernels::have_openblas()) return;
    const float one = 1.0f;
    float c = 0.0f;
    refusal("gemm", [&] { tg::kernels::sgemm_on(GemmBackend::OpenBlas, false, false, k2e31, 1, 1, 1.0f, &one, 1, &one, 1, 0.0f, &c, 1); });
    refusal("gemm", [&] { tg::kernels::sgemm_on(GemmBackend::OpenBlas, false, false, 1, 1, 1, 1.0f, &one, k2e31, &one, 1, 0.0f, &c, 1); });
}
