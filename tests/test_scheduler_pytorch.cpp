// LinearLR, OneCycleLR, SequentialLR and ReduceLROnPlateau against torch.optim.lr_scheduler 1.13:
// the lr of each param group (and OneCycleLR's momentum or beta1) after construction and after each
// step, from tests/optim/optim_reference.tgck (written by tests/optim/make_reference.py, whose
// two_groups() builds the optimizers below: groups of lr 0.1 and 0.02).
#include <doctest/doctest.h>

#include <limits>
#include <memory>

#include "nn/optim.hpp"
#include "nn/scheduler.hpp"
#include "tests/error_text.hpp"
#include "tests/optim/reference.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;
using tapegrad::testing::contains;
using tapegrad::testing::error_of;
using tapegrad::testing::expected;

namespace {

// Two param groups, lr 0.1 and 0.02, as make_reference.py's two_groups().
template <class Optimizer, class Options>
struct TwoGroups {
    Tensor a = tg::zeros({2}, {.dtype = tg::kFloat64, .requires_grad = true});
    Tensor b = tg::zeros({3}, {.dtype = tg::kFloat64, .requires_grad = true});
    Optimizer opt;
    explicit TwoGroups(Options defaults) : opt(make_groups(defaults), defaults) {}

private:
    std::vector<nn::ParamGroup<Options>> make_groups(Options defaults) {
        Options second = defaults;
        second.lr = 0.02;
        return {{{a}}, {{b}, second}};
    }
};

// Row e of the reference holds the groups' lrs (or momenta) at epoch e.
void check_row(const std::vector<double>& got, const Tensor& want, int64_t e) {
    CAPTURE(e);
    const std::vector<double> all = want.to_vector<double>();
    const auto groups = static_cast<std::size_t>(want.shape()[1]);
    REQUIRE(got.size() == groups);
    for (std::size_t g = 0; g < groups; ++g)
        CHECK(got[g] == doctest::Approx(all[static_cast<std::size_t>(e) * groups + g]).epsilon(1e-12));
}

std::vector<double> momenta(const nn::Optimizer& opt) {
    std::vector<double> out;
    for (std::size_t g = 0; g < opt.param_group_count(); ++g) out.push_back(opt.momentum(g).value());
    return out;
}

// Checks the lrs (and momenta, when `momentum` names an entry) epoch by epoch, stepping in between.
void check_sequence(nn::LRScheduler& scheduler, const nn::Optimizer& opt, const std::string& name, bool momentum = false) {
    const Tensor lrs = expected("sched." + name + ".lr");
    for (int64_t e = 0; e < lrs.shape()[0]; ++e) {
        if (e > 0) scheduler.step();
        check_row(scheduler.last_lrs(), lrs, e);
        if (momentum) check_row(momenta(opt), expected("sched." + name + ".momentum"), e);
    }
}

}  // namespace

TEST_CASE("LinearLR follows torch.optim.lr_scheduler.LinearLR for every param group") {
    TwoGroups<nn::SGD, nn::SGDOptions> linear({.lr = 0.1});
    nn::LinearLR scheduler(linear.opt, 0.25, 0.9, 6);
    check_sequence(scheduler, linear.opt, "linear");
    TwoGroups<nn::SGD, nn::SGDOptions> defaults({.lr = 0.1});
    nn::LinearLR default_scheduler(defaults.opt);  // start_factor 1/3, end_factor 1, total_iters 5
    check_sequence(default_scheduler, defaults.opt, "linear_default");
    CHECK(error_of([&] { nn::LinearLR(defaults.opt, 1.5); }) == "LinearLR: start_factor must be between 0 and 1, got 1.5");
    CHECK(error_of([&] { nn::LinearLR(defaults.opt, 0.5, -0.1); }) == "LinearLR: end_factor must be between 0 and 1, got -0.1");
}

