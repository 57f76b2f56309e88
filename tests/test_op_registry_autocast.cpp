// Autocast (ops/autocast.hpp) over the registry's rows of the ops it covers: conv2d,
// conv_transpose2d, matmul, mm and linear. Under tg::AutocastGuard(kBFloat16) each row's output and
// gradients are float32 tensors holding bfloat16 values, within bfloat16's tolerance of float32's,
// and the bf16 kernels (where the processor has them) agree with the reference path that rounds
// around the float32 kernels. The registry's other ops keep computing in float32 under the guard.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <string>

#include "engine/autograd.hpp"
#include "ops/autocast.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "tests/registry/op_registry.hpp"

namespace tg = tapegrad;
using tg::Tensor;
using tg::testing::OpCase;

namespace {

const std::set<std::string> kAutocastOps = {"conv2d", "conv_transpose2d", "matmul", "mm", "linear"};

struct Run {
    Tensor out;
    std::vector<Tensor> grads;
};

// Output and input gradients for grad_output drawn from seed 5, with autocast as `path` says
// (nothing: float32).
Run run(const OpCase& c, const std::vector<Tensor>& in, std::optional<tg::AutocastPath> path) {
    std::optional<tg::AutocastGuard> guard;
    if (path) guard.emplace(tg::kBFloat16, true, *path);
    Run r;
    r.out = c.fn(in);
    std::vector<Tensor> wrt;
    for (const auto& t : in)
        if (t.defined() && t.requires_grad()) wrt.push_back(t);
    tg::Generator gen(5);
    const Tensor g = tg::randn(r.out.shape(), gen, {.dtype = r.out.dtype()});
    guard.reset();  // the backward keeps the forward's precision without the guard
    if (!wrt.empty()) r.grads = tg::grad({r.out}, wrt, {g}, false, /*create_graph=*/false, /*allow_unused=*/true);
    return r;
}

bool holds_bfloat16_values(const Tensor& t) {
    if (t.dtype() != tg::kFloat32) return false;
    for (float v : t.to_vector<float>())
        if (!std::isnan(v) && v != tg::round_to_bfloat16(v)) return false;
    return true;
}

// The matrices stacked in t's leading dimensions (1 for a matrix or a vector).
int64_t batch_of(const Tensor& t) {
    int64_t n = 1;
    for (std::size_t d = 0; d + 2 < t.dim(); ++d) n *= t.shape()[d];
    return n;
}

double max_abs(const Tensor& t) {
    double m = 0;
    for (float v : t.to_vector<float>()) m = std::max(m, static_cast<double>(std::abs(v)));
    return m;
}

// Every element within `rel` of the reference's largest magnitude: bfloat16 keeps 8 bits, so a
// sum of products of rounded inputs is off by about 2^-8 of the terms' size.
void check_close(const Tensor& got, const Tensor& want, double rel, const std::string& what) {
    REQUIRE(got.shape() == want.shape());
    const double scale = std::max(max_abs(want), 1e-3);
    CHECK_MESSAGE(tg::max_abs_diff(got, want) <= rel * scale,
                  what << " differs by " << tg::max_abs_diff(got, want) << ", more than " << rel << " x " << scale);
}

template <class Check>
void for_each_autocast_row(Check check) {
    int rows = 0;
    for (const OpCase& c : tg::testing::op_registry()) {
        if (!kAutocastOps.count(tg::testing::op_of(c)) || c.zero_size) continue;
        INFO(c.name);
        check(c, tg::testing::make_case_inputs(c, tg::kFloat32, 3));
        ++rows;
    }
    if (tg::testing::selected_op().empty()) CHECK(rows >= 40);
}

}  // namespace

