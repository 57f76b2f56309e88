// Autograd off the beaten path, by class: in-place writes and aliasing (version counters), several
// roots and repeated inputs, partial requires_grad, zero-size tensors, NaN propagation and
// concurrent backward into shared leaves. Expected values are derived by hand in the comments.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/generator.hpp"
#include "engine/tensor_math.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/batch_norm.hpp"
#include "ops/conv.hpp"
#include "ops/inplace.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/linear.hpp"
#include "ops/loss.hpp"
#include "ops/pooling.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"
#include "tests/error_text.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

using tapegrad::testing::contains;
using tapegrad::testing::error_of;

}  // namespace

// ------------------------------------------------------------------ version counters

TEST_CASE("in-place: a write through detach() to a tensor saved by mul is refused at backward") {
    Tensor w = tg::tensor({1, 2, 3}, {.requires_grad = true});
    Tensor y = (w * w).sum();
    w.detach().fill_(10);
    const std::string msg = error_of([&] { y.backward(); });
    CHECK(contains(msg, "'mul'"));
    CHECK(contains(msg, "[3] float32"));
    CHECK(contains(msg, "version 1"));
    CHECK(contains(msg, "version 0"));
    CHECK_FALSE(w.grad().defined());  // nothing committed
}

TEST_CASE("in-place: every kind of write bumps the version shared by views and detach()") {
    Tensor t = tg::zeros({2, 3});
    Tensor view = t.transpose(0, 1);
    Tensor detached = t.detach();
    uint64_t v = t.version();
    t.fill_(1);
    CHECK(view.version() == ++v);
    detached.copy_(tg::ones({2, 3}));
    CHECK(t.version() == ++v);
    view.add_(1.0);
    CHECK(t.version() == ++v);
    t.mul_(2.0);
    CHECK(detached.version() == ++v);
    t.zero_();
    CHECK(t.version() == ++v);
    t.relu_();
    CHECK(t.version() == ++v);
    CHECK(values(t) == std::vector<double>(6, 0.0));
    // A fresh tensor has its own counter.
    CHECK(t.clone().version() == 0);
}

TEST_CASE("in-place: writes under NoGradGuard and copy_ into a saved input are refused at backward") {
    for (int kind = 0; kind < 3; ++kind) {
        CAPTURE(kind);
        Tensor x = tg::tensor({0.5, -1.0, 2.0}, {.requires_grad = true});
        Tensor y = tg::exp(x) * x;  // mul saves exp(x) and x
        {
            tg::NoGradGuard no_grad;
            if (kind == 0) x.fill_(3.0);
            else if (kind == 1) x.copy_(tg::tensor({1, 1, 1}));
            else x.add_(1.0);
        }
        CHECK(contains(error_of([&] { y.sum().backward(); }), "modified by an in-place operation"));
    }
}

TEST_CASE("in-place: an optimizer-style step between two backward passes of a retained graph is refused") {
    Tensor w = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor loss = (w * w).sum();
    loss.backward(Tensor(), /*retain_graph=*/true);
    {
        tg::NoGradGuard no_grad;
        w.sub_(w.grad() * 0.1);
    }
    CHECK(contains(error_of([&] { loss.backward(); }), "'mul'"));
}

TEST_CASE("in-place: batch_norm's saved input and weight are checked") {
    tg::Generator gen(1);
    Tensor x = tg::randn({4, 2, 3, 3}, gen, {.requires_grad = true});
    Tensor w = tg::ones({2}, {.requires_grad = true});
    Tensor b = tg::zeros({2}, {.requires_grad = true});
    Tensor y = tg::batch_norm(x, Tensor(), Tensor(), w, b, {});
    {
        tg::NoGradGuard no_grad;
        x.mul_(2.0);
    }
    CHECK(contains(error_of([&] { y.sum().backward(); }), "'batch_norm'"));
    Tensor y2 = tg::batch_norm(x, Tensor(), Tensor(), w, b, {});
    {
        tg::NoGradGuard no_grad;
        w.fill_(3.0);
    }
    CHECK(contains(error_of([&] { y2.sum().backward(); }), "'batch_norm'"));
}

