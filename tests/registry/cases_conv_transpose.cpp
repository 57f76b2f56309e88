// Registry rows for the gradient convolutions: conv_transpose2d (stride, padding, output_padding,
// groups, dilation, non-square) and conv2d_weight_grad.
#include "ops/conv_transpose.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

OpCase transpose_case(std::string name, Shape x, Shape w, bool bias, ConvTranspose2dOptions o) {
    std::vector<Shape> shapes{x, w};
    if (bias) shapes.push_back({w[1] * o.groups});
    return {.name = "conv_transpose2d/" + name,
            .input_shapes = shapes,
            .fn = [o](const std::vector<Tensor>& in) { return conv_transpose2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), o); }};
}

// Inputs x and grad_output; grad_output has the shape of conv2d(x, weight of w_shape, options).
OpCase weight_grad_case(std::string name, Shape x, Shape w_shape, Shape grad_output, Conv2dOptions o) {
    return {.name = "conv2d_weight_grad/" + name,
            .input_shapes = {x, grad_output},
            .fn = [w_shape, o](const std::vector<Tensor>& in) { return conv2d_weight_grad(in[0], in[1], w_shape, o); }};
}

RegisterOps conv_transpose_cases({
    transpose_case("3x3", {2, 4, 4, 5}, {4, 3, 3, 3}, true, {}),
    transpose_case("stride2_pad1_output_padding1", {1, 3, 3, 4}, {3, 2, 3, 3}, true,
                   {.stride = 2, .padding = 1, .output_padding = 1}),
    transpose_case("groups2_dilation2", {2, 4, 3, 3}, {4, 3, 2, 2}, true, {.groups = 2, .dilation = 2}),
    transpose_case("nonsquare_stride_no_bias", {1, 2, 4, 3}, {2, 3, 3, 2}, false,
                   {.stride = {2, 1}, .padding = {1, 0}, .output_padding = {1, 0}}),
    transpose_case("depthwise_stride3", {1, 3, 2, 3}, {3, 1, 3, 2}, true, {.stride = 3, .output_padding = 2, .groups = 3}),
    weight_grad_case("3x3", {2, 3, 5, 6}, {4, 3, 3, 3}, {2, 4, 3, 4}, {}),
    weight_grad_case("stride2_pad1_groups2", {1, 4, 7, 5}, {6, 2, 3, 3}, {1, 6, 4, 3}, {.stride = 2, .padding = 1, .groups = 2}),
    weight_grad_case("dilation2_pad", {2, 2, 7, 6}, {3, 2, 3, 2}, {2, 3, 5, 8}, {.padding = {1, 2}, .dilation = 2}),
    weight_grad_case("stride2_dropped_row", {1, 2, 6, 6}, {2, 2, 3, 3}, {1, 2, 2, 2}, {.stride = 2}),
});

}  // namespace
}  // namespace tapegrad::testing
