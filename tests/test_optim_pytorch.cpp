// Optimizers (param groups, amsgrad, RMSprop, Adagrad, LBFGS), their state_dict round trips and the
// schedulers against torch.optim 1.13 trajectories: tests/optim/optim_reference.tgck, written by
// tests/optim/make_reference.py, which describes every entry and builds the same cases in Python.
#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <memory>

#include "engine/autograd.hpp"
#include "nn/optim.hpp"
#include "nn/scheduler.hpp"
#include "nn/serialize.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"
#include "ops/shape_ops.hpp"
#include "tests/error_text.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;
using tapegrad::testing::contains;
using tapegrad::testing::error_of;

namespace {

const std::map<std::string, Tensor>& reference() {
    static const std::map<std::string, Tensor> ref = [] {
        std::map<std::string, Tensor> out;
        for (auto& [name, t] : nn::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/optim/optim_reference.tgck"))
            out[name] = t;
        return out;
    }();
    return ref;
}

Tensor expected(const std::string& name) {
    const auto it = reference().find(name);
    REQUIRE_MESSAGE(it != reference().end(), "no reference entry ", name);
    return it->second;
}

// Row `i` of a reference tensor whose first dimension counts steps.
std::vector<double> row(const Tensor& t, int64_t i) {
    const std::vector<double> all = t.to_vector<double>();
    const int64_t n = t.numel() / t.shape()[0];
    return {all.begin() + i * n, all.begin() + (i + 1) * n};
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol) {
    REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < got.size(); ++k)
        CHECK_MESSAGE(std::abs(got[k] - want[k]) <= atol + rtol * std::abs(want[k]), "element ", k, ": ", got[k],
                      " vs PyTorch's ", want[k]);
}

struct Params {
    Tensor p0 = tg::tensor({1.0, -2.0, 0.5}, {.dtype = tg::kFloat64, .requires_grad = true});
    Tensor p1 = tg::from_vector(std::vector<double>{0.3, -0.7, 1.5, -0.2}, {2, 2}, {.dtype = tg::kFloat64, .requires_grad = true});
};

using Make = std::function<std::unique_ptr<nn::Optimizer>(const Params&)>;

// The cases of make_reference.py's CASES. A Python group inherits the defaults it does not name;
// here each group's options are spelled out.
const std::vector<std::pair<std::string, Make>>& optimizer_cases() {
    using SGDGroup = nn::ParamGroup<nn::SGDOptions>;
    using AdamGroup = nn::ParamGroup<nn::AdamOptions>;
    using RMSGroup = nn::ParamGroup<nn::RMSpropOptions>;
    using AdagradGroup = nn::ParamGroup<nn::AdagradOptions>;
    static const std::vector<std::pair<std::string, Make>> cases = {
        {"sgd_groups",
         [](const Params& p) {
             return std::make_unique<nn::SGD>(
                 std::vector<SGDGroup>{{{p.p0}}, {{p.p1}, nn::SGDOptions{.lr = 0.05, .momentum = 0.5, .weight_decay = 0.01, .nesterov = true}}},
                 nn::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
         }},
        {"sgd_dampening",
         [](const Params& p) {
             return std::make_unique<nn::SGD>(std::vector<Tensor>{p.p0, p.p1},
                                              nn::SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.3, .weight_decay = 0.02});
         }},
        {"adam_groups",
         [](const Params& p) {
             return std::make_unique<nn::Adam>(
                 std::vector<AdamGroup>{{{p.p0}},
                                        {{p.p1}, nn::AdamOptions{.lr = 0.02, .beta1 = 0.8, .beta2 = 0.99, .weight_decay = 0.1, .amsgrad = true}}},
                 nn::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
         }},
        {"adam_amsgrad",
         [](const Params& p) {
             return std::make_unique<nn::Adam>(std::vector<Tensor>{p.p0, p.p1}, nn::AdamOptions{.lr = 0.05, .amsgrad = true});
         }},
        {"adam_plain",
         [](const Params& p) { return std::make_unique<nn::Adam>(std::vector<Tensor>{p.p0, p.p1}, nn::AdamOptions{.lr = 0.05}); }},
        {"adamw_amsgrad",
         [](const Params& p) {
             return std::make_unique<nn::AdamW>(
                 std::vector<Tensor>{p.p0, p.p1},
                 nn::AdamWOptions{.lr = 0.01, .beta1 = 0.85, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.05, .amsgrad = true});
         }},
        {"rmsprop_default", [](const Params& p) { return std::make_unique<nn::RMSprop>(std::vector<Tensor>{p.p0, p.p1}); }},
        {"rmsprop_centered_momentum",
         [](const Params& p) {
             return std::make_unique<nn::RMSprop>(
                 std::vector<Tensor>{p.p0, p.p1},
                 nn::RMSpropOptions{.lr = 0.01, .alpha = 0.9, .eps = 1e-6, .weight_decay = 0.01, .momentum = 0.8, .centered = true});
         }},
        {"rmsprop_groups",
         [](const Params& p) {
             return std::make_unique<nn::RMSprop>(
                 std::vector<RMSGroup>{{{p.p0}, nn::RMSpropOptions{.lr = 0.01, .alpha = 0.95, .centered = true}},
                                       {{p.p1}, nn::RMSpropOptions{.lr = 0.003, .alpha = 0.95, .momentum = 0.5}}},
                 nn::RMSpropOptions{.lr = 0.01, .alpha = 0.95});
         }},
        {"adagrad_default", [](const Params& p) { return std::make_unique<nn::Adagrad>(std::vector<Tensor>{p.p0, p.p1}); }},
        {"adagrad_options",
         [](const Params& p) {
             return std::make_unique<nn::Adagrad>(
                 std::vector<Tensor>{p.p0, p.p1},
                 nn::AdagradOptions{.lr = 0.1, .lr_decay = 0.01, .weight_decay = 0.05, .initial_accumulator_value = 0.1, .eps = 1e-8});
         }},
        {"adagrad_groups",
         [](const Params& p) {
             return std::make_unique<nn::Adagrad>(
                 std::vector<AdagradGroup>{{{p.p0}},
                                           {{p.p1}, nn::AdagradOptions{.lr = 0.3, .lr_decay = 0.1, .initial_accumulator_value = 0.5}}},
                 nn::AdagradOptions{.lr = 0.05, .lr_decay = 0.1});
         }},
    };
    return cases;
}

const int64_t kSteps = 12;

void set_grads(const Params& p, int64_t step) {
    Tensor p0 = p.p0, p1 = p.p1;
    p0.set_grad(tg::from_vector(row(expected("grads.p0"), step), {3}, {.dtype = tg::kFloat64}));
    p1.set_grad(tg::from_vector(row(expected("grads.p1"), step), {2, 2}, {.dtype = tg::kFloat64}));
}

void check_step(const std::string& name, const Params& p, int64_t step) {
    CAPTURE(step);
    check_close(p.p0.to_vector<double>(), row(expected(name + ".p0"), step), 1e-12, 1e-14);
    check_close(p.p1.to_vector<double>(), row(expected(name + ".p1"), step), 1e-12, 1e-14);
}

}  // namespace

TEST_CASE("param groups, amsgrad, RMSprop and Adagrad follow torch.optim over 12 steps") {
    for (const auto& [name, make] : optimizer_cases()) {
        CAPTURE(name);
        Params p;
        auto opt = make(p);
        for (int64_t t = 0; t < kSteps; ++t) {
            set_grads(p, t);
            opt->step();
            check_step(name, p, t);
        }
    }
    // The reference's gradients make amsgrad matter: the two trajectories differ.
    CHECK(row(expected("adam_amsgrad.p0"), kSteps - 1) != row(expected("adam_plain.p0"), kSteps - 1));
}

TEST_CASE("state_dict carries every group's hyper-parameters: an optimizer built with other options continues as PyTorch's") {
    // As make_reference.py checks of PyTorch: after 5 steps, state_dict() goes through the
    // checkpoint format into an optimizer built with lr 7 (and betas (0.1, 0.2)), which continues
    // on the uninterrupted trajectory only if the saved options replace its own.
    using AdamGroup = nn::ParamGroup<nn::AdamOptions>;
    const std::vector<std::pair<std::string, Make>> rebuilt = {
        {"adam_groups",
         [](const Params& p) {
             return std::make_unique<nn::Adam>(std::vector<AdamGroup>{{{p.p0}}, {{p.p1}}},
                                               nn::AdamOptions{.lr = 7.0, .beta1 = 0.1, .beta2 = 0.2});
         }},
        {"adamw_amsgrad",
         [](const Params& p) {
             return std::make_unique<nn::AdamW>(std::vector<Tensor>{p.p0, p.p1}, nn::AdamWOptions{.lr = 7.0, .beta1 = 0.1, .beta2 = 0.2});
         }},
        {"sgd_groups",
         [](const Params& p) {
             return std::make_unique<nn::SGD>(std::vector<nn::ParamGroup<nn::SGDOptions>>{{{p.p0}}, {{p.p1}}}, nn::SGDOptions{.lr = 7.0});
         }},
        {"rmsprop_groups",
         [](const Params& p) {
             return std::make_unique<nn::RMSprop>(std::vector<nn::ParamGroup<nn::RMSpropOptions>>{{{p.p0}}, {{p.p1}}},
                                                  nn::RMSpropOptions{.lr = 7.0});
         }},
        {"adagrad_options",
         [](const Params& p) { return std::make_unique<nn::Adagrad>(std::vector<Tensor>{p.p0, p.p1}, nn::AdagradOptions{.lr = 7.0}); }},
    };
    for (const auto& [name, make_other] : rebuilt) {
        CAPTURE(name);
        Params p;
        std::unique_ptr<nn::Optimizer> opt;
        for (const auto& [case_name, make] : optimizer_cases())
            if (case_name == name) opt = make(p);
        REQUIRE(opt);
        for (int64_t t = 0; t < 5; ++t) {
            set_grads(p, t);
            opt->step();
        }
        const std::vector<uint8_t> bytes = nn::serialize(opt->state_dict());
        auto other = make_other(p);
        other->load_state_dict(nn::deserialize(bytes.data(), bytes.size(), "optimizer state"));
        CHECK(other->lr(0) == opt->lr(0));
        CHECK(other->lr(other->param_group_count() - 1) == opt->lr(opt->param_group_count() - 1));
        for (int64_t t = 5; t < kSteps; ++t) {
            set_grads(p, t);
            other->step();
            check_step(name, p, t);
        }
    }
    // The options themselves, group by group.
    Params p;
    auto adam = optimizer_cases()[2].second(p);
    nn::Adam restored(std::vector<nn::ParamGroup<nn::AdamOptions>>{{{p.p0}}, {{p.p1}}}, {.lr = 7.0, .beta1 = 0.1});
    restored.load_state_dict(adam->state_dict());
    CHECK(restored.options(0).beta1 == 0.9);
    CHECK_FALSE(restored.options(0).amsgrad);
    CHECK(restored.options(1).beta1 == 0.8);
    CHECK(restored.options(1).beta2 == 0.99);
    CHECK(restored.options(1).amsgrad);
    CHECK(restored.options(1).weight_decay == 0.1);
}

TEST_CASE("a state without hyper-parameters (the older format) loads and keeps the optimizer's other options") {
    Params p;
    nn::Adam saved({p.p0, p.p1}, {.lr = 0.05});
    set_grads(p, 0);
    saved.step();
    nn::NamedTensors older;  // "param_groups.0.lr" and the per-parameter state only
    for (const auto& [key, t] : saved.state_dict())
        if (key == "param_groups.0.lr" || key.rfind("state.", 0) == 0) older.emplace_back(key, t);
    nn::Adam loaded({p.p0, p.p1}, {.lr = 1.0, .beta1 = 0.5, .amsgrad = true});
    loaded.load_state_dict(older);
    CHECK(loaded.lr() == 0.05);
    CHECK(loaded.options().beta1 == 0.5);
    CHECK(loaded.options().amsgrad);
}

TEST_CASE("a load that does not fit the param groups, or holds an invalid option, names it and changes nothing") {
    Params p;
    nn::Adam two(std::vector<nn::ParamGroup<nn::AdamOptions>>{{{p.p0}}, {{p.p1}, nn::AdamOptions{.lr = 0.5}}}, {.lr = 0.1});
    set_grads(p, 0);
    two.step();
    const nn::NamedTensors good = two.state_dict();
    auto with = [&](const std::string& key, const Tensor& value) {
        nn::NamedTensors dict = good;
        for (auto& [k, t] : dict)
            if (k == key) t = value;
        return dict;
    };
    const auto before = two.state_dict();
    auto unchanged = [&] {
        const auto now = two.state_dict();
        REQUIRE(now.size() == before.size());
        for (std::size_t k = 0; k < now.size(); ++k) {
            CHECK(now[k].first == before[k].first);
            CHECK(now[k].second.to_vector<double>() == before[k].second.to_vector<double>());
        }
    };
    const Tensor bad_betas = tg::from_vector(std::vector<double>{1.5, 0.9}, {2}, {.dtype = tg::kFloat64});
    CHECK(error_of([&] { two.load_state_dict(with("param_groups.1.betas", bad_betas)); }) ==
          "Adam.load_state_dict: the saved options of param group 1 are invalid: Adam param group 1: invalid beta "
          "parameter at index 0: 1.5");
    unchanged();
    CHECK(error_of([&] { two.load_state_dict(with("param_groups.0.amsgrad", tg::scalar_tensor(0.5, {.dtype = tg::kFloat64}))); }) ==
          "Adam.load_state_dict: 'param_groups.0.amsgrad' is 0.5; a flag is 0 or 1");
    CHECK(contains(error_of([&] { two.load_state_dict(with("param_groups.0.betas", tg::zeros({3}))); }),
                   "'param_groups.0.betas' must hold 2 values, got [3] float32"));
    unchanged();
    // The same state into an optimizer with one group of both parameters.
    nn::Adam one({p.p0, p.p1});
    CHECK(error_of([&] { one.load_state_dict(good); }) ==
          "Adam.load_state_dict: the state does not fit this optimizer: the saved param group 0 has 1 parameters, "
          "this optimizer's has 2; build the optimizer with the same param groups as the saved one");
    // Into three groups: group 2's lr is missing.
    Tensor extra = tg::zeros({1}, {.dtype = tg::kFloat64, .requires_grad = true});
    nn::Adam three(std::vector<nn::ParamGroup<nn::AdamOptions>>{{{p.p0}}, {{p.p1}}, {{extra}}}, {});
    CHECK(contains(error_of([&] { three.load_state_dict(good); }), "'param_groups.2.lr' is missing"));
    // Into a single-group optimizer whose group matches the first: the second group is left over.
    nn::Adam first({p.p0});
    CHECK(contains(error_of([&] { first.load_state_dict(good); }), "it has more param groups than this optimizer's 1"));
}

TEST_CASE("param groups: per-group lr, add_param_group, errors that name the group") {
    Tensor a = tg::tensor({1.0}, {.requires_grad = true}), b = tg::tensor({1.0}, {.requires_grad = true});
    nn::SGD sgd(std::vector<nn::ParamGroup<nn::SGDOptions>>{{{a}}}, {.lr = 0.1});
    sgd.add_param_group({{b}, nn::SGDOptions{.lr = 0.01}});
    CHECK(sgd.param_group_count() == 2);
    CHECK(sgd.params().size() == 2);
    a.set_grad(tg::ones({1}));
    b.set_grad(tg::ones({1}));
    sgd.step();
    CHECK(a.item() == doctest::Approx(0.9));
    CHECK(b.item() == doctest::Approx(0.99));
    sgd.set_lr(1, 0.5);
    CHECK(sgd.lr(0) == 0.1);
    CHECK(sgd.lr(1) == 0.5);
    sgd.set_lr(0.2);
    CHECK(sgd.lr(1) == 0.2);
    // A group without options takes the defaults.
    Tensor c = tg::tensor({1.0}, {.requires_grad = true});
    sgd.add_param_group({{c}});
    CHECK(sgd.options(2).lr == 0.1);
    CHECK(error_of([&] { sgd.add_param_group({{a}}); }) ==
          "SGD: parameter 3 appears twice (it is parameter 0, in an earlier param group)");
    CHECK(error_of([&] { sgd.add_param_group({{tg::tensor({2.0}, {.requires_grad = true})}, nn::SGDOptions{.lr = -1}}); }) ==
          "SGD param group 3: invalid learning rate: -1");
    CHECK(sgd.param_group_count() == 3);
    sgd.options(1).momentum = -0.5;
    CHECK(error_of([&] { sgd.step(); }) == "SGD param group 1: invalid momentum: -0.5");
    CHECK(a.item() == doctest::Approx(0.9));
}

// ---------------------------------------------------------------- LBFGS

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

TEST_CASE("LBFGS: the history round-trips through state_dict; bad closures and options are refused and change nothing") {
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