TEST_CASE("in-place: conv2d and linear refuse a changed input or weight, also in layouts they copied") {
    tg::Generator gen(2);
    Tensor x = tg::randn({1, 2, 5, 5}, gen, {.requires_grad = true});  // row-major: conv copies it to NHWC
    Tensor w = tg::randn({3, 2, 3, 3}, gen, {.requires_grad = true});
    Tensor y = tg::conv2d(x, w, Tensor(), {});
    {
        tg::NoGradGuard no_grad;
        x.add_(1.0);
    }
    CHECK(contains(error_of([&] { y.sum().backward(); }), "'conv2d'"));

    Tensor a = tg::randn({4, 3}, gen, {.requires_grad = true});
    Tensor lw = tg::randn({2, 3}, gen, {.requires_grad = true});
    Tensor z = tg::linear(a, lw, Tensor());
    {
        tg::NoGradGuard no_grad;
        lw.zero_();
    }
    CHECK(contains(error_of([&] { z.sum().backward(); }), "'linear'"));
}

TEST_CASE("in-place: writing an op's output that its backward uses is refused (sigmoid saves its output)") {
    Tensor x = tg::tensor({0.1, 0.2}, {.requires_grad = true});
    Tensor y = tg::sigmoid(x);
    y.mul_(2.0);  // recorded: y's history is now mul(sigmoid(x), 2)
    CHECK(contains(error_of([&] { y.sum().backward(); }), "'sigmoid'"));
}

TEST_CASE("in-place: writes that backward does not depend on are allowed and give PyTorch's gradients") {
    // add saves nothing: y = x + 1, then x changes; dy/dx is still 1.
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor y = x * 3.0 + 1.0;
    {
        tg::NoGradGuard no_grad;
        x.mul_(5.0);
    }
    y.sum().backward();
    CHECK(values(x.grad()) == std::vector<double>{3.0, 3.0});
}

TEST_CASE("in-place: a leaf that requires grad cannot be written with grad mode on") {
    Tensor w = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    for (auto write : std::vector<std::function<void()>>{[&] { w.fill_(0); }, [&] { w.add_(1.0); },
                                                          [&] { w.copy_(tg::zeros({2})); }, [&] { w.relu_(); },
                                                          [&] { w.mul_(w); }}) {
        const std::string msg = error_of(write);
        CHECK(contains(msg, "leaf tensor that requires grad"));
        CHECK(contains(msg, "NoGradGuard"));
    }
    CHECK(values(w) == std::vector<double>{1.0, 2.0});
    CHECK(w.version() == 0);
}

TEST_CASE("in-place: relu_, add_, mul_ on a non-leaf rebase its history (gradients as PyTorch)") {
    Tensor x = tg::tensor({-1.0, 0.5, 2.0}, {.requires_grad = true});
    Tensor other = tg::tensor({2.0, 3.0, 4.0}, {.requires_grad = true});
    Tensor y = x * 2.0;   // [-2, 1, 4]
    y.relu_();            // [0, 1, 4]
    y.add_(other, 0.5);   // [1, 2.5, 6]
    y.mul_(other);        // [2, 7.5, 24]
    CHECK(y.grad_fn()->name() == "mul");
    CHECK(values(y) == std::vector<double>{2.0, 7.5, 24.0});
    y.sum().backward();
    // y = (relu(2x) + other/2) * other: dy/dx = 2 [x > 0] other; dy/dother = relu(2x) + other.
    CHECK(values(x.grad()) == std::vector<double>{0.0, 6.0, 8.0});
    CHECK(values(other.grad()) == std::vector<double>{2.0, 4.0, 8.0});
}

