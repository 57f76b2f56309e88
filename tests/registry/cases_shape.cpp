// Registry rows for cat, stack, split, chunk, narrow, slice and select. Pieces are recombined with
// different weights, so that a gradient routed to the wrong piece shows.
#include "ops/shape_ops.hpp"
#include "ops/view.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

// These views' backward writes the gradient into a zero tensor with a kernel that is not
// recorded, so under create_graph it has no history: gradgradcheck skips them until it is.
Tensor weighted_cat(const std::vector<Tensor>& parts, int64_t dim) {
    std::vector<Tensor> scaled;
    for (std::size_t i = 0; i < parts.size(); ++i) scaled.push_back(parts[i] * static_cast<double>(i + 1));
    return cat(scaled, dim);
}

RegisterOps shape_cases({
    {.name = "cat/dim1_three", .input_shapes = {{2, 3, 2}, {2, 1, 2}, {2, 4, 2}}, .fn = [](auto& in) { return cat(in, 1); }},
    {.name = "cat/channels_4d", .input_shapes = {{2, 3, 2, 3}, {2, 2, 2, 3}}, .fn = [](auto& in) { return cat(in, 1); }},
    {.name = "cat/last_dim_negative", .input_shapes = {{3, 2}, {3, 3}}, .fn = [](auto& in) { return cat(in, -1); }},
    {.name = "cat/with_empty", .input_shapes = {{2, 3}, {0, 3}}, .fn = [](auto& in) { return cat(in, 0); }},
    {.name = "stack/dim0", .input_shapes = {{2, 3}, {2, 3}}, .fn = [](auto& in) { return stack(in, 0); }},
    {.name = "stack/last", .input_shapes = {{2, 3}, {2, 3}, {2, 3}}, .fn = [](auto& in) { return stack(in, -1); }},
    {.name = "split/size2_uneven", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return weighted_cat(split(in[0], 2, 1), 1); }},
    {.name = "split/sizes", .input_shapes = {{6, 2}}, .fn = [](auto& in) { return weighted_cat(split(in[0], std::vector<int64_t>{1, 3, 2}, 0), 0); }},
    {.name = "chunk/3_of_7", .input_shapes = {{2, 7}}, .fn = [](auto& in) { return weighted_cat(chunk(in[0], 3, -1), -1); }},
    {.name = "chunk/channels", .input_shapes = {{2, 4, 2, 2}}, .fn = [](auto& in) { return weighted_cat(chunk(in[0], 2, 1), 1); }},
    {.name = "narrow/middle", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return narrow(in[0], 1, 1, 3); },
     .nan_propagates = false},
    {.name = "narrow/negative_start", .input_shapes = {{5, 2}}, .fn = [](auto& in) { return in[0].narrow(0, -2, 2); },
     .nan_propagates = false},
    {.name = "slice/step2", .input_shapes = {{2, 7}}, .fn = [](auto& in) { return in[0].slice(1, 0, 7, 2); }},
    {.name = "slice/clamped_end_step3", .input_shapes = {{8, 2}}, .fn = [](auto& in) { return slice(in[0], 0, -7, 100, 3); },
     .nan_propagates = false},
    {.name = "slice/4d_spatial", .input_shapes = {{1, 2, 5, 6}}, .fn = [](auto& in) { return in[0].slice(2, 1, 4).slice(3, 0, 6, 2); },
     .nan_propagates = false},
    {.name = "select/middle", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return select(in[0], 0, 1); }, .nan_propagates = false},
    {.name = "select/negative_in_4d", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return in[0].select(1, -1); },
     .nan_propagates = false},
    {.name = "select/then_reused", .input_shapes = {{3, 2}}, .fn = [](auto& in) { return select(in[0], 1, 0) * select(in[0], 1, 1); }},
    {.name = "slice/empty", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return in[0].slice(1, 2, 2); }, .zero_size = true},
});

// view computes strides in general, as PyTorch's: a channels-last [N,C,H,W] merges H and W, or
// splits C, without a copy (the layout check below also runs them on row-major inputs).
RegisterOps view_layout_cases({
    {.name = "view/channels_last_merge_hw",
     .input_shapes = {{2, 3, 3, 4}},
     .fn = [](auto& in) { return view(in[0].contiguous(MemoryFormat::ChannelsLast), {2, 3, 12}) * 2.0; }},
    {.name = "view/channels_last_split_c",
     .input_shapes = {{2, 4, 3, 3}},
     .fn = [](auto& in) { return view(in[0].contiguous(MemoryFormat::ChannelsLast), {2, 2, 2, 3, 3}) * 2.0; }},
    {.name = "view/transposed_split", .input_shapes = {{4, 6}}, .fn = [](auto& in) { return view(in[0].transpose(0, 1), {2, 3, 4}) * 2.0; }},
});

}  // namespace
}  // namespace tapegrad::testing
