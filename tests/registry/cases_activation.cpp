// Registry rows for the elementwise activations and maths.
#include "ops/activation.hpp"
#include "ops/inplace.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

std::function<std::vector<Tensor>(Generator&, DType)> positive(Shape s) {
    return [s](Generator& g, DType t) { return std::vector<Tensor>{uniform(s, 0.5, 2.0, g, {.dtype = t})}; };
}

RegisterOps activation_cases({
    {.name = "relu/2d", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return relu(in[0]); }},
    // relu on a conv-sized activation. Bytes: read x, write y; the backward reads g and the saved
    // result, and writes dx.
    {.name = "relu/4d",
     .input_shapes = {{2, 3, 2, 3}},
     .fn = [](auto& in) { return relu(in[0]); },
     .bench = {{.name = "relu x[32,32,32,32]",
                .shapes = {kActivation},
                .formats = {MemoryFormat::ChannelsLast},
                .layout = "channels-last",
                .torch = "F.relu(x[0])",
                .bytes_fwd = 2 * float_bytes(kActivation),
                .bytes_fwd_bwd = 5 * float_bytes(kActivation)}}},
    {.name = "relu/transposed_view", .input_shapes = {{4, 3}}, .fn = [](auto& in) { return relu(in[0].transpose(0, 1)); }},
    {.name = "sigmoid/4d", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return sigmoid(in[0]); }},
    {.name = "tanh/odd", .input_shapes = {{3, 7}}, .fn = [](auto& in) { return tanh(in[0]); }},
    {.name = "exp/4d", .input_shapes = {{1, 3, 2, 2}}, .fn = [](auto& in) { return exp(in[0]); }},
    {.name = "log/positive", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return log(in[0]); }, .make_inputs = positive({3, 4})},
    {.name = "sqrt/positive", .input_shapes = {{5}}, .fn = [](auto& in) { return sqrt(in[0]); }, .make_inputs = positive({5})},
    {.name = "pow/square", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return pow(in[0], 2.0); }},
    {.name = "pow/cube", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return pow(in[0], 3.0); }},
    {.name = "pow/zero_exponent", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return pow(in[0], 0.0) * in[0]; },
},
    {.name = "abs", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return abs(in[0]); }},
    {.name = "relu_", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return relu_(in[0] * 1.0); }},
    // The other in-place twins, each on a fresh non-leaf: their gradients are the out-of-place op's.
    {.name = "neg_", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return (in[0] * 1.0).neg_(); }},
    {.name = "abs_", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return (in[0] * 1.0).abs_(); }},
    {.name = "exp_", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return (in[0] * 1.0).exp_(); }},
    {.name = "log_", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return (in[0] * 1.0).log_(); }, .make_inputs = positive({3, 4})},
    {.name = "sqrt_", .input_shapes = {{5}}, .fn = [](auto& in) { return (in[0] * 1.0).sqrt_(); }, .make_inputs = positive({5})},
    {.name = "sigmoid_", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return (in[0] * 1.0).sigmoid_(); }},
    {.name = "tanh_", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return (in[0] * 1.0).tanh_(); }},
    {.name = "pow_", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return (in[0] * 1.0).pow_(2.5); }, .make_inputs = positive({3, 4})},
    {.name = "clamp_", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return (in[0] * 1.0).clamp_(-0.5, 0.7); }},
    {.name = "clamp_min_", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return (in[0] * 1.0).clamp_min_(0.1); }},
    {.name = "clamp_max_", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return (in[0] * 1.0).clamp_max_(0.1); }},
    {.name = "relu/empty", .input_shapes = {{0, 3}}, .fn = [](auto& in) { return relu(in[0]); }, .zero_size = true},
    {.name = "exp/empty", .input_shapes = {{2, 0, 3}}, .fn = [](auto& in) { return exp(in[0]); }, .zero_size = true},
    {.name = "pow/fractional",
     .input_shapes = {{3, 4}},
     .fn = [](auto& in) { return pow(in[0], -1.5); },
     .make_inputs = positive({3, 4})},
    // Inputs scaled so that every piece of each piecewise function is visited.
    {.name = "clamp/both", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return clamp(in[0], -0.5, 0.7); }},
    {.name = "clamp/min_only", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return clamp(in[0], 0.1, std::nullopt); }},
    {.name = "hardtanh/default", .input_shapes = {{4, 5}}, .fn = [](auto& in) { return hardtanh(in[0] * 2.0); }},
    {.name = "relu6/4d", .input_shapes = {{2, 3, 2, 3}}, .fn = [](auto& in) { return relu6(in[0] * 5.0); }},
    {.name = "leaky_relu/default", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return leaky_relu(in[0]); }},
    {.name = "leaky_relu/slope0.2", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return leaky_relu(in[0], 0.2); }},
    {.name = "elu/alpha1.5", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return elu(in[0] * 2.0, 1.5); }},
    {.name = "gelu/exact", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return gelu(in[0] * 2.0); }},
    {.name = "gelu/tanh", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return gelu(in[0] * 2.0, GeluApproximate::Tanh); }},
    {.name = "silu/4d", .input_shapes = {{2, 3, 2, 3}}, .fn = [](auto& in) { return silu(in[0] * 3.0); }},
    {.name = "softplus/default", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return softplus(in[0] * 4.0); }},
    // beta x passes the threshold for x > 1.5, so both pieces are visited
    {.name = "softplus/beta2_threshold3", .input_shapes = {{2, 3, 2, 3}}, .fn = [](auto& in) { return softplus(in[0] * 4.0, 2.0, 3.0); }},
    {.name = "hardswish/4d", .input_shapes = {{2, 3, 3, 3}}, .fn = [](auto& in) { return hardswish(in[0] * 4.0); }},
    {.name = "hardsigmoid/4d", .input_shapes = {{2, 3, 3, 3}}, .fn = [](auto& in) { return hardsigmoid(in[0] * 4.0); }},
});

}  // namespace
}  // namespace tapegrad::testing
