// Numerical facts about the activation, batch-norm, matmul, loss, dropout and max ops that the
// registry's generic checks do not pin down: hand-computed values, edge cases, errors, and the
// fast kernels on sizes big enough to take their parallel paths.
#include <doctest/doctest.h>

#include <cmath>
#include <algorithm>
#include <functional>
#include <vector>

#include "engine/autograd.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "engine/threads.hpp"
#include "engine/generator.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/batch_norm.hpp"
#include "ops/dropout.hpp"
#include "ops/linear.hpp"
#include "ops/loss.hpp"
#include "ops/normalization.hpp"
#include "ops/reduce.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

bool all_finite(const Tensor& t) {
    for (double v : t.to_vector<double>())
        if (!std::isfinite(v)) return false;
    return true;
}

// Runs fn(x) forward and backward with a fixed grad_output, with the fast or the reference kernels.
std::pair<Tensor, Tensor> fwd_bwd(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x0, bool reference) {
    tg::ReferenceKernelsGuard guard(reference);
    Tensor x = x0.detach();
    x.requires_grad_(true);
    Tensor y = fn(x);
    tg::Generator gen(99);
    Tensor g = tg::randn(y.shape(), gen);
    return {y, tg::grad({y}, {x}, {g})[0]};
}

void check_fast_equals_reference(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x, double tol = 1e-4) {
    auto [yf, gf] = fwd_bwd(fn, x, false);
    auto [yr, gr] = fwd_bwd(fn, x, true);
    CHECK_MESSAGE(tg::allclose(yf, yr, tol, tol), "forward differs by " << tg::max_abs_diff(yf, yr));
    CHECK_MESSAGE(tg::allclose(gf, gr, tol, tol), "gradient differs by " << tg::max_abs_diff(gf, gr));
}

}  // namespace

TEST_CASE("relu: the gradient at 0 is 0") {
    Tensor x = tg::tensor({-1.0, 0.0, 2.0});
    x.requires_grad_(true);
    tg::relu(x).sum().backward();
    CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 0, 1});
}

TEST_CASE("std: a constant input gets gradient 0, as PyTorch's std_backward (not NaN)") {
    // PyTorch 1.13: torch.tensor([[2., 2., 2.], [1., 2., 4.]]).std(1) backward of sum gives
    // [[0, 0, 0], [-0.436436, -0.109109, 0.545545]] (g / (2 s) masked to 0 where s = 0).
    Tensor x = tg::from_vector(std::vector<double>{2, 2, 2, 1, 2, 4}, {2, 3}, {.dtype = tg::kFloat64}).requires_grad_();
    tg::std(x, {1}).sum().backward();
    const std::vector<double> want{0, 0, 0, -0.436436, -0.109109, 0.545545};
    const std::vector<double> got = x.grad().to_vector<double>();
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
}

TEST_CASE("cross_entropy: finite at logits of +-1e4 and equal to the hand-computed value") {
    for (tg::DType dt : {tg::kFloat64, tg::kFloat32}) {
        Tensor logits = tg::tensor({{1e4, -1e4, 0.0}, {0.0, 0.0, 0.0}}, {.dtype = dt});
        logits.requires_grad_(true);
        Tensor loss = tg::cross_entropy(logits, {1, 2});
        // Row 0: logsumexp = 1e4, loss 1e4 - (-1e4) = 2e4. Row 1: log 3. Mean of the two.
        const double expected = (2e4 + std::log(3.0)) / 2;
        CHECK(loss.item() == doctest::Approx(expected).epsilon(dt == tg::kFloat32 ? 1e-6 : 1e-12));
        loss.backward();
        REQUIRE(all_finite(logits.grad()));
        // (softmax - onehot) / N: row 0 is [1, -1, 0] / 2, row 1 is [1/3, 1/3, -2/3] / 2.
        const std::vector<double> want = {0.5, -0.5, 0.0, 1.0 / 6, 1.0 / 6, -1.0 / 3};
        const auto got = logits.grad().to_vector<double>();
        for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
    }
}

