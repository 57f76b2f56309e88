// Registry rows for the elementwise arithmetic, reductions and views.
#include "engine/generator.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

std::vector<Tensor> positive_second(Generator& gen, DType dtype, Shape a, Shape b) {
    return {randn(a, gen, {.dtype = dtype}), uniform(b, 0.5, 2.0, gen, {.dtype = dtype})};
}

// A positive base (a^b of a negative base is NaN for fractional b) and any exponent.
std::vector<Tensor> positive_first(Generator& gen, DType dtype, Shape a, Shape b) {
    return {uniform(a, 0.5, 2.0, gen, {.dtype = dtype}), randn(b, gen, {.dtype = dtype})};
}

BenchShape per_channel_sum(MemoryFormat format) {
    const std::string layout = format == MemoryFormat::ChannelsLast ? "channels-last" : "row-major";
    return {.name = "sum dims 0,2,3 [32,32,32,32] " + layout,  // read x; dx written
            .shapes = {kActivation},
            .formats = {format},
            .layout = layout,
            .torch = "torch.sum(x[0], (0, 2, 3), keepdim=True)",
            .torch_in_our_layout = true,
            .bytes_fwd = float_bytes(kActivation),
            .bytes_fwd_bwd = 2 * float_bytes(kActivation)};
}

RegisterOps arithmetic_cases({
    // The benchmarks are memory-bound: bytes count each operand read once and each result written
    // once. Activations come out of conv2d channels-last, so that is what add and sum see in a network.
    {.name = "add/same_shape",
     .input_shapes = {{3, 4}, {3, 4}},
     .fn = [](auto& in) { return in[0] + in[1]; },
     .bench = {{.name = "add [32,32,32,32]+[32,32,32,32]",  // read a, b, write y; g read, da, db written
                .shapes = {kActivation, kActivation},
                .formats = {MemoryFormat::ChannelsLast, MemoryFormat::ChannelsLast},
                .layout = "channels-last",
                .torch = "torch.add(x[0], x[1])",
                .bytes_fwd = 3 * float_bytes(kActivation),
                .bytes_fwd_bwd = 6 * float_bytes(kActivation)}}},
    {.name = "add/broadcast_bias",
     .input_shapes = {{2, 3, 4, 5}, {1, 3, 1, 1}},
     .fn = [](auto& in) { return in[0] + in[1]; },
     .bench = {{.name = "add [32,32,32,32]+[1,32,1,1]",  // read x, write y; g read, dx written, g reduced to db
                .shapes = {kActivation, {1, 32, 1, 1}},
                .formats = {MemoryFormat::ChannelsLast},
                .layout = "channels-last",
                .torch = "torch.add(x[0], x[1])",
                .bytes_fwd = 2 * float_bytes(kActivation),
                .bytes_fwd_bwd = 5 * float_bytes(kActivation)}}},
    {.name = "add/broadcast_both", .input_shapes = {{3, 1}, {1, 4}}, .fn = [](auto& in) { return in[0] + in[1]; }},
    {.name = "add/alpha", .input_shapes = {{2, 3}, {3}}, .fn = [](auto& in) { return add(in[0], in[1], -0.5); }},
    {.name = "sub/broadcast", .input_shapes = {{2, 3}, {3}}, .fn = [](auto& in) { return in[0] - in[1]; }},
    {.name = "mul/broadcast", .input_shapes = {{2, 3, 4}, {3, 1}}, .fn = [](auto& in) { return in[0] * in[1]; }},
    {.name = "mul/batch1", .input_shapes = {{1, 5}, {1, 5}}, .fn = [](auto& in) { return in[0] * in[1]; }},
    {.name = "div/broadcast",
     .input_shapes = {{2, 3}, {3}},
     .fn = [](auto& in) { return in[0] / in[1]; },
     .make_inputs = [](Generator& g, DType t) { return positive_second(g, t, {2, 3}, {3}); }},
    {.name = "neg", .input_shapes = {{4, 3}}, .fn = [](auto& in) { return -in[0]; }},
    {.name = "pow/tensor_exponent",
     .input_shapes = {{2, 3}, {2, 3}},
     .fn = [](auto& in) { return pow(in[0], in[1]); },
     .make_inputs = [](Generator& g, DType t) { return positive_first(g, t, {2, 3}, {2, 3}); }},
    {.name = "pow/tensor_exponent_broadcast",
     .input_shapes = {{2, 3}, {3}},
     .fn = [](auto& in) { return in[0].pow(in[1]); },
     .make_inputs = [](Generator& g, DType t) { return positive_first(g, t, {2, 3}, {3}); }},
    {.name = "sum/all",
     .input_shapes = {{3, 5}},
     .fn = [](auto& in) { return in[0].sum(); },
     .bench = {{.name = "sum [32,32,32,32]",  // read x; dx written
                .shapes = {kActivation},
                .formats = {MemoryFormat::ChannelsLast},
                .layout = "channels-last",
                .torch = "torch.sum(x[0])",
                .bytes_fwd = float_bytes(kActivation),
                .bytes_fwd_bwd = 2 * float_bytes(kActivation)}}},
    {.name = "sum/axes_keepdim", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return in[0].sum({0, 2}, true); }},
    // The per-channel sum (a [1,C,1,1] broadcast's gradient, a bias gradient), timed in both
    // layouts against the copy of bench_reduce.cpp; PyTorch in the same layout as ours.
    {.name = "sum/per_channel",
     .input_shapes = {{2, 3, 2, 2}},
     .fn = [](auto& in) { return in[0].sum({0, 2, 3}, true); },
     .bench = {per_channel_sum(MemoryFormat::Contiguous), per_channel_sum(MemoryFormat::ChannelsLast)}},
    {.name = "mean/axis", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return in[0].mean({-1}); }},
    {.name = "reshape/transposed", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return in[0].transpose(0, 1).reshape({2, 6}); }},
    {.name = "permute", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return in[0].permute({2, 0, 1}) * 1.5; }},
    {.name = "add_n/three", .input_shapes = {{2, 3}, {2, 3}, {2, 3}}, .fn = [](auto& in) { return add_n(in); }},
    {.name = "flatten", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return in[0].flatten(1); }},
    {.name = "view", .input_shapes = {{2, 6}}, .fn = [](auto& in) { return view(in[0], {3, -1}) * 2.0; }},
    {.name = "transpose", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return transpose(in[0], 0, 2) * 2.0; }},
    {.name = "squeeze", .input_shapes = {{2, 1, 3}}, .fn = [](auto& in) { return squeeze(in[0], 1) * 2.0; }},
    {.name = "squeeze/all", .input_shapes = {{1, 2, 1, 3, 1}}, .fn = [](auto& in) { return squeeze(in[0]) * 2.0; }},
    {.name = "unsqueeze", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return unsqueeze(in[0], -1) * 2.0; }},
    {.name = "expand", .input_shapes = {{3, 1}}, .fn = [](auto& in) { return expand(in[0], {2, 3, 4}) * 2.0; }},
    {.name = "expand/keep_size", .input_shapes = {{3, 1}}, .fn = [](auto& in) { return in[0].expand({2, -1, 4}) * 2.0; }},
    {.name = "clone", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return clone(in[0].transpose(0, 1)); }},
    {.name = "contiguous/channels_last",
     .input_shapes = {{2, 3, 2, 2}},
     .fn = [](auto& in) { return contiguous(in[0], MemoryFormat::ChannelsLast) * 2.0; }},
    // Widening is exact, so the float64 gradcheck and the float32 comparison both see the op.
    {.name = "to_dtype/to_float64", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return to_dtype(in[0], kFloat64) * 2.0; }},
    // Zero-size rows: shapes with an empty dimension go through forward and backward.
    {.name = "add/empty", .input_shapes = {{0, 3}, {3}}, .fn = [](auto& in) { return in[0] + in[1]; }, .zero_size = true},
    {.name = "mul/empty", .input_shapes = {{2, 0}, {2, 1}}, .fn = [](auto& in) { return in[0] * in[1]; }, .zero_size = true},
    {.name = "sum/empty", .input_shapes = {{0, 4}}, .fn = [](auto& in) { return in[0].sum({0}); }, .zero_size = true},
    {.name = "transpose/empty", .input_shapes = {{0, 3}}, .fn = [](auto& in) { return transpose(in[0], 0, 1) * 2.0; }, .zero_size = true},
    {.name = "expand/empty", .input_shapes = {{1, 0}}, .fn = [](auto& in) { return expand(in[0], {3, 0}) * 2.0; }, .zero_size = true},
});

