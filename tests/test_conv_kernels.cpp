// The float32 convolution passes' two kernels (oneDNN's primitives and im2col + GEMM) against the
// float64 reference, on geometries that reach every branch of the im2col: padding, stride,
// dilation, non-square kernels and images, a slab boundary inside an image.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/generator.hpp"
#include "engine/tensor_math.hpp"
#include "engine/threads.hpp"
#include "ops/kernels/conv_depthwise.hpp"
#include "ops/kernels/conv_few_channels.hpp"
#include "ops/kernels/conv_gemm.hpp"
#include "ops/kernels/conv_onednn.hpp"
#include "ops/kernels/cpu_isa.hpp"
#include "ops/kernels/conv_reference.hpp"
#include "ops/reduce.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

struct Case {
    int64_t N, C, H, W, F, KH, KW, stride, pad, dilation;
};

tg::kernels::ConvGeometry geometry(const Case& c) {
    tg::kernels::ConvGeometry g{c.N, c.C, c.H, c.W, c.F, c.KH, c.KW, 0, 0, c.stride, c.stride, c.pad, c.pad, c.dilation, c.dilation, 1};
    g.OH = (c.H + 2 * c.pad - c.dilation * (c.KH - 1) - 1) / c.stride + 1;
    g.OW = (c.W + 2 * c.pad - c.dilation * (c.KW - 1) - 1) / c.stride + 1;
    return g;
}

std::string describe(const Case& c) {
    return "x[" + std::to_string(c.N) + "," + std::to_string(c.C) + "," + std::to_string(c.H) + "," + std::to_string(c.W) + "] w[" +
           std::to_string(c.F) + "," + std::to_string(c.C) + "," + std::to_string(c.KH) + "," + std::to_string(c.KW) + "] s" +
           std::to_string(c.stride) + " p" + std::to_string(c.pad) + " d" + std::to_string(c.dilation);
}

double largest(const Tensor& t) { return tg::max_abs_diff(t, tg::zeros_like(t)); }

// Geometries every kernel is checked on, then each test's own.
std::vector<Case> with_common_cases(std::vector<Case> own) {
    std::vector<Case> cases = {
        {2, 8, 9, 7, 5, 3, 3, 1, 1, 1},    // 'same' padding, odd sizes
        {3, 16, 12, 10, 4, 3, 2, 2, 1, 1}, // stride 2, non-square kernel
        {2, 8, 11, 11, 6, 3, 3, 1, 2, 2},  // dilation 2 with padding
        {1, 3, 6, 6, 2, 3, 3, 1, 0, 1},    // few channels (the oneDNN side of the rules)
    };
    cases.insert(cases.end(), own.begin(), own.end());
    return cases;
}

// Unit normals in float64 for the reference, and the same values in float32, activations
// channels-last, for the fast kernels.
struct Inputs {
    Tensor x64, w64, dout64, x, w, dout;
};

Inputs random_inputs(const Case& c, const tg::kernels::ConvGeometry& g, tg::Generator& gen) {
    Inputs in;
    in.x64 = tg::randn({c.N, c.C, c.H, c.W}, gen, {.dtype = tg::kFloat64});
    in.w64 = tg::randn({c.F, c.C / g.groups, c.KH, c.KW}, gen, {.dtype = tg::kFloat64});
    in.dout64 = tg::randn({c.N, c.F, g.OH, g.OW}, gen, {.dtype = tg::kFloat64});
    in.x = in.x64.to(tg::kFloat32).contiguous(tg::MemoryFormat::ChannelsLast);
    in.w = in.w64.to(tg::kFloat32);
    in.dout = in.dout64.to(tg::kFloat32).contiguous(tg::MemoryFormat::ChannelsLast);
    return in;
}

}  // namespace