TEST_CASE("cross_entropy: Sum and None reductions, and nll_loss of log_softmax agrees") {
    Tensor logits = tg::tensor({{1.0, 2.0, 3.0}, {1.0, -1.0, 0.5}});
    const std::vector<int64_t> labels = {2, 0};
    Tensor none = tg::cross_entropy(logits, labels, tg::Reduction::None);
    REQUIRE(none.shape() == tg::Shape{2});
    const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
    CHECK(none.at({0}) == doctest::Approx(l0));
    CHECK(tg::cross_entropy(logits, labels, tg::Reduction::Sum).item() == doctest::Approx(none.at({0}) + none.at({1})));
    CHECK(tg::nll_loss(tg::log_softmax(logits), labels).item() == doctest::Approx(tg::cross_entropy(logits, labels).item()));
}

TEST_CASE("batch_norm: running statistics follow PyTorch (momentum 0.1, unbiased variance)") {
    // Channel 0: 1,2,3,4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1: 0,0,2,2 (mean 1,
    // biased var 1, unbiased 4/3).
    Tensor x = tg::tensor({{1.0, 0.0}, {2.0, 0.0}, {3.0, 2.0}, {4.0, 2.0}});
    Tensor rm = tg::zeros({2}), rv = tg::ones({2});
    Tensor y = tg::batch_norm(x, rm, rv, Tensor(), Tensor());
    CHECK(rm.at({0}) == doctest::Approx(0.25));
    CHECK(rm.at({1}) == doctest::Approx(0.1));
    CHECK(rv.at({0}) == doctest::Approx(0.9 + 0.1 * 5.0 / 3.0));
    CHECK(rv.at({1}) == doctest::Approx(0.9 + 0.1 * 4.0 / 3.0));
    // Normalised with the biased batch variance.
    CHECK(y.at({0, 0}) == doctest::Approx((1.0 - 2.5) / std::sqrt(1.25 + 1e-5)));
    CHECK(y.at({3, 1}) == doctest::Approx(1.0 / std::sqrt(1.0 + 1e-5)));
    // A second step keeps averaging.
    tg::batch_norm(x, rm, rv, Tensor(), Tensor());
    CHECK(rm.at({0}) == doctest::Approx(0.9 * 0.25 + 0.1 * 2.5));
}

TEST_CASE("batch_norm: eval mode normalises with the running statistics and leaves them alone") {
    Tensor x = tg::tensor({3.0, 5.0}).reshape({2, 1});
    Tensor rm = tg::tensor({1.0}), rv = tg::tensor({4.0});
    Tensor w = tg::tensor({2.0}), b = tg::tensor({1.0});
    for (bool reference : {false, true}) {
        tg::ReferenceKernelsGuard guard(reference);
        Tensor y = tg::batch_norm(x, rm, rv, w, b, {.training = false});
        CHECK(y.at({0, 0}) == doctest::Approx((3.0 - 1.0) / std::sqrt(4.0 + 1e-5) * 2 + 1));
        CHECK(y.at({1, 0}) == doctest::Approx((5.0 - 1.0) / std::sqrt(4.0 + 1e-5) * 2 + 1));
    }
    CHECK(rm.at({0}) == 1.0);
    CHECK(rv.at({0}) == 4.0);
}

TEST_CASE("batch_norm: a constant channel gives finite outputs and gradients") {
    for (bool reference : {false, true}) {
        tg::ReferenceKernelsGuard guard(reference);
        Tensor x = tg::full({4, 2, 3, 3}, 7.0);
        x.requires_grad_(true);
        Tensor w = tg::ones({2}, {.requires_grad = true}), b = tg::zeros({2}, {.requires_grad = true});
        Tensor y = tg::batch_norm(x, Tensor(), Tensor(), w, b);
        CHECK(all_finite(y));
        CHECK(tg::max_abs_diff(y, tg::zeros_like(y)) < 1e-6);
        (y * y + y).sum().backward();
        CHECK(all_finite(x.grad()));
        CHECK(all_finite(w.grad()));
    }
}

