// The one driver over the op registry (see tests/registry/op_registry.hpp).
#include <doctest/doctest.h>

#include "engine/autograd.hpp"
#include "engine/gradcheck.hpp"
#include "ops/arithmetic.hpp"
#include "ops/view.hpp"
#include "tests/registry/op_registry.hpp"

namespace tg = tapegrad;
using tg::Tensor;
using tg::testing::OpCase;

namespace {

std::vector<Tensor> make_inputs(const OpCase& c, tg::DType dtype, uint64_t seed) {
    tg::Generator gen(seed);
    std::vector<Tensor> in;
    if (c.make_inputs) in = c.make_inputs(gen, dtype);
    else
        for (const auto& s : c.input_shapes) in.push_back(tg::randn(s, gen, {.dtype = dtype}));
    for (std::size_t i = 0; i < in.size(); ++i)
        if (in[i].defined() && (c.differentiable.empty() || c.differentiable[i])) in[i].requires_grad_(true);
    return in;
}

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
    r.grads = tg::grad({r.out}, wrt, {g}, false, /*allow_unused=*/true);
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
        INFO(c.name);
        auto in = make_inputs(c, tg::kFloat64, 1);
        auto r = tg::gradcheck(c.fn, in, {.fast_mode = c.gradcheck_fast_mode});
        CHECK_MESSAGE(r.passed, c.name << ": " << r.message);
    }
    MESSAGE(tg::testing::op_registry().size() << " op cases checked");
}

TEST_CASE("registry: fast float32 kernels equal the reference kernels, in every layout") {
    for (const OpCase& c : tg::testing::op_registry()) {
        auto in = make_inputs(c, tg::kFloat32, 2);
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

TEST_CASE("registry: backward is linear in grad_output") {
    for (const OpCase& c : tg::testing::op_registry()) {
        INFO(c.name);
        auto in = make_inputs(c, tg::kFloat64, 4);
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