// In-place ops, each on a fresh non-leaf (a leaf that requires grad cannot be written in place):
// their gradients must equal the out-of-place op's.
Tensor fresh(const Tensor& t) { return t * 1.0; }

RegisterOps inplace_cases({
    {.name = "add_/broadcast", .input_shapes = {{2, 3}, {3}}, .fn = [](auto& in) { return fresh(in[0]).add_(in[1], 0.5); }},
    {.name = "sub_", .input_shapes = {{2, 3}, {2, 3}}, .fn = [](auto& in) { return fresh(in[0]).sub_(in[1]); }},
    {.name = "mul_", .input_shapes = {{2, 3}, {2, 3}}, .fn = [](auto& in) { return fresh(in[0]).mul_(in[1]); }},
    {.name = "div_",
     .input_shapes = {{2, 3}, {3}},
     .fn = [](auto& in) { return fresh(in[0]).div_(in[1]); },
     .make_inputs = [](Generator& g, DType t) { return positive_second(g, t, {2, 3}, {3}); }},
    {.name = "fill_", .input_shapes = {{2, 3}, {2, 3}}, .fn = [](auto& in) { return fresh(in[0]).fill_(2.0) * in[1]; },
     .nan_propagates = false},
    {.name = "uniform_",
     .input_shapes = {{2, 3}, {2, 3}},
     .fn = [](auto& in) {
         Generator gen(7);
         return fresh(in[0]).uniform_(-1.0, 2.0, gen) * in[1];
     },
     .nan_propagates = false},
    {.name = "normal_",
     .input_shapes = {{2, 3}, {2, 3}},
     .fn = [](auto& in) {
         Generator gen(7);
         return fresh(in[0]).normal_(1.0, 0.5, gen) * in[1];
     },
     .nan_propagates = false},
    {.name = "zero_", .input_shapes = {{2, 3}, {2, 3}}, .fn = [](auto& in) { return fresh(in[0]).zero_() + in[1]; },
     .nan_propagates = false},
    {.name = "copy_/broadcast", .input_shapes = {{2, 3}, {3}}, .fn = [](auto& in) { return fresh(in[0]).copy_(in[1]) * 2.0; },
     .nan_propagates = false},
});

}  // namespace
}  // namespace tapegrad::testing
