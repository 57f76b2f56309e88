// Registry rows for take and put_add (gather and scatter-add by flat index), with repeated
// indices, so that put_add sums and take's gradient accumulates.
#include "ops/index.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

const std::vector<int64_t> kIndex{5, 0, 11, 5, 3, 7};  // into 12 elements; 5 twice

RegisterOps index_cases({
    {.name = "take/repeated", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return take(in[0], kIndex, {2, 3}); }},
    {.name = "take/transposed_input",
     .input_shapes = {{4, 3}},
     .fn = [](auto& in) { return take(in[0].transpose(0, 1), kIndex, {6}); }},
    {.name = "put_add/repeated", .input_shapes = {{2, 3}}, .fn = [](auto& in) { return put_add({3, 4}, kIndex, in[0]); }},
});

}  // namespace
}  // namespace tapegrad::testing