TEST_CASE("conv2d weight gradient: im2col + GEMM and oneDNN both match the float64 reference") {
    tg::Generator gen(7);
    const auto cases = with_common_cases({
        {4, 64, 20, 20, 3, 1, 1, 1, 0, 1}, // 1x1; 1600 pixels, so several 512-row slabs
        {9, 3, 31, 33, 40, 3, 3, 1, 1, 1}, // 9207 pixels: 16 chunks of slabs; db longer than a row of cols
    });
    for (const Case& c : cases) {
        CAPTURE(describe(c));
        const auto g = geometry(c);
        const auto [x64, w64, dout64, x, w, dout] = random_inputs(c, g, gen);
        const Tensor want = tg::kernels::conv2d_backward_weights_reference<double>(x64, dout64, g);
        const Tensor want_bias = tg::sum(dout64, {0, 2, 3});
        // Sums of up to a few thousand products of unit normals: float32 rounding stays under 1e-4
        // relative to the largest entry.
        const double scale = largest(want);
        for (const bool gemm : {true, false}) {
            CAPTURE(gemm);
            const auto got = gemm ? tg::kernels::conv2d_backward_weights_im2col(x, dout, g, true)
                                  : tg::kernels::conv2d_backward_weights_onednn(x, dout, g, true);
            CHECK(got.weight.shape() == want.shape());
            CHECK(tg::max_abs_diff(got.weight.to(tg::kFloat64), want) <= 1e-4 * scale);
            CHECK(tg::max_abs_diff(got.bias.to(tg::kFloat64), want_bias) <= 1e-4 * largest(want_bias));
        }
    }
}

TEST_CASE("conv2d weight gradient: the kernel rule takes im2col + GEMM for one group and 64 or more products on AVX2, outputs of at most 4 pixels an image on AVX-512") {
    const bool avx512 = tg::kernels::onednn_has_avx512();
    auto g = geometry({1, 64, 8, 8, 8, 3, 3, 1, 1, 1});
    CHECK(tg::kernels::conv2d_weight_grad_uses_gemm(g) == !avx512);
    g.groups = 2;
    CHECK_FALSE(tg::kernels::conv2d_weight_grad_uses_gemm(g));
    CHECK_FALSE(tg::kernels::conv2d_weight_grad_uses_gemm(geometry({1, 3, 8, 8, 8, 3, 3, 1, 1, 1})));
    // ResNet-18's last stage on 32x32 images: a 1x1 output, 4608 products; and a 2x2 one.
    CHECK(tg::kernels::conv2d_weight_grad_uses_gemm(geometry({32, 512, 1, 1, 512, 3, 3, 1, 1, 1})));
    CHECK(tg::kernels::conv2d_weight_grad_uses_gemm(geometry({32, 256, 2, 2, 256, 3, 3, 1, 1, 1})));
    // 3x3 output pixels, and a 1x1 window: oneDNN's on AVX-512.
    CHECK(tg::kernels::conv2d_weight_grad_uses_gemm(geometry({32, 256, 3, 3, 256, 3, 3, 1, 1, 1})) == !avx512);
    CHECK(tg::kernels::conv2d_weight_grad_uses_gemm(geometry({32, 256, 2, 2, 256, 1, 1, 1, 0, 1})) == !avx512);
}

TEST_CASE("conv2d forward: im2col + GEMM and oneDNN both match the float64 reference, with and without bias") {
    tg::Generator gen(11);
    const auto cases = with_common_cases({
        {5, 12, 19, 17, 7, 3, 3, 1, 1, 1},  // 1615 pixels: 16 slabs of 101 rows and a short last one
    });
    for (const Case& c : cases) {
        CAPTURE(describe(c));
        const auto g = geometry(c);
        const auto [x64, w64, dout64, x, w, dout] = random_inputs(c, g, gen);
        const Tensor b64 = tg::randn({c.F}, gen, {.dtype = tg::kFloat64});
        const Tensor b = b64.to(tg::kFloat32);
        for (const bool with_bias : {true, false}) {
            const Tensor want = tg::kernels::conv2d_forward_reference<double>(x64, w64, with_bias ? b64 : Tensor(), g);
            const double scale = largest(want);
            for (const bool gemm : {true, false}) {
                CAPTURE(with_bias);
                CAPTURE(gemm);
                const Tensor bias = with_bias ? b : Tensor();
                const Tensor got = gemm ? tg::kernels::conv2d_forward_im2col(x, w, bias, g)
                                        : tg::kernels::conv2d_forward_onednn(x, w, bias, g);
                CHECK(got.shape() == want.shape());
                CHECK(got.is_contiguous(tg::MemoryFormat::ChannelsLast));
                CHECK(tg::max_abs_diff(got.to(tg::kFloat64), want) <= 1e-5 * scale);
            }
        }
    }
}

