// Registry rows for where and masked_fill, differentiable in the values they select. The masks are
// fixed and start with true for where's first input and false for masked_fill's, so that a NaN in
// the first element of the first input reaches the output.
#include "ops/compare.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

Tensor mask_of(std::initializer_list<double> bits, const Shape& shape) {
    return from_vector(std::vector<double>(bits), shape, {.dtype = kBool});
}

Tensor fresh(const Tensor& t) { return t * 1.0; }

RegisterOps compare_cases({
    {.name = "where/broadcast",
     .input_shapes = {{2, 3}, {3}},
     .fn = [](auto& in) { return where(mask_of({1, 0, 1, 0, 0, 1}, {2, 3}), in[0], in[1]); }},
    {.name = "where/condition_broadcast",
     .input_shapes = {{2, 1}, {2, 3}},
     .fn = [](auto& in) { return where(mask_of({1, 0, 0}, {3}), in[0], in[1]); }},
    {.name = "where/scalar", .input_shapes = {{3, 2}}, .fn = [](auto& in) { return where(mask_of({1, 0, 0, 1, 1, 0}, {3, 2}), in[0], 0.5); }},
    {.name = "masked_fill/broadcast_mask",
     .input_shapes = {{2, 3}},
     .fn = [](auto& in) { return masked_fill(in[0], mask_of({0, 1, 0}, {3}), 2.0); }},
    {.name = "masked_fill_/rows", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return fresh(in[0]).masked_fill_(mask_of({0, 1}, {2, 1}), 2.0); }},
    {.name = "where/empty", .input_shapes = {{0, 3}, {3}}, .fn = [](auto& in) { return where(mask_of({1, 0, 1}, {3}), in[0], in[1]); }, .zero_size = true},
});

}  // namespace
}  // namespace tapegrad::testing
