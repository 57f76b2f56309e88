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
    {.name = "relu/4d", .input_shapes = {{2, 3, 2, 3}}, .fn = [](auto& in) { return relu(in[0]); }},
    {.name = "relu/transposed_view", .input_shapes = {{4, 3}}, .fn = [](auto& in) { return relu(in[0].transpose(0, 1)); }},
    {.name = "sigmoid/4d", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return sigmoid(in[0]); }},
    {.name = "tanh/odd", .input_shapes = {{3, 7}}, .fn = [](auto& in) { return tanh(in[0]); }},
    {.name = "exp/4d", .input_shapes = {{1, 3, 2, 2}}, .fn = [](auto& in) { return exp(in[0]); }},
    {.name = "log/positive", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return log(in[0]); }, .make_inputs = positive({3, 4})},
    {.name = "sqrt/positive", .input_shapes = {{5}}, .fn = [](auto& in) { return sqrt(in[0]); }, .make_inputs = positive({5})},
    {.name = "pow/cube", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return pow(in[0], 3.0); }},
    {.name = "pow/zero_exponent", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return pow(in[0], 0.0) * in[0]; },
},
    {.name = "abs", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return abs(in[0]); }},
    {.name = "relu_", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return relu_(in[0] * 1.0); }},
    {.name = "relu/empty", .input_shapes = {{0, 3}}, .fn = [](auto& in) { return relu(in[0]); }, .zero_size = true},
    {.name = "exp/empty", .input_shapes = {{2, 0, 3}}, .fn = [](auto& in) { return exp(in[0]); }, .zero_size = true},
    {.name = "pow/fractional",
     .input_shapes = {{3, 4}},
     .fn = [](auto& in) { return pow(in[0], -1.5); },
     .make_inputs = positive({3, 4})},
});

}  // namespace
}  // namespace tapegrad::testing
