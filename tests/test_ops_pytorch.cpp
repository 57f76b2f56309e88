// The new ops against PyTorch 1.13: outputs and input gradients for a random cotangent, from
// tests/models/ops_reference.tgck (written by tests/models/make_reference.py). float64 with the
// reference kernels to 1e-12; float32 with the fast kernels to 1e-5 relative. interpolate's
// modes, sizes and scale factors against tests/models/resample_reference.tgck (written by
// tests/models/make_resample_reference.py), in both dtypes and both layouts: float64 to 1e-13,
// float32 to 1e-6 relative.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

const std::map<std::string, Fn>& cases() {
    static const std::map<std::string, Fn> c = {
        {"pad_reflect", [](auto& in) { return tg::pad(in[0], {2, 1, 1, 2}, tg::PadMode::Reflect); }},
        {"pad_replicate", [](auto& in) { return tg::pad(in[0], {3, 0, 1, 2}, tg::PadMode::Replicate); }},
        {"pad_constant", [](auto& in) { return tg::pad(in[0], {1, 2, 0, 1}, tg::PadMode::Constant, 0.5); }},
        {"nearest_x2", [](auto& in) { return tg::interpolate(in[0], {.scale_factor = 2.0}); }},
        {"nearest_size", [](auto& in) { return tg::interpolate(in[0], {.size = tg::Pair{3, 4}}); }},
        {"bilinear_x2", [](auto& in) { return tg::interpolate(in[0], {.scale_factor = 2.0, .mode = tg::InterpolateMode::Bilinear}); }},
        {"bilinear_align_corners",
         [](auto& in) {
             return tg::interpolate(in[0], {.size = tg::Pair{7, 9}, .mode = tg::InterpolateMode::Bilinear, .align_corners = true});
         }},
        {"bilinear_down", [](auto& in) { return tg::interpolate(in[0], {.size = tg::Pair{3, 4}, .mode = tg::InterpolateMode::Bilinear}); }},
        {"gelu", [](auto& in) { return tg::gelu(in[0]); }},
        {"gelu_tanh", [](auto& in) { return tg::gelu(in[0], tg::GeluApproximate::Tanh); }},
        {"silu", [](auto& in) { return tg::silu(in[0]); }},
        {"hardswish", [](auto& in) { return tg::hardswish(in[0]); }},
        {"elu", [](auto& in) { return tg::elu(in[0], 1.5); }},
        {"leaky_relu", [](auto& in) { return tg::leaky_relu(in[0], 0.2); }},
        {"relu6", [](auto& in) { return tg::relu6(in[0]); }},
        {"hardtanh", [](auto& in) { return tg::hardtanh(in[0]); }},
        {"clamp", [](auto& in) { return tg::clamp(in[0], -0.5, 0.7); }},
        {"layer_norm", [](auto& in) { return tg::layer_norm(in[0], {3, 4}, in[1], in[2]); }},
        {"group_norm", [](auto& in) { return tg::group_norm(in[0], 2, in[1], in[2]); }},
        {"var", [](auto& in) { return tg::var(in[0], {1}); }},
        {"std_population_keepdim", [](auto& in) { return tg::std(in[0], {0}, 0, true); }},
        {"conv_same_even", [](auto& in) { return tg::conv2d(in[0], in[1], Tensor(), {.padding = tg::kSame}); }},
        {"conv_same_dilated", [](auto& in) { return tg::conv2d(in[0], in[1], Tensor(), {.padding = tg::kSame, .dilation = 2}); }},
        {"matmul_vector_matrix", [](auto& in) { return tg::matmul(in[0], in[1]); }},
        {"batch_norm_3d", [](auto& in) { return tg::batch_norm(in[0], Tensor(), Tensor(), in[1], in[2]); }},
    };
    return c;
}