TEST_CASE("in-place: fill_ and copy_ on a non-leaf cut or redirect the gradient") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor src = tg::tensor({5.0}, {.requires_grad = true});
    Tensor y = x * 3.0;
    y.copy_(src);  // y = [5, 5], from src broadcast
    (y * y).sum().backward();
    CHECK_FALSE(x.grad().defined());
    CHECK(values(src.grad()) == std::vector<double>{20.0});  // sum of 2 y over both elements

    Tensor z = x * 3.0;
    z.fill_(1.0);
    Tensor s = (z * x).sum();  // d/dx = z = 1
    s.backward();
    CHECK(values(x.grad()) == std::vector<double>{1.0, 1.0});
}

TEST_CASE("in-place: views of tensors with history, and expanded tensors, are refused or checked") {
    Tensor x = tg::tensor({1.0, -2.0, 3.0, -4.0}, {.requires_grad = true});
    Tensor y = x * 1.0;
    Tensor v = y.view({2, 2});
    CHECK(contains(error_of([&] { v.relu_(); }), "view"));
    // Writing the base after the view was taken: backward through the view is refused.
    y.relu_();
    CHECK(contains(error_of([&] { v.sum().backward(); }), "modified by an in-place operation"));
    // An expanded tensor cannot be written at all.
    Tensor e = tg::expand(tg::zeros({1, 3}), {4, 3});
    CHECK(contains(error_of([&] { e.add_(1.0); }), "expanded"));
    // A failed in-place op leaves the tensor as it was.
    Tensor t = tg::zeros({3});
    CHECK(contains(error_of([&] { t.add_(tg::ones({2, 3})); }), "broadcast"));
    CHECK(values(t) == std::vector<double>(3, 0.0));
    CHECK(t.version() == 0);
}

TEST_CASE("in-place: copy_ from an overlapping view of itself reads before it writes") {
    Tensor t = tg::tensor({{1.0, 2.0}, {3.0, 4.0}});
    t.copy_(t.transpose(0, 1));
    CHECK(values(t) == std::vector<double>{1.0, 3.0, 2.0, 4.0});
}

// ------------------------------------------------------------------ roots and repeated inputs

TEST_CASE("backward with several roots sums every root's contribution, in either order") {
    for (int order = 0; order < 2; ++order) {
        CAPTURE(order);
        Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
        Tensor a = x * 2.0;   // da/dx = 2
        Tensor b = a * a;     // db/dx = 2 a * 2 = 8 x
        std::vector<Tensor> roots = order == 0 ? std::vector<Tensor>{a.sum(), b.sum()} : std::vector<Tensor>{b.sum(), a.sum()};
        tg::backward(roots);
        CHECK(values(x.grad()) == std::vector<double>{2.0 + 8.0, 2.0 + 16.0});
    }
    // A root that is itself upstream of another root, with explicit grad_outputs.
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor a = x * 2.0;
    Tensor b = a * 3.0;
    tg::backward({a, b}, {tg::ones({2}), tg::ones({2})});
    CHECK(values(x.grad()) == std::vector<double>{8.0, 8.0});
    // A leaf as a root next to a function of it.
    Tensor l = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    tg::backward({l, l * 3.0}, {tg::ones({2}), tg::ones({2})});
    CHECK(values(l.grad()) == std::vector<double>{4.0, 4.0});
}

TEST_CASE("grad with a repeated input returns its gradient at each position") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor y = (x * x).sum();
    std::vector<Tensor> g = tg::grad({y}, {x, x});
    REQUIRE(g.size() == 2);
    CHECK(values(g[0]) == std::vector<double>{2.0, 4.0});
    CHECK(values(g[1]) == std::vector<double>{2.0, 4.0});
    Tensor h = x * 3.0;
    std::vector<Tensor> gh = tg::grad({(h * h).sum()}, {h, x, h});
    CHECK(values(gh[0]) == std::vector<double>{6.0, 12.0});
    CHECK(values(gh[1]) == std::vector<double>{18.0, 36.0});
    CHECK(values(gh[2]) == std::vector<double>{6.0, 12.0});
}

// ------------------------------------------------------------------ partial requires_grad

