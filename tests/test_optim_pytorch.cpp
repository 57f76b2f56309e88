// Optimizers (param groups, amsgrad, RMSprop, Adagrad) and their state_dict round trips against
// torch.optim 1.13 trajectories: tests/optim/optim_reference.tgck, written by
// tests/optim/make_reference.py, which describes every entry and builds the same cases in Python.
#include <doctest/doctest.h>

#include <functional>
#include <memory>

#include "engine/autograd.hpp"
#include "nn/optim.hpp"
#include "nn/scheduler.hpp"
#include "nn/serialize.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"
#include "tests/error_text.hpp"
#include "tests/optim/reference.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;
using tapegrad::testing::contains;
using tapegrad::testing::error_of;
using tapegrad::testing::check_close;
using tapegrad::testing::expected;
using tapegrad::testing::row;

namespace {

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
