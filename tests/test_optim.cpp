// Optimizers and schedulers against PyTorch 1.13.1. The expected numbers were produced offline
// with /usr/bin/python3 + torch (float64): a parameter [1, -2, 0.5] gets the gradients
// [0.1, -0.3, 2], [-0.2, 0.4, 1], [0.5, 0.5, -1.5] over three step() calls.
#include <doctest/doctest.h>

#include <functional>
#include <limits>
#include <map>

#include "engine/autograd.hpp"
#include "nn/optim.hpp"
#include "nn/scheduler.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"
#include "tests/error_text.hpp"

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
    CHECK(defaults.options().weight_decay == 1e-2);
    CHECK(defaults.options().beta2 == 0.999);
    CHECK(defaults.options().eps == 1e-8);
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
    CHECK(message([&] { nn::Adam(std::vector<Tensor>{}); }).find("empty") != std::string::npos);
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

// ---------------------------------------------------------------- all-or-nothing steps

namespace {
using tapegrad::testing::contains;
using tapegrad::testing::error_of;
using MakeOptimizer = std::function<std::unique_ptr<nn::Optimizer>(std::vector<Tensor>)>;

const std::vector<std::pair<std::string, MakeOptimizer>>& every_optimizer() {
    static const std::vector<std::pair<std::string, MakeOptimizer>> all = {
        {"SGD", [](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1}); }},
        {"SGD", [](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1, .momentum = 0.9}); }},
        {"Adam", [](auto ps) { return std::make_unique<nn::Adam>(ps, nn::AdamOptions{.lr = 0.1}); }},
        {"AdamW", [](auto ps) { return std::make_unique<nn::AdamW>(ps, nn::AdamWOptions{.lr = 0.1}); }},
        {"Adam", [](auto ps) { return std::make_unique<nn::Adam>(ps, nn::AdamOptions{.lr = 0.1, .amsgrad = true}); }},
        {"RMSprop",
         [](auto ps) {
             return std::make_unique<nn::RMSprop>(ps, nn::RMSpropOptions{.lr = 0.1, .momentum = 0.5, .centered = true});
         }},
        {"Adagrad", [](auto ps) { return std::make_unique<nn::Adagrad>(ps, nn::AdagradOptions{.lr = 0.1}); }},
    };
    return all;
}

// A parameter in a module of its own, so that Module::to converts it alone.
struct Holder : nn::Module {
    Tensor w;
    Holder() : Module("Holder") { w = register_parameter("w", tg::tensor({0.5, -1.0})); }
};

// Everything a step may change: the parameters' values, and the optimizer's state (step counts,
// buffers) by name.
std::vector<std::pair<std::string, std::vector<double>>> everything(const nn::Optimizer& opt) {
    std::vector<std::pair<std::string, std::vector<double>>> out;
    for (std::size_t i = 0; i < opt.params().size(); ++i) out.emplace_back("param", opt.params()[i].to_vector<double>());
    for (const auto& [name, t] : opt.state_dict()) out.emplace_back(name + " " + tg::describe(t), t.to_vector<double>());
    return out;
}

// The per-parameter entries of the optimizer's state_dict ("state.<i>.<slot>", step counts included).
std::vector<std::string> state_keys(const nn::Optimizer& opt) {
    std::vector<std::string> keys;
    for (const auto& [name, t] : opt.state_dict())
        if (name.rfind("state.", 0) == 0) keys.push_back(name);
    return keys;
}

void set_unit_grads(const std::vector<Tensor>& params) {
    for (Tensor p : params) p.set_grad(tg::ones(p.shape(), {.dtype = p.dtype()}));
}
}  // namespace