TEST_CASE("matmul and linear with only one operand requiring grad, plain and batched") {
    for (bool batched : {false, true}) {
        CAPTURE(batched);
        const tg::Shape sa = batched ? tg::Shape{3, 2, 4} : tg::Shape{2, 4};
        Tensor a = tg::ones(sa);
        Tensor b = tg::ones({4, 5}, {.requires_grad = true});
        tg::matmul(a, b).sum().backward();
        // d/dB sum(A B) = A^T 1: every entry is the number of rows of A over the batch.
        CHECK(values(b.grad()) == std::vector<double>(20, batched ? 6.0 : 2.0));

        Tensor a2 = tg::ones(sa, {.requires_grad = true});
        Tensor b2 = tg::ones({4, 5});
        tg::matmul(a2, b2).sum().backward();
        CHECK(values(a2.grad()) == std::vector<double>(static_cast<std::size_t>(a2.numel()), 5.0));
    }
    Tensor x = tg::ones({3, 4});
    Tensor w = tg::ones({2, 4}, {.requires_grad = true});
    Tensor bias = tg::zeros({2});
    tg::linear(x, w, bias).sum().backward();
    CHECK(values(w.grad()) == std::vector<double>(8, 3.0));
}

// ------------------------------------------------------------------ zero size

TEST_CASE("zero-size: matmul and linear with an empty inner or outer size") {
    for (auto [m, k, n] : std::vector<std::array<int64_t, 3>>{{0, 3, 2}, {2, 0, 3}, {2, 3, 0}}) {
        CAPTURE(m);
        CAPTURE(k);
        CAPTURE(n);
        Tensor a = tg::ones({m, k}, {.requires_grad = true});
        Tensor b = tg::ones({k, n}, {.requires_grad = true});
        Tensor c = tg::matmul(a, b);
        CHECK(c.shape() == tg::Shape{m, n});
        CHECK(values(c) == std::vector<double>(static_cast<std::size_t>(m * n), 0.0));  // an empty sum is 0
        c.sum().backward();
        CHECK(a.grad().shape() == a.shape());
        CHECK(b.grad().shape() == b.shape());
        Tensor batched = tg::matmul(tg::ones({2, m, k}), b);
        CHECK(batched.shape() == tg::Shape{2, m, n});

        Tensor x = tg::ones({m, k}, {.requires_grad = true});
        Tensor w = tg::ones({n, k}, {.requires_grad = true});
        Tensor y = tg::linear(x, w, tg::ones({n}));
        CHECK(values(y) == std::vector<double>(static_cast<std::size_t>(m * n), 1.0));
        y.sum().backward();
        CHECK(values(w.grad()) == std::vector<double>(static_cast<std::size_t>(n * k), static_cast<double>(m)));
    }
}

TEST_CASE("zero-size: softmax and log_softmax over an empty axis, and over an empty batch") {
    for (bool log : {false, true}) {
        for (const tg::Shape& shape : {tg::Shape{3, 0}, tg::Shape{0, 4}, tg::Shape{2, 0, 3}}) {
            Tensor x = tg::zeros(shape, {.requires_grad = true});
            Tensor y = log ? tg::log_softmax(x, 1) : tg::softmax(x, 1);
            CHECK(y.shape() == shape);
            y.sum().backward();
            CHECK(x.grad().shape() == shape);
        }
    }
}

TEST_CASE("zero-size: elementwise ops, reductions and views keep the empty shape") {
    Tensor x = tg::ones({0, 3}, {.requires_grad = true});
    Tensor y = tg::relu(x * 2.0 + 1.0).transpose(0, 1).reshape({3, 0});
    CHECK(y.shape() == tg::Shape{3, 0});
    Tensor s = y.sum();
    CHECK(s.item() == 0.0);
    s.backward();
    CHECK(x.grad().shape() == tg::Shape{0, 3});
}

// ------------------------------------------------------------------ NaN, Inf and special points

TEST_CASE("relu passes NaN through, forward and backward, as PyTorch") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        Tensor x = tg::tensor({nan, -1.0, 2.0}, {.dtype = dtype, .requires_grad = true});
        Tensor y = tg::relu(x);
        std::vector<double> v = values(y);
        CHECK(std::isnan(v[0]));
        CHECK(v[1] == 0.0);
        CHECK(v[2] == 2.0);
        y.sum().backward();
        CHECK(values(x.grad()) == std::vector<double>{1.0, 0.0, 1.0});
    }
}

