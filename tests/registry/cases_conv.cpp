// Registry rows for conv2d: stride, padding, dilation, groups (depthwise too), non-square kernels
// and inputs, batch 1, with and without bias, and the SmallCNN's two convolutions.
#include "ops/conv.hpp"
#include "ops/view.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

// A conv2d row: inputs x, w and (when bias_shape is non-empty) b.
OpCase conv_case(std::string name, Shape x, Shape w, bool bias, Conv2dOptions o, bool fast_gradcheck = false) {
    std::vector<Shape> shapes{x, w};
    if (bias) shapes.push_back({w[0]});
    return {.name = "conv2d/" + name,
            .input_shapes = shapes,
            .fn = [o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), o); },
            .gradcheck_fast_mode = fast_gradcheck};
}

std::string dims(const Shape& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
    return out;
}

// A benchmark without bias. A network's first layer gets its input row-major from the data; every
// later layer gets the channels-last output of the previous conv (through bn, relu, pool). FLOPs:
// 2 N F OH OW C KH KW forward, three times that with the backward (dx and dw each cost one forward).
BenchShape conv_bench(const Shape& x, const Shape& w, int64_t stride, int64_t padding) {
    const bool first_layer = x[1] <= 3;
    const int64_t oh = (x[2] + 2 * padding - w[2]) / stride + 1, ow = (x[3] + 2 * padding - w[3]) / stride + 1;
    const double flops = 2.0 * static_cast<double>(x[0] * w[0] * oh * ow * w[1] * w[2] * w[3]);
    return {.name = "conv2d x[" + dims(x) + "] w[" + dims(w) + "]" + (stride != 1 ? " s" + std::to_string(stride) : "") + " p" +
                    std::to_string(padding),
            .shapes = {x, w},
            .formats = {first_layer ? MemoryFormat::Contiguous : MemoryFormat::ChannelsLast},
            .layout = first_layer ? "x row-major" : "x channels-last",
            .torch = "F.conv2d(x[0], x[1], None, " + std::to_string(stride) + ", " + std::to_string(padding) + ")",
            .flops_fwd = flops,
            .flops_fwd_bwd = 3 * flops};
}

