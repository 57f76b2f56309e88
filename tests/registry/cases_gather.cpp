// Registry rows for index_select, gather and scatter_add, with repeated indices so that the
// scatter-adds (the ops themselves and the gradients) sum.
#include "ops/gather.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

Tensor indices(const std::vector<int64_t>& values, const Shape& shape, DType dtype = kInt64) {
    return from_vector(values, shape, {.dtype = dtype});
}

RegisterOps gather_cases({
    {.name = "gather/dim1_repeated",
     .input_shapes = {{3, 4}},
     .fn = [](auto& in) { return gather(in[0], 1, indices({0, 3, 3, 1, 1, 0, 2, 0, 1}, {3, 3})); }},
    {.name = "gather/dim0_smaller_index",
     .input_shapes = {{3, 4}},
     .fn = [](auto& in) { return gather(in[0], 0, indices({0, 2, 2, 1, 1, 0}, {2, 3})); }},
    {.name = "index_select/dim0_repeated", .input_shapes = {{4, 3}}, .fn = [](auto& in) { return index_select(in[0], 0, indices({3, 0, 3}, {3})); }},
    {.name = "index_select/dim1_int32",
     .input_shapes = {{2, 5, 2}},
     .fn = [](auto& in) { return index_select(in[0].transpose(0, 2), 1, indices({0, 4, 1, 4}, {4}, kInt32)); }},
    {.name = "scatter_add/dim1_repeated",
     .input_shapes = {{3, 4}, {3, 2}},
     .fn = [](auto& in) { return scatter_add(in[0], 1, indices({1, 1, 0, 3, 2, 2}, {3, 2}), in[1]); }},
    {.name = "scatter_add/dim0",
     .input_shapes = {{3, 2}, {4, 2}},
     .fn = [](auto& in) { return scatter_add(in[0], 0, indices({2, 0, 2, 2, 0, 1, 1, 1}, {4, 2}), in[1]); }},
    {.name = "index_select/empty_index", .input_shapes = {{3, 2}}, .fn = [](auto& in) { return index_select(in[0], 0, indices({}, {0})); },
     .zero_size = true, .nan_propagates = false},
});

}  // namespace
}  // namespace tapegrad::testing
