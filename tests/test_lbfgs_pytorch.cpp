// LBFGS against torch.optim.LBFGS 1.13 on the 6-dimensional Rosenbrock function (tests/optim/
// optim_reference.tgck, written by tests/optim/make_reference.py), its state_dict round trip, and
// steps that fail.
#include <doctest/doctest.h>

#include "engine/autograd.hpp"
#include "nn/lbfgs.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"
#include "ops/shape_ops.hpp"
#include "tests/error_text.hpp"
#include "tests/optim/reference.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;
using tapegrad::testing::check_close;
using tapegrad::testing::contains;
using tapegrad::testing::error_of;
using tapegrad::testing::expected;
using tapegrad::testing::row;

namespace {
// The 6-dimensional Rosenbrock function of cat(p0, p1).
Tensor rosenbrock(const Tensor& p0, const Tensor& p1) {
    const Tensor z = tg::cat({p0, p1});
    const Tensor head = tg::narrow(z, 0, 0, 5), tail = tg::narrow(z, 0, 1, 5);
    const Tensor a = tail - head * head, b = 1.0 - head;
    return (100.0 * a * a + b * b).sum();
}
}  // namespace

TEST_CASE("LBFGS follows torch.optim.LBFGS on Rosenbrock, with and without strong Wolfe line search") {
    const std::vector<std::pair<std::string, nn::LBFGSOptions>> cases = {
        {"plain", {.lr = 0.1, .max_iter = 10, .history_size = 4}},
        {"strong_wolfe", {.lr = 1, .max_iter = 15, .history_size = 5, .line_search_fn = "strong_wolfe"}},
        {"strong_wolfe_short", {.lr = 1, .max_iter = 4, .max_eval = 6, .history_size = 3, .line_search_fn = "strong_wolfe"}},
    };
    for (const auto& [name, options] : cases) {
        CAPTURE(name);
        Tensor p0 = tg::tensor({-1.2, 1.0, -0.5, 0.8}, {.dtype = tg::kFloat64, .requires_grad = true});
        Tensor p1 = tg::tensor({1.3, -0.7}, {.dtype = tg::kFloat64, .requires_grad = true});
        nn::LBFGS opt({p0, p1}, options);
        auto closure = [&] {
            opt.zero_grad();
            Tensor loss = rosenbrock(p0, p1);
            loss.backward();
            return loss;
        };
        const std::string prefix = "lbfgs." + name + ".";
        const int64_t calls = expected(prefix + "loss").numel();
        for (int64_t k = 0; k < calls; ++k) {
            CAPTURE(k);
            const Tensor loss = opt.step(closure);
            check_close({loss.item()}, row(expected(prefix + "loss"), k), 1e-9, 1e-10);
            check_close(p0.to_vector<double>(), row(expected(prefix + "p0"), k), 1e-9, 1e-12);
            check_close(p1.to_vector<double>(), row(expected(prefix + "p1"), k), 1e-9, 1e-12);
            CHECK(static_cast<double>(opt.history().func_evals) == row(expected(prefix + "func_evals"), k)[0]);
            CHECK(static_cast<double>(opt.history().n_iter) == row(expected(prefix + "n_iter"), k)[0]);
        }
    }
}

TEST_CASE("LBFGS: the history round-trips through state_dict, and bad closures and options are refused and change nothing") {
    auto make_params = [] {
        return std::pair{tg::tensor({-1.2, 1.0, -0.5, 0.8}, {.dtype = tg::kFloat64, .requires_grad = true}),
                         tg::tensor({1.3, -0.7}, {.dtype = tg::kFloat64, .requires_grad = true})};
    };
    const nn::LBFGSOptions options{.lr = 1, .max_iter = 15, .history_size = 5, .line_search_fn = "strong_wolfe"};
    auto [a0, a1] = make_params();
    nn::LBFGS first({a0, a1}, options);
    auto closure_for = [](nn::LBFGS& opt, Tensor p0, Tensor p1) {
        return [&opt, p0, p1] {
            opt.zero_grad();
            Tensor loss = rosenbrock(p0, p1);
            loss.backward();
            return loss;
        };
    };
    first.step(closure_for(first, a0, a1));
    auto [b0, b1] = make_params();
    {
        tg::NoGradGuard no_grad;
        b0.copy_(a0);
        b1.copy_(a1);
    }
    nn::LBFGS second({b0, b1}, {.lr = 0.5, .max_iter = 3});
    second.load_state_dict(first.state_dict());
    CHECK(second.options().line_search_fn == std::optional<std::string>("strong_wolfe"));
    CHECK(second.options().history_size == 5);
    for (int k = 1; k < 4; ++k) {
        first.step(closure_for(first, a0, a1));
        second.step(closure_for(second, b0, b1));
        CHECK(tg::max_abs_diff(a0, b0) == 0.0);
        CHECK(tg::max_abs_diff(a1, b1) == 0.0);
        check_close(b0.to_vector<double>(), row(expected("lbfgs.strong_wolfe.p0"), k), 1e-9, 1e-12);
    }
    // A closure that fails on its third evaluation: the parameters go back, the history stays.
    const auto params_before = b0.to_vector<double>();
    const auto evals_before = second.history().func_evals;
    int evaluations = 0;
    auto failing = [&] {
        if (++evaluations == 3) throw std::invalid_argument("closure: out of data");
        return closure_for(second, b0, b1)();
    };
    CHECK(error_of([&] { second.step(failing); }) == "closure: out of data");
    CHECK(b0.to_vector<double>() == params_before);
    CHECK(second.history().func_evals == evals_before);
    CHECK(contains(error_of([&] { second.step(); }), "LBFGS.step: needs a closure"));
    CHECK(contains(error_of([&] { second.step([&] { return tg::Tensor(); }); }), "the closure returned nothing"));
    CHECK(b0.to_vector<double>() == params_before);
    CHECK(error_of([&] { nn::LBFGS({b0}, {.line_search_fn = "backtracking"}); }) ==
          "LBFGS: line_search_fn is 'backtracking'; only 'strong_wolfe' (or none) is supported");
    CHECK(error_of([&] { second.add_param_group({{tg::zeros({1}, {.requires_grad = true})}}); }) ==
          "LBFGS doesn't support per-parameter options (parameter groups); give it one parameter list");
    CHECK(nn::LBFGS({b0}, {.max_iter = 8}).options().max_eval == 10);  // max_iter * 5 / 4
}

TEST_CASE("LBFGS steps float32 parameters in their dtype and converges as in float64") {
    Tensor p0 = tg::tensor({-1.2f, 1.0f, -0.5f, 0.8f}, {.requires_grad = true});
    Tensor p1 = tg::tensor({1.3f, -0.7f}, {.requires_grad = true});
    nn::LBFGS opt({p0, p1}, {.lr = 1, .max_iter = 15, .history_size = 5, .line_search_fn = "strong_wolfe"});
    auto closure = [&] {
        opt.zero_grad();
        Tensor loss = rosenbrock(p0, p1);
        loss.backward();
        return loss;
    };
    for (int k = 0; k < 6; ++k) opt.step(closure);
    CHECK(p0.dtype() == tg::kFloat32);
    // PyTorch's float64 run ends at the minimum (all ones) within 1e-5 after 6 calls.
    for (double v : p0.to_vector<double>()) CHECK(v == doctest::Approx(1.0).epsilon(1e-3));
    for (double v : p1.to_vector<double>()) CHECK(v == doctest::Approx(1.0).epsilon(1e-3));
}
