// Second-order autograd: create_graph in backward() and grad(), saved tensors with history, the
// gradient convolutions as ops, gradgradcheck, hvp and jacobian, and the graphs' lifetimes.
#include <doctest/doctest.h>

#include <cmath>
#include <iostream>
#include <sstream>
#include <string>

#include "engine/autograd.hpp"
#include "engine/function.hpp"
#include "engine/functional.hpp"
#include "engine/generator.hpp"
#include "engine/gradcheck.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/batch_norm.hpp"
#include "ops/conv.hpp"
#include "ops/conv_transpose.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/linear.hpp"
#include "ops/loss.hpp"
#include "ops/pooling.hpp"
#include "ops/reduce.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

Tensor leaf(std::initializer_list<double> v) { return tg::tensor(v, {.dtype = tg::kFloat64, .requires_grad = true}); }

double dot(const Tensor& a, const Tensor& b) { return tg::sum(a * b).item(); }

}  // namespace

// First in this file: the warning is printed once per process, and ctest runs each case alone.
TEST_CASE("backward(create_graph) warns once about the .grad() reference cycle; grad(create_graph) does not") {
    std::ostringstream captured;
    std::streambuf* const stderr_buffer = std::cerr.rdbuf(captured.rdbuf());
    const int64_t before = tg::Node::live_count();
    {
        Tensor x = leaf({1.0, 2.0});
        tg::grad({tg::sum(x * x * x)}, {x}, {}, std::nullopt, /*create_graph=*/true);
        const std::string after_grad = captured.str();
        for (int i = 0; i < 2; ++i) tg::sum(x * x * x).backward(Tensor(), std::nullopt, /*create_graph=*/true);
        std::cerr.rdbuf(stderr_buffer);
        CHECK(after_grad.empty());
        const std::string text = captured.str();
        const std::string warning = "create a reference cycle between the parameter and its gradient";
        CHECK(text.find(warning) != std::string::npos);
        CHECK(text.find(warning) == text.rfind(warning));  // once
        CHECK(text.find("zero_grad()") != std::string::npos);
        // The cycle: x holds its .grad(), whose graph holds x. Resetting .grad() breaks it.
        CHECK(tg::Node::live_count() > before);
        x.zero_grad();
    }
    CHECK(tg::Node::live_count() == before);
}

TEST_CASE("conv_transpose2d: worked examples from the definition") {
    // x = [1, 2], w = [1, 10]: y[h] = sum over (i, u) with s i + u = h of x[i] w[u].
    const Tensor x = tg::from_vector(std::vector<double>{1, 2}, {1, 1, 1, 2}, {.dtype = tg::kFloat64});
    const Tensor w = tg::from_vector(std::vector<double>{1, 10}, {1, 1, 1, 2}, {.dtype = tg::kFloat64});
    CHECK(tg::conv_transpose2d(x, w).to_vector<double>() == std::vector<double>{1, 12, 20});
    CHECK(tg::conv_transpose2d(x, w, {}, {.stride = {1, 2}}).to_vector<double>() == std::vector<double>{1, 10, 2, 20});
    // output_padding adds a column no input reaches: it holds the bias only.
    const Tensor b = tg::from_vector(std::vector<double>{0.5}, {1}, {.dtype = tg::kFloat64});
    CHECK(tg::conv_transpose2d(x, w, b, {.stride = {1, 2}, .output_padding = {0, 1}}).to_vector<double>() ==
          std::vector<double>{1.5, 10.5, 2.5, 20.5, 0.5});
    // PyTorch's size rule: (H-1)s - 2p + d(K-1) + output_padding + 1.
    tg::Generator gen(0);
    const Tensor x2 = tg::randn({2, 4, 5, 3}, gen), w2 = tg::randn({4, 3, 3, 3}, gen);
    CHECK(tg::conv_transpose2d(x2, w2, {}, {.stride = 2, .padding = 1, .output_padding = 1}).shape() == tg::Shape{2, 3, 10, 6});
    CHECK(tg::conv_transpose2d(x2, w2, {}, {.padding = 1, .dilation = 2}).shape() == tg::Shape{2, 3, 7, 5});
}