TEST_CASE("fast kernels equal the reference on sizes that take the parallel paths") {
    tg::Generator gen(5);
    const Tensor x = tg::randn({4, 16, 32, 32}, gen);
    const Tensor rm = tg::randn({16}, gen), rv = tg::uniform({16}, 0.5, 2.0, gen);
    const Tensor w = tg::randn({16}, gen), b = tg::randn({16}, gen);
    for (tg::MemoryFormat f : {tg::MemoryFormat::Contiguous, tg::MemoryFormat::ChannelsLast}) {
        const Tensor xf = x.contiguous(f);
        check_fast_equals_reference([](const Tensor& t) { return tg::relu(t); }, xf);
        check_fast_equals_reference([](const Tensor& t) { return tg::sigmoid(t); }, xf);
        check_fast_equals_reference([&](const Tensor& t) { return tg::batch_norm(t, Tensor(), Tensor(), w, b); }, xf);
        check_fast_equals_reference([&](const Tensor& t) { return tg::batch_norm(t, rm, rv, w, b, {.training = false}); }, xf);
    }
    // relu keeps the channels-last layout, forward and backward.
    auto [y, g] = fwd_bwd([](const Tensor& t) { return tg::relu(t); }, x.contiguous(tg::MemoryFormat::ChannelsLast), false);
    CHECK(y.suggest_memory_format() == tg::MemoryFormat::ChannelsLast);
    const Tensor logits = tg::randn({512, 100}, gen);
    std::vector<int64_t> labels(512);
    for (auto& l : labels) l = static_cast<int64_t>(gen.below(100));
    check_fast_equals_reference([&](const Tensor& t) { return tg::cross_entropy(t, labels); }, logits, 1e-5);
    check_fast_equals_reference([](const Tensor& t) { return tg::log_softmax(t); }, logits);
    check_fast_equals_reference([](const Tensor& t) { return tg::softmax(t); }, logits);
    check_fast_equals_reference([&](const Tensor& t) { return tg::batch_norm(t, Tensor(), Tensor(), Tensor(), Tensor()); },
                                tg::randn({2048, 24}, gen));
}

TEST_CASE("matmul: equals a naive loop on odd shapes, plain and batch-broadcast") {
    tg::Generator gen(3);
    const int64_t B = 3, M = 7, K = 13, N = 5;
    Tensor a = tg::randn({B, M, K}, gen), b = tg::randn({K, N}, gen);
    Tensor c = tg::matmul(a, b);
    REQUIRE(c.shape() == tg::Shape{B, M, N});
    for (int64_t s = 0; s < B; ++s)
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
                double acc = 0;
                for (int64_t k = 0; k < K; ++k) acc += a.at({s, i, k}) * b.at({k, j});
                CHECK(c.at({s, i, j}) == doctest::Approx(acc).epsilon(1e-5));
            }
    // A transposed view goes through the transpose flag and gives the same numbers as a copy.
    Tensor bt = tg::randn({N, K}, gen);
    CHECK(tg::allclose(tg::matmul(a, bt.transpose(0, 1)), tg::matmul(a, bt.transpose(0, 1).contiguous()), 1e-6, 1e-6));
    // An empty inner dimension gives zeros, as a sum over nothing.
    Tensor e = tg::matmul(tg::empty({2, 0}), tg::empty({0, 3}));
    CHECK(tg::max_abs_diff(e, tg::zeros({2, 3})) == 0);
    // linear is x W^T + b.
    Tensor x = tg::randn({M, K}, gen), w = tg::randn({N, K}, gen), bias = tg::randn({N}, gen);
    Tensor y = tg::linear(x, w, bias);
    double acc = bias.at({2});
    for (int64_t k = 0; k < K; ++k) acc += x.at({4, k}) * w.at({2, k});
    CHECK(y.at({4, 2}) == doctest::Approx(acc).epsilon(1e-5));
}

