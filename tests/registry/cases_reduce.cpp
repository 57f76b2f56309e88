// Registry rows for max and min over an axis, with and without indices (random inputs have no ties).
#include "ops/reduce.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

RegisterOps reduce_cases({
    {.name = "max/all", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return max(in[0]); }},
    {.name = "max/all_transposed", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return in[0].transpose(0, 2).max(); }},
    {.name = "min/all", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return in[0].min(); }},
    {.name = "max/last_axis", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return max(in[0], -1); }},
    {.name = "max/axis0_keepdim", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return max(in[0], 0, true); }},
    {.name = "max/middle_3d", .input_shapes = {{2, 5, 3}}, .fn = [](auto& in) { return max(in[0], 1); }},
    {.name = "max/4d_channels", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return max(in[0], 1, true); }},
    {.name = "max/transposed", .input_shapes = {{4, 3}}, .fn = [](auto& in) { return max(in[0].transpose(0, 1), 1); }},
    {.name = "min/last_axis", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return min(in[0], -1); }},
    {.name = "min/middle_3d_keepdim", .input_shapes = {{2, 5, 3}}, .fn = [](auto& in) { return min(in[0], 1, true); }},
    {.name = "max_with_indices/values", .input_shapes = {{2, 5, 3}}, .fn = [](auto& in) { return max_with_indices(in[0], 1).values; }},
    {.name = "min_with_indices/values_keepdim", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return min_with_indices(in[0], 0, true).values; }},
});

}  // namespace
}  // namespace tapegrad::testing
