// Registry rows for maximum, minimum, clamp with tensor bounds and sign. Random inputs have no
// ties; tests/test_masks.cpp checks the gradients at ties against PyTorch.
#include "ops/minmax.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

RegisterOps minmax_cases({
    {.name = "maximum/broadcast", .input_shapes = {{2, 3}, {3}}, .fn = [](auto& in) { return maximum(in[0], in[1]); }},
    {.name = "minimum/broadcast", .input_shapes = {{2, 1}, {2, 3}}, .fn = [](auto& in) { return minimum(in[0], in[1]); }},
    {.name = "clamp/tensor_bounds", .input_shapes = {{2, 3}, {3}, {2, 3}}, .fn = [](auto& in) { return clamp(in[0], in[1] - 0.5, in[2] + 0.5); }},
    {.name = "clamp/tensor_min_only", .input_shapes = {{2, 3}, {2, 3}}, .fn = [](auto& in) { return clamp(in[0], in[1], Tensor()); }},
    {.name = "clamp/tensor_max_only", .input_shapes = {{4}, {1}}, .fn = [](auto& in) { return clamp(in[0], Tensor(), in[1]); }},
    {.name = "sign", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return sign(in[0]) * in[0]; }},
    {.name = "maximum/empty", .input_shapes = {{0, 3}, {3}}, .fn = [](auto& in) { return maximum(in[0], in[1]); }, .zero_size = true},
});

}  // namespace
}  // namespace tapegrad::testing