TEST_CASE("dropout: same seed same mask, scale 1/(1-p), identity in eval or at p = 0") {
    tg::Generator g0(0);
    Tensor x = tg::uniform({1000}, 1.0, 2.0, g0);
    tg::Generator g1(42), g2(42), g3(43);
    Tensor a = tg::dropout(x, 0.25, true, g1), b = tg::dropout(x, 0.25, true, g2), c = tg::dropout(x, 0.25, true, g3);
    CHECK(tg::allclose(a, b, 0, 0));
    CHECK_FALSE(tg::allclose(a, c, 0, 0));
    int64_t kept = 0;
    const auto av = a.to_vector<float>(), xv = x.to_vector<float>();
    for (std::size_t i = 0; i < av.size(); ++i) {
        if (av[i] == 0) continue;
        ++kept;
        CHECK(av[i] == doctest::Approx(xv[i] / 0.75));
    }
    CHECK(kept > 650);
    CHECK(kept < 850);
    CHECK(tg::dropout(x, 0.25, false, g1).same(x));
    CHECK(tg::dropout(x, 0.0, true, g1).same(x));
    // p = 1 drops everything, as PyTorch.
    CHECK(tg::max_abs_diff(tg::dropout(x, 1.0, true, g1), tg::zeros_like(x)) == 0);
    // The gradient uses the same mask.
    Tensor xr = x.detach();
    xr.requires_grad_(true);
    tg::Generator g4(42);
    tg::dropout(xr, 0.25, true, g4).sum().backward();
    const auto gv = xr.grad().to_vector<float>();
    for (std::size_t i = 0; i < gv.size(); ++i) CHECK(gv[i] == doctest::Approx(av[i] == 0 ? 0.0 : 1 / 0.75));
}

