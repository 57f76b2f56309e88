// Registry rows for dropout: the generator is made inside the function, so every call draws the
// same mask.
#include "ops/dropout.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

Tensor drop(const Tensor& x, double p) {
    Generator gen(11);
    return dropout(x, p, true, gen);
}

Tensor drop_channels(const Tensor& x, double p) {
    Generator gen(11);
    return dropout2d(x, p, true, gen);
}

RegisterOps dropout_cases({
    {.name = "dropout2d/4d_p0.5", .input_shapes = {{3, 4, 2, 2}}, .fn = [](auto& in) { return drop_channels(in[0], 0.5); }},
    {.name = "dropout2d/3d_p0.3", .input_shapes = {{2, 5, 3}}, .fn = [](auto& in) { return drop_channels(in[0], 0.3); }},
    {.name = "dropout/p0.3", .input_shapes = {{4, 5}}, .fn = [](auto& in) { return drop(in[0], 0.3); }},
    {.name = "dropout/4d_p0.5", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return drop(in[0], 0.5); }},
    {.name = "dropout/transposed", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return drop(in[0].transpose(0, 1), 0.2); }},
});

}  // namespace
}  // namespace tapegrad::testing
