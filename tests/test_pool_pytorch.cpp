// Pooling options against PyTorch 1.13 (tests/models/pool_reference.tgck, written by
// tests/models/make_pool_reference.py): ceil_mode, count_include_pad=false, dilation,
// divisor_override, return_indices and max_unpool2d. float64 with the reference kernels to 1e-12;
// float32 with the fast kernels, row-major and channels-last, to 1e-5 relative. Then what a
// reference file cannot show: layouts, second derivatives, the nn layers (bad arguments are in
// tests/test_conv_pool.cpp).
#include <doctest/doctest.h>

#include <functional>
#include <map>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Pair;
using tg::Tensor;

namespace {

// (input, indices) -> output; indices is undefined for the pools.
using Fn = std::function<Tensor(const Tensor&, const Tensor&)>;

const std::map<std::string, Fn>& cases() {
    static const std::map<std::string, Fn> c = {
        {"max_ceil_overhang", [](auto& x, auto&) { return tg::max_pool2d(x, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true}); }},
        {"max_dilation2", [](auto& x, auto&) { return tg::max_pool2d(x, {.kernel_size = 3, .stride = 1, .padding = 1, .dilation = 2}); }},
        {"max_dilation_ceil_nonsquare",
         [](auto& x, auto&) {
             return tg::max_pool2d(x, {.kernel_size = {2, 3}, .stride = Pair{2, 1}, .padding = 1, .dilation = {2, 1}, .ceil_mode = true});
         }},
        {"avg_ceil_overhang", [](auto& x, auto&) { return tg::avg_pool2d(x, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true}); }},
        {"avg_ceil_k2_odd", [](auto& x, auto&) { return tg::avg_pool2d(x, {.kernel_size = 2, .ceil_mode = true}); }},
        {"avg_exclude_pad",
         [](auto& x, auto&) {
             return tg::avg_pool2d(x, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false});
         }},
        {"avg_divisor_override",
         [](auto& x, auto&) {
             return tg::avg_pool2d(x, {.kernel_size = {3, 2}, .stride = Pair{2, 1}, .padding = {1, 0}, .divisor_override = 5});
         }},
        {"max_indices",
         [](auto& x, auto& want) {
             auto [out, indices] = tg::max_pool2d_with_indices(x, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true});
             CHECK(indices.dtype() == tg::kInt64);
             CHECK(indices.template to_vector<int64_t>() == want.template to_vector<int64_t>());
             return out;
         }},
        {"unpool_output_size", [](auto& x, auto& i) { return tg::max_unpool2d(x, i, {.kernel_size = 2, .output_size = Pair{7, 8}}); }},
        {"unpool_overlapping",
         [](auto& x, auto& i) {
             return tg::max_unpool2d(x, i, {.kernel_size = 3, .stride = 2, .padding = 1, .output_size = Pair{7, 7}});
         }},
    };
    return c;
}

// The largest difference, relative to the reference's largest element.
double relative_error(const Tensor& got, const Tensor& want) {
    REQUIRE(got.shape() == want.shape());
    const double scale = tg::max_abs_diff(want, tg::zeros_like(want));
    return tg::max_abs_diff(got, want) / (scale > 0 ? scale : 1.0);
}

void check_all(tg::DType dtype, bool reference, tg::MemoryFormat format, double tol) {
    std::map<std::string, Tensor> ref;
    for (auto& [name, t] : nn::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/pool_reference.tgck")) ref[name] = t;
    for (const auto& [name, fn] : cases()) {
        INFO(name, " in ", tg::dtype_name(dtype), reference ? ", reference" : ", fast");
        Tensor x = ref.at(name + ".in0").to(dtype).contiguous(format).detach().requires_grad_();
        const Tensor indices = ref.count(name + ".indices") ? ref.at(name + ".indices").to(tg::kInt64).contiguous(format) : Tensor();
        tg::ReferenceKernelsGuard guard(reference);
        const Tensor out = fn(x, indices);
        CHECK_MESSAGE(relative_error(out, ref.at(name + ".out")) <= tol, "output differs by " << relative_error(out, ref.at(name + ".out")));
        const Tensor grad = tg::grad({out}, {x}, {ref.at(name + ".cot").to(dtype)})[0];
        CHECK_MESSAGE(relative_error(grad, ref.at(name + ".grad0")) <= tol, "gradient differs by " << relative_error(grad, ref.at(name + ".grad0")));
    }
}

}  // namespace

TEST_CASE("pooling options match PyTorch in float64 (reference kernels)") {
    check_all(tg::kFloat64, true, tg::MemoryFormat::Contiguous, 1e-12);
}

TEST_CASE("pooling options match PyTorch in float32 (fast kernels, both layouts)") {
    check_all(tg::kFloat32, false, tg::MemoryFormat::Contiguous, 1e-5);
    check_all(tg::kFloat32, false, tg::MemoryFormat::ChannelsLast, 1e-5);
}

