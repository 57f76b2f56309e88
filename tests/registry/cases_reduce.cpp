// Registry rows for max over an axis (random inputs have no ties).
#include "ops/reduce.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

RegisterOps reduce_cases({
    {.name = "max/last_axis", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return max(in[0], -1); }},
    {.name = "max/axis0_keepdim", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return max(in[0], 0, true); }},
    {.name = "max/middle_3d", .input_shapes = {{2, 5, 3}}, .fn = [](auto& in) { return max(in[0], 1); }},
    {.name = "max/4d_channels", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return max(in[0], 1, true); }},
    {.name = "max/transposed", .input_shapes = {{4, 3}}, .fn = [](auto& in) { return max(in[0].transpose(0, 1), 1); }},
});

}  // namespace
}  // namespace tapegrad::testing