TEST_CASE("conv2d input gradient: im2col + GEMM on the flipped weights and oneDNN both match the float64 reference") {
    tg::Generator gen(13);
    // Stride 1, the only stride the GEMM form takes; every padding it allows, up to dilation x (kernel - 1).
    const std::vector<Case> cases = {
        {2, 8, 9, 7, 5, 3, 3, 1, 1, 1},     // 'same' padding
        {2, 6, 9, 8, 7, 3, 3, 1, 0, 1},     // no padding: the transposed convolution pads by 2
        {3, 16, 12, 10, 4, 3, 2, 1, 1, 1},  // non-square kernel, padding equal to KW - 1
        {2, 8, 11, 11, 6, 3, 3, 1, 2, 2},   // dilation 2 with padding
        {2, 4, 13, 11, 9, 5, 5, 1, 4, 1},   // padding KH - 1: the output is larger than the input
        {5, 7, 19, 17, 12, 3, 3, 1, 1, 1},  // 1615 pixels, several slabs
    };
    for (const Case& c : cases) {
        CAPTURE(describe(c));
        const auto g = geometry(c);
        const auto [x64, w64, dout64, x, w, dout] = random_inputs(c, g, gen);
        const Tensor want = tg::kernels::conv2d_backward_data_reference<double>(dout64, w64, g);
        const double scale = largest(want);
        for (const bool gemm : {true, false}) {
            CAPTURE(gemm);
            const Tensor got = gemm ? tg::kernels::conv2d_backward_data_im2col(dout, w, g)
                                    : tg::kernels::conv2d_backward_data_onednn(dout, w, g);
            CHECK(got.shape() == want.shape());
            CHECK(got.is_contiguous(tg::MemoryFormat::ChannelsLast));
            CHECK(tg::max_abs_diff(got.to(tg::kFloat64), want) <= 1e-5 * scale);
        }
    }
}

TEST_CASE("conv2d im2col + GEMM forward and input gradient read channels-last and strided weights in place, with the same bits") {
    tg::Generator gen(23);
    const Case c{3, 12, 9, 8, 10, 3, 2, 1, 1, 1};
    const auto g = geometry(c);
    const auto [x64, w64, dout64, x, w, dout] = random_inputs(c, g, gen);
    const Tensor forward = tg::kernels::conv2d_forward_im2col(x, w, Tensor(), g);
    const Tensor input_grad = tg::kernels::conv2d_backward_data_im2col(dout, w, g);
    // OHWI memory (a model moved to channels-last), and a view that is neither layout.
    const Tensor wide = tg::randn({c.F, c.C, c.KH, 2 * c.KW}, gen);
    Tensor strided = wide.slice(3, 0, 2 * c.KW, 2);
    strided.copy_(w);
    for (const Tensor& other : {w.contiguous(tg::MemoryFormat::ChannelsLast), strided}) {
        CHECK(tg::max_abs_diff(tg::kernels::conv2d_forward_im2col(x, other, Tensor(), g), forward) == 0.0);
        CHECK(tg::max_abs_diff(tg::kernels::conv2d_backward_data_im2col(dout, other, g), input_grad) == 0.0);
    }
}