double relative_error(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < va.size(); ++i) {
        diff = std::max(diff, std::abs(va[i] - vb[i]));
        scale = std::max(scale, std::abs(vb[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

void check_all(tg::DType dtype, bool reference, double tol) {
    std::map<std::string, Tensor> ref;
    for (auto& [name, t] : nn::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/ops_reference.tgck")) ref[name] = t;
    int checked = 0;
    for (const auto& [name, fn] : cases()) {
        INFO(name, " in ", std::string(tg::dtype_name(dtype)));
        std::vector<Tensor> in;
        while (ref.count(name + ".in" + std::to_string(in.size())))
            in.push_back(ref.at(name + ".in" + std::to_string(in.size())).to(dtype).detach().requires_grad_());
        REQUIRE(!in.empty());
        tg::ReferenceKernelsGuard guard(reference);
        const Tensor out = fn(in);
        CHECK_MESSAGE(relative_error(out, ref.at(name + ".out")) <= tol, "output differs by " << relative_error(out, ref.at(name + ".out")));
        const std::vector<Tensor> grads = tg::grad({out}, in, {ref.at(name + ".cot").to(dtype)});
        for (std::size_t i = 0; i < in.size(); ++i) {
            const double e = relative_error(grads[i], ref.at(name + ".grad" + std::to_string(i)));
            CHECK_MESSAGE(e <= tol, "gradient " << i << " differs by " << e);
        }
        ++checked;
    }
    CHECK(checked == static_cast<int>(cases().size()));
}

// The options row make_resample_reference.py writes: mode, size_h, size_w, scale_factor,
// align_corners, recompute_scale_factor (-1 for the size or scale factor not given).
tg::InterpolateOptions interpolate_options(const Tensor& row) {
    const std::vector<double> v = row.to_vector<double>();
    REQUIRE(v.size() == 6);
    const tg::InterpolateMode modes[] = {tg::InterpolateMode::Nearest, tg::InterpolateMode::NearestExact, tg::InterpolateMode::Bilinear};
    tg::InterpolateOptions o{.mode = modes[static_cast<int>(v[0])], .align_corners = v[4] != 0, .recompute_scale_factor = v[5] != 0};
    if (v[1] >= 0)
        o.size = tg::Pair{static_cast<int64_t>(v[1]), static_cast<int64_t>(v[2])};
    else
        o.scale_factor = v[3];
    return o;
}

void check_interpolate(tg::DType dtype, tg::MemoryFormat format, double tol) {
    std::map<std::string, Tensor> ref;
    for (auto& [name, t] : nn::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/resample_reference.tgck")) ref[name] = t;
    const std::string tag = dtype == tg::kFloat64 ? ".f64" : ".f32";
    int checked = 0;
    for (const auto& [key, options] : ref) {
        if (!key.ends_with(".options")) continue;
        const std::string name = key.substr(0, key.size() - std::string(".options").size());
        INFO(name, " in ", std::string(tg::dtype_name(dtype)), format == tg::MemoryFormat::ChannelsLast ? ", channels-last" : ", row-major");
        const Tensor x = ref.at(name + ".in").to(dtype).contiguous(format).detach().requires_grad_();
        const Tensor out = tg::interpolate(x, interpolate_options(options));
        const Tensor& want_out = ref.at(name + tag + ".out");
        CHECK_MESSAGE(relative_error(out, want_out) <= tol, "output differs by " << relative_error(out, want_out));
        const Tensor grad = tg::grad({out}, {x}, {ref.at(name + ".cot").to(dtype)})[0];
        const Tensor& want_grad = ref.at(name + tag + ".grad");
        CHECK_MESSAGE(relative_error(grad, want_grad) <= tol, "gradient differs by " << relative_error(grad, want_grad));
        ++checked;
    }
    CHECK(checked == 41);  // the cases make_resample_reference.py writes
}

}  // namespace

TEST_CASE("new ops match PyTorch in float64 (reference kernels)") { check_all(tg::kFloat64, true, 1e-12); }

TEST_CASE("new ops match PyTorch in float32 (fast kernels)") { check_all(tg::kFloat32, false, 1e-5); }

TEST_CASE("interpolate matches PyTorch: nearest, nearest-exact and bilinear, by size and by scale factor") {
    for (const auto format : {tg::MemoryFormat::Contiguous, tg::MemoryFormat::ChannelsLast}) {
        check_interpolate(tg::kFloat64, format, 1e-13);
        check_interpolate(tg::kFloat32, format, 1e-6);
    }
}

TEST_CASE("interpolate nearest reads the rows PyTorch reads where the source index is a rounding from an integer") {
    // x[.., i, 0] = i, so the output holds the row each output row reads. The wanted rows are
    // PyTorch 1.13's; a double floor(o in/out) reads one row less at each marked position.
    auto rows_read = [](int64_t in, const tg::InterpolateOptions& o) {
        return tg::interpolate(tg::arange(in, {.dtype = tg::kFloat64}).reshape({1, 1, in, 1}), o).to_vector<double>();
    };
    const auto from_30_to_22 = rows_read(30, {.size = tg::Pair{22, 1}});
    CHECK(from_30_to_22[11] == 15.0);  // 11 * 30/22
    const auto from_2_to_98 = rows_read(2, {.size = tg::Pair{98, 1}});
    CHECK(from_2_to_98[49] == 1.0);  // 49 * 2/98
    const auto scale_1_3 = rows_read(39, {.scale_factor = 1.3});
    CHECK(scale_1_3[39] == 30.0);  // 39 / 1.3
    // A scale factor that keeps the size copies; one that doubles reads o/2 (the output is 6x2).
    CHECK(rows_read(9, {.scale_factor = 1.05}) == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(rows_read(3, {.scale_factor = 2.0}) == std::vector<double>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
    // nearest-exact reads the row whose centre is nearest: floor((o + 1/2) 30/22).
    CHECK(rows_read(30, {.size = tg::Pair{22, 1}, .mode = tg::InterpolateMode::NearestExact}) ==
          std::vector<double>{0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 17, 18, 19, 21, 22, 23, 25, 26, 27, 29});
}

TEST_CASE("views: narrow, slice, select and split share storage and refuse a changed base in backward") {
    Tensor x = tg::arange(12, {.dtype = tg::kFloat64}).reshape({3, 4});
    Tensor s = x.slice(1, 1, 4, 2);  // columns 1 and 3
    CHECK(s.shape() == tg::Shape{3, 2});
    CHECK(s.at({2, 1}) == 11.0);
    CHECK(x.select(0, -1).at({0}) == 8.0);
    CHECK(tg::narrow(x, 0, 1, 2).at({0, 0}) == 4.0);
    const auto parts = tg::chunk(x, 3, 1);  // ceil(4/3) = 2: two pieces of 2
    REQUIRE(parts.size() == 2);
    CHECK(parts[1].at({0, 0}) == 2.0);
    CHECK(tg::split(x, 3, 1).size() == 2);
    // The views alias x: a write through x shows in them.
    {
        tg::NoGradGuard no_grad;
        x.fill_(1.0);
    }
    CHECK(s.at({0, 0}) == 1.0);

    Tensor leaf = tg::ones({3, 4}, {.dtype = tg::kFloat64, .requires_grad = true});
    Tensor base = leaf * 2.0;
    Tensor v = base.select(1, 2);
    Tensor y = (v * v).sum();
    {
        tg::NoGradGuard no_grad;
        base.mul_(3.0);
    }
    CHECK_THROWS_AS(y.backward(), std::invalid_argument);
}

TEST_CASE("shape ops refuse bad arguments with the op's name") {
    Tensor x = tg::zeros({2, 3});
    auto throws_naming = [](const std::function<void()>& f, const std::string& op) {
        try {
            f();
            FAIL("no error for " << op);
        } catch (const std::invalid_argument& e) {
            CHECK_MESSAGE(std::string(e.what()).rfind(op + ":", 0) == 0, e.what());
        }
    };
    throws_naming([&] { tg::cat({x, tg::zeros({2, 2})}, 0); }, "cat");
    throws_naming([&] { tg::cat({x, tg::zeros({3})}, 0); }, "cat");  // mixed dtypes promote, as PyTorch; ranks must match
    throws_naming([&] { tg::cat({}, 0); }, "cat");
    throws_naming([&] { tg::stack({x, tg::zeros({3, 2})}); }, "stack");
    throws_naming([&] { tg::narrow(x, 1, 2, 2); }, "narrow");
    throws_naming([&] { tg::select(x, 0, 2); }, "select");
    throws_naming([&] { tg::slice(x, 1, 0, 3, 0); }, "slice");
    throws_naming([&] { tg::split(x, std::vector<int64_t>{1, 1}, 1); }, "split");
    throws_naming([&] { tg::chunk(x, 0); }, "chunk");
    throws_naming([&] { tg::pad(x, {3, 0}, tg::PadMode::Reflect); }, "pad");
    throws_naming([&] { tg::pad(x, {1}); }, "pad");
    throws_naming([&] { tg::interpolate(tg::zeros({1, 1, 2, 2}), {}); }, "interpolate");
    throws_naming([&] { tg::interpolate(tg::zeros({1, 1, 2, 2}), {.scale_factor = 2.0, .align_corners = true}); }, "interpolate");
    throws_naming([&] { tg::interpolate(tg::zeros({1, 1, 2, 2}), {.scale_factor = 2.0, .mode = tg::InterpolateMode::NearestExact, .align_corners = true}); },
                  "interpolate");
    throws_naming([&] { tg::interpolate(tg::zeros({1, 1, 2, 2}), {.size = tg::Pair{3, 3}, .recompute_scale_factor = true}); }, "interpolate");
    throws_naming([&] { tg::layer_norm(x, {2}); }, "layer_norm");
    throws_naming([&] { tg::group_norm(tg::zeros({2, 3, 2}), 2); }, "group_norm");
    throws_naming([&] { tg::conv2d(tg::zeros({1, 1, 4, 4}), tg::zeros({1, 1, 3, 3}), Tensor(), {.stride = 2, .padding = tg::kSame}); },
                  "conv2d");
    throws_naming([&] { tg::matmul(tg::zeros({3}), tg::zeros({4})); }, "matmul");
    throws_naming([&] { tg::clamp(x, 1.0, 0.0); }, "clamp");
    // Nothing was recorded or changed.
    CHECK(x.is_leaf());
}
