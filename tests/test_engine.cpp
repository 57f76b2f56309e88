// The tape: accumulation, fan-in, broadcasting, masks, retain_graph, grad(), NoGradGuard, custom
// functions, deep graphs and node lifetimes.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>
#include <thread>

#include "engine/autograd.hpp"
#include "engine/function.hpp"
#include "engine/generator.hpp"
#include "engine/gradcheck.hpp"
#include "engine/allocator.hpp"
#include "engine/tensor_math.hpp"
#include "ops/arithmetic.hpp"
#include "ops/loss.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tg = tapegrad;
using tg::Tensor;

TEST_CASE("y = x * x gives dy/dx = 2x") {
    Tensor x = tg::tensor({1.0, -2.0, 3.5}, {.requires_grad = true});
    Tensor y = (x * x).sum();
    y.backward();
    CHECK(tg::allclose(x.grad(), tg::tensor({2.0, -4.0, 7.0})));
}

TEST_CASE("a weight used in two branches gets the sum of both gradients") {
    Tensor w = tg::tensor({2.0, 3.0}, {.requires_grad = true});
    Tensor a = tg::tensor({1.0, 10.0});
    Tensor b = tg::tensor({-4.0, 5.0});
    Tensor loss = (w * a).sum() + (w * b).sum();
    loss.backward();
    CHECK(tg::allclose(w.grad(), tg::tensor({-3.0, 15.0})));
}

TEST_CASE("leaf gradients accumulate across backward calls until zero_grad") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    (x * 3.0).sum().backward();
    (x * 3.0).sum().backward();
    CHECK(tg::allclose(x.grad(), tg::tensor({6.0, 6.0})));
    x.zero_grad();
    CHECK_FALSE(x.grad().defined());
    (x * 2.0).sum().backward();
    CHECK(tg::allclose(x.grad(), tg::tensor({2.0, 2.0})));
}

TEST_CASE("broadcast gradients are summed down to the input's shape") {
    Tensor a = tg::ones({2, 3}, {.requires_grad = true});
    Tensor b = tg::tensor({1.0, 2.0, 3.0}, {.requires_grad = true});
    Tensor c = tg::full({2, 1}, 2.0, {.requires_grad = true});
    ((a + b) * c).sum().backward();
    CHECK(b.grad().shape() == tg::Shape{3});
    CHECK(tg::allclose(b.grad(), tg::tensor({4.0, 4.0, 4.0})));
    CHECK(c.grad().shape() == tg::Shape{2, 1});
    CHECK(tg::allclose(c.grad(), tg::full({2, 1}, 9.0)));
    CHECK(tg::allclose(a.grad(), tg::full({2, 3}, 2.0)));
}

namespace {
struct MaskSpy : tg::Function<MaskSpy> {
    static constexpr const char* name = "mask_spy";
    static inline std::vector<bool> seen;
    static Tensor forward(tg::FunctionCtx&, const Tensor& a, const Tensor& b) { return a + b; }
    static std::vector<Tensor> backward(tg::FunctionCtx& ctx, const Tensor& g) {
        seen = {ctx.needs_input_grad[0], ctx.needs_input_grad[1]};
        return {ctx.needs_input_grad[0] ? g : Tensor(), ctx.needs_input_grad[1] ? g : Tensor()};
    }
};
}  // namespace

TEST_CASE("backward gets a mask of which inputs need a gradient") {
    Tensor frozen = tg::ones({2});
    Tensor trained = tg::ones({2}, {.requires_grad = true});
    MaskSpy::apply(frozen, trained).sum().backward();
    CHECK(MaskSpy::seen == std::vector<bool>{false, true});
    Tensor x = tg::ones({2}, {.requires_grad = true});
    Tensor y = tg::ones({2}, {.requires_grad = true});
    // grad() asks only for x: y's branch is not needed.
    tg::grad({MaskSpy::apply(x, y).sum()}, {x});
    CHECK(MaskSpy::seen == std::vector<bool>{true, false});
}

TEST_CASE("a second backward through a freed graph asks for retain_graph") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor y = (x * x).sum();
    y.backward();
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("retain_graph"), std::invalid_argument);

    Tensor z = (x * x).sum();
    x.zero_grad();
    z.backward(Tensor(), /*retain_graph=*/true);
    z.backward();
    CHECK(tg::allclose(x.grad(), tg::tensor({4.0, 8.0})));
}

TEST_CASE("saved tensors are freed once their node has run") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor y = x * x;
    Tensor loss = y.sum();
    CHECK_FALSE(y.grad_fn()->released());
    loss.backward();
    CHECK(y.grad_fn()->released());
}