TEST_CASE("conv2d im2col + GEMM passes give the same bits at 1 and 2 threads") {
    tg::Generator gen(17);
    const Case c{6, 16, 21, 19, 24, 3, 3, 1, 1, 1};
    const auto g = geometry(c);
    const Tensor x = tg::randn({c.N, c.C, c.H, c.W}, gen).contiguous(tg::MemoryFormat::ChannelsLast);
    const Tensor w = tg::randn({c.F, c.C, c.KH, c.KW}, gen), b = tg::randn({c.F}, gen);
    const Tensor dout = tg::randn({c.N, c.F, g.OH, g.OW}, gen).contiguous(tg::MemoryFormat::ChannelsLast);
    std::vector<Tensor> forward, input_grad, weight_grad, bias_grad;
    for (const int threads : {1, 2}) {
        const tg::ThreadCountGuard guard(threads);
        forward.push_back(tg::kernels::conv2d_forward_im2col(x, w, b, g));
        input_grad.push_back(tg::kernels::conv2d_backward_data_im2col(dout, w, g));
        const auto grads = tg::kernels::conv2d_backward_weights_im2col(x, dout, g, true);  // 2394 pixels: 5 chunks
        weight_grad.push_back(grads.weight);
        bias_grad.push_back(grads.bias);
    }
    CHECK(tg::max_abs_diff(forward[0], forward[1]) == 0.0);
    CHECK(tg::max_abs_diff(input_grad[0], input_grad[1]) == 0.0);
    CHECK(tg::max_abs_diff(weight_grad[0], weight_grad[1]) == 0.0);
    CHECK(tg::max_abs_diff(bias_grad[0], bias_grad[1]) == 0.0);
}

TEST_CASE("conv2d forward and input gradient: the kernel rules take im2col + GEMM on AVX2 for one group and windows over 1x1 with long enough sums") {
    const bool avx2 = !tg::kernels::onednn_has_avx512();
    auto g = geometry({16, 32, 8, 8, 64, 3, 3, 1, 1, 1});  // forward: 288 products; input gradient: 576, 32 wide
    CHECK(tg::kernels::conv2d_forward_uses_gemm(g) == avx2);
    CHECK(tg::kernels::conv2d_backward_data_uses_gemm(g) == avx2);
    g.groups = 2;
    CHECK_FALSE(tg::kernels::conv2d_forward_uses_gemm(g));
    CHECK_FALSE(tg::kernels::conv2d_backward_data_uses_gemm(g));
    CHECK_FALSE(tg::kernels::conv2d_forward_uses_gemm(geometry({1, 16, 8, 8, 64, 3, 3, 1, 1, 1})));   // 144 products
    CHECK_FALSE(tg::kernels::conv2d_forward_uses_gemm(geometry({1, 512, 8, 8, 64, 1, 1, 1, 0, 1})));  // 1x1
    CHECK_FALSE(tg::kernels::conv2d_backward_data_uses_gemm(geometry({16, 8, 8, 8, 64, 3, 3, 1, 1, 1})));   // 8 wide
    CHECK_FALSE(tg::kernels::conv2d_backward_data_uses_gemm(geometry({16, 64, 8, 8, 32, 3, 3, 1, 1, 1})));  // 288 products
    CHECK_FALSE(tg::kernels::conv2d_backward_data_uses_gemm(geometry({16, 64, 8, 8, 64, 3, 3, 2, 1, 1})));  // stride 2
    CHECK_FALSE(tg::kernels::conv2d_backward_data_uses_gemm(geometry({16, 64, 8, 8, 64, 3, 3, 1, 3, 1})));  // padding 3 > 2
    CHECK_FALSE(tg::kernels::conv2d_backward_data_uses_gemm(geometry({15, 64, 8, 8, 64, 3, 3, 1, 1, 1})));  // 960 pixels
}

TEST_CASE("conv2d forward: on AVX-512 the kernel rule takes im2col + GEMM for outputs of at most 4 pixels an image, 128 pixels in all") {
    const bool avx512 = tg::kernels::onednn_has_avx512();
    // ResNet-18's third stage on 32x32 images at batch 32 (2x2 outputs); its 1x1 downsample.
    CHECK(tg::kernels::conv2d_forward_uses_gemm(geometry({32, 256, 2, 2, 256, 3, 3, 1, 1, 1})));
    CHECK(tg::kernels::conv2d_forward_uses_gemm(geometry({32, 128, 2, 2, 256, 1, 1, 1, 0, 1})) == avx512);
    // 32 pixels in all: one slab, which one thread would compute alone.
    CHECK(tg::kernels::conv2d_forward_uses_gemm(geometry({32, 512, 1, 1, 512, 3, 3, 1, 1, 1})) == !avx512);
    // 4x4 outputs: oneDNN's on AVX-512. The input gradient stays with oneDNN on every such shape.
    CHECK(tg::kernels::conv2d_forward_uses_gemm(geometry({32, 128, 4, 4, 128, 3, 3, 1, 1, 1})) == !avx512);
    CHECK(tg::kernels::conv2d_backward_data_uses_gemm(geometry({32, 256, 2, 2, 256, 3, 3, 1, 1, 1})) == false);
}