TEST_CASE("max: the gradient goes to the first maximum; argmax agrees") {
    Tensor x = tg::tensor({{1.0, 3.0, 3.0}, {2.0, 0.0, 2.0}});
    x.requires_grad_(true);
    Tensor m = tg::max(x, 1);
    CHECK(m.to_vector<float>() == std::vector<float>{3, 2});
    m.sum().backward();
    CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 1, 0, 1, 0, 0});
    CHECK(tg::argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
    CHECK(tg::argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
    CHECK(tg::max(x, 0, true).shape() == tg::Shape{1, 3});
}

// Expected values as torch.argmax / torch.argmin give them (first extreme, NaN wins, int64).
TEST_CASE("argmax and argmin: int64 tensors, keepdim, no axis, NaN, integer inputs, views") {
    const Tensor x = tg::tensor({{1.0, 3.0, 3.0}, {2.0, 0.0, 2.0}});
    const Tensor a = tg::argmax(x, 1);
    CHECK(a.dtype() == tg::kInt64);
    CHECK(a.shape() == tg::Shape{2});
    CHECK(!a.requires_grad());
    CHECK(tg::argmax(x, -1, true).shape() == tg::Shape{2, 1});
    CHECK(tg::argmax(x, 0, true).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
    CHECK(tg::argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 1});
    CHECK(tg::argmin(x, 0).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1});
    // No axis: the index into the flattened tensor, 0-d.
    CHECK(tg::argmax(x).shape() == tg::Shape{});
    CHECK(tg::argmax(x).item<int64_t>() == 1);
    CHECK(tg::argmin(x).item<int64_t>() == 4);
    // A transposed view reads its own row-major order.
    CHECK(tg::argmax(x.transpose(0, 1), 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
    const Tensor n = tg::tensor({1.0, NAN, 5.0, NAN});
    CHECK(tg::argmax(n, 0).item<int64_t>() == 1);
    CHECK(tg::argmin(n, 0).item<int64_t>() == 1);
    const Tensor labels = tg::from_vector(std::vector<int64_t>{4, -2, 9}, {3});
    CHECK(tg::argmax(labels, 0).item<int64_t>() == 2);
    CHECK(tg::argmin(labels).item<int64_t>() == 1);
    CHECK_THROWS_WITH_AS(tg::argmin(tg::zeros({2, 0}), 1), doctest::Contains("argmin: axis 1 of [2,0] is empty"),
                         std::invalid_argument);
    CHECK_THROWS_AS(tg::argmax(tg::zeros({0})), std::invalid_argument);
    CHECK_THROWS_AS(tg::argmax(x, 2), std::invalid_argument);
}

// Expected values as PyTorch 1.13 gives them: torch.max(x, 1) and torch.min(x, 0, keepdim=True)
// on this x, then (v.sum() + v2.sum()).backward() for x.grad (first extreme wins, NaN counts as
// the extreme).
TEST_CASE("max_with_indices and min_with_indices: values with gradient, int64 indices, as torch.max(x, dim)") {
    Tensor x = tg::tensor({{1.0, 3.0, 3.0}, {NAN, 2.0, NAN}, {-1.0, -5.0, -5.0}});
    x.requires_grad_(true);
    const auto [values, indices] = tg::max_with_indices(x, 1);
    CHECK(indices.dtype() == tg::kInt64);
    CHECK(!indices.requires_grad());
    CHECK(indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
    const std::vector<float> v = values.to_vector<float>();
    CHECK(v[0] == 3.0f);
    CHECK(std::isnan(v[1]));
    CHECK(v[2] == -1.0f);
    const auto [low, low_at] = tg::min_with_indices(x, 0, true);
    CHECK(low.shape() == tg::Shape{1, 3});
    CHECK(low_at.shape() == tg::Shape{1, 3});
    CHECK(low_at.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 1});
    CHECK(low.to_vector<float>()[1] == -5.0f);
    (values.sum() + low.sum()).backward();
    CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 1, 0, 2, 0, 1, 1, 1, 0});
    // The same values as max / min and the same indices as argmax / argmin, on a view too.
    tg::Generator gen(3);
    const Tensor r = tg::randn({2, 5, 4}, gen).transpose(1, 2);
    for (int64_t axis : {0, 1, -1}) {
        CHECK(tg::max_with_indices(r, axis).values.to_vector<float>() == tg::max(r, axis).to_vector<float>());
        CHECK(tg::max_with_indices(r, axis).indices.to_vector<int64_t>() == tg::argmax(r, axis).to_vector<int64_t>());
        CHECK(tg::min_with_indices(r, axis, true).values.to_vector<float>() == tg::min(r, axis, true).to_vector<float>());
        CHECK(tg::min_with_indices(r, axis, true).indices.to_vector<int64_t>() ==
              tg::argmin(r, axis, true).to_vector<int64_t>());
    }
    const Tensor ramp = tg::arange(8).reshape({2, 2, 2});  // [[[0,1],[2,3]],[[4,5],[6,7]]]
    CHECK(tg::min_with_indices(ramp.transpose(1, 2), 2).indices.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0, 0});
    CHECK(tg::min_with_indices(ramp.transpose(1, 2), 2).values.to_vector<float>() == std::vector<float>{0, 1, 4, 5});
    CHECK_THROWS_WITH_AS(tg::min_with_indices(tg::zeros({2, 0}), 1),
                         doctest::Contains("min_with_indices: axis 1 of [2,0] is empty, so it has no minimum"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::max_with_indices(x, 2), doctest::Contains("max_with_indices"), std::invalid_argument);
}

TEST_CASE("count_equal: predictions against label tensors") {
    const Tensor logits = tg::tensor({{0.1, 0.9}, {0.8, 0.2}, {0.3, 0.7}});
    const Tensor labels = tg::from_vector(std::vector<int64_t>{1, 1, 1}, {3});
    CHECK(tg::count_equal(tg::argmax(logits, 1), labels) == 2);
    CHECK(tg::count_equal(labels, labels.to(tg::kInt32)) == 3);
    // Mixed dtypes compare values: 1.5 is not the label 1.
    CHECK(tg::count_equal(tg::tensor({1.0, 1.5, 0.0}), labels) == 1);
    CHECK_THROWS_WITH_AS(tg::count_equal(labels, labels.reshape({3, 1})), doctest::Contains("count_equal: the shapes differ"),
                         std::invalid_argument);
}