TEST_CASE("OneCycleLR follows PyTorch's lr and momentum cycles") {
    SUBCASE("cos, two phases, SGD's momentum, one max_lr per group") {
        TwoGroups<nn::SGD, nn::SGDOptions> sgd({.lr = 0.1, .momentum = 0.9});
        nn::OneCycleLR scheduler(sgd.opt, {.max_lr = {0.1, 0.05}, .total_steps = 20});
        check_sequence(scheduler, sgd.opt, "onecycle_cos", true);
        // PyTorch allows stepping to total_steps (row 20 above), and refuses the step after.
        CHECK(error_of([&] { scheduler.step(); }) ==
              "OneCycleLR: tried to step 22 times; the specified number of total steps is 20");
        CHECK(scheduler.last_epoch() == 20);
        CHECK(sgd.opt.initial_lr(1) == doctest::Approx(0.05 / 25));
    }
    SUBCASE("linear, three phases, Adam's beta1, epochs * steps_per_epoch") {
        TwoGroups<nn::Adam, nn::AdamOptions> adam({.lr = 0.1});
        nn::OneCycleLR scheduler(adam.opt, {.max_lr = {0.2}, .epochs = 4, .steps_per_epoch = 6, .pct_start = 0.25,
                                            .anneal_strategy = "linear", .base_momentum = {0.8},
                                            .max_momentum = {0.9, 0.95}, .div_factor = 10, .final_div_factor = 100,
                                            .three_phase = true});
        check_sequence(scheduler, adam.opt, "onecycle_three_phase_linear", true);
        // The step PyTorch still allows overshoots to a negative lr: refused, nothing changes.
        const std::vector<double> lrs = scheduler.last_lrs();
        CHECK(contains(error_of([&] { scheduler.step(); }), "Adam: invalid learning rate: -"));
        CHECK(scheduler.last_epoch() == 23);
        CHECK(scheduler.last_lrs() == lrs);
        CHECK(adam.opt.options(1).beta2 == 0.999);
        // A momentum the optimizer would refuse is refused before anything changes.
        TwoGroups<nn::Adam, nn::AdamOptions> other({.lr = 0.1});
        CHECK(error_of([&] { nn::OneCycleLR(other.opt, {.max_lr = {0.2}, .total_steps = 10, .max_momentum = {1.0}}); }) ==
              "Adam: invalid beta parameter at index 0: 1");
        CHECK(other.opt.lr(0) == 0.1);
        CHECK(other.opt.options(0).beta1 == 0.9);
        CHECK_FALSE(other.opt.initial_lr(0).has_value());
    }
    SUBCASE("without momentum cycling the momentum stays") {
        TwoGroups<nn::RMSprop, nn::RMSpropOptions> rms({.lr = 0.1, .momentum = 0.5});
        nn::OneCycleLR scheduler(rms.opt, {.max_lr = {0.3}, .total_steps = 10, .cycle_momentum = false});
        check_sequence(scheduler, rms.opt, "onecycle_no_momentum", true);
    }
    SUBCASE("bad options are refused before anything changes") {
        TwoGroups<nn::Adagrad, nn::AdagradOptions> adagrad({.lr = 0.1});
        CHECK(error_of([&] { nn::OneCycleLR(adagrad.opt, {.max_lr = {0.1}, .total_steps = 10}); }) ==
              "OneCycleLR: Adagrad has no momentum or betas to cycle; pass cycle_momentum = false");
        CHECK(error_of([&] { nn::OneCycleLR(adagrad.opt, {.max_lr = {0.1, 0.2, 0.3}, .total_steps = 10}); }) ==
              "OneCycleLR: expected 2 values for max_lr (one per param group, or one for all), got 3");
        CHECK(contains(error_of([&] { nn::OneCycleLR(adagrad.opt, {.max_lr = {0.1}}); }),
                       "OneCycleLR: define either total_steps or epochs and steps_per_epoch"));
        CHECK(error_of([&] {
                  nn::OneCycleLR(adagrad.opt, {.max_lr = {0.1}, .total_steps = 10, .anneal_strategy = "exp",
                                               .cycle_momentum = false});
              }) == "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'");
        CHECK(adagrad.opt.lr(0) == 0.1);
        CHECK_FALSE(adagrad.opt.initial_lr(0).has_value());
    }
}

