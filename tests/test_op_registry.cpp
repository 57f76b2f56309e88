// The one driver over the op registry (see tests/registry/op_registry.hpp).
#include <doctest/doctest.h>

#include <limits>

#include "engine/autograd.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "engine/gradcheck.hpp"
#include "engine/tensor_math.hpp"
#include "ops/arithmetic.hpp"
#include "ops/view.hpp"
#include "tests/registry/op_registry.hpp"

namespace tg = tapegrad;
using tg::Tensor;
using tg::testing::OpCase;

namespace {

// Output and input gradients for a fixed random grad_output.
struct Run {
    Tensor out;
    std::vector<Tensor> grads;
};

Run run(const OpCase& c, const std::vector<Tensor>& in, const Tensor& grad_output_seed) {
    Run r;
    r.out = c.fn(in);
    std::vector<Tensor> wrt;
    for (const auto& t : in)
        if (t.requires_grad()) wrt.push_back(t);
    if (wrt.empty()) return r;
    Tensor g = grad_output_seed.defined() ? grad_output_seed : tg::ones_like(r.out);
    r.grads = tg::grad({r.out}, wrt, {g}, false, /*create_graph=*/false, /*allow_unused=*/true);
    return r;
}

Tensor random_like(const Tensor& t, uint64_t seed) {
    tg::Generator gen(seed);
    return tg::randn(t.shape(), gen, {.dtype = t.dtype()});
}

void compare(const OpCase& c, const Run& fast, const Run& ref, const char* layout) {
    INFO(c.name, " (", layout, ")");
    REQUIRE(fast.out.shape() == ref.out.shape());
    CHECK_MESSAGE(tg::allclose(fast.out, ref.out, c.rtol, c.atol),
                  "forward differs by " << tg::max_abs_diff(fast.out, ref.out));
    REQUIRE(fast.grads.size() == ref.grads.size());
    for (std::size_t i = 0; i < fast.grads.size(); ++i) {
        if (!ref.grads[i].defined()) continue;
        REQUIRE(fast.grads[i].defined());
        CHECK_MESSAGE(tg::allclose(fast.grads[i], ref.grads[i], c.rtol, c.atol),
                      "gradient " << i << " differs by " << tg::max_abs_diff(fast.grads[i], ref.grads[i]));
    }
}

}  // namespace

TEST_CASE("registry: every op passes gradcheck in float64") {
    REQUIRE(!tg::testing::op_registry().empty());
    for (const OpCase& c : tg::testing::op_registry()) {
        if (c.zero_size) continue;  // nothing to differentiate; the zero-size test runs these
        INFO(c.name);
        auto in = tg::testing::make_case_inputs(c, tg::kFloat64, 1);
        auto r = tg::gradcheck(c.fn, in, {.fast_mode = c.gradcheck_fast_mode});
        CHECK_MESSAGE(r.passed, c.name << ": " << r.message);
    }
    MESSAGE(tg::testing::op_registry().size() << " op cases checked");
}

TEST_CASE("registry: every op passes gradgradcheck in float64") {
    int checked = 0;
    for (const OpCase& c : tg::testing::op_registry()) {
        if (c.zero_size) continue;
        INFO(c.name);
        auto in = tg::testing::make_case_inputs(c, tg::kFloat64, 1);
        auto r = tg::gradgradcheck(c.fn, in, Tensor(), {.fast_mode = c.gradcheck_fast_mode});
        CHECK_MESSAGE(r.passed, c.name << ": " << r.message);
        ++checked;
    }
    MESSAGE(checked << " op cases checked to second order");
}