RegisterOps conv_cases({
    conv_case("3x3", {2, 3, 5, 6}, {4, 3, 3, 3}, true, {}),
    // The benchmarks: a first layer, the SmallCNN's second, a ResNet-like 56x56, one input channel,
    // stride 2.
    with_bench(conv_case("no_bias_pad1", {2, 3, 5, 6}, {4, 3, 3, 3}, false, {.padding = 1}),
               {conv_bench({32, 3, 32, 32}, {32, 3, 3, 3}, 1, 1), conv_bench({32, 32, 16, 16}, {64, 32, 3, 3}, 1, 1),
                conv_bench({8, 64, 56, 56}, {64, 64, 3, 3}, 1, 1)}),
    with_bench(conv_case("no_bias_pad0", {2, 1, 7, 7}, {3, 1, 5, 5}, false, {}), {conv_bench({64, 1, 28, 28}, {16, 1, 5, 5}, 1, 0)}),
    with_bench(conv_case("no_bias_stride2_pad1", {2, 4, 6, 5}, {3, 4, 3, 3}, false, {.stride = 2, .padding = 1}),
               {conv_bench({32, 64, 16, 16}, {128, 64, 3, 3}, 2, 1)}),
    conv_case("stride2_pad1_odd", {2, 3, 7, 5}, {4, 3, 3, 3}, true, {.stride = 2, .padding = 1}),
    conv_case("nonsquare_kernel_stride", {1, 3, 6, 5}, {2, 3, 2, 3}, true, {.stride = {2, 1}, .padding = {0, 1}}),
    conv_case("dilation2", {2, 2, 7, 6}, {3, 2, 3, 2}, true, {.padding = {1, 2}, .dilation = 2}),
    conv_case("dilation_stride_mixed", {1, 2, 8, 7}, {2, 2, 3, 3}, false, {.stride = {1, 2}, .padding = 2, .dilation = {2, 1}}),
    conv_case("groups2", {2, 4, 5, 5}, {6, 2, 3, 3}, true, {.padding = 1, .groups = 2}),
    conv_case("depthwise", {2, 3, 5, 6}, {3, 1, 3, 3}, true, {.padding = 1, .groups = 3}),
    conv_case("depthwise_multiplier2_stride2", {1, 2, 6, 6}, {4, 1, 3, 3}, false, {.stride = 2, .padding = 1, .groups = 2}),
    conv_case("1x1_batch1", {1, 4, 3, 3}, {5, 4, 1, 1}, true, {}),
    // Few input channels, 16, 32 or 64 filters and 8 images: on AVX-512 the fast path takes the
    // few-channel loops (ops/kernels/conv_few_channels.hpp) for the forward and, with 32 filters,
    // the weight gradient; odd, non-square images.
    conv_case("few_channels_32_filters", {8, 3, 6, 5}, {32, 3, 3, 3}, true, {.padding = 1}, true),
    conv_case("few_channels_16_filters", {8, 1, 7, 6}, {16, 1, 3, 3}, false, {.padding = 1}, true),
    conv_case("few_channels_64_filters_no_padding", {8, 2, 5, 7}, {64, 2, 2, 3}, true, {}, true),
    conv_case("single_channel_5x5", {2, 1, 7, 7}, {3, 1, 5, 5}, true, {}),
    conv_case("kernel_covers_input", {2, 2, 3, 3}, {2, 2, 3, 3}, true, {}),
    // The SmallCNN's convolutions at batch 1 (u^T J v: the full Jacobian would be too big).
    conv_case("smallcnn_conv1", {1, 3, 32, 32}, {32, 3, 3, 3}, true, {.padding = 1}, true),
    conv_case("smallcnn_conv2", {1, 32, 16, 16}, {64, 32, 3, 3}, true, {.padding = 1}, true),
    // padding 'same' (odd and even kernels: the even one pads the extra row and column at the end)
    // and 'valid'.
    conv_case("same_3x3_dilation2", {2, 3, 5, 6}, {4, 3, 3, 3}, true, {.padding = kSame, .dilation = 2}),
    // An even kernel with 'same' pads asymmetrically, through pad().
    conv_case("same_even_kernel", {1, 2, 5, 4}, {3, 2, 2, 4}, true, {.padding = kSame}),
    conv_case("valid", {2, 2, 5, 5}, {3, 2, 3, 3}, false, {.padding = kValid}),
    // ResNet's downsample: 1x1, stride 2, an even size (the last row and column are skipped), few
    // channels, batch 4 (oneDNN's jit_1x1 weight gradient got this wrong on two threads).
    conv_case("1x1_stride2_downsample", {4, 2, 8, 8}, {4, 2, 1, 1}, true, {.stride = 2}),
});

// Views of conv2d's output, whose layout is PyTorch's: row-major for a row-major input and weight,
// so that flattening it with view works as in libtorch code; channels-last otherwise, where view
// still merges H and W (the layout check reruns these with channels-last inputs).
RegisterOps conv_view_cases({
    {.name = "conv2d/row_major_then_view_flat",
     .input_shapes = {{2, 3, 5, 6}, {4, 3, 3, 3}},
     .fn = [](const std::vector<Tensor>& in) { return view(conv2d(in[0].contiguous(), in[1].contiguous()), {2, 48}); }},
    {.name = "conv2d/then_view_merge_hw",
     .input_shapes = {{2, 3, 5, 6}, {4, 3, 3, 3}},
     .fn = [](const std::vector<Tensor>& in) { return view(conv2d(in[0], in[1]), {2, 4, 12}); }},
});

}  // namespace
}  // namespace tapegrad::testing
