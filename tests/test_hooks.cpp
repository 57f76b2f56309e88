// Gradient hooks: call counts, order, removal, replacement, post-accumulate timing, errors that
// commit nothing, and hooks under threads.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "engine/autograd.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"

namespace tg = tapegrad;
using tg::Tensor;

TEST_CASE("a leaf's hook sees the gradient summed over the pass, once, before it reaches .grad()") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    int calls = 0;
    Tensor seen;
    x.register_hook([&](const Tensor& g) {
        ++calls;
        seen = g.detach().clone();
        CHECK_FALSE(x.grad().defined());  // not accumulated yet
        return Tensor();
    });
    (x * 3.0 + x * 4.0).sum().backward();  // two edges into x: one call with 3 + 4
    CHECK(calls == 1);
    CHECK(tg::allclose(seen, tg::tensor({7.0, 7.0})));
    CHECK(tg::allclose(x.grad(), tg::tensor({7.0, 7.0})));
}

TEST_CASE("a hook returning grad * 2 doubles the gradient; hooks run in registration order") {
    Tensor x = tg::tensor({1.0, -1.0}, {.requires_grad = true});
    std::vector<int> order;
    x.register_hook([&](const Tensor& g) {
        order.push_back(1);
        return g * 2.0;
    });
    x.register_hook([&](const Tensor& g) {
        order.push_back(2);
        return g + 1.0;  // sees the doubled gradient
    });
    (x * 5.0).sum().backward();
    CHECK(order == std::vector<int>{1, 2});
    CHECK(tg::allclose(x.grad(), tg::tensor({11.0, 11.0})));
}

TEST_CASE("a removed hook no longer runs; removing twice is harmless") {
    Tensor x = tg::tensor({1.0}, {.requires_grad = true});
    int a = 0, b = 0;
    tg::HookHandle ha = x.register_hook([&](const Tensor&) { return ++a, Tensor(); });
    tg::HookHandle hb = x.register_post_accumulate_grad_hook([&](const Tensor&) { ++b; });
    (x * 2.0).sum().backward();
    ha.remove();
    ha.remove();
    (x * 2.0).sum().backward();
    hb.remove();
    (x * 2.0).sum().backward();
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(tg::allclose(x.grad(), tg::tensor({6.0})));
}

TEST_CASE("a non-leaf's hook changes the gradient flowing into its grad_fn") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor h = x * x;  // dh/dx = 2x
    Tensor seen;
    h.register_hook([&](const Tensor& g) {
        seen = g.detach().clone();
        return g * 2.0;
    });
    (h * 3.0).sum().backward();
    CHECK(tg::allclose(seen, tg::tensor({3.0, 3.0})));
    CHECK(tg::allclose(x.grad(), tg::tensor({12.0, 24.0})));  // 2 * 3 * 2x
}

TEST_CASE("post-accumulate hooks fire as soon as a leaf's gradient is final, with .grad() updated") {
    // loss = sum((b * 2) * a): a's gradient is complete after the first node; b's only after the
    // node below h has run.
    Tensor a = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor b = tg::tensor({3.0, 4.0}, {.requires_grad = true});
    a.set_grad(tg::tensor({100.0, 100.0}));  // accumulated from an earlier pass
    std::vector<std::string> events;
    Tensor h = b * 2.0;
    h.register_hook([&](const Tensor&) { return events.push_back("h"), Tensor(); });
    a.register_post_accumulate_grad_hook([&](const Tensor& leaf) {
        events.push_back("a");
        CHECK(leaf.same(a));
        CHECK(tg::allclose(leaf.grad(), tg::tensor({106.0, 108.0})));  // 100 + b * 2
    });
    b.register_post_accumulate_grad_hook([&](const Tensor& leaf) {
        events.push_back("b");
        CHECK(tg::allclose(leaf.grad(), tg::tensor({2.0, 4.0})));
    });
    (h * a).sum().backward();
    CHECK(events == std::vector<std::string>{"a", "h", "b"});
}