TEST_CASE("backward from a non-scalar needs grad_output") {
    Tensor x = tg::ones({3}, {.requires_grad = true});
    Tensor y = x * 2.0;
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("scalar"), std::invalid_argument);
    CHECK_THROWS_AS(y.backward(tg::ones({2})), std::invalid_argument);
    y.backward(tg::tensor({1.0, 2.0, 3.0}));
    CHECK(tg::allclose(x.grad(), tg::tensor({2.0, 4.0, 6.0})));
}

TEST_CASE("backward on a tensor without history is an error") {
    Tensor x = tg::ones({1});
    CHECK_THROWS_WITH_AS(x.backward(), doctest::Contains("does not require grad"), std::invalid_argument);
}

TEST_CASE("grad() returns gradients for chosen inputs without touching .grad()") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor w = tg::tensor({3.0, 4.0}, {.requires_grad = true});
    Tensor h = x * w;  // an intermediate input
    Tensor y = (h * h).sum();
    auto g = tg::grad({y}, {x, h});
    CHECK(tg::allclose(g[0], tg::tensor({18.0, 64.0})));  // 2 h w
    CHECK(tg::allclose(g[1], tg::tensor({6.0, 16.0})));   // 2 h
    CHECK_FALSE(x.grad().defined());
    CHECK_FALSE(w.grad().defined());
    Tensor unused = tg::ones({2}, {.requires_grad = true});
    CHECK_THROWS_WITH_AS(tg::grad({(x * 2.0).sum()}, {unused}), doctest::Contains("allow_unused"), std::invalid_argument);
    auto none = tg::grad({(x * 2.0).sum()}, {unused}, {}, false, /*create_graph=*/false, /*allow_unused=*/true);
    CHECK_FALSE(none[0].defined());
}

TEST_CASE("NoGradGuard records nothing and is thread-local") {
    Tensor x = tg::ones({2}, {.requires_grad = true});
    {
        tg::NoGradGuard guard;
        Tensor y = x * 2.0;
        CHECK_FALSE(y.requires_grad());
        bool other_thread_enabled = false;
        std::thread t([&] { other_thread_enabled = tg::is_grad_enabled(); });
        t.join();
        CHECK(other_thread_enabled);
    }
    CHECK((x * 2.0).requires_grad());
}

TEST_CASE("leaves, detach and item") {
    Tensor x = tg::tensor({2.0}, {.requires_grad = true});
    Tensor y = x * 3.0;
    CHECK(x.is_leaf());
    CHECK_FALSE(y.is_leaf());
    Tensor d = y.detach();
    CHECK(d.is_leaf());
    CHECK_FALSE(d.requires_grad());
    CHECK(d.item() == doctest::Approx(6.0));
    CHECK(d.data_ptr() == y.data_ptr());
    CHECK_THROWS_AS(y.requires_grad_(false), std::invalid_argument);
    CHECK_THROWS_AS(tg::ones({2}).item(), std::invalid_argument);
}

namespace {
struct Cube : tg::Function<Cube> {
    static constexpr const char* name = "cube";
    static Tensor forward(tg::FunctionCtx& ctx, const Tensor& x) {
        ctx.save_for_backward({x});
        return x * x * x;
    }
    static std::vector<Tensor> backward(tg::FunctionCtx& ctx, const Tensor& g) {
        const Tensor& x = ctx.saved()[0];
        return {g * 3.0 * x * x};
    }
};
struct WrongCube : tg::Function<WrongCube> {
    static Tensor forward(tg::FunctionCtx& ctx, const Tensor& x) {
        ctx.save_for_backward({x});
        return x * x * x;
    }
    static std::vector<Tensor> backward(tg::FunctionCtx& ctx, const Tensor& g) { return {g * 2.0 * ctx.saved()[0]}; }
};
}  // namespace

TEST_CASE("a user-defined Function records its own backward") {
    Tensor x = tg::tensor({1.0, -2.0}, {.requires_grad = true});
    Tensor y = Cube::apply(x);
    CHECK(y.grad_fn()->name() == "cube");
    y.sum().backward();
    CHECK(tg::allclose(x.grad(), tg::tensor({3.0, 12.0})));
}