TEST_CASE("conv_transpose2d is the adjoint of conv2d, and conv2d_weight_grad is conv2d's weight gradient") {
    tg::Generator gen(1);
    struct Geometry {
        tg::Shape x, w;
        tg::Conv2dOptions o;
    };
    for (const Geometry& c : {Geometry{{2, 3, 7, 6}, {4, 3, 3, 3}, {.stride = 2, .padding = 1}},
                              Geometry{{1, 4, 6, 5}, {6, 2, 2, 3}, {.stride = {1, 2}, .padding = {0, 1}, .dilation = 2, .groups = 2}},
                              Geometry{{2, 2, 6, 6}, {2, 2, 3, 3}, {.stride = 2}}}) {
        for (bool reference : {true, false}) {
            INFO("reference kernels: " << reference);
            const tg::ReferenceKernelsGuard guard(reference);
            const Tensor u = tg::randn(c.x, gen), w = tg::randn(c.w, gen);
            const Tensor y = tg::conv2d(u, w, {}, c.o);
            const Tensor v = tg::randn(y.shape(), gen);
            const int64_t op_h = c.x[2] - ((y.size(2) - 1) * c.o.stride.h - 2 * c.o.padding.h + c.o.dilation.h * (c.w[2] - 1) + 1);
            const int64_t op_w = c.x[3] - ((y.size(3) - 1) * c.o.stride.w - 2 * c.o.padding.w + c.o.dilation.w * (c.w[3] - 1) + 1);
            const Tensor ut = tg::conv_transpose2d(v, w, {}, {.stride = c.o.stride, .padding = c.o.padding,
                                                               .output_padding = {op_h, op_w}, .groups = c.o.groups,
                                                               .dilation = c.o.dilation});
            REQUIRE(ut.shape() == u.shape());
            // <conv2d(u, w), v> = <u, conv_transpose2d(v, w)> = <w, conv2d_weight_grad(u, v)>
            const double lhs = dot(y, v);
            CHECK(dot(u, ut) == doctest::Approx(lhs).epsilon(1e-4));
            CHECK(dot(w, tg::conv2d_weight_grad(u, v, c.w, c.o)) == doctest::Approx(lhs).epsilon(1e-4));
        }
    }
}