TEST_CASE("pooling: a hand-checked divisor with ceil_mode, count_include_pad and divisor_override") {
    // One 3x3 plane of ones, k2 s2 ceil_mode: windows {0,1}x{0,1}, {0,1}x{2}, {2}x{0,1}, {2}x{2}.
    // count_include_pad=true divides by the window clipped to the (unpadded) input, so every mean
    // is 1; divisor_override 4 gives the sums / 4.
    const Tensor x = tg::ones({1, 1, 3, 3}, {.dtype = tg::kFloat64});
    for (bool reference : {true, false}) {
        tg::ReferenceKernelsGuard guard(reference);
        const Tensor xf = reference ? x : x.to(tg::kFloat32);
        CHECK(tg::avg_pool2d(xf, {.kernel_size = 2, .ceil_mode = true}).to_vector<double>() == std::vector<double>{1, 1, 1, 1});
        CHECK(tg::avg_pool2d(xf, {.kernel_size = 2, .ceil_mode = true, .divisor_override = 4}).to_vector<double>() ==
              std::vector<double>{1, 0.5, 0.5, 0.25});
        // k3 s1 p1: the corner window covers 4 input and 5 padding cells.
        const Tensor included = tg::avg_pool2d(xf, {.kernel_size = 3, .stride = 1, .padding = 1});
        const Tensor excluded = tg::avg_pool2d(xf, {.kernel_size = 3, .stride = 1, .padding = 1, .count_include_pad = false});
        CHECK(included.at({0, 0, 0, 0}) == doctest::Approx(4.0 / 9.0));
        CHECK(excluded.at({0, 0, 0, 0}) == 1.0);
    }
}

TEST_CASE("max_pool2d_with_indices: channels-last indices, 3-D input, and the round trip through max_unpool2d") {
    tg::Generator gen(3);
    const Tensor x = tg::randn({2, 5, 6, 7}, gen);
    auto [out_rm, idx_rm] = tg::max_pool2d_with_indices(x, {.kernel_size = 2, .ceil_mode = true});
    auto [out_cl, idx_cl] = tg::max_pool2d_with_indices(x.contiguous(tg::MemoryFormat::ChannelsLast), {.kernel_size = 2, .ceil_mode = true});
    CHECK(idx_cl.is_contiguous(tg::MemoryFormat::ChannelsLast));
    CHECK(idx_rm.to_vector<int64_t>() == idx_cl.to_vector<int64_t>());
    // The unpooled tensor holds each window's maximum at its place and zeros elsewhere; pooling it
    // again gives the same maxima (the values are positive, so no zero can win).
    const Tensor positive = x * x + 1.0;
    auto [pooled, indices] = tg::max_pool2d_with_indices(positive, {.kernel_size = 2, .ceil_mode = true});
    const Tensor unpooled = tg::max_unpool2d(pooled, indices, {.kernel_size = 2, .output_size = Pair{6, 7}});
    CHECK(unpooled.shape() == tg::Shape{2, 5, 6, 7});
    CHECK(tg::allclose(tg::max_pool2d(unpooled, {.kernel_size = 2, .ceil_mode = true}), pooled, 0, 0));

    auto [out3, idx3] = tg::max_pool2d_with_indices(x.select(0, 1), {.kernel_size = 2});
    CHECK(out3.shape() == tg::Shape{5, 3, 3});
    CHECK(idx3.shape() == tg::Shape{5, 3, 3});
    CHECK(tg::max_unpool2d(out3, idx3, {.kernel_size = 2, .output_size = Pair{6, 7}}).shape() == tg::Shape{5, 6, 7});
}

TEST_CASE("max_unpool2d: second derivative through take and put_add") {
    // y = unpool(x)^2 summed: dy/dx = 2 x (a gather of 2 unpool(x)), d2y/dx2 = 2 per element.
    const Tensor x = tg::tensor({1.5, -2.0, 0.5, 3.0}, {.dtype = tg::kFloat64}).reshape({1, 1, 2, 2}).requires_grad_();
    const Tensor indices = tg::from_vector(std::vector<int64_t>{1, 4, 10, 15}, {1, 1, 2, 2});
    const Tensor y = tg::max_unpool2d(x, indices, {.kernel_size = 2});
    const Tensor dx = tg::grad({(y * y).sum()}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
    CHECK(tg::allclose(dx, x * 2.0, 0, 1e-15));
    const Tensor d2 = tg::grad({dx.sum()}, {x})[0];
    CHECK(d2.to_vector<double>() == std::vector<double>{2, 2, 2, 2});
}

TEST_CASE("nn::MaxPool2d, AvgPool2d and MaxUnpool2d take PyTorch's arguments in PyTorch's order") {
    tg::Generator gen(5);
    const Tensor x = tg::randn({2, 3, 7, 7}, gen);
    nn::MaxPool2d pool(3, Pair(2), 1, 1, /*ceil_mode=*/true);
    CHECK(tg::allclose(pool(x), tg::max_pool2d(x, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true}), 0, 0));
    auto [pooled, indices] = pool.forward_with_indices(x);
    nn::MaxUnpool2d unpool(3, Pair(2), 1);
    CHECK(unpool.forward(pooled, indices, Pair{7, 7}).shape() == x.shape());
    CHECK(tg::allclose(unpool(pooled, indices), tg::max_unpool2d(pooled, indices, {.kernel_size = 3, .stride = 2, .padding = 1}), 0, 0));
    CHECK_THROWS_AS(unpool(x), std::invalid_argument);  // two inputs
    nn::AvgPool2d avg(3, Pair(2), 1, true, /*count_include_pad=*/false, /*divisor_override=*/std::nullopt);
    CHECK(tg::allclose(avg(x),
                       tg::avg_pool2d(x, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false}), 0, 0));
    nn::AvgPool2d by_options(tg::Pool2dOptions{.kernel_size = 2, .divisor_override = 3});
    CHECK(by_options(x).shape() == tg::Shape{2, 3, 3, 3});
}
