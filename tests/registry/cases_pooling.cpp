// Registry rows for max_pool2d (with and without indices), max_unpool2d, avg_pool2d and
// adaptive_avg_pool2d, including the SmallCNN's pools. Max-pool inputs are tie-free (a permutation
// of distinct values 0.1 apart), so that finite differences never cross from one maximum to another.
#include <numeric>

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

OpCase max_indices_case(std::string name, Shape x, Pool2dOptions o) {
    return {.name = "max_pool2d_with_indices/" + name,
            .input_shapes = {x},
            .fn = [o](const std::vector<Tensor>& in) { return std::get<0>(max_pool2d_with_indices(in[0], o)); },
            .make_inputs = [x](Generator& gen, DType dtype) { return distinct_values(gen, dtype, x); }};
}

// x of `x` drawn from N(0,1) and int64 indices sending each plane's H*W inputs to distinct
// random positions of an out_h x out_w plane (no repeats, so every input reaches the output).
OpCase unpool_case(std::string name, Shape x, MaxUnpool2dOptions o, Pair out, bool zero_size = false) {
    return {.name = "max_unpool2d/" + name,
            .input_shapes = {x, x},
            .fn = [o](const std::vector<Tensor>& in) { return max_unpool2d(in[0], in[1], o); },
            .make_inputs =
                [x, out](Generator& gen, DType dtype) {
                    const int64_t plane = x[x.size() - 1] * x[x.size() - 2], out_plane = out.h * out.w;
                    std::vector<int64_t> index;
                    for (int64_t p = 0; p < numel_of(x) / std::max<int64_t>(plane, 1); ++p) {
                        std::vector<int64_t> positions(static_cast<std::size_t>(out_plane));
                        std::iota(positions.begin(), positions.end(), 0);
                        for (int64_t i = out_plane - 1; i > 0; --i) std::swap(positions[i], positions[gen.below(static_cast<uint64_t>(i + 1))]);
                        index.insert(index.end(), positions.begin(), positions.begin() + plane);
                    }
                    return std::vector<Tensor>{randn(x, gen, {.dtype = dtype}), from_vector(index, x)};
                },
            .differentiable = {true, false},
            .zero_size = zero_size};
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
    // Bytes: read x, write the quarter-sized y; the backward reads g and writes dx.
    with_bench(max_case("k2", {2, 3, 4, 6}, {.kernel_size = 2}),
               {{.name = "max_pool2d x[32,32,32,32] k2 s2",
                 .shapes = {kActivation},
                 .formats = {MemoryFormat::ChannelsLast},
                 .layout = "channels-last",
                 .torch = "F.max_pool2d(x[0], 2, 2)",
                 .bytes_fwd = 1.25 * float_bytes(kActivation),
                 .bytes_fwd_bwd = 2.5 * float_bytes(kActivation)}}),
    max_case("k2_odd_input", {2, 3, 5, 7}, {.kernel_size = 2}),
    max_case("k3_s2_pad1", {2, 3, 7, 6}, {.kernel_size = 3, .stride = 2, .padding = 1}),
    max_case("overlapping_k3_s1", {1, 2, 5, 5}, {.kernel_size = 3, .stride = 1}),
    max_case("nonsquare", {2, 2, 6, 7}, {.kernel_size = {2, 3}, .stride = Pair{2, 1}, .padding = {1, 1}}),
    max_case("stride3_k2", {1, 3, 7, 8}, {.kernel_size = 2, .stride = 3}),
    max_case("batch1_one_channel", {1, 1, 4, 4}, {.kernel_size = 2}),
    // The SmallCNN's pools at batch 1.
    max_case("smallcnn_pool1", {1, 32, 32, 32}, {.kernel_size = 2, .stride = 2}, true),
    max_case("smallcnn_pool2", {1, 64, 16, 16}, {.kernel_size = 2, .stride = 2}, true),
    max_case("dilation2_pad1", {1, 2, 7, 8}, {.kernel_size = 3, .stride = 1, .padding = 1, .dilation = 2}),
    // 5 = 2*2 + 1: the third window starts on the last row and hangs over the edge.
    max_case("ceil_mode_overhang", {2, 3, 5, 7}, {.kernel_size = 2, .ceil_mode = true}),
    max_case("ceil_mode_k3_s2_pad1", {1, 2, 6, 7}, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true}),
    // 8 rows, k2 d2 s2, ceil: the last window reads rows 6 and 8, the second past the edge.
    max_case("dilated_ceil_nonsquare",
             {1, 2, 8, 9},
             {.kernel_size = {2, 3}, .stride = Pair{2, 1}, .padding = {0, 1}, .dilation = {2, 1}, .ceil_mode = true}),
    max_case("unbatched_3d", {3, 5, 5}, {.kernel_size = 2, .ceil_mode = true}),
    {.name = "max_pool2d/empty_batch",
     .input_shapes = {{0, 3, 4, 4}},
     .fn = [](auto& in) { return max_pool2d(in[0], {.kernel_size = 2}); },
     .zero_size = true},
    max_indices_case("k3_s2_pad1_ceil", {2, 3, 6, 7}, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true}),
    max_indices_case("dilation2", {1, 2, 7, 7}, {.kernel_size = 2, .dilation = 2}),
    unpool_case("k2", {2, 3, 3, 4}, {.kernel_size = 2}, {6, 8}),
    unpool_case("k3_s2_pad1_output_size", {1, 2, 3, 3}, {.kernel_size = 3, .stride = 2, .padding = 1, .output_size = Pair{6, 5}}, {6, 5}),
    unpool_case("unbatched_3d", {2, 2, 3}, {.kernel_size = 2}, {4, 6}),
    unpool_case("empty_batch", {0, 2, 2, 2}, {.kernel_size = 2}, {4, 4}, true),
    // The round trip a SegNet decoder makes: pool, then unpool to the pooled input's size.
    {.name = "max_unpool2d/after_max_pool2d",
     .input_shapes = {{2, 2, 5, 6}},
     .fn =
         [](auto& in) {
             auto [pooled, indices] = max_pool2d_with_indices(in[0], {.kernel_size = 2, .ceil_mode = true});
             return max_unpool2d(pooled, indices, {.kernel_size = 2, .output_size = Pair{5, 6}});
         },
     .make_inputs = [](Generator& gen, DType dtype) { return distinct_values(gen, dtype, {2, 2, 5, 6}); }},
    avg_case("k2", {2, 3, 4, 6}, {.kernel_size = 2}),
    // 6 rows, k3 s2 p1, ceil: the last window starts at row 5 and ends past the padded input
    // (row 7 > 6 + 1), so its divisor counts 2 rows, not 3 (PyTorch's rule).
    avg_case("ceil_mode_overhang_counts_padding", {2, 3, 6, 6}, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true}),
    avg_case("ceil_mode_k2_odd", {1, 2, 5, 5}, {.kernel_size = 2, .ceil_mode = true}),
    avg_case("exclude_padding", {2, 3, 7, 6}, {.kernel_size = 3, .stride = 2, .padding = 1, .count_include_pad = false}),
    avg_case("ceil_exclude_padding",
             {1, 2, 6, 7},
             {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false}),
    avg_case("divisor_override", {1, 2, 5, 6}, {.kernel_size = {3, 2}, .stride = Pair{2, 1}, .padding = {1, 0}, .divisor_override = 5}),
    avg_case("unbatched_3d", {3, 5, 4}, {.kernel_size = 2, .ceil_mode = true}),
    {.name = "avg_pool2d/empty_batch",
     .input_shapes = {{0, 2, 4, 4}},
     .fn = [](auto& in) { return avg_pool2d(in[0], {.kernel_size = 2}); },
     .zero_size = true},
    adaptive_case("unbatched_3d", {2, 5, 4}, {2, 3}),
    avg_case("k3_s2_pad1_counts_padding", {2, 3, 7, 6}, {.kernel_size = 3, .stride = 2, .padding = 1}),
    avg_case("nonsquare_overlapping", {1, 2, 5, 6}, {.kernel_size = {3, 2}, .stride = 1, .padding = {1, 0}}),
    adaptive_case("global", {2, 3, 5, 4}, 1),
    adaptive_case("uneven_bins", {2, 3, 5, 7}, {3, 4}),
    adaptive_case("more_bins_than_pixels", {1, 2, 3, 2}, {4, 3}),
    adaptive_case("identity", {1, 2, 3, 3}, 3),
});

}  // namespace
}  // namespace tapegrad::testing
