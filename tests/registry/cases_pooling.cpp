// Registry rows for max_pool2d, avg_pool2d and adaptive_avg_pool2d, including the SmallCNN's pools.
// Max-pool inputs are tie-free (a permutation of distinct values 0.1 apart), so that finite
// differences never cross from one maximum to another.
#include "ops/pooling.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

std::vector<Tensor> distinct_values(Generator& gen, DType dtype, const Shape& shape) {
    const int64_t n = numel_of(shape);
    std::vector<double> v(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = 0.1 * static_cast<double>(i - n / 2);
    for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[gen.below(static_cast<uint64_t>(i + 1))]);  // Fisher-Yates
    Tensor t = from_vector(v, shape, {.dtype = dtype});
    return {t};
}

OpCase max_case(std::string name, Shape x, Pool2dOptions o, bool fast_gradcheck = false) {
    return {.name = "max_pool2d/" + name,
            .input_shapes = {x},
            .fn = [o](const std::vector<Tensor>& in) { return max_pool2d(in[0], o); },
            .make_inputs = [x](Generator& gen, DType dtype) { return distinct_values(gen, dtype, x); },
            .gradcheck_fast_mode = fast_gradcheck};
}

OpCase avg_case(std::string name, Shape x, Pool2dOptions o) {
    return {.name = "avg_pool2d/" + name, .input_shapes = {x}, .fn = [o](const std::vector<Tensor>& in) { return avg_pool2d(in[0], o); }};
}

OpCase adaptive_case(std::string name, Shape x, Pair out) {
    return {.name = "adaptive_avg_pool2d/" + name,
            .input_shapes = {x},
            .fn = [out](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], out); }};
}

RegisterOps pooling_cases({
    max_case("k2", {2, 3, 4, 6}, {.kernel_size = 2}),
    max_case("k2_odd_input", {2, 3, 5, 7}, {.kernel_size = 2}),
    max_case("k3_s2_pad1", {2, 3, 7, 6}, {.kernel_size = 3, .stride = 2, .padding = 1}),
    max_case("overlapping_k3_s1", {1, 2, 5, 5}, {.kernel_size = 3, .stride = 1}),
    max_case("nonsquare", {2, 2, 6, 7}, {.kernel_size = {2, 3}, .stride = Pair{2, 1}, .padding = {1, 1}}),
    max_case("stride3_k2", {1, 3, 7, 8}, {.kernel_size = 2, .stride = 3}),
    max_case("batch1_one_channel", {1, 1, 4, 4}, {.kernel_size = 2}),
    // The SmallCNN's pools at batch 1.
    max_case("smallcnn_pool1", {1, 32, 32, 32}, {.kernel_size = 2, .stride = 2}, true),
    max_case("smallcnn_pool2", {1, 64, 16, 16}, {.kernel_size = 2, .stride = 2}, true),
    avg_case("k2", {2, 3, 4, 6}, {.kernel_size = 2}),
    avg_case("k3_s2_pad1_counts_padding", {2, 3, 7, 6}, {.kernel_size = 3, .stride = 2, .padding = 1}),
    avg_case("nonsquare_overlapping", {1, 2, 5, 6}, {.kernel_size = {3, 2}, .stride = 1, .padding = {1, 0}}),
    adaptive_case("global", {2, 3, 5, 4}, 1),
    adaptive_case("uneven_bins", {2, 3, 5, 7}, {3, 4}),
    adaptive_case("more_bins_than_pixels", {1, 2, 3, 2}, {4, 3}),
    adaptive_case("identity", {1, 2, 3, 3}, 3),
});

}  // namespace
}  // namespace tapegrad::testing