TEST_CASE("depthwise conv2d weight gradient: the channel-loop kernel matches the float64 reference and oneDNN, at any thread count") {
    tg::Generator gen(19);
    // {N, C, H, W, F = C, KH, KW, stride, pad, dilation}; 40 channels: two full blocks of 16 and a short one.
    const std::vector<Case> cases = {
        {2, 40, 9, 7, 40, 3, 3, 1, 1, 1},   // 'same' padding, odd sizes
        {3, 16, 12, 10, 16, 3, 2, 2, 1, 1}, // stride 2, non-square kernel
        {2, 24, 11, 11, 24, 3, 3, 1, 2, 2}, // dilation 2 with padding
        {32, 96, 1, 1, 96, 3, 3, 1, 1, 1},  // a 1x1 image: only the centre tap sees data
        {4, 5, 6, 6, 5, 5, 5, 1, 2, 1},     // fewer channels than a vector
    };
    for (const Case& c : cases) {
        CAPTURE(describe(c));
        auto g = geometry(c);
        g.groups = c.C;
        const auto [x64, w64, dout64, x, w, dout] = random_inputs(c, g, gen);
        const Tensor want = tg::kernels::conv2d_backward_weights_reference<double>(x64, dout64, g);
        const Tensor want_bias = tg::sum(dout64, {0, 2, 3});
        std::vector<tg::kernels::ConvWeightGrads> got;
        for (const int threads : {1, 2}) {
            const tg::ThreadCountGuard guard(threads);
            got.push_back(tg::kernels::conv2d_backward_weights_depthwise(x, dout, g, true));
        }
        CHECK(got[0].weight.shape() == want.shape());
        CHECK(tg::max_abs_diff(got[0].weight.to(tg::kFloat64), want) <= 1e-5 * largest(want));
        CHECK(tg::max_abs_diff(got[0].bias.to(tg::kFloat64), want_bias) <= 1e-5 * largest(want_bias));
        CHECK(tg::max_abs_diff(got[0].weight, got[1].weight) == 0.0);
        CHECK(tg::max_abs_diff(got[0].bias, got[1].bias) == 0.0);
        const auto onednn = tg::kernels::conv2d_backward_weights_onednn(x, dout, g, true);
        CHECK(tg::max_abs_diff(onednn.weight.to(tg::kFloat64), want) <= 1e-5 * largest(want));
    }
    auto g = geometry({2, 8, 5, 5, 8, 3, 3, 1, 1, 1});
    g.groups = 8;
    CHECK(tg::kernels::conv2d_weight_grad_uses_depthwise(g) == !tg::kernels::onednn_has_avx512());
    g.groups = 4;  // two channels per group
    CHECK_FALSE(tg::kernels::conv2d_weight_grad_uses_depthwise(g));
    // MobileNetV2's late layers on 32x32 images: 2x2 and 1x1 images take the loop on every ISA.
    for (const int64_t side : {1, 2}) {
        auto small = geometry({32, 576, side, side, 576, 3, 3, 1, 1, 1});
        small.groups = 576;
        CHECK(tg::kernels::conv2d_weight_grad_uses_depthwise(small));
    }
}

