// Optimizers and schedulers against PyTorch 1.13.1. The expected numbers were produced offline
// with /usr/bin/python3 + torch (float64): a parameter [1, -2, 0.5] gets the gradients
// [0.1, -0.3, 2], [-0.2, 0.4, 1], [0.5, 0.5, -1.5] over three step() calls.
#include <doctest/doctest.h>

#include <functional>

#include "engine/autograd.hpp"
#include "nn/optim.hpp"
#include "nn/scheduler.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {
const std::vector<std::vector<double>> kGrads = {{0.1, -0.3, 2.0}, {-0.2, 0.4, 1.0}, {0.5, 0.5, -1.5}};

Tensor run(const std::function<std::unique_ptr<nn::Optimizer>(std::vector<Tensor>)>& make, tg::DType dtype) {
    Tensor p = tg::tensor({1.0, -2.0, 0.5}, {.dtype = dtype, .requires_grad = true});
    auto opt = make({p});
    for (const auto& g : kGrads) {
        p.set_grad(tg::from_vector(g, {3}, {.dtype = dtype}));
        opt->step();
    }
    return p;
}

void check_both_dtypes(const std::function<std::unique_ptr<nn::Optimizer>(std::vector<Tensor>)>& make,
                       std::initializer_list<double> expected) {
    CHECK(tg::allclose(run(make, tg::kFloat64), tg::tensor(expected, {.dtype = tg::kFloat64}), 1e-12, 1e-14));
    CHECK(tg::allclose(run(make, tg::kFloat32), tg::tensor(expected), 1e-5, 1e-6));
}
}  // namespace

TEST_CASE("SGD matches torch.optim.SGD") {
    // torch.optim.SGD(lr=0.1)
    check_both_dtypes([](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1}); },
                      {0.96, -2.0599999999999996, 0.35});
    // torch.optim.SGD(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
    check_both_dtypes(
        [](auto ps) {
            return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
        },
        {0.95680222109, -2.02153863408, -0.07989304740500007});
    // torch.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    check_both_dtypes(
        [](auto ps) {
            return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
        },
        {0.9168056125509999, -2.084324136512, -0.1753983212295});
}

TEST_CASE("Adam matches torch.optim.Adam") {
    // torch.optim.Adam(lr=0.01)
    check_both_dtypes([](auto ps) { return std::make_unique<nn::Adam>(ps, nn::AdamOptions{.lr = 0.01}); },
                      {0.9889836705050046, -1.9975110942325225, 0.478256756940728});
    // torch.optim.Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    check_both_dtypes(
        [](auto ps) {
            return std::make_unique<nn::Adam>(
                ps, nn::AdamOptions{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.1});
        },
        {0.9807836244475323, -1.9887305543263607, 0.4789861213923271});
}

TEST_CASE("AdamW matches torch.optim.AdamW, defaults included") {
    // torch.optim.AdamW(lr=0.01): default betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2
    check_both_dtypes(
        [](auto ps) {
            auto o = nn::AdamW::defaults();
            o.lr = 0.01;
            return std::make_unique<nn::AdamW>(ps, o);
        },
        {0.9886853343003008, -1.9969129606200522, 0.4781097040198509});
    // The same with only the lr named: the weight decay stays PyTorch's 1e-2.
    check_both_dtypes([](auto ps) { return std::make_unique<nn::AdamW>(ps, nn::AdamWOptions{.lr = 0.01}); },
                      {0.9886853343003008, -1.9969129606200522, 0.4781097040198509});
    // torch.optim.AdamW(lr=0.05, weight_decay=0.5)
    check_both_dtypes(
        [](auto ps) { return std::make_unique<nn::AdamW>(ps, nn::AdamWOptions{.lr = 0.05, .weight_decay = 0.5}); },
        {0.8737888478982924, -1.8435010830757415, 0.3583474467324399});
    Tensor p = tg::ones({1}, {.requires_grad = true});
    nn::AdamW defaults({p});
    CHECK(defaults.lr() == 1e-3);
    CHECK(defaults.options.weight_decay == 1e-2);
    CHECK(defaults.options.beta2 == 0.999);
    CHECK(defaults.options.eps == 1e-8);
}

TEST_CASE("step() skips parameters without a gradient and zero_grad() drops gradients") {
    Tensor a = tg::tensor({1.0}, {.requires_grad = true});
    Tensor b = tg::tensor({1.0}, {.requires_grad = true});
    nn::SGD opt({a, b}, {.lr = 0.5});
    (a * 4.0).sum().backward();
    opt.step();
    CHECK(a.item() == -1.0);
    CHECK(b.item() == 1.0);
    opt.zero_grad();
    CHECK_FALSE(a.grad().defined());
}

