// Registry rows for norm: every kind of p, over all elements and along dimensions. Random inputs
// are nonzero and tie-free; tests/test_masks.cpp checks zeros and ties against PyTorch.
#include "ops/norm.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

const double inf = std::numeric_limits<double>::infinity();

RegisterOps norm_cases({
    {.name = "norm/frobenius", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return norm(in[0]); }},
    {.name = "norm/p2_dim_keepdim", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return norm(in[0], 2.0, {1}, true); }},
    {.name = "norm/p1_dims", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return norm(in[0], 1.0, {0, 2}); }},
    {.name = "norm/inf_dim", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return norm(in[0], inf, {1}); }},
    {.name = "norm/minus_inf", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return norm(in[0], -inf, {0}, true); }},
    {.name = "norm/p0", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return norm(in[0], 0.0, {1}) * in[0].sum(); }},
    {.name = "norm/p3", .input_shapes = {{4, 3}}, .fn = [](auto& in) { return norm(in[0], 3.0, {0}); }},
    {.name = "norm/p1.5", .input_shapes = {{4, 3}}, .fn = [](auto& in) { return norm(in[0], 1.5); }},
    {.name = "norm/p0.5", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return norm(in[0], 0.5, {1}); }},
    {.name = "norm/p_minus1", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return norm(in[0], -1.0, {-1}); }},
    {.name = "norm/empty", .input_shapes = {{0, 3}}, .fn = [](auto& in) { return norm(in[0], 2.0, {0}); }, .zero_size = true},
});

}  // namespace
}  // namespace tapegrad::testing