TEST_CASE("registry: fast float32 kernels equal the reference kernels, in every layout") {
    for (const OpCase& c : tg::testing::op_registry()) {
        auto in = tg::testing::make_case_inputs(c, tg::kFloat32, 2);
        Tensor probe;
        {
            tg::NoGradGuard no_grad;
            probe = c.fn(in);
        }
        const Tensor g = random_like(probe, 3);
        Run ref;
        {
            tg::ReferenceKernelsGuard reference;
            ref = run(c, in, g);
        }
        compare(c, run(c, in, g), ref, "row-major");
        // The same values, with every 4-D input stored channels-last.
        bool any_4d = false;
        std::vector<Tensor> cl;
        for (const auto& t : in) {
            if (t.defined() && t.dim() == 4) {
                any_4d = true;
                Tensor v = t.detach().contiguous(tg::MemoryFormat::ChannelsLast);
                v.requires_grad_(t.requires_grad());
                cl.push_back(v);
            } else {
                cl.push_back(t);
            }
        }
        if (any_4d) compare(c, run(c, cl, g), ref, "channels-last");
    }
}

// An op's derivative is written once in differentiable ops (the spec, which create_graph
// records); a fused kernel backward, where an op has one, must give the same gradients.
TEST_CASE("registry: the fused backward equals the spec the op records under create_graph") {
    for (const OpCase& c : tg::testing::op_registry()) {
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
            INFO(c.name, " ", tg::dtype_name(dtype));
            const auto in = tg::testing::make_case_inputs(c, dtype, 11);
            std::vector<Tensor> wrt;
            for (const auto& t : in)
                if (t.defined() && t.requires_grad()) wrt.push_back(t);
            if (wrt.empty()) continue;
            const Tensor out = c.fn(in);
            const Tensor g = random_like(out, 12);
            const auto fused = tg::grad({out}, wrt, {g}, true, /*create_graph=*/false, /*allow_unused=*/true);
            const auto spec = tg::grad({out}, wrt, {g}, false, /*create_graph=*/true, /*allow_unused=*/true);
            REQUIRE(fused.size() == spec.size());
            const double tol = dtype == tg::kFloat64 ? 1e-10 : c.rtol;
            for (std::size_t i = 0; i < fused.size(); ++i) {
                REQUIRE(fused[i].defined() == spec[i].defined());
                if (!fused[i].defined()) continue;
                CHECK_MESSAGE(tg::allclose(fused[i], spec[i].detach(), tol, dtype == tg::kFloat64 ? 1e-10 : c.atol),
                              "gradient " << i << " differs by " << tg::max_abs_diff(fused[i], spec[i].detach()));
            }
        }
    }
}

TEST_CASE("registry: backward is linear in grad_output") {
    for (const OpCase& c : tg::testing::op_registry()) {
        INFO(c.name);
        auto in = tg::testing::make_case_inputs(c, tg::kFloat64, 4);
        Tensor probe;
        {
            tg::NoGradGuard no_grad;
            probe = c.fn(in);
        }
        const Tensor g1 = random_like(probe, 5), g2 = random_like(probe, 6);
        const double a = 0.7, b = -1.3;
        Run r1 = run(c, in, g1), r2 = run(c, in, g2), r12 = run(c, in, g1 * a + g2 * b);
        for (std::size_t i = 0; i < r1.grads.size(); ++i) {
            if (!r1.grads[i].defined()) continue;
            Tensor combined = r1.grads[i] * a + r2.grads[i] * b;
            CHECK_MESSAGE(tg::allclose(r12.grads[i], combined, 1e-9, 1e-9),
                          c.name << ": gradient " << i << " is not linear in grad_output");
        }
    }
}

namespace {

// The inputs of a row with requires_grad only on the ones in `subset` (bit i: input i).
std::vector<Tensor> with_grad_subset(const OpCase& c, tg::DType dtype, uint64_t seed, unsigned subset) {
    std::vector<Tensor> in = tg::testing::make_case_inputs(c, dtype, seed);
    for (std::size_t i = 0; i < in.size(); ++i)
        if (in[i].defined()) in[i] = in[i].detach().requires_grad_(in[i].requires_grad() && ((subset >> i) & 1));
    return in;
}

std::vector<std::size_t> differentiable_inputs(const OpCase& c, const std::vector<Tensor>& in) {
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < in.size(); ++i)
        if (in[i].requires_grad()) idx.push_back(i);
    return idx;
}

bool has_nan(const Tensor& t) {
    for (double v : t.to_vector<double>())
        if (v != v) return true;
    return false;
}

}  // namespace