TEST_CASE("sum of float32: within 1e-6 of the exact sum's magnitude at every length around the block sizes, the same bits at 1 and 2 threads") {
    // The contiguous float sum adds 256-element blocks in float lanes and the blocks in double
    // (engine/tensor_math.cpp): lengths around 16, 32 and 256 reach each tail, values of mixed
    // sign and magnitude (1e-3 to 1e3) make rounding visible.
    tg::Generator gen(5);
    for (const int64_t n : {1, 15, 16, 17, 31, 255, 256, 257, 511, 4099, 100003}) {
        CAPTURE(n);
        const Tensor x = tg::randn({n}, gen) * tg::exp(tg::randn({n}, gen) * 2.3);
        const Tensor x64 = x.to(tg::kFloat64);
        double exact = 0, magnitude = 0;  // double is exact enough: at most 1e5 float terms
        for (int64_t i = 0; i < n; ++i) {
            exact += x64.data<double>()[i];
            magnitude += std::abs(x64.data<double>()[i]);
        }
        std::vector<double> got;
        for (const int threads : {1, 2}) {
            const tg::ThreadCountGuard guard(threads);
            got.push_back(tg::sum(x).item());
        }
        CHECK(std::abs(got[0] - exact) <= 1e-6 * magnitude);
        CHECK(got[0] == got[1]);
    }
}

TEST_CASE("set_num_threads sets and reads back") {
    const int before = tg::get_num_threads();
    tg::set_num_threads(1);
    CHECK(tg::get_num_threads() == 1);
    tg::set_num_threads(2);
    CHECK(tg::get_num_threads() == 2);
    CHECK_THROWS_AS(tg::set_num_threads(0), std::invalid_argument);
    tg::set_num_threads(before);
}

TEST_CASE("bad inputs: each error names the op and the shapes") {
    tg::Generator gen(1);
    tg::Generator drop_gen(1);
    const Tensor x4 = tg::randn({2, 3, 4, 4}, gen), c3 = tg::ones({3}), c4 = tg::ones({4});
    const Tensor logits = tg::randn({4, 10}, gen);
    struct Bad {
        std::function<void()> call;
        std::vector<std::string> mentions;
    };
    const std::vector<Bad> table = {
        {[&] { tg::batch_norm(tg::randn({2, 3, 4, 2, 2}, gen), c3, c3, c3, c3); }, {"batch_norm", "[2,3,4,2,2]"}},
        {[&] { tg::batch_norm(x4, c3, c3, c4, c3); }, {"batch_norm", "weight", "[4]", "[2,3,4,4]"}},
        {[&] { tg::batch_norm(x4, c4, c3, c3, c3); }, {"batch_norm", "running_mean", "[4]"}},
        {[&] { tg::batch_norm(tg::randn({1, 3, 1, 1}, gen), c3, c3, c3, c3); },
         {"batch_norm", "more than 1 value per channel", "[1,3,1,1]"}},
        {[&] { tg::batch_norm(x4, Tensor(), Tensor(), c3, c3, {.training = false}); }, {"batch_norm", "eval"}},
        {[&] { tg::matmul(tg::randn({3, 4}, gen), tg::randn({5, 2}, gen)); }, {"matmul", "[3,4]", "[5,2]"}},
        {[&] { tg::matmul(tg::randn({4}, gen), tg::randn({5, 2}, gen)); }, {"matmul", "[4]", "[5,2]"}},
        {[&] { tg::matmul(tg::scalar_tensor(2.0), tg::randn({5, 2}, gen)); }, {"matmul", "1 dimension"}},
        {[&] { tg::matmul(tg::randn({2, 3, 4}, gen), tg::randn({3, 4, 2}, gen)); }, {"matmul", "[2]", "[3]"}},
        {[&] { tg::linear(tg::randn({5, 4}, gen), tg::randn({3, 5}, gen)); }, {"linear", "[5,4]", "[3,5]"}},
        {[&] { tg::linear(tg::randn({5, 4}, gen), tg::randn({3, 4}, gen), tg::ones({4})); }, {"linear", "bias", "[4]", "[3]"}},
        {[&] { tg::cross_entropy(logits, {0, 1, 12, 3}); }, {"cross_entropy", "label 12", "index 2", "10 classes", "[4,10]"}},
        {[&] { tg::cross_entropy(logits, {0, 1, -1, 3}); }, {"cross_entropy", "label -1", "index 2"}},
        {[&] { tg::cross_entropy(logits, {0, 1}); }, {"cross_entropy", "2 labels", "[4,10]"}},
        {[&] { tg::cross_entropy(tg::randn({4}, gen), {0, 1, 2, 3}); }, {"cross_entropy", "[N,K]", "[4]"}},
        {[&] { tg::nll_loss(logits, {0, 1, 10, 3}); }, {"nll_loss", "label 10", "[4,10]"}},
        {[&] { tg::mse_loss(logits, tg::randn({4, 9}, gen)); }, {"mse_loss", "[4,10]", "[4,9]"}},
        {[&] { tg::softmax(logits, 2); }, {"softmax"}},
        {[&] { tg::dropout(logits, 1.5, true, drop_gen); }, {"dropout", "1.5"}},
        {[&] { tg::dropout(logits, -0.1, true, drop_gen); }, {"dropout"}},
        {[&] { tg::max(logits, 2); }, {"max"}},
    };
    for (std::size_t i = 0; i < table.size(); ++i) {
        INFO("bad input #" << i);
        try {
            table[i].call();
            FAIL("no exception");
        } catch (const std::invalid_argument& e) {
            const std::string msg = e.what();
            for (const auto& m : table[i].mentions) CHECK_MESSAGE(msg.find(m) != std::string::npos, "'" << msg << "' lacks '" << m << "'");
        }
    }
}