TEST_CASE("gradcheck passes correct gradients and names the element of a wrong one") {
    tg::Generator gen(1);
    Tensor x = tg::randn({3, 2}, gen, {.dtype = tg::kFloat64, .requires_grad = true});
    auto good = tg::gradcheck([](const std::vector<Tensor>& in) { return Cube::apply(in[0]); }, {x});
    CHECK_MESSAGE(good.passed, good.message);
    auto bad = tg::gradcheck([](const std::vector<Tensor>& in) { return WrongCube::apply(in[0]); }, {x});
    CHECK_FALSE(bad.passed);
    CHECK(bad.message.find("input 0") != std::string::npos);
    CHECK(bad.message.find("numerical") != std::string::npos);
    CHECK(bad.message.find("analytical") != std::string::npos);
    auto bad_fast = tg::gradcheck([](const std::vector<Tensor>& in) { return WrongCube::apply(in[0]); }, {x},
                                  {.fast_mode = true});
    CHECK_FALSE(bad_fast.passed);
    auto good_fast = tg::gradcheck([](const std::vector<Tensor>& in) { return Cube::apply(in[0]); }, {x},
                                   {.fast_mode = true});
    CHECK_MESSAGE(good_fast.passed, good_fast.message);
}

TEST_CASE("gradcheck fails when both Jacobians are all zero") {
    Tensor x = tg::ones({2}, {.dtype = tg::kFloat64, .requires_grad = true});
    // A function that ignores its input proves nothing about any gradient.
    auto r = tg::gradcheck([](const std::vector<Tensor>& in) { return in[0] * 0.0; }, {x});
    CHECK_FALSE(r.passed);
    CHECK(r.message.find("zero") != std::string::npos);
    Tensor f = tg::ones({2}, {.requires_grad = true});
    CHECK_THROWS_WITH_AS(tg::gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {f}),
                         doctest::Contains("float64"), std::invalid_argument);
}

TEST_CASE("gradcheck over the elementwise and shape basics") {
    tg::Generator gen(7);
    auto x = [&](tg::Shape s) { return tg::randn(s, gen, {.dtype = tg::kFloat64, .requires_grad = true}); };
    Tensor a = x({2, 3}), b = x({3}), c = x({2, 1});
    Tensor pos = tg::uniform({2, 3}, 0.5, 2.0, gen, {.dtype = tg::kFloat64, .requires_grad = true});
    auto check = [](const tg::DifferentiableFn& f, const std::vector<Tensor>& in) {
        auto r = tg::gradcheck(f, in);
        CHECK_MESSAGE(r.passed, r.message);
    };
    check([](auto& in) { return in[0] + in[1]; }, {a, b});
    check([](auto& in) { return in[0] - in[1]; }, {a, c});
    check([](auto& in) { return in[0] * in[1]; }, {a, c});
    check([](auto& in) { return in[0] / in[1]; }, {a, pos});
    check([](auto& in) { return -in[0]; }, {a});
    check([](auto& in) { return tg::add(in[0], in[1], 0.5); }, {a, b});
    check([](auto& in) { return in[0].sum({1}); }, {a});
    check([](auto& in) { return in[0].mean({0}, true); }, {a});
    check([](auto& in) { return in[0].mean(); }, {a});
    check([](auto& in) { return in[0].transpose(0, 1) * 2.0; }, {a});
    check([](auto& in) { return in[0].reshape({3, 2}) * tg::tensor({1.0, 2.0}, {.dtype = tg::kFloat64}); }, {a});
    check([](auto& in) { return in[0].transpose(0, 1).reshape({6}); }, {a});
    check([](auto& in) { return tg::expand(tg::unsqueeze(in[0], 0), {4, 3}); }, {b});
    check([](auto& in) { return in[0].permute({1, 0}).contiguous() * 3.0; }, {a});
}

TEST_CASE("a 150,000-node chain runs backward and is destroyed without recursion") {
    const int64_t before = tg::Node::live_count();
    {
        Tensor x = tg::tensor({1.0}, {.requires_grad = true});
        Tensor y = x;
        for (int i = 0; i < 150000; ++i) y = y * 1.0;
        CHECK(tg::Node::live_count() - before == 150000);
        y.sum().backward();
        CHECK(x.grad().item() == doctest::Approx(1.0));
    }
    CHECK(tg::Node::live_count() == before);
    {
        // Dropped without ever running backward, with saved tensors in every node.
        Tensor x = tg::tensor({1.0}, {.requires_grad = true});
        Tensor y = x;
        for (int i = 0; i < 150000; ++i) y = y * x;
    }
    CHECK(tg::Node::live_count() == before);
}

TEST_CASE("a graph whose closures save their output frees every node") {
    const int64_t before = tg::Node::live_count();
    {
        Tensor x = tg::tensor({0.5, 2.0}, {.requires_grad = true});
        Tensor y = x / (x + 1.0);  // div saves its output
        Tensor z = Cube::apply(y);
        CHECK(tg::Node::live_count() > before);
        z.sum().backward(Tensor(), /*retain_graph=*/true);
    }
    CHECK(tg::Node::live_count() == before);
}

