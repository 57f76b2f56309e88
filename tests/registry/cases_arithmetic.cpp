// Registry rows for the elementwise arithmetic, reductions and views.
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

std::vector<Tensor> positive_second(Generator& gen, DType dtype, Shape a, Shape b) {
    return {randn(a, gen, {.dtype = dtype}), uniform(b, 0.5, 2.0, gen, {.dtype = dtype})};
}

RegisterOps arithmetic_cases({
    {.name = "add/same_shape", .input_shapes = {{3, 4}, {3, 4}}, .fn = [](auto& in) { return in[0] + in[1]; }},
    {.name = "add/broadcast_bias", .input_shapes = {{2, 3, 4, 5}, {1, 3, 1, 1}}, .fn = [](auto& in) { return in[0] + in[1]; }},
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
    {.name = "sum/all", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return in[0].sum(); }},
    {.name = "sum/axes_keepdim", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return in[0].sum({0, 2}, true); }},
    {.name = "mean/axis", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return in[0].mean({-1}); }},
    {.name = "reshape/transposed", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return in[0].transpose(0, 1).reshape({2, 6}); }},
    {.name = "permute", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return in[0].permute({2, 0, 1}) * 1.5; }},
    {.name = "add_n/three", .input_shapes = {{2, 3}, {2, 3}, {2, 3}}, .fn = [](auto& in) { return add_n(in); }},
    {.name = "flatten", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return in[0].flatten(1); }},
});

}  // namespace
}  // namespace tapegrad::testing