TEST_CASE("broadcast add and mul: every operand shape against an element-by-element loop, in both layouts") {
    // Covers the row loop for an operand repeating over the output's innermost memory block (a
    // [1,C,1,1] bias on a channels-last tensor) and the strided runner for every other form.
    tg::Generator gen(21);
    const tg::Shape full{2, 5, 3, 4};
    for (const auto format : {tg::MemoryFormat::Contiguous, tg::MemoryFormat::ChannelsLast}) {
        const Tensor a = tg::randn(full, gen).contiguous(format);
        for (const tg::Shape& bs : {tg::Shape{1, 5, 1, 1}, tg::Shape{1, 1, 1, 4}, tg::Shape{1, 5, 3, 4}, tg::Shape{2, 1, 1, 1},
                                    tg::Shape{1, 5, 1, 4}, tg::Shape{5, 1, 1}}) {
            CAPTURE(tg::to_string(bs));
            const Tensor b = tg::randn(bs, gen);  // row-major: element bi at sum_d bi[d] * stride[d]
            const std::vector<double> bv_all = b.to_vector<double>();
            const Tensor sum = a + b, product = a * b;
            const int64_t off = 4 - static_cast<int64_t>(bs.size());
            double worst = 0;
            for (int64_t n = 0; n < 2; ++n)
                for (int64_t c = 0; c < 5; ++c)
                    for (int64_t h = 0; h < 3; ++h)
                        for (int64_t w = 0; w < 4; ++w) {
                            const std::vector<int64_t> full_index{n, c, h, w};
                            int64_t flat = 0;
                            for (std::size_t d = 0; d < bs.size(); ++d) flat = flat * bs[d] + (bs[d] == 1 ? 0 : full_index[d + off]);
                            const double av = a.at({n, c, h, w}), bv = bv_all[static_cast<std::size_t>(flat)];
                            worst = std::max({worst, std::abs(sum.at({n, c, h, w}) - (av + bv)),
                                              std::abs(product.at({n, c, h, w}) - av * bv)});
                        }
            CHECK(worst < 1e-6);
        }
    }
}
