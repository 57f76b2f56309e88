// Registry rows for matmul and linear: plain, batched, broadcast batch, transposed-view operands.
#include "ops/linear.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

// A skinny product (a fully connected layer's) and a square one; bench_sgemm.cpp times the two
// BLAS libraries alone on the same shapes. FLOPs: 2 m n k forward, three such products with the backward.
BenchShape matmul_bench(int64_t m, int64_t k, int64_t n) {
    const double flops = 2.0 * static_cast<double>(m * n * k);
    return {.name = "matmul [" + std::to_string(m) + "," + std::to_string(k) + "]x[" + std::to_string(k) + "," + std::to_string(n) + "]",
            .shapes = {{m, k}, {k, n}},
            .layout = "row-major",
            .torch = "torch.matmul(x[0], x[1])",
            .flops_fwd = flops,
            .flops_fwd_bwd = 3 * flops};
}

RegisterOps linear_cases({
    {.name = "matmul/2d_odd",
     .input_shapes = {{3, 5}, {5, 2}},
     .fn = [](auto& in) { return matmul(in[0], in[1]); },
     .bench = {matmul_bench(64, 4096, 128), matmul_bench(512, 512, 512)}},
    {.name = "matmul/batched", .input_shapes = {{2, 3, 4}, {2, 4, 3}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }},
    {.name = "matmul/broadcast_2d_rhs", .input_shapes = {{2, 3, 4}, {4, 5}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }},
    {.name = "matmul/broadcast_2d_lhs", .input_shapes = {{3, 4}, {2, 4, 2}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }},
    {.name = "matmul/broadcast_batch1", .input_shapes = {{1, 2, 3}, {3, 3, 2}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }},
    {.name = "matmul/4d_broadcast", .input_shapes = {{2, 1, 2, 3}, {1, 3, 3, 2}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }},
    {.name = "matmul/transposed_lhs",
     .input_shapes = {{4, 3}, {4, 2}},
     .fn = [](auto& in) { return matmul(in[0].transpose(0, 1), in[1]); }},
    {.name = "matmul/transposed_both",
     .input_shapes = {{4, 3}, {5, 4}},
     .fn = [](auto& in) { return matmul(in[0].transpose(0, 1), in[1].transpose(0, 1)); }},
    {.name = "matmul/batched_transposed_rhs",
     .input_shapes = {{2, 3, 4}, {2, 5, 4}},
     .fn = [](auto& in) { return matmul(in[0], in[1].transpose(1, 2)); }},
    {.name = "mm", .input_shapes = {{3, 4}, {4, 2}}, .fn = [](auto& in) { return mm(in[0], in[1]); }},
    {.name = "mm/transposed_rhs", .input_shapes = {{3, 4}, {2, 4}}, .fn = [](auto& in) { return in[0].mm(in[1].t()); }},
    {.name = "matmul/row_vector", .input_shapes = {{1, 4}, {4, 1}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }},
    {.name = "linear/bias", .input_shapes = {{5, 4}, {3, 4}, {3}}, .fn = [](auto& in) { return linear(in[0], in[1], in[2]); }},
    {.name = "linear/no_bias", .input_shapes = {{2, 3}, {4, 3}}, .fn = [](auto& in) { return linear(in[0], in[1]); }},
    {.name = "linear/3d_input", .input_shapes = {{2, 3, 4}, {2, 4}, {2}}, .fn = [](auto& in) { return linear(in[0], in[1], in[2]); }},
    {.name = "linear/batch1", .input_shapes = {{1, 6}, {2, 6}, {2}}, .fn = [](auto& in) { return linear(in[0], in[1], in[2]); }},
    {.name = "matmul/empty_inner", .input_shapes = {{3, 0}, {0, 2}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }, .zero_size = true},
    {.name = "matmul/empty_rows", .input_shapes = {{2, 0, 3}, {3, 4}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }, .zero_size = true},
    {.name = "linear/empty_features",
     .input_shapes = {{4, 0}, {3, 0}, {3}},
     .fn = [](auto& in) { return linear(in[0], in[1], in[2]); },
     .zero_size = true},
    {.name = "linear/empty_batch",
     .input_shapes = {{0, 3}, {2, 3}, {2}},
     .fn = [](auto& in) { return linear(in[0], in[1], in[2]); },
     .zero_size = true},
    {.name = "linear/transposed_input",
     .input_shapes = {{4, 3}, {2, 4}, {2}},
     .fn = [](auto& in) { return linear(in[0].transpose(0, 1), in[1], in[2]); }},
    {.name = "matmul/vector_vector", .input_shapes = {{5}, {5}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }},
    {.name = "matmul/matrix_vector", .input_shapes = {{3, 4}, {4}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }},
    {.name = "matmul/vector_batched", .input_shapes = {{4}, {2, 4, 3}}, .fn = [](auto& in) { return matmul(in[0], in[1]); }},
});

}  // namespace
}  // namespace tapegrad::testing
