// Registry rows for pad (constant, reflect, replicate) and interpolate (nearest, nearest-exact,
// bilinear with and without align_corners, up and down).
#include "ops/interpolate.hpp"
#include "ops/pad.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

// pad's and interpolate's backward write into zeros with the resample kernels, which are not
// recorded, so under create_graph it has no history: gradgradcheck skips them until it is.
// A negative pad crops, and may crop away the first element (where the NaN check puts its NaN).
OpCase pad_case(std::string name, Shape x, std::vector<int64_t> pads, PadMode mode, double value = 0.0) {
    bool crops = false;
    for (int64_t p : pads) crops = crops || p < 0;
    return {.name = "pad/" + name,
            .input_shapes = {x},
            .fn = [=](const std::vector<Tensor>& in) { return pad(in[0], pads, mode, value); },
            .nan_propagates = !crops};
}

OpCase interp_case(std::string name, Shape x, InterpolateOptions o) {
    return {.name = "interpolate/" + name,
            .input_shapes = {x},
            .fn = [o](const std::vector<Tensor>& in) { return interpolate(in[0], o); }};
}

RegisterOps resample_cases({
    // A whole pad value: integer inputs pad with the same number (PyTorch truncates it to their dtype).
    pad_case("constant_2d_asymmetric", {2, 2, 3, 4}, {1, 2, 0, 1}, PadMode::Constant, 2.0),
    pad_case("constant_crop", {2, 5, 4}, {-1, 2}, PadMode::Constant),
    pad_case("constant_three_dims", {2, 3, 2}, {1, 0, 0, 1, 1, 1}, PadMode::Constant),
    pad_case("reflect_2d", {1, 2, 4, 5}, {2, 3, 1, 3}, PadMode::Reflect),
    pad_case("reflect_1d", {2, 3, 4}, {3, 1}, PadMode::Reflect),
    pad_case("replicate_2d", {2, 2, 3, 3}, {2, 1, 3, 0}, PadMode::Replicate),
    pad_case("replicate_more_than_size", {1, 1, 2, 2}, {3, 3, 3, 3}, PadMode::Replicate),
    interp_case("nearest_x2", {2, 3, 3, 4}, {.scale_factor = 2.0}),
    interp_case("nearest_size_down", {1, 2, 7, 5}, {.size = Pair{3, 4}}),
    interp_case("nearest_same_size_scale_1_05", {1, 2, 9, 6}, {.scale_factor = 1.05}),
    interp_case("nearest_exact_size", {1, 2, 7, 5}, {.size = Pair{4, 8}, .mode = InterpolateMode::NearestExact}),
    interp_case("nearest_exact_scale_1_3", {2, 2, 5, 4}, {.scale_factor = 1.3, .mode = InterpolateMode::NearestExact}),
    interp_case("nearest_exact_recomputed_scale", {1, 3, 6, 5}, {.scale_factor = 0.7, .mode = InterpolateMode::NearestExact, .recompute_scale_factor = true}),
    interp_case("bilinear_x2", {2, 2, 3, 4}, {.scale_factor = 2.0, .mode = InterpolateMode::Bilinear}),
    interp_case("bilinear_align_corners", {1, 2, 4, 3}, {.size = Pair{7, 5}, .mode = InterpolateMode::Bilinear, .align_corners = true}),
    interp_case("bilinear_down_odd", {2, 1, 7, 6}, {.size = Pair{3, 4}, .mode = InterpolateMode::Bilinear}),
    interp_case("bilinear_scale_1_3_rows_same_size", {1, 2, 3, 5}, {.scale_factor = 1.3, .mode = InterpolateMode::Bilinear}),
});

}  // namespace
}  // namespace tapegrad::testing