TEST_CASE("registry: every subset of the inputs requiring grad gives the same gradients") {
    int checked = 0;
    for (const OpCase& c : tg::testing::op_registry()) {
        INFO(c.name);
        const std::vector<Tensor> all = tg::testing::make_case_inputs(c, tg::kFloat64, 7);
        const std::vector<std::size_t> diff = differentiable_inputs(c, all);
        if (diff.size() < 2) continue;
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
            const std::vector<Tensor> full_in = tg::testing::make_case_inputs(c, dtype, 7);
            Tensor probe;
            {
                tg::NoGradGuard no_grad;
                probe = c.fn(full_in);
            }
            const Tensor g = random_like(probe, 8);
            const Run full = run(c, full_in, g);
            for (unsigned subset = 1; subset + 1 < (1u << all.size()); ++subset) {
                const std::vector<Tensor> in = with_grad_subset(c, dtype, 7, subset);
                if (differentiable_inputs(c, in).empty()) continue;
                INFO("subset mask ", subset, ", ", tg::dtype_name(dtype));
                Run part;
                CHECK_NOTHROW(part = run(c, in, g));
                // run() returns gradients for the inputs that require grad, in order.
                std::size_t k = 0;
                for (std::size_t j = 0; j < diff.size(); ++j) {
                    if (!in[diff[j]].requires_grad()) continue;
                    REQUIRE(k < part.grads.size());
                    const Tensor& got = part.grads[k++];
                    const Tensor& want = full.grads[j];
                    if (!want.defined()) continue;
                    REQUIRE(got.defined());
                    CHECK_MESSAGE(tg::allclose(got, want, c.rtol, c.atol),
                                  "input " << diff[j] << " differs by " << tg::max_abs_diff(got, want));
                }
                ++checked;
            }
        }
    }
    MESSAGE(checked << " partial requires_grad runs checked");
    CHECK((checked > 0 || !tg::testing::selected_op().empty()));  // one op may have no such row
}

TEST_CASE("registry: a NaN in the first input reaches the output, in both kernels and dtypes") {
    for (const OpCase& c : tg::testing::op_registry()) {
        if (!c.nan_propagates || c.zero_size) continue;
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
            for (bool reference : {false, true}) {
                INFO(c.name, ", ", tg::dtype_name(dtype), reference ? ", reference" : ", fast");
                std::vector<Tensor> in = tg::testing::make_case_inputs(c, dtype, 9);
                REQUIRE(!in.empty());
                Tensor poisoned = in[0].detach().clone();
                {
                    tg::NoGradGuard no_grad;
                    tg::as_strided(poisoned, {1}, {1}).fill_(std::numeric_limits<double>::quiet_NaN());
                }
                poisoned.requires_grad_(in[0].requires_grad());
                in[0] = poisoned;
                tg::ReferenceKernelsGuard guard(reference);
                CHECK(has_nan(c.fn(in)));
            }
        }
    }
}

TEST_CASE("registry: zero-size rows run forward and backward, in both kernels") {
    int rows = 0;
    for (const OpCase& c : tg::testing::op_registry()) {
        if (!c.zero_size) continue;
        ++rows;
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
            for (bool reference : {false, true}) {
                INFO(c.name, ", ", tg::dtype_name(dtype), reference ? ", reference" : ", fast");
                tg::ReferenceKernelsGuard guard(reference);
                const std::vector<Tensor> in = tg::testing::make_case_inputs(c, dtype, 10);
                Run r;
                REQUIRE_NOTHROW(r = run(c, in, Tensor()));
                std::size_t k = 0;
                for (const Tensor& t : in) {
                    if (!t.requires_grad()) continue;
                    REQUIRE(k < r.grads.size());
                    if (r.grads[k].defined()) CHECK(r.grads[k].shape() == t.shape());
                    ++k;
                }
            }
        }
    }
    MESSAGE(rows << " zero-size rows");
    CHECK((rows > 0 || !tg::testing::selected_op().empty()));  // one op may have no such row
}