TEST_CASE("pow with exponent 0 has gradient 0 everywhere, 0 included") {
    Tensor x = tg::tensor({0.0, 2.0, -3.0}, {.dtype = tg::kFloat64, .requires_grad = true});
    tg::pow(x, 0.0).sum().backward();
    CHECK(values(x.grad()) == std::vector<double>{0.0, 0.0, 0.0});
}

TEST_CASE("pow with exponent 2 gives the correctly rounded square, and 2 x g as its gradient, in float32") {
    // pow(x, 2) runs as x * x (as PyTorch's pow does), the exact square rounded once. Values over
    // many binades, subnormal squares, overflow to inf, signed zeros and NaN.
    std::vector<float> in;
    for (float v = 1e-25f; v < 1e25f; v *= 1.37f) {
        in.push_back(v);
        in.push_back(-v * 1.0001f);
    }
    for (float v : {0.0f, -0.0f, 3e19f, -3e19f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()})
        in.push_back(v);
    Tensor x = tg::from_vector(in, {static_cast<int64_t>(in.size())}, {.dtype = tg::kFloat32, .requires_grad = true});
    Tensor y = tg::pow(x, 2.0);
    Tensor g = tg::full({x.size(0)}, 0.75);
    y.backward(g);
    const float* yp = y.data<float>();
    const float* dx = x.grad().data<float>();
    for (std::size_t i = 0; i < in.size(); ++i) {
        CAPTURE(in[i]);
        const float want = static_cast<float>(static_cast<double>(in[i]) * in[i]);  // exact in double
        const float want_grad = 0.75f * 2.0f * in[i];
        if (std::isnan(in[i])) {
            CHECK(std::isnan(yp[i]));
            CHECK(std::isnan(dx[i]));
            continue;
        }
        CHECK(std::memcmp(&yp[i], &want, sizeof(float)) == 0);
        CHECK(std::memcmp(&dx[i], &want_grad, sizeof(float)) == 0);
    }
}

// ------------------------------------------------------------------ threads

TEST_CASE("backward from several threads into one shared leaf loses no update") {
    Tensor w = tg::ones({64}, {.requires_grad = true});
    const int threads = 4, passes = 50;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            for (int i = 0; i < passes; ++i) (w * 2.0).sum().backward();
        });
    for (auto& th : pool) th.join();
    CHECK(values(w.grad()) == std::vector<double>(64, 2.0 * threads * passes));
}

TEST_CASE("backward passes failing at random in several threads take back only their own .grad() updates") {
    // Integer-valued float64 gradients: every sum and every undo is exact, so the final .grad()
    // must be exactly what the passes that succeeded contributed.
    Tensor w1 = tg::ones({16}, {.dtype = tg::kFloat64, .requires_grad = true});
    Tensor w2 = tg::ones({16}, {.dtype = tg::kFloat64, .requires_grad = true});
    // Where this thread's current pass fails. w2's node runs first (it was recorded later), so w2 is
    // always committed before w1's hooks run: 1 fails before w1 commits, 2 and 3 right after a commit.
    enum Failure { kNone, kW1Hook, kW2Committed, kW1Committed };
    static thread_local Failure failure = kNone;
    auto fail_if = [](Failure where) {
        if (failure == where) throw std::runtime_error("injected failure");
    };
    w1.register_hook([fail_if](const Tensor&) { return fail_if(kW1Hook), Tensor(); });
    w2.register_post_accumulate_grad_hook([fail_if](const Tensor&) { fail_if(kW2Committed); });
    w1.register_post_accumulate_grad_hook([fail_if](const Tensor&) { fail_if(kW1Committed); });

    constexpr int kThreads = 4, kPasses = 1500;
    std::vector<int> succeeded(kThreads, 0), failed(kThreads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < kThreads; ++t)
        pool.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t));
            for (int i = 0; i < kPasses; ++i) {
                // Half the passes fail, a third of those at each place.
                failure = rng() % 2 == 0 ? kNone : static_cast<Failure>(1 + rng() % 3);
                try {
                    (w1 * 2.0 + w2 * 3.0).sum().backward();
                    ++succeeded[t];
                } catch (const tg::HookError&) {
                    ++failed[t];
                }
            }
        });
    for (auto& th : pool) th.join();
    int total = 0;
    for (int t = 0; t < kThreads; ++t) {
        CHECK(succeeded[t] + failed[t] == kPasses);
        CHECK(failed[t] > kPasses / 4);  // the failures did happen
        total += succeeded[t];
    }
    CHECK(w1.grad().at({0}) == 2.0 * total);
    CHECK(w2.grad().at({0}) == 3.0 * total);
    CHECK(values(w1.grad()) == std::vector<double>(16, w1.grad().at({0})));
    CHECK(values(w2.grad()) == std::vector<double>(16, w2.grad().at({0})));
}