TEST_CASE("invalid hyper-parameters throw naming the optimizer and the parameter") {
    auto params = [] { return std::vector<Tensor>{tg::ones({2}, {.requires_grad = true})}; };
    auto message = [](const std::function<void()>& f) {
        try {
            f();
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(message([&] { nn::SGD(params(), {.lr = -0.1}); }).find("SGD: invalid learning rate") == 0);
    CHECK(message([&] { nn::SGD(params(), {.lr = 0.1, .momentum = -1}); }).find("SGD: invalid momentum") == 0);
    CHECK(message([&] { nn::SGD(params(), {.lr = 0.1, .nesterov = true}); }).find("nesterov") != std::string::npos);
    CHECK(message([&] { nn::Adam(params(), {.beta1 = 1.0}); }).find("Adam: invalid beta parameter at index 0") == 0);
    CHECK(message([&] { nn::Adam(params(), {.beta2 = -0.1}); }).find("Adam: invalid beta parameter at index 1") == 0);
    CHECK(message([&] { nn::AdamW(params(), {.eps = -1e-8}); }).find("AdamW: invalid epsilon") == 0);
    CHECK(message([&] { nn::AdamW(params(), {.weight_decay = -1}); }).find("AdamW: invalid weight_decay") == 0);
    CHECK(message([&] { nn::Adam({params()[0] * 2.0}); }).find("must be a leaf") != std::string::npos);
    CHECK(message([&] { nn::Adam({}); }).find("empty") != std::string::npos);
}

TEST_CASE("optimizer state round-trips: a restored optimizer continues identically") {
    auto fresh = [] { return tg::tensor({1.0, -2.0, 0.5}, {.dtype = tg::kFloat64, .requires_grad = true}); };
    Tensor p1 = fresh();
    nn::Adam a1({p1}, {.lr = 0.01});
    p1.set_grad(tg::from_vector(kGrads[0], {3}, {.dtype = tg::kFloat64}));
    a1.step();
    const auto state = a1.state_dict();
    Tensor p2 = fresh();
    {
        tg::NoGradGuard no_grad;
        p2.copy_(p1);
    }
    nn::Adam a2({p2}, {.lr = 0.5});
    a2.load_state_dict(state);
    CHECK(a2.lr() == 0.01);
    for (std::size_t k = 1; k < kGrads.size(); ++k) {
        p1.set_grad(tg::from_vector(kGrads[k], {3}, {.dtype = tg::kFloat64}));
        p2.set_grad(tg::from_vector(kGrads[k], {3}, {.dtype = tg::kFloat64}));
        a1.step();
        a2.step();
    }
    CHECK(tg::max_abs_diff(p1, p2) == 0.0);
    CHECK(tg::allclose(p2, tg::tensor({0.9889836705050046, -1.9975110942325225, 0.478256756940728}, {.dtype = tg::kFloat64}), 1e-12, 1e-14));
    // A slot of the wrong shape names the entry.
    auto bad = state;
    for (auto& [n, t] : bad)
        if (n == "state.0.exp_avg") t = tg::zeros({4});
    try {
        a2.load_state_dict(bad);
        FAIL("expected an error");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("state.0.exp_avg") != std::string::npos);
    }
}

TEST_CASE("StepLR and CosineAnnealingLR follow PyTorch's values") {
    Tensor p = tg::zeros({1}, {.requires_grad = true});
    nn::SGD opt({p}, {.lr = 0.1});
    {
        // torch.optim.lr_scheduler.StepLR(step_size=3, gamma=0.5), lr 0.1, epochs 0..7
        nn::StepLR sched(opt, 3, 0.5);
        const std::vector<double> expected = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};
        for (double e : expected) {
            CHECK(opt.lr() == doctest::Approx(e).epsilon(1e-12));
            sched.step();
        }
    }
    opt.set_lr(0.1);
    // torch.optim.lr_scheduler.CosineAnnealingLR(T_max=5, eta_min=0.01), lr 0.1, epochs 0..5
    nn::CosineAnnealingLR cosine(opt, 5, 0.01);
    const std::vector<double> expected = {0.1, 0.09140576474687263, 0.06890576474687263, 0.04109423525312736,
                                          0.018594235253127367, 0.01};
    for (double e : expected) {
        CHECK(cosine.last_lr() == doctest::Approx(e).epsilon(1e-12));
        cosine.step();
    }
    cosine.set_epoch(2);
    CHECK(opt.lr() == doctest::Approx(0.06890576474687263).epsilon(1e-12));
    CHECK_THROWS_AS(nn::StepLR(opt, 0), std::invalid_argument);
    CHECK_THROWS_AS(nn::CosineAnnealingLR(opt, 0), std::invalid_argument);
}