TEST_CASE("conv2d few-channel kernels: forward and weight gradient match the float64 reference, with the same bits at 1 and 2 threads") {
    if (!tg::kernels::conv2d_few_channels_supported(geometry({1, 3, 8, 8, 32, 3, 3, 1, 1, 1}))) {
        MESSAGE("this build's loops have no AVX-512: the few-channel kernels are never picked");
        return;
    }
    tg::Generator gen(29);
    // {N, C, H, W, F, KH, KW, stride, pad, dilation}: the SmallCNN's conv1 on a smaller batch, then
    // every filter width (16 to 64: 1 to 4 vectors, each with its own register blocking), stride,
    // dilation, padding wider than the window's reach, non-square images and windows, one image,
    // output rows whose pixel count is no multiple of a block, and a 27-tap window split in blocks.
    const std::vector<Case> cases = {
        {4, 3, 32, 32, 32, 3, 3, 1, 1, 1},
        {3, 3, 11, 13, 16, 3, 3, 1, 1, 1},
        {2, 3, 9, 7, 48, 3, 3, 2, 1, 1},
        {1, 3, 10, 9, 64, 3, 3, 1, 2, 2},
        {5, 1, 12, 10, 32, 5, 5, 1, 2, 1},  // one channel, 5x5: 25 taps
        {2, 2, 7, 12, 32, 2, 3, 2, 0, 1},   // non-square window, no padding
        {17, 3, 6, 5, 16, 3, 3, 1, 3, 1},   // 17 images: chunks of one and two; padding 3 > the window's reach
        {1, 32, 5, 6, 32, 1, 1, 1, 0, 1},   // 1x1 with 32 channels: the longest sum taken
    };
    for (const Case& c : cases) {
        CAPTURE(describe(c));
        const auto g = geometry(c);
        REQUIRE(tg::kernels::conv2d_few_channels_supported(g));
        const auto [x64, w64, dout64, x, w, dout] = random_inputs(c, g, gen);
        const Tensor b64 = tg::randn({c.F}, gen, {.dtype = tg::kFloat64});
        const Tensor b = b64.to(tg::kFloat32);
        const Tensor want_out = tg::kernels::conv2d_forward_reference<double>(x64, w64, b64, g);
        const Tensor want_out_nobias = tg::kernels::conv2d_forward_reference<double>(x64, w64, Tensor(), g);
        const Tensor want_dw = tg::kernels::conv2d_backward_weights_reference<double>(x64, dout64, g);
        const Tensor want_db = tg::sum(dout64, {0, 2, 3});
        std::vector<Tensor> out, dw, db;
        for (const int threads : {1, 2}) {
            const tg::ThreadCountGuard guard(threads);
            out.push_back(tg::kernels::conv2d_forward_few_channels(x, w, b, g));
            const auto grads = tg::kernels::conv2d_backward_weights_few_channels(x, dout, g, true);
            dw.push_back(grads.weight);
            db.push_back(grads.bias);
        }
        CHECK(out[0].shape() == want_out.shape());
        CHECK(out[0].is_contiguous(tg::MemoryFormat::ChannelsLast));
        CHECK(tg::max_abs_diff(out[0].to(tg::kFloat64), want_out) <= 1e-5 * largest(want_out));
        const Tensor nobias = tg::kernels::conv2d_forward_few_channels(x, w.contiguous(tg::MemoryFormat::ChannelsLast), Tensor(), g);
        CHECK(tg::max_abs_diff(nobias.to(tg::kFloat64), want_out_nobias) <= 1e-5 * largest(want_out_nobias));
        CHECK(dw[0].shape() == want_dw.shape());
        CHECK(tg::max_abs_diff(dw[0].to(tg::kFloat64), want_dw) <= 1e-4 * largest(want_dw));
        CHECK(tg::max_abs_diff(db[0].to(tg::kFloat64), want_db) <= 1e-4 * largest(want_db));
        CHECK(tg::max_abs_diff(out[0], out[1]) == 0.0);
        CHECK(tg::max_abs_diff(dw[0], dw[1]) == 0.0);
        CHECK(tg::max_abs_diff(db[0], db[1]) == 0.0);
        CHECK_FALSE(tg::kernels::conv2d_backward_weights_few_channels(x, dout, g, false).bias.defined());
    }
}