TEST_CASE("autocast: every conv, matmul and linear row is float32 holding bfloat16 values, within bfloat16's tolerance of float32") {
    for_each_autocast_row([](const OpCase& c, const std::vector<Tensor>& in) {
        const Run f32 = run(c, in, std::nullopt);
        const Run bf16 = run(c, in, tg::AutocastPath::Best);
        CHECK(holds_bfloat16_values(bf16.out));
        check_close(bf16.out, f32.out, 1.0 / 64, "the output");
        REQUIRE(bf16.grads.size() == f32.grads.size());
        for (std::size_t i = 0; i < f32.grads.size(); ++i) {
            if (!f32.grads[i].defined()) continue;
            INFO("gradient ", i);
            // The engine sums a broadcast operand's gradient over the batch in float32 (PyTorch
            // in bfloat16): those hold sums of bfloat16 values.
            int64_t batch = batch_of(bf16.out);
            for (const Tensor& t : in) batch = std::max(batch, batch_of(t));
            if (batch_of(in[i]) == batch) CHECK(holds_bfloat16_values(bf16.grads[i]));
            check_close(bf16.grads[i], f32.grads[i], 1.0 / 64, "the gradient");
        }
    });
}

TEST_CASE("autocast: the bf16 kernels agree with the reference path that rounds around the float32 kernels") {
    if (!tg::autocast_is_accelerated()) MESSAGE("this processor has no bf16 kernels: both runs take the reference path");
    for_each_autocast_row([](const OpCase& c, const std::vector<Tensor>& in) {
        const Run best = run(c, in, tg::AutocastPath::Best);
        const Run reference = run(c, in, tg::AutocastPath::Reference);
        // Both sum the same exact products of bfloat16 values in float32, in different orders, then
        // round: one bfloat16 step apart at most, where the sums straddle a rounding boundary.
        check_close(best.out, reference.out, 1.0 / 128, "the output");
        for (std::size_t i = 0; i < best.grads.size(); ++i)
            if (best.grads[i].defined()) check_close(best.grads[i], reference.grads[i], 1.0 / 128, "gradient " + std::to_string(i));
        // The reference kernels (ReferenceKernelsGuard) take the reference path too.
        tg::ReferenceKernelsGuard loops;
        const Run loop = run(c, in, tg::AutocastPath::Best);
        check_close(loop.out, reference.out, 1.0 / 128, "the output on the reference kernels");
    });
}

TEST_CASE("autocast: float64 rows, and float32 outside the guard, are left alone") {
    for_each_autocast_row([](const OpCase& c, const std::vector<Tensor>&) {
        const auto in64 = tg::testing::make_case_inputs(c, tg::kFloat64, 3);
        const Run plain = run(c, in64, std::nullopt), under = run(c, in64, tg::AutocastPath::Best);
        CHECK(tg::allclose(under.out, plain.out, 0, 0));
        const auto in32 = tg::testing::make_case_inputs(c, tg::kFloat32, 3);
        const Run f32 = run(c, in32, std::nullopt);
        tg::AutocastGuard outer(tg::kBFloat16);
        const Run off = [&] {
            tg::AutocastGuard disabled(tg::kBFloat16, false);
            CHECK_FALSE(tg::is_autocast_enabled());
            return run(c, in32, std::nullopt);
        }();
        CHECK(tg::is_autocast_enabled());
        CHECK(tg::allclose(off.out, f32.out, 0, 0));
    });
}

TEST_CASE("autocast: the backward recorded under create_graph computes in bfloat16 as the fused one does") {
    for_each_autocast_row([](const OpCase& c, const std::vector<Tensor>& in) {
        std::vector<Tensor> wrt;
        for (const auto& t : in)
            if (t.defined() && t.requires_grad()) wrt.push_back(t);
        if (wrt.empty()) return;
        Tensor out;
        {
            tg::AutocastGuard autocast(tg::kBFloat16);
            out = c.fn(in);
        }
        tg::Generator gen(7);
        const Tensor g = tg::randn(out.shape(), gen);
        const auto fused = tg::grad({out}, wrt, {g}, true, /*create_graph=*/false, /*allow_unused=*/true);
        const auto spec = tg::grad({out}, wrt, {g}, false, /*create_graph=*/true, /*allow_unused=*/true);
        for (std::size_t i = 0; i < fused.size(); ++i)
            if (fused[i].defined()) check_close(spec[i].detach(), fused[i], 1.0 / 128, "gradient " + std::to_string(i));
    });
}