TEST_CASE("bad input to the basics names the op and the shapes") {
    Tensor a = tg::ones({2, 3}), b = tg::ones({4});
    CHECK_THROWS_WITH_AS(a + b, doctest::Contains("add: shapes [2,3] and [4]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.view({4}), doctest::Contains("view"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.transpose(0, 1).view({6}), doctest::Contains("reshape"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.sum({2}), doctest::Contains("sum: axis 2"), std::invalid_argument);
    CHECK_THROWS_AS(tg::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), std::invalid_argument);
    // Nothing was corrupted by the failed calls.
    CHECK(tg::allclose(a, tg::ones({2, 3})));
}

TEST_CASE("the default generator: manual_seed, and one lock per call") {
    tg::manual_seed(5);
    Tensor a = tg::randn({3, 4});
    tg::Generator same(5);
    CHECK(tg::max_abs_diff(a, tg::randn({3, 4}, same)) == 0.0);
    tg::manual_seed(5);
    CHECK(tg::max_abs_diff(a, tg::randn({3, 4})) == 0.0);

    // Threads drawing at once each get a contiguous run of the sequence: the calls' values are the
    // sequence cut into calls, in some order, never interleaved within a call.
    constexpr int threads = 4, calls = 50, per_call = 257;
    tg::manual_seed(11);
    std::vector<std::vector<std::vector<double>>> drawn(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (int c = 0; c < calls; ++c) drawn[t].push_back(tg::rand({per_call}, {.dtype = tg::kFloat64}).to_vector<double>());
        });
    for (auto& th : pool) th.join();
    std::set<std::vector<double>> got;
    for (auto& per_thread : drawn) got.insert(per_thread.begin(), per_thread.end());
    tg::Generator reference(11);
    std::set<std::vector<double>> expected;
    for (int c = 0; c < threads * calls; ++c) {
        std::vector<double> run(per_call);
        for (double& v : run) v = reference.uniform();
        expected.insert(run);
    }
    CHECK(got == expected);
}

TEST_CASE("factories, seeded generators and printing") {
    tg::Generator g1(42), g2(42), g3(43);
    Tensor r1 = tg::randn({4, 4}, g1), r2 = tg::randn({4, 4}, g2), r3 = tg::randn({4, 4}, g3);
    CHECK(tg::max_abs_diff(r1, r2) == 0.0);
    CHECK(tg::max_abs_diff(r1, r3) > 0.0);
    Tensor u = tg::rand({1000}, g1);
    auto v = u.to_vector<float>();
    CHECK(*std::min_element(v.begin(), v.end()) >= 0.0f);
    CHECK(*std::max_element(v.begin(), v.end()) < 1.0f);
    CHECK(tg::zeros({2, 2}).sum().item() == 0.0);
    CHECK(tg::full({2, 3}, 1.5).sum().item() == doctest::Approx(9.0));
    CHECK(tg::arange(4).at({3}) == 3.0);
    // PyTorch's repr (tests/printing_reference.py covers the formats).
    CHECK(tg::to_string(tg::tensor({{1.0, 2.0}, {3.0, 4.0}})) == "tensor([[1., 2.],\n        [3., 4.]])");
    CHECK(tg::to_string(tg::tensor({1.0}, {.requires_grad = true})) == "tensor([1.], requires_grad=True)");
}

TEST_CASE("channels-last tensors keep their layout through elementwise ops") {
    tg::Generator gen(3);
    Tensor x = tg::randn({2, 3, 4, 5}, gen).contiguous(tg::MemoryFormat::ChannelsLast);
    CHECK(x.is_contiguous(tg::MemoryFormat::ChannelsLast));
    CHECK_FALSE(x.is_contiguous());
    Tensor bias = tg::randn({1, 3, 1, 1}, gen);
    Tensor y = x + bias;
    CHECK(y.is_contiguous(tg::MemoryFormat::ChannelsLast));
    CHECK(tg::allclose(y, x.contiguous() + bias));
    CHECK(tg::allclose(x.sum({0, 2, 3}), x.contiguous().sum({0, 2, 3}), 1e-5, 1e-5));
}

TEST_CASE("the caching allocator reuses freed blocks") {
    auto& alloc = tg::allocator();
    { Tensor t = tg::empty({1 << 20}); }
    const auto before = alloc.stats();
    { Tensor t = tg::empty({1 << 20}); }
    const auto after = alloc.stats();
    CHECK(after.cache_hits == before.cache_hits + 1);
    CHECK(after.cache_misses == before.cache_misses);
    alloc.empty_cache();
    CHECK(alloc.stats().bytes_cached == 0);
}