TEST_CASE("conv_transpose2d and conv2d_weight_grad refuse bad arguments by name") {
    tg::Generator gen(2);
    const Tensor x = tg::randn({1, 2, 3, 3}, gen), w = tg::randn({2, 3, 3, 3}, gen);
    CHECK_THROWS_WITH_AS(tg::conv_transpose2d(x, w, {}, {.stride = 2, .output_padding = 2}),
                         doctest::Contains("conv_transpose2d: output_padding"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::conv_transpose2d(x, tg::randn({3, 3, 3, 3}, gen)), doctest::Contains("conv_transpose2d"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::conv_transpose2d(x, w, tg::randn({2}, gen)), doctest::Contains("bias must be [3]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::conv2d_weight_grad(x, tg::randn({1, 4, 2, 2}, gen), {4, 2, 3, 3}),
                         doctest::Contains("conv2d_weight_grad: grad_output must be [1,4,1,1]"), std::invalid_argument);
}

TEST_CASE("create_graph: grad of grad of x^3 and of sigmoid, with saved inputs and outputs") {
    const Tensor x = leaf({0.5, -1.5, 2.0});
    const Tensor y = tg::sum(x * x * x);
    const Tensor g = tg::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
    REQUIRE(g.requires_grad());
    CHECK(tg::allclose(g, 3.0 * x.detach() * x.detach()));
    const Tensor h = tg::grad({tg::sum(g)}, {x})[0];
    CHECK(tg::allclose(h, 6.0 * x.detach()));

    // sigmoid saves its output: s'' = s (1 - s) (1 - 2 s).
    const Tensor s = tg::sigmoid(x);
    const Tensor ds = tg::grad({tg::sum(s)}, {x}, {}, std::nullopt, true)[0];
    const Tensor d2 = tg::grad({tg::sum(ds)}, {x})[0];
    const Tensor sv = s.detach();
    CHECK(tg::allclose(d2, sv * (1.0 - sv) * (1.0 - 2.0 * sv), 1e-12, 1e-12));
}

TEST_CASE("create_graph: backward() leaves a .grad() with history; a later plain backward frees the graph") {
    const int64_t before = tg::Node::live_count();
    {
        Tensor x = leaf({1.0, 2.0});
        const Tensor y = tg::sum(tg::exp(x) * x);
        y.backward(Tensor(), std::nullopt, /*create_graph=*/true);
        REQUIRE(x.grad().defined());
        CHECK(x.grad().requires_grad());
        CHECK(!x.grad().is_leaf());
        // d/dx (e^x x) = e^x (1 + x); its derivative e^x (2 + x).
        const Tensor xv = x.detach();
        CHECK(tg::allclose(x.grad(), tg::exp(xv) * (1.0 + xv), 1e-12, 1e-12));
        const Tensor first = x.grad();
        x.zero_grad();
        tg::sum(first).backward();
        CHECK(tg::allclose(x.grad(), tg::exp(xv) * (2.0 + xv), 1e-12, 1e-12));
        // The plain backward freed the graph it walked (the first backward's graph included).
        CHECK_THROWS_WITH_AS(tg::sum(first).backward(), doctest::Contains("retain_graph"), std::invalid_argument);
    }
    CHECK(tg::Node::live_count() == before);
}

TEST_CASE("create_graph: a second-order training step leaves no node alive (no cycles)") {
    const int64_t before = tg::Node::live_count();
    {
        tg::Generator gen(3);
        Tensor w = tg::randn({4, 3}, gen, {.dtype = tg::kFloat64}).requires_grad_(true);
        Tensor x = tg::randn({5, 3}, gen, {.dtype = tg::kFloat64}).requires_grad_(true);
        const Tensor out = tg::sum(tg::tanh(tg::linear(x, w)));
        const Tensor gx = tg::grad({out}, {x}, {}, std::nullopt, true)[0];
        const Tensor penalty = tg::sum(gx * gx);
        penalty.backward();
        REQUIRE(w.grad().defined());
        CHECK(tg::sum(tg::abs(w.grad())).item() > 0);
    }
    CHECK(tg::Node::live_count() == before);
}

TEST_CASE("create_graph without retain_graph=false keeps the first graph: a second backward through it works") {
    const Tensor x = leaf({0.3, 0.7});
    const Tensor y = tg::sum(tg::log(x) * x);
    const Tensor g = tg::grad({y}, {x}, {}, std::nullopt, true)[0];
    const Tensor g_again = tg::grad({y}, {x})[0];  // retained by create_graph
    CHECK(tg::allclose(g, g_again));
}

TEST_CASE("gradgradcheck: passes on smooth functions and catches a wrong second derivative") {
    const Tensor x = leaf({0.3, -0.8, 1.1});
    const Tensor w = leaf({0.5, 0.2, -0.4});
    auto fn = [](const std::vector<Tensor>& in) { return tg::tanh(in[0] * in[1]) * tg::exp(in[0]); };
    const auto r = tg::gradgradcheck(fn, {x, w});
    CHECK_MESSAGE(r.passed, r.message);

    // relu through a piecewise-constant mask: its second derivative is 0 away from the kink.
    const auto relu_r = tg::gradgradcheck([](const std::vector<Tensor>& in) { return tg::relu(in[0]) * in[0]; }, {x});
    CHECK_MESSAGE(relu_r.passed, relu_r.message);

    // A user function whose backward is written with tapegrad ops has a second derivative ...
    struct Square : tg::Function<Square> {
        static Tensor forward(tg::FunctionCtx& ctx, const Tensor& t) {
            ctx.save_for_backward({t});
            return t * t;
        }
        static std::vector<Tensor> backward(tg::FunctionCtx& ctx, const Tensor& g) { return {g * 2.0 * ctx.saved()[0]}; }
    };
    const auto good = tg::gradgradcheck([](const std::vector<Tensor>& in) { return Square::apply(in[0]); }, {x});
    CHECK_MESSAGE(good.passed, good.message);
    // ... and one that cuts its saved input off the graph has a wrong one, which gradgradcheck sees.
    struct DetachedSquare : tg::Function<DetachedSquare> {
        static Tensor forward(tg::FunctionCtx& ctx, const Tensor& t) {
            ctx.save_for_backward({t});
            return t * t;
        }
        static std::vector<Tensor> backward(tg::FunctionCtx& ctx, const Tensor& g) { return {g * 2.0 * ctx.saved()[0].detach()}; }
    };
    const auto bad = tg::gradgradcheck([](const std::vector<Tensor>& in) { return DetachedSquare::apply(in[0]); }, {x});
    CHECK(!bad.passed);
}

TEST_CASE("hvp and jacobian agree with finite differences") {
    auto f = [](const Tensor& t) { return tg::sum(tg::exp(t) * t * t) + tg::sum(t) * tg::sum(t * t); };
    const Tensor x = tg::tensor({0.2, -0.5, 0.9}, {.dtype = tg::kFloat64});
    const Tensor v = tg::tensor({1.0, 0.3, -2.0}, {.dtype = tg::kFloat64});
    const Tensor hv = tg::hvp(f, x, v);
    // Central difference of the gradient along v.
    auto gradient = [&](const Tensor& at) {
        Tensor l = at.detach().clone().requires_grad_(true);
        return tg::grad({f(l)}, {l})[0];
    };
    const double eps = 1e-6;
    const Tensor fd = (gradient(x + v * eps) - gradient(x - v * eps)) / (2 * eps);
    CHECK_MESSAGE(tg::allclose(hv, fd, 1e-6, 1e-6), "hvp " << hv << " vs " << fd);
    CHECK(!hv.requires_grad());

    auto g = [](const Tensor& t) { return tg::tanh(tg::matmul(t.reshape({1, 3}), t.reshape({3, 1}) * 0.5)).reshape({1}) * t; };
    const Tensor jac = tg::jacobian(g, x);
    REQUIRE(jac.shape() == tg::Shape{3, 3});
    for (int64_t j = 0; j < 3; ++j) {
        Tensor e = tg::zeros({3}, {.dtype = tg::kFloat64});
        e.data<double>()[j] = eps;
        const Tensor col = (g(x + e) - g(x - e)) / (2 * eps);
        for (int64_t i = 0; i < 3; ++i) CHECK(jac.at({i, j}) == doctest::Approx(col.at({i})).epsilon(1e-6));
    }
    CHECK_THROWS_AS(tg::hvp(f, x, tg::tensor({1.0}, {.dtype = tg::kFloat64})), std::invalid_argument);
}

TEST_CASE("create_graph on the fast float32 kernels matches the reference kernels (a conv net's gradient penalty)") {
    // d/dtheta ||d loss/dx||^2 through conv2d (oneDNN in float32: conv_transpose2d and
    // conv2d_weight_grad on their fast paths), batch_norm, relu, max_pool2d, linear, cross_entropy.
    auto penalty_gradients = [](bool reference) {
        const tg::ReferenceKernelsGuard guard(reference);
        tg::Generator gen(5);
        Tensor x = tg::randn({4, 2, 8, 8}, gen).requires_grad_(true);
        Tensor w = (tg::randn({6, 2, 3, 3}, gen) * 0.4).detach().requires_grad_(true);
        Tensor b = tg::randn({6}, gen).requires_grad_(true);
        Tensor gamma = (tg::randn({6}, gen) * 0.1 + 1.0).detach().requires_grad_(true);
        Tensor fc = (tg::randn({3, 6 * 4 * 4}, gen) * 0.2).detach().requires_grad_(true);
        Tensor h = tg::conv2d(x, w, b, {.padding = 1});
        h = tg::relu(tg::batch_norm(h, Tensor(), Tensor(), gamma, Tensor()));
        h = tg::max_pool2d(h, {.kernel_size = 2});
        const Tensor loss = tg::cross_entropy(tg::linear(h.flatten(1), fc), {0, 2, 1, 2});
        const Tensor gx = tg::grad({loss}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
        // (b is not asked for: batch_norm cancels a per-channel shift, so its gradient is 0.)
        return tg::grad({tg::sum(gx * gx)}, {w, gamma, fc}, {}, std::nullopt, false, /*allow_unused=*/true);
    };
    const std::vector<Tensor> fast = penalty_gradients(false), ref = penalty_gradients(true);
    for (std::size_t i = 0; i < fast.size(); ++i) {
        INFO("parameter " << i);
        CHECK(tg::sum(tg::abs(ref[i])).item() > 0);
        CHECK_MESSAGE(tg::allclose(fast[i], ref[i], 1e-3, 1e-5), "differs by " << tg::max_abs_diff(fast[i], ref[i]));
    }
}

TEST_CASE("without create_graph nothing is recorded: no new node, .grad() without history") {
    tg::Generator gen(6);
    Tensor w = tg::randn({3, 2, 3, 3}, gen).requires_grad_(true);
    const Tensor x = tg::randn({2, 2, 6, 6}, gen);
    const Tensor loss = tg::sum(tg::sigmoid(tg::conv2d(x, w)));
    const int64_t nodes = tg::Node::live_count();
    loss.backward();
    CHECK(tg::Node::live_count() == nodes);
    REQUIRE(w.grad().defined());
    CHECK(w.grad().is_leaf());
    CHECK(!w.grad().requires_grad());
}

TEST_CASE("a .grad() with history is replaced, not written in place, by a later plain backward") {
    Tensor x = leaf({1.0, 2.0});
    tg::sum(x * x * x).backward(Tensor(), std::nullopt, /*create_graph=*/true);
    const Tensor recorded = x.grad();
    const std::vector<double> before = recorded.to_vector<double>();
    tg::sum(x * 2.0).backward();
    CHECK(recorded.to_vector<double>() == before);  // the recorded gradient's graph still reads it
    CHECK(!x.grad().same(recorded));
    CHECK(tg::allclose(x.grad(), 3.0 * x.detach() * x.detach() + 2.0));
}