TEST_CASE("SequentialLR hands over at the milestones as PyTorch's does") {
    TwoGroups<nn::SGD, nn::SGDOptions> sgd({.lr = 0.1});
    auto linear = std::make_shared<nn::LinearLR>(sgd.opt, 0.1, 1.0, 3);
    auto cosine = std::make_shared<nn::CosineAnnealingLR>(sgd.opt, 5, 0.001);
    auto step = std::make_shared<nn::StepLR>(sgd.opt, 2, 0.5);
    nn::SequentialLR scheduler(sgd.opt, {linear, cosine, step}, {4, 9});
    check_sequence(scheduler, sgd.opt, "sequential");
    scheduler.set_epoch(6);
    check_row(scheduler.last_lrs(), expected("sched.sequential.lr"), 6);

    TwoGroups<nn::SGD, nn::SGDOptions> other({.lr = 0.1});
    auto foreign = std::make_shared<nn::StepLR>(other.opt, 2);
    CHECK(error_of([&] { nn::SequentialLR(sgd.opt, {linear, foreign}, {3}); }) ==
          "SequentialLR: scheduler 1 belongs to another optimizer; build every scheduler on the same one");
    CHECK(error_of([&] { nn::SequentialLR(sgd.opt, {linear, cosine}, {3, 5}); }) ==
          "SequentialLR: expects one more scheduler than milestones, got 2 schedulers and 2 milestones");
    CHECK(error_of([&] { nn::SequentialLR(sgd.opt, {linear, cosine, step}, {5, 5}); }) ==
          "SequentialLR: milestones must be positive and increasing, got 5 at position 1");
}

TEST_CASE("ReduceLROnPlateau follows PyTorch's reductions, cooldown and min_lr") {
    for (const std::string name : {"plateau_min_rel", "plateau_max_abs"}) {
        CAPTURE(name);
        TwoGroups<nn::SGD, nn::SGDOptions> sgd({.lr = 0.1});
        const nn::ReduceLROnPlateauOptions options =
            name == "plateau_min_rel"
                ? nn::ReduceLROnPlateauOptions{.mode = "min", .factor = 0.5, .patience = 2, .threshold = 0.01,
                                               .threshold_mode = "rel", .cooldown = 1, .min_lr = {0.01, 0.004}}
                : nn::ReduceLROnPlateauOptions{.mode = "max", .factor = 0.3, .patience = 1, .threshold = 0.02,
                                               .threshold_mode = "abs", .min_lr = {0.005}};
        nn::ReduceLROnPlateau plateau(sgd.opt, options);
        const Tensor lrs = expected("sched." + name + ".lr");
        const std::vector<double> metrics = expected("sched." + name + ".metrics").to_vector<double>();
        check_row(plateau.last_lrs(), lrs, 0);
        for (std::size_t e = 0; e < metrics.size(); ++e) {
            plateau.step(metrics[e]);
            check_row(plateau.last_lrs(), lrs, static_cast<int64_t>(e) + 1);
        }
        CHECK(plateau.last_epoch() == static_cast<int64_t>(metrics.size()));
    }
    TwoGroups<nn::SGD, nn::SGDOptions> sgd({.lr = 0.1});
    CHECK(error_of([&] { nn::ReduceLROnPlateau(sgd.opt, {.factor = 1.0}); }) == "ReduceLROnPlateau: factor must be < 1.0, got 1");
    CHECK(error_of([&] { nn::ReduceLROnPlateau(sgd.opt, {.mode = "lowest"}); }) ==
          "ReduceLROnPlateau: mode must be 'min' or 'max', got 'lowest'");
    CHECK(error_of([&] { nn::ReduceLROnPlateau(sgd.opt, {.min_lr = {0.1, 0.2, 0.3}}); }) ==
          "ReduceLROnPlateau: expected 2 min_lrs, got 3");
}

TEST_CASE("a scheduler built after another starts from the groups' initial lr, as PyTorch's base_lrs") {
    TwoGroups<nn::SGD, nn::SGDOptions> sgd({.lr = 0.1});
    nn::LinearLR warmup(sgd.opt, 0.5, 1.0, 4);
    CHECK(sgd.opt.lr(1) == doctest::Approx(0.01));
    nn::CosineAnnealingLR cosine(sgd.opt, 10);
    CHECK(cosine.base_lr(0) == 0.1);
    CHECK(cosine.base_lr(1) == 0.02);
    // state_dict keeps the initial lr.
    bool found = false;
    for (const auto& [key, t] : sgd.opt.state_dict())
        if (key == "param_groups.1.initial_lr") found = t.item() == 0.02;
    CHECK(found);
}