namespace {
struct NanBackward : tg::Function<NanBackward> {
    static constexpr const char* name = "nan_backward";
    static Tensor forward(tg::FunctionCtx&, const Tensor& x) { return x * 1.0; }
    static std::vector<Tensor> backward(tg::FunctionCtx&, const Tensor& g) { return {g * std::nan("")}; }
};
}  // namespace

TEST_CASE("anomaly mode names the op whose backward made NaN or Inf, and lets forward values be") {
    Tensor x = tg::tensor({1.0, 0.0}, {.requires_grad = true});
    {
        tg::AnomalyModeGuard anomaly;
        // As PyTorch's detect_anomaly: an Inf in a forward output is no error, its gradient is.
        const Tensor q = x / tg::tensor({0.0, 1.0});
        CHECK(std::isinf(q.at({0})));
        CHECK_THROWS_WITH_AS(q.sum().backward(), doctest::Contains("the backward of 'div'"), tg::AnomalyError);
        Tensor y = NanBackward::apply(x).sum();
        CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("'nan_backward'"), tg::AnomalyError);
        CHECK_FALSE(x.grad().defined());  // the failed backward committed nothing
    }
    // Off by default: the same calls go through.
    CHECK_FALSE(tg::is_anomaly_enabled());
    CHECK(std::isinf((x / tg::tensor({0.0, 1.0})).at({0})));
    NanBackward::apply(x).sum().backward();
    CHECK(std::isnan(x.grad().at({0})));
}

TEST_CASE("anomaly mode accepts the -inf of an attention mask: softmax(x + mask) runs forward and backward") {
    tg::AnomalyModeGuard anomaly;
    const double inf = std::numeric_limits<double>::infinity();
    Tensor x = tg::tensor({{1.0, 2.0, 3.0}}, {.dtype = tg::kFloat64, .requires_grad = true});
    const Tensor mask = tg::tensor({{0.0, -inf, 0.0}}, {.dtype = tg::kFloat64});
    const Tensor w = tg::tensor({{1.0, 2.0, 3.0}}, {.dtype = tg::kFloat64});
    const Tensor scores = x + mask;
    CHECK(std::isinf(scores.at({0, 1})));
    const Tensor loss = (tg::softmax(scores, 1) * w).sum();
    loss.backward();
    // p = softmax([1, -inf, 3]) = [1, 0, e^2] / (1 + e^2); dloss/dx_i = p_i (w_i - sum_j p_j w_j).
    const double e2 = std::exp(2.0), p0 = 1.0 / (1.0 + e2), p2 = e2 / (1.0 + e2), expected = p0 * 1.0 + p2 * 3.0;
    CHECK(loss.item() == doctest::Approx(expected).epsilon(1e-12));
    CHECK(x.grad().at({0, 0}) == doctest::Approx(p0 * (1.0 - expected)).epsilon(1e-12));
    CHECK(x.grad().at({0, 1}) == 0.0);
    CHECK(x.grad().at({0, 2}) == doctest::Approx(p2 * (3.0 - expected)).epsilon(1e-12));
}

TEST_CASE("a 100,000-input sum runs backward through one wide node") {
    const int64_t before = tg::Node::live_count();
    {
        std::vector<Tensor> leaves;
        for (int i = 0; i < 100000; ++i) leaves.push_back(tg::tensor({static_cast<double>(i)}, {.requires_grad = i % 2 == 0}));
        Tensor total = tg::add_n(leaves);
        CHECK(total.item() == doctest::Approx(99999.0 * 100000.0 / 2));
        (total * 3.0).sum().backward();
        CHECK(leaves[0].grad().item() == 3.0);
        CHECK(leaves[99998].grad().item() == 3.0);
        CHECK_FALSE(leaves[99999].grad().defined());
        // A chain of 100,000 additions, too.
        Tensor acc = leaves[0];
        for (std::size_t i = 1; i < leaves.size(); ++i) acc = acc + leaves[i];
        acc.sum().backward();
        CHECK(leaves[0].grad().item() == 4.0);
    }
    CHECK(tg::Node::live_count() == before);
}

TEST_CASE("absurd shapes are refused before any arithmetic overflows") {
    const int64_t big = int64_t{1} << 32;
    CHECK_THROWS_WITH_AS(tg::zeros({0, big, big}), doctest::Contains("2^40"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::empty({big, big}), doctest::Contains("2^40"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::zeros({-1, 2}), doctest::Contains("negative"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::ones({4}).reshape({big, big, -1}), doctest::Contains("reshape"), std::invalid_argument);
}