// ------------------------------------------------------------------ one kernel decision per node

TEST_CASE("a node's backward uses the kernels its forward chose, whatever the flag is at backward time") {
    tg::Generator gen(3);
    Tensor x = tg::randn({8, 16}, gen, {.requires_grad = true});
    Tensor logits;
    {
        tg::ReferenceKernelsGuard reference;
        logits = tg::log_softmax(tg::sigmoid(x), 1);
    }
    // The same graph built on the fast kernels, backward run under the reference flag: each must
    // equal the backward of a graph built and run entirely on its own kernels.
    Tensor x2 = x.detach().clone().requires_grad_();
    Tensor fast = tg::log_softmax(tg::sigmoid(x2), 1);
    {
        tg::ReferenceKernelsGuard reference;
        fast.sum().backward();
    }
    logits.sum().backward();
    Tensor x3 = x.detach().clone().requires_grad_();
    tg::log_softmax(tg::sigmoid(x3), 1).sum().backward();
    CHECK(values(x2.grad()) == values(x3.grad()));
    Tensor x4 = x.detach().clone().requires_grad_();
    {
        tg::ReferenceKernelsGuard reference;
        tg::log_softmax(tg::sigmoid(x4), 1).sum().backward();
    }
    CHECK(values(x.grad()) == values(x4.grad()));
    // The two kernel families round differently here, so the checks above can tell them apart.
    CHECK(values(x.grad()) != values(x3.grad()));
}

// ------------------------------------------------------------------ huge shapes

TEST_CASE("huge geometry is refused with a clear error before any arithmetic can overflow") {
    const int64_t huge = int64_t{1} << 62;
    Tensor x = tg::zeros({1, 1, 4, 4});
    Tensor w = tg::zeros({1, 1, 3, 3});
    CHECK(contains(error_of([&] { tg::conv2d(x, w, Tensor(), {.padding = huge}); }), "conv2d"));
    CHECK(tg::conv2d(x, w, Tensor(), {.stride = huge}).shape() == tg::Shape{1, 1, 1, 1});  // PyTorch's answer: one window
    CHECK(contains(error_of([&] { tg::conv2d(x, w, Tensor(), {.dilation = huge}); }), "conv2d"));
    CHECK(contains(error_of([&] { tg::max_pool2d(x, {.kernel_size = huge}); }), "max_pool2d"));
    CHECK(contains(error_of([&] { tg::avg_pool2d(x, {.kernel_size = 2, .stride = huge}); }), "avg_pool2d"));
    CHECK(contains(error_of([&] { tg::expand(tg::zeros({1, 1}), {huge, huge}); }), "expand"));
    CHECK(contains(error_of([&] { tg::expand(tg::zeros({1, 1}), {int64_t{1} << 30, int64_t{1} << 30}); }), "2^40"));
    CHECK(contains(error_of([&] { tg::zeros({huge, 4}); }), "2^40"));
    CHECK(contains(error_of([&] { tg::ones({2, -3}); }), "negative"));
}