TEST_CASE("a step that fails at the third parameter's gradient changes nothing, step counts included") {
    for (const auto& [name, make] : every_optimizer()) {
        CAPTURE(name);
        Tensor a = tg::tensor({1.0, 2.0}, {.requires_grad = true}), b = tg::tensor({3.0}, {.requires_grad = true});
        Holder h;
        auto opt = make({a, b, h.w});
        set_unit_grads(opt->params());
        opt->step();
        // A graph recorded in float32, then the third parameter converted: its gradient comes back
        // float32 for a float64 parameter.
        const Tensor loss = (a * a).sum() + b.sum() + h.w.sum();
        opt->zero_grad();
        h.to(tg::kFloat64);
        loss.backward();
        REQUIRE(h.w.grad().dtype() == tg::kFloat32);
        const auto before = everything(*opt);
        const std::string error = error_of([&] { opt->step(); });
        CHECK(error == name + ".step: parameter 2 [2] float64 has a gradient [2] float32 (was the parameter converted "
                              "with .to() between the forward pass and step()?); compute the gradient again after "
                              "converting: zero_grad(), forward, backward; nothing was updated");
        CHECK(everything(*opt) == before);
    }
}

TEST_CASE("after Module::to, a step names the optimizer, the parameter and the remedy, and load_state_dict converts the state") {
    for (const auto& [name, make] : every_optimizer()) {
        CAPTURE(name);
        Tensor a = tg::tensor({1.0, 2.0}, {.requires_grad = true});
        Holder h;
        auto opt = make({a, h.w});
        set_unit_grads(opt->params());
        opt->step();
        const bool has_state = state_keys(*opt).size() > 2;  // two step counts, or more
        h.to(tg::kFloat64);
        set_unit_grads(opt->params());
        if (!has_state) {
            // Plain SGD keeps no state: as in PyTorch, it steps the converted parameter.
            opt->step();
            CHECK(h.w.to_vector<double>() == std::vector<double>{double(0.4f) - 0.1, double(-1.1f) - 0.1});
            continue;
        }
        const auto before = everything(*opt);
        const std::string error = error_of([&] { opt->step(); });
        const std::map<std::string, std::string> first_slot = {
            {"SGD", "momentum_buffer"}, {"Adam", "exp_avg"}, {"AdamW", "exp_avg"}, {"RMSprop", "square_avg"}, {"Adagrad", "sum"}};
        const std::string slot = first_slot.at(name);
        CHECK(contains(error, name + ".step: parameter 1 [2] float64 has " + slot + " state [2] float32"));
        CHECK(contains(error, "build the optimizer after .to(), or convert its state with load_state_dict(state_dict())"));
        CHECK(everything(*opt) == before);
        // The remedy the message gives: the state comes back in the parameter's dtype, and steps.
        opt->load_state_dict(opt->state_dict());
        for (const auto& [key, t] : opt->state_dict())
            if (key.rfind("state.1.", 0) == 0 && key != "state.1.step") CHECK(t.dtype() == tg::kFloat64);
        CHECK_NOTHROW(opt->step());
        CHECK(h.w.to_vector<double>() != std::vector<double>{0.5, -1.0});
    }
}

TEST_CASE("hyper-parameters that are not finite are refused, also when set after construction") {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    Tensor p = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    CHECK(error_of([&] { nn::SGD({p}, {.lr = inf}); }) == "SGD: invalid learning rate: inf");
    CHECK(error_of([&] { nn::SGD({p}, {.lr = 0.1, .momentum = inf}); }) == "SGD: invalid momentum: inf");
    CHECK(error_of([&] { nn::Adam({p}, {.eps = inf}); }) == "Adam: invalid epsilon value: inf");
    CHECK(error_of([&] { nn::AdamW({p}, {.weight_decay = inf}); }) == "AdamW: invalid weight_decay value: inf");
    nn::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
    CHECK(error_of([&] { sgd.set_lr(inf); }) == "SGD: invalid learning rate: inf");
    CHECK(contains(error_of([&] { sgd.set_lr(nan); }), "SGD: invalid learning rate: "));
    CHECK(sgd.lr() == 0.1);
    // Options are public: a step checks them again before changing anything.
    p.set_grad(tg::ones({2}));
    sgd.options().momentum = -0.5;
    CHECK(error_of([&] { sgd.step(); }) == "SGD: invalid momentum: -0.5");
    sgd.options().momentum = 0.9;
    sgd.options().nesterov = true;
    sgd.options().dampening = 0.1;
    CHECK(contains(error_of([&] { sgd.step(); }), "nesterov"));
    nn::Adam adam({p}, {.lr = 0.1});
    adam.options().beta1 = 1.0;
    CHECK(error_of([&] { adam.step(); }) == "Adam: invalid beta parameter at index 0: 1");
    CHECK(p.to_vector<double>() == std::vector<double>{1.0, 2.0});
    CHECK(state_keys(sgd).empty());
    CHECK(state_keys(adam).empty());
    // A state whose learning rate is not finite.
    nn::NamedTensors state = {{"param_groups.0.lr", tg::scalar_tensor(inf, {.dtype = tg::kFloat64})}};
    CHECK(error_of([&] { adam.load_state_dict(state); }) ==
          "Adam.load_state_dict: 'param_groups.0.lr' is inf; a learning rate is finite and >= 0");
    CHECK(adam.lr() == 0.1);
}