TEST_CASE("grad() runs tensor hooks on its targets but no post-accumulate hook") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    int post = 0;
    x.register_hook([](const Tensor& g) { return g * 10.0; });
    x.register_post_accumulate_grad_hook([&](const Tensor&) { ++post; });
    auto g = tg::grad({(x * x).sum()}, {x});
    CHECK(tg::allclose(g[0], tg::tensor({20.0, 40.0})));
    CHECK(post == 0);
    CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a hook that throws names its tensor, and backward commits no gradient") {
    Tensor a = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor b = tg::tensor({3.0, 4.0, 5.0}, {.requires_grad = true});
    b.set_grad(tg::tensor({1.0, 1.0, 1.0}));
    int a_done = 0;
    // a completes (and is committed, and its hook runs) before the hook on b's path throws.
    a.register_post_accumulate_grad_hook([&](const Tensor&) { ++a_done; });
    Tensor h = b * 2.0;
    b.register_hook([](const Tensor&) -> Tensor { throw std::runtime_error("hook says no"); });
    Tensor loss = (h * 1.0).sum() * a.sum();
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("leaf tensor [3] float32"), tg::HookError);
    CHECK(a_done == 1);
    CHECK_FALSE(a.grad().defined());  // restored
    CHECK(tg::allclose(b.grad(), tg::tensor({1.0, 1.0, 1.0})));

    // A post-accumulate hook that throws: the leaf's .grad() goes back to its previous value.
    Tensor c = tg::tensor({1.0}, {.requires_grad = true});
    c.set_grad(tg::tensor({5.0}));
    c.register_post_accumulate_grad_hook([](const Tensor&) { throw std::runtime_error("reduce failed"); });
    CHECK_THROWS_WITH_AS((c * 2.0).sum().backward(), doctest::Contains("reduce failed"), tg::HookError);
    CHECK(tg::allclose(c.grad(), tg::tensor({5.0})));

    // A hook on a non-leaf that throws names the op that made it.
    Tensor d = tg::tensor({1.0}, {.requires_grad = true});
    Tensor e = d * 3.0;
    e.register_hook([](const Tensor&) -> Tensor { throw std::runtime_error("bad"); });
    CHECK_THROWS_WITH_AS((e * 1.0).sum().backward(), doctest::Contains("the output of 'mul'"), tg::HookError);
    CHECK_FALSE(d.grad().defined());
}

TEST_CASE("hooks are refused where no gradient can reach them, and a wrong replacement is an error") {
    Tensor plain = tg::tensor({1.0});
    CHECK_THROWS_AS(plain.register_hook([](const Tensor& g) { return g; }), std::invalid_argument);
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor y = x * 2.0;
    CHECK_THROWS_WITH_AS(y.register_post_accumulate_grad_hook([](const Tensor&) {}), doctest::Contains("'mul'"),
                         std::invalid_argument);
    x.register_hook([](const Tensor&) { return tg::tensor({1.0}); });
    CHECK_THROWS_WITH_AS(y.sum().backward(), doctest::Contains("same shape"), std::invalid_argument);
    CHECK_FALSE(x.grad().defined());
}

TEST_CASE("hooks under threads: each thread's hooks see its own passes while another registers and removes") {
    constexpr int kThreads = 4, kSteps = 200;
    std::vector<Tensor> leaves;
    for (int t = 0; t < kThreads; ++t) leaves.push_back(tg::tensor({static_cast<double>(t), 1.0}, {.requires_grad = true}));
    std::vector<int> grad_calls(kThreads, 0), post_calls(kThreads, 0);
    for (int t = 0; t < kThreads; ++t) {
        leaves[t].register_hook([&, t](const Tensor& g) { return ++grad_calls[t], g * 2.0; });
        leaves[t].register_post_accumulate_grad_hook([&, t](const Tensor&) { ++post_calls[t]; });
    }
    std::atomic<bool> stop{false};
    std::atomic<int> churn_calls{0};
    std::thread churn([&] {  // adds and removes a no-op hook on every leaf while backward runs
        while (!stop) {
            for (Tensor& leaf : leaves) {
                tg::HookHandle h = leaf.register_hook([&](const Tensor&) { return ++churn_calls, Tensor(); });
                h.remove();
            }
        }
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t)
        workers.emplace_back([&, t] {
            for (int s = 0; s < kSteps; ++s) {
                leaves[t].zero_grad();
                (leaves[t] * 3.0).sum().backward();
            }
        });
    for (auto& w : workers) w.join();
    stop = true;
    churn.join();
    for (int t = 0; t < kThreads; ++t) {
        CHECK(grad_calls[t] == kSteps);
        CHECK(post_calls[t] == kSteps);
        CHECK(tg::allclose(leaves[t].grad(), tg::tensor({6.0, 6.0})));
    }
}