TEST_CASE("conv2d few-channel kernels take one group, at most 32 products and 16 to 64 filters in whole vectors") {
    using tg::kernels::conv2d_few_channels_supported;
    const auto conv1 = geometry({64, 3, 32, 32, 32, 3, 3, 1, 1, 1});  // the SmallCNN's first layer
    if (!conv2d_few_channels_supported(conv1)) {  // no AVX-512 loops in this build: never picked
        CHECK_FALSE(tg::kernels::conv2d_forward_uses_few_channels(conv1));
        CHECK_FALSE(tg::kernels::conv2d_weight_grad_uses_few_channels(conv1));
        return;
    }
    // The rules: AVX-512 only (DNNL_MAX_CPU_ISA=AVX2 keeps oneDNN), stride and dilation 1, 8
    // images or more, the filter counts measured.
    const bool avx512 = tg::kernels::onednn_has_avx512();
    CHECK(tg::kernels::conv2d_forward_uses_few_channels(conv1) == avx512);
    CHECK(tg::kernels::conv2d_weight_grad_uses_few_channels(conv1) == avx512);
    CHECK(tg::kernels::conv2d_forward_uses_few_channels(geometry({64, 3, 32, 32, 64, 3, 3, 1, 1, 1})) == avx512);
    CHECK_FALSE(tg::kernels::conv2d_weight_grad_uses_few_channels(geometry({64, 3, 32, 32, 64, 3, 3, 1, 1, 1})));
    CHECK_FALSE(tg::kernels::conv2d_weight_grad_uses_few_channels(geometry({64, 3, 32, 32, 16, 3, 3, 1, 1, 1})));
    CHECK_FALSE(tg::kernels::conv2d_forward_uses_few_channels(geometry({64, 3, 32, 32, 48, 3, 3, 1, 1, 1})));
    CHECK_FALSE(tg::kernels::conv2d_forward_uses_few_channels(geometry({64, 3, 32, 32, 32, 3, 3, 2, 1, 1})));
    CHECK_FALSE(tg::kernels::conv2d_weight_grad_uses_few_channels(geometry({64, 3, 32, 32, 32, 3, 3, 1, 2, 2})));
    CHECK_FALSE(tg::kernels::conv2d_forward_uses_few_channels(geometry({4, 3, 32, 32, 32, 3, 3, 1, 1, 1})));
    CHECK(tg::kernels::conv2d_forward_uses_few_channels(geometry({8, 3, 32, 32, 32, 3, 3, 1, 1, 1})) == avx512);
    CHECK_FALSE(conv2d_few_channels_supported(geometry({1, 4, 8, 8, 32, 3, 3, 1, 1, 1})));   // 36 products
    CHECK_FALSE(conv2d_few_channels_supported(geometry({1, 3, 8, 8, 24, 3, 3, 1, 1, 1})));   // 24 filters
    CHECK_FALSE(conv2d_few_channels_supported(geometry({1, 3, 8, 8, 80, 3, 3, 1, 1, 1})));   // 80 filters
    auto grouped = geometry({1, 2, 8, 8, 32, 3, 3, 1, 1, 1});  // 18 products: only the groups refuse it
    grouped.groups = 2;
    CHECK_FALSE(conv2d_few_channels_supported(grouped));
}

// The layout changes around every convolution of a row-major network: each image's [C, H*W]
// matrix transposed in 8 x 8 register tiles. Shapes with ragged edges on either side, fewer than
// 8 rows or columns, the long side either way, one image and enough images to run in parallel.
TEST_CASE("to_memory_format: the tiled transpose gives a strided copy's exact bits, both ways, at 1 and 2 threads") {
    tg::Generator gen(11);
    const std::vector<tg::Shape> shapes = {{2, 3, 5, 7},   {1, 8, 4, 2},   {3, 13, 3, 7}, {4, 32, 16, 16},
                                           {64, 3, 9, 9},  {2, 17, 1, 1},  {1, 1, 5, 5},  {9, 40, 6, 11}};
    for (const int threads : {1, 2}) {
        const tg::ThreadCountGuard guard(threads);
        for (const tg::Shape& shape : shapes) {
            CAPTURE(tg::to_string(shape));
            CAPTURE(threads);
            const Tensor x = tg::randn(shape, gen);  // row-major
            const Tensor nhwc = tg::kernels::to_memory_format(x, tg::MemoryFormat::ChannelsLast);
            CHECK(nhwc.is_contiguous(tg::MemoryFormat::ChannelsLast));
            CHECK(tg::max_abs_diff(nhwc, tg::as_contiguous(x, tg::MemoryFormat::ChannelsLast)) == 0.0);
            const Tensor back = tg::kernels::to_memory_format(nhwc, tg::MemoryFormat::Contiguous);
            CHECK(back.is_contiguous());
            CHECK(tg::max_abs_diff(back, x) == 0.0);
        }
    }
}