TEST_CASE("load_state_dict with an undefined or repeated entry names it, its parameter and what to do") {
    Tensor a = tg::tensor({1.0, 2.0}, {.requires_grad = true}), b = tg::tensor({3.0, 4.0, 5.0}, {.requires_grad = true});
    nn::Adam adam({a, b}, {.lr = 0.1});
    set_unit_grads({a, b});
    adam.step();
    const auto before = everything(adam);
    auto with = [&](const std::string& key, const Tensor& value) {
        nn::NamedTensors dict = adam.state_dict();
        for (auto& [k, t] : dict)
            if (k == key) t = value;
        return dict;
    };
    CHECK(error_of([&] { adam.load_state_dict(with("state.1.exp_avg", Tensor())); }) ==
          "Adam.load_state_dict: entry 'state.1.exp_avg' (state of parameter 1 [3] float32) is an undefined tensor; "
          "pass the dictionary state_dict() returned, where every entry holds a tensor");
    CHECK(error_of([&] { adam.load_state_dict(with("param_groups.0.lr", Tensor())); }) ==
          "Adam.load_state_dict: entry 'param_groups.0.lr' is an undefined tensor; pass the dictionary state_dict() "
          "returned, where every entry holds a tensor");
    CHECK(error_of([&] { adam.load_state_dict(with("state.0.step", Tensor())); }) ==
          "Adam.load_state_dict: entry 'state.0.step' (state of parameter 0 [2] float32) is an undefined tensor; "
          "pass the dictionary state_dict() returned, where every entry holds a tensor");
    nn::NamedTensors twice = adam.state_dict();
    twice.push_back(twice.back());
    CHECK(contains(error_of([&] { adam.load_state_dict(twice); }), "Adam.load_state_dict: the dictionary has '" +
                                                                      twice.back().first + "' twice"));
    CHECK(everything(adam) == before);

    struct One : nn::Module {
        One() : Module("One") { register_parameter("w", tg::zeros({2})); }
    } module;
    CHECK(error_of([&] { module.load_state_dict({{"w", Tensor()}}); }) ==
          "load_state_dict: 'w' is an undefined tensor in the dictionary; give it a value [2], as state_dict() does, "
          "or leave it out with strict=false");
}

TEST_CASE("a scheduler whose learning rate overflows is refused and keeps its epoch") {
    Tensor p = tg::zeros({1}, {.requires_grad = true});
    nn::SGD opt({p}, {.lr = 0.1});
    nn::StepLR grow(opt, 1, 10.0);
    grow.set_epoch(3);
    CHECK(error_of([&] { grow.set_epoch(400); }) == "SGD: invalid learning rate: inf");
    CHECK(grow.last_epoch() == 3);
    CHECK(opt.lr() == doctest::Approx(100.0));
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(contains(error_of([&] { nn::StepLR(opt, 1, inf); }), "StepLR: gamma must be finite"));
    CHECK(contains(error_of([&] { nn::CosineAnnealingLR(opt, 5, inf); }), "CosineAnnealingLR: eta_min must be finite"));
}
