// Registry rows for var, std, layer_norm and group_norm.
#include "ops/normalization.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

RegisterOps normalization_cases({
    {.name = "var/all_unbiased", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return var(in[0]); }},
    {.name = "var/dims_keepdim_population", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return var(in[0], {0, 2}, 0, true); }},
    {.name = "std/dim1", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return std(in[0], {1}); }},
    {.name = "std/4d_spatial_keepdim", .input_shapes = {{2, 3, 2, 3}}, .fn = [](auto& in) { return std(in[0], {2, 3}, 1, true); }},
    {.name = "layer_norm/last_dim_affine",
     .input_shapes = {{3, 5}, {5}, {5}},
     .fn = [](auto& in) { return layer_norm(in[0], {5}, in[1], in[2]); }},
    {.name = "layer_norm/two_dims_no_affine", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return layer_norm(in[0], {3, 4}); }},
    {.name = "layer_norm/4d_chw", .input_shapes = {{2, 2, 3, 2}, {2, 3, 2}, {2, 3, 2}},
     .fn = [](auto& in) { return layer_norm(in[0], {2, 3, 2}, in[1], in[2], 1e-3); }},
    {.name = "group_norm/2_groups_affine",
     .input_shapes = {{2, 4, 3, 2}, {4}, {4}},
     .fn = [](auto& in) { return group_norm(in[0], 2, in[1], in[2]); }},
    {.name = "group_norm/instance_norm_like", .input_shapes = {{2, 3, 2, 3}}, .fn = [](auto& in) { return group_norm(in[0], 3); }},
    {.name = "group_norm/3d_one_group", .input_shapes = {{2, 4, 5}, {4}, {4}},
     .fn = [](auto& in) { return group_norm(in[0], 1, in[1], in[2]); }},
});

}  // namespace
}  // namespace tapegrad::testing
