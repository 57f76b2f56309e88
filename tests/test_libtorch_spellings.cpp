// libtorch's spellings, so that a libtorch program ports by renaming torch:: to tg::: Tensor's
// comparison, logical, norm and in-place members, factory options (tg::kDouble,
// tg::requires_grad(), tg::dtype(...).requires_grad(true), bare sizes), tg::autograd, tg::optim
// with chained options, scheduler state dicts, bool attention masks and max/min of bool tensors (set_printoptions:
// tests/test_printoptions.cpp). Values from PyTorch 1.13: tests/libtorch_spellings_reference.py writes
// tests/libtorch_spellings_reference.txt.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "tests/reference_values.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

const tg::testing::ReferenceValues& ref() {
    static const tg::testing::ReferenceValues values("tests/libtorch_spellings_reference.txt");
    return values;
}

Tensor f64(std::initializer_list<double> v, bool requires_grad = false) {
    return tg::tensor(v, tg::dtype(tg::kDouble).requires_grad(requires_grad));
}
Tensor f64(std::initializer_list<std::initializer_list<double>> rows, bool requires_grad = false) {
    return tg::tensor(rows, tg::dtype(tg::kDouble).requires_grad(requires_grad));
}

// 1, 2, ... in t's shape: weights that make every element's gradient distinct.
Tensor ramp(const Tensor& t) { return (tg::arange(t.numel(), tg::kDouble) + 1.0).reshape(t.shape()); }

const Tensor& entry(const tg::nn::NamedTensors& dict, const std::string& name) {
    for (const auto& [key, value] : dict)
        if (key == name) return value;
    FAIL("no entry " << name);
    static const Tensor none;
    return none;
}

}  // namespace

TEST_CASE("libtorch spellings: x.eq/ne/lt/le/gt/ge, all, any and norm members give PyTorch's values") {
    const double nan = std::nan("");
    const Tensor x = tg::tensor({{1.0, nan, 3.0}, {2.0, 2.0, -1.0}});
    const Tensor y = tg::tensor({{1.0, nan, 2.0}, {3.0, 2.0, -1.0}});
    const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> ops = {
        {"eq", [&](const Tensor& a) { return a.eq(y); }}, {"ne", [&](const Tensor& a) { return a.ne(y); }},
        {"lt", [&](const Tensor& a) { return a.lt(y); }}, {"le", [&](const Tensor& a) { return a.le(y); }},
        {"gt", [&](const Tensor& a) { return a.gt(y); }}, {"ge", [&](const Tensor& a) { return a.ge(y); }}};
    for (const auto& [name, op] : ops) {
        const Tensor result = op(x);
        CHECK(result.dtype() == tg::kBool);
        ref().check(result, "compare." + name);
    }
    ref().check(x.eq(2.0), "compare.eq_scalar");
    ref().check(x.ne(2.0), "compare.ne_scalar");
    ref().check(x.lt(2.0), "compare.lt_scalar");
    ref().check(x.le(2.0), "compare.le_scalar");
    ref().check(x.gt(2.0), "compare.gt_scalar");
    ref().check(x.ge(2.0), "compare.ge_scalar");

    const Tensor z = tg::tensor({{1.0, 0.0, 2.0}, {3.0, 4.0, 5.0}});
    ref().check(z.all(), "logical.all");
    ref().check(z.any(), "logical.any");
    ref().check(z.all(1), "logical.all_1");
    ref().check(z.any(0, true), "logical.any_0_keepdim");
    CHECK(z.eq(z.detach()).all().item<bool>());  // the autograd tour's x.eq(y).all().item<bool>()

    const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> norms = {
        {"norm.all", [](const Tensor& a) { return a.norm(); }},
        {"norm.dim1", [](const Tensor& a) { return a.norm(2, 1); }},
        {"norm.p1_keepdim", [](const Tensor& a) { return a.norm(1, {0, 1}, true); }}};
    for (const auto& [name, norm] : norms) {
        const Tensor a = f64({{3.0, 4.0, 0.0}, {1.0, -2.0, 2.0}}, true);
        const Tensor n = norm(a);
        (n * ramp(n)).sum().backward();
        ref().check(n, name + ".value");
        ref().check(a.grad(), name + ".grad");
    }
}

TEST_CASE("libtorch spellings: the in-place twins give PyTorch's values and gradients, and count as one write") {
    const std::vector<std::pair<std::string, std::function<void(Tensor&)>>> cases = {
        {"exp_", [](Tensor& y) { y.exp_(); }},          {"log_", [](Tensor& y) { y.log_(); }},
        {"sqrt_", [](Tensor& y) { y.sqrt_(); }},        {"abs_", [](Tensor& y) { y.abs_(); }},
        {"neg_", [](Tensor& y) { y.neg_(); }},          {"sigmoid_", [](Tensor& y) { y.sigmoid_(); }},
        {"tanh_", [](Tensor& y) { y.tanh_(); }},        {"pow_", [](Tensor& y) { y.pow_(2.5); }},
        {"clamp_", [](Tensor& y) { y.clamp_(0.5, 2.0); }}, {"clamp_min_", [](Tensor& y) { y.clamp_min_(1.0); }},
        {"clamp_max_", [](Tensor& y) { y.clamp_max_(1.0); }}};
    for (const auto& [name, op] : cases) {
        INFO(name);
        const bool positive = name == "log_" || name == "sqrt_" || name == "pow_";
        const Tensor a = positive ? f64({0.25, 0.75, 1.5}, true) : f64({-1.25, 0.5, 1.5}, true);
        Tensor y = a * 1.5;
        const uint64_t before = y.version();
        op(y);
        (y * f64({1.0, -2.0, 3.0})).sum().backward();
        ref().check(y, "inplace." + name + ".value");
        ref().check(a.grad(), "inplace." + name + ".grad");
        ref().check(tg::scalar_tensor(static_cast<double>(y.version() - before)), "inplace." + name + ".version");
    }
    // Without history they write the elements and nothing is recorded.
    Tensor plain = f64({1.0, 4.0});
    CHECK(&plain.sqrt_() == &plain);
    CHECK(plain.to_vector<double>() == std::vector<double>{1.0, 2.0});
    CHECK_FALSE(plain.requires_grad());
}

TEST_CASE("libtorch spellings: in-place twins are refused where PyTorch refuses them, before writing") {
    Tensor leaf = f64({1.0, 2.0}, true);
    CHECK_THROWS_WITH_AS(leaf.exp_(), doctest::Contains("exp_: a leaf tensor that requires grad"), std::invalid_argument);
    CHECK_THROWS_AS(leaf.clamp_(0.0, 1.0), std::invalid_argument);
    CHECK(leaf.to_vector<double>() == std::vector<double>{1.0, 2.0});
    {
        tg::NoGradGuard no_grad;  // as an initialiser writes a parameter
        leaf.neg_();
    }
    CHECK(leaf.to_vector<double>() == std::vector<double>{-1.0, -2.0});
    // exp of an int64 tensor is float32, which cannot be written back into it (PyTorch: "result type Float can't be cast")
    Tensor ints = tg::arange(3, tg::kLong);
    CHECK_THROWS_WITH_AS(ints.exp_(), doctest::Contains("exp_: exp(x) of the [3] int64 tensor is float32"), std::invalid_argument);
    CHECK(ints.version() == 0);
    ints.abs_();  // abs keeps int64
    CHECK(ints.version() == 1);
}

TEST_CASE("libtorch spellings: uniform_ and normal_ without a generator draw from the default one") {
    tg::manual_seed(7);
    Tensor u = tg::empty({64}).uniform_(0.8, 1.0);
    tg::manual_seed(7);
    CHECK(tg::max_abs_diff(u, tg::uniform({64}, 0.8, 1.0)) == 0);
    CHECK(u.min().item() >= 0.8);
    CHECK(u.max().item() < 1.0);
    tg::manual_seed(7);
    Tensor n = tg::empty({64}, tg::kDouble).normal_(2.0, 0.5);
    tg::manual_seed(7);
    CHECK(tg::max_abs_diff(n, tg::randn({64}, tg::kDouble) * 0.5 + 2.0) == 0);
    tg::manual_seed(7);
    Tensor standard = tg::empty({8}).uniform_();  // libtorch's defaults: U[0, 1)
    tg::manual_seed(7);
    CHECK(tg::max_abs_diff(standard, tg::rand({8})) == 0);
}

TEST_CASE("libtorch spellings: dtype constants, tg::requires_grad(), tg::dtype(...) and bare sizes in the factories") {
    CHECK(tg::kFloat == tg::kFloat32);
    CHECK(tg::kDouble == tg::kFloat64);
    CHECK(tg::kLong == tg::kInt64);
    CHECK(tg::kInt == tg::kInt32);
    CHECK(tg::zeros({2, 3}, tg::kFloat64).dtype() == tg::kFloat64);
    CHECK(tg::full({2}, 7.0, tg::kInt).to_vector<int32_t>() == std::vector<int32_t>{7, 7});
    const Tensor o = tg::ones({2, 2}, tg::requires_grad());
    CHECK(o.requires_grad());
    CHECK(o.is_leaf());
    CHECK(o.dtype() == tg::kFloat32);
    const Tensor r = tg::randn({2, 3}, tg::dtype(tg::kDouble).requires_grad(true));
    CHECK(r.dtype() == tg::kFloat64);
    CHECK(r.requires_grad());
    const tg::TensorOptionsChain chain = tg::dtype(tg::kInt64);
    CHECK(chain.dtype() == tg::kInt64);
    CHECK_FALSE(chain.requires_grad());
    CHECK(tg::tensor({0.1, 1.0, 0.0001}, tg::kFloat).dtype() == tg::kFloat32);
    CHECK(tg::tensor({{1.0, 2.0}, {3.0, 4.0}}, tg::kDouble).dtype() == tg::kFloat64);
    // A bare size is a one-dimensional shape; braced lists stay shapes ({} is 0-d).
    CHECK(tg::zeros(3).shape() == tg::Shape{3});
    CHECK(tg::empty(int64_t{4}, tg::kDouble).dtype() == tg::kFloat64);
    CHECK(tg::randn(3, tg::requires_grad()).requires_grad());
    CHECK(tg::ones(2, {.dtype = tg::kInt64}).dtype() == tg::kInt64);
    CHECK(tg::zeros({}).dim() == 0);
    CHECK(tg::zeros({}, tg::kFloat64).dim() == 0);
    tg::Generator gen(3);
    tg::Generator same(3);
    CHECK(tg::max_abs_diff(tg::randn(5, gen), tg::randn({5}, same)) == 0);
    // requires_grad_() chains, as in libtorch
    const Tensor chained = tg::randn({3, 4}).requires_grad_(true);
    CHECK(chained.requires_grad());
}

TEST_CASE("libtorch spellings: randint and randperm draw int64 from the default or a given generator") {
    tg::manual_seed(3);
    const Tensor a = tg::randint(-5, 5, {1000});
    CHECK(a.dtype() == tg::kInt64);
    CHECK(a.shape() == tg::Shape{1000});
    std::set<int64_t> seen;
    for (int64_t v : a.to_vector<int64_t>()) {
        CHECK(v >= -5);
        CHECK(v < 5);
        seen.insert(v);
    }
    CHECK(seen.size() == 10);  // every value in [-5, 5) drawn
    tg::manual_seed(3);
    CHECK(tg::randint(-5, 5, {1000}).to_vector<int64_t>() == a.to_vector<int64_t>());
    tg::Generator gen(7), same(7);
    CHECK(tg::randint(10, {50}, gen).to_vector<int64_t>() == tg::randint(0, 10, {50}, same).to_vector<int64_t>());
    const Tensor f = tg::randint(0, 3, {4, 5}, tg::kFloat32);
    CHECK(f.dtype() == tg::kFloat32);
    for (double v : f.to_vector<double>()) CHECK((v == 0 || v == 1 || v == 2));
    for (int64_t v : tg::randint(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), {100}).to_vector<int64_t>())
        CHECK(v < std::numeric_limits<int64_t>::max());
    CHECK_THROWS_WITH(tg::randint(5, 5, {2}), doctest::Contains("randint: low (5) must be less than high (5)"));

    std::vector<int64_t> p = tg::randperm(10).to_vector<int64_t>();
    CHECK(tg::randperm(10).dtype() == tg::kInt64);
    std::sort(p.begin(), p.end());
    CHECK(p == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    tg::Generator g1(11), g2(11);
    CHECK(tg::randperm(100, g1).to_vector<int64_t>() == tg::randperm(100, g2).to_vector<int64_t>());
    g2.manual_seed(12);
    CHECK(tg::randperm(100, g1).to_vector<int64_t>() != tg::randperm(100, g2).to_vector<int64_t>());
    CHECK(tg::randperm(0).numel() == 0);
    CHECK_THROWS_WITH(tg::randperm(-1), doctest::Contains("randperm: n must not be negative"));
}

TEST_CASE("libtorch spellings: max_pool2d and nll_loss take libtorch's positional arguments") {
    tg::Generator gen(4);
    const Tensor x = tg::randn({2, 3, 7, 7}, gen);
    CHECK(tg::max_abs_diff(tg::max_pool2d(x, 2), tg::max_pool2d(x, {.kernel_size = 2})) == 0);
    CHECK(tg::max_abs_diff(tg::max_pool2d(x, 3, 2, 1, 1, true),
                           tg::max_pool2d(x, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true})) == 0);
    const Tensor log_probs = tg::log_softmax(tg::randn({4, 5}, gen), 1);
    const Tensor targets = tg::from_vector(std::vector<int64_t>{0, 3, 1, 3}, {4});
    const Tensor weight = tg::tensor({1.0, 2.0, 0.5, 1.5, 1.0});
    CHECK(tg::max_abs_diff(tg::nll_loss(log_probs, targets, /*weight=*/{}, tg::Reduction::Sum),
                           tg::nll_loss(log_probs, targets, {.reduction = tg::Reduction::Sum})) == 0);
    CHECK(tg::max_abs_diff(tg::nll_loss(log_probs, targets, weight, tg::Reduction::Mean, 3),
                           tg::nll_loss(log_probs, targets, {.weight = weight, .ignore_index = 3})) == 0);
}

TEST_CASE("libtorch spellings: tg::autograd::grad and tg::autograd::backward in libtorch's argument order") {
    const Tensor w = f64({{0.5, -1.0, 0.25, 2.0}, {1.5, 0.5, -0.5, 1.0}, {-0.75, 0.25, 1.0, 0.5}}, true);
    const Tensor b = f64({0.1, -0.2, 0.3}, true);
    const Tensor x = f64({{1.0, 2.0, -1.0, 0.5}, {0.0, -1.5, 2.0, 1.0}, {0.5, 0.5, 0.5, -2.0}}, true);
    const Tensor target = f64({{0.0, 1.0, -1.0}, {2.0, 0.5, 0.0}, {1.0, -1.0, 0.5}});
    const Tensor output = tg::linear(x, w, b);
    const Tensor loss = tg::mse_loss(output, target);
    const Tensor gradient =
        tg::autograd::grad({output}, {x}, {tg::ones_like(output)}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    const Tensor penalty = tg::pow(gradient.norm(2, 1) - 1, 2).mean();
    (loss + penalty).backward();
    ref().check(penalty, "autograd.penalty");
    ref().check(x.grad(), "autograd.x_grad");
    ref().check(w.grad(), "autograd.w_grad");

    const Tensor a = f64({1.0, 2.0, 3.0}, true);
    tg::autograd::backward({a * a, a.sum() * 2.0}, {f64({1.0, 0.5, -1.0}), tg::scalar_tensor(3.0, tg::kDouble)});
    ref().check(a.grad(), "autograd.backward_grad");
}

namespace {

Tensor start_point() { return f64({1.0, -2.0, 0.5}, true); }

// Three steps on sum(scale * (p - target)^2); the lr after each scheduler step.
std::vector<double> descend(tg::optim::Optimizer& opt, const Tensor& p, tg::optim::LRScheduler* scheduler = nullptr) {
    std::vector<double> lrs;
    for (int i = 0; i < 3; ++i) {
        opt.zero_grad();
        ((p - f64({0.5, -1.0, 2.0})).pow(2) * f64({1.0, 2.0, 0.5})).sum().backward();
        opt.step();
        if (scheduler) {
            scheduler->step();
            lrs.push_back(opt.lr());
        }
    }
    return lrs;
}

}  // namespace

TEST_CASE("libtorch spellings: tg::optim's optimizers with chained options follow torch.optim") {
    {
        const Tensor p = start_point();
        tg::optim::SGD opt({p}, 0.1);
        descend(opt, p);
        ref().check(p, "optim.sgd.params");
    }
    {
        const Tensor p = start_point();
        tg::optim::SGD opt({p}, tg::optim::SGDOptions(0.1).momentum(0.9).nesterov(true));
        CHECK(opt.options().nesterov);
        descend(opt, p);
        ref().check(p, "optim.sgd_nesterov.params");
    }
    {
        const Tensor p = start_point();
        tg::optim::Adam opt({p}, tg::optim::AdamOptions(0.1).betas({0.5, 0.9}).weight_decay(0.01));
        tg::optim::StepLR scheduler(opt, 1, 0.5);
        const std::vector<double> lrs = descend(opt, p, &scheduler);
        ref().check(p, "optim.adam_steplr.params");
        ref().check(tg::from_vector(lrs, {3}, tg::dtype(tg::kDouble)), "optim.adam_steplr.lrs");
    }
    {
        const Tensor p = start_point();
        const tg::optim::AdamWOptions options = tg::optim::AdamWOptions(0.05).betas(std::make_tuple(0.8, 0.99)).amsgrad(true);
        CHECK(options.weight_decay() == 1e-2);  // AdamW's default, as libtorch's
        tg::optim::AdamW opt({p}, options);
        descend(opt, p);
        ref().check(p, "optim.adamw.params");
    }
    {
        const Tensor p = start_point();
        tg::optim::RMSprop opt({p}, tg::optim::RMSpropOptions(0.01).alpha(0.9).momentum(0.5).centered(true));
        descend(opt, p);
        ref().check(p, "optim.rmsprop.params");
    }
    {
        const Tensor p = start_point();
        tg::optim::Adagrad opt({p}, tg::optim::AdagradOptions(0.1).lr_decay(0.01));
        descend(opt, p);
        ref().check(p, "optim.adagrad.params");
    }
    // The chained options are the aggregate's: the same optimizer either way.
    const tg::nn::LBFGSOptions lbfgs = tg::optim::LBFGSOptions(0.5).history_size(7).line_search_fn("strong_wolfe");
    CHECK(lbfgs.lr == 0.5);
    CHECK(lbfgs.history_size == 7);
    CHECK(lbfgs.line_search_fn == std::optional<std::string>("strong_wolfe"));
    CHECK_THROWS_WITH_AS(tg::optim::SGD({start_point()}, -1.0), doctest::Contains("invalid learning rate"), std::invalid_argument);
}

TEST_CASE("libtorch spellings: a scheduler's state_dict resumes its schedule as PyTorch's does") {
    const Tensor p = tg::zeros({1}, tg::requires_grad());
    tg::optim::SGD opt({p}, 0.1);
    tg::optim::StepLR scheduler(opt, 2, 0.5);
    for (int i = 0; i < 3; ++i) {
        opt.step();
        scheduler.step();
    }
    const tg::nn::NamedTensors saved = scheduler.state_dict();
    ref().check(entry(saved, "last_epoch"), "sched.step.last_epoch");
    ref().check(entry(saved, "base_lrs"), "sched.step.base_lrs");
    ref().check(entry(saved, "_last_lr"), "sched.step._last_lr");

    const Tensor p2 = tg::zeros({1}, tg::requires_grad());
    tg::optim::SGD opt2({p2}, 0.1);
    tg::optim::StepLR resumed(opt2, 2, 0.5);
    opt2.load_state_dict(opt.state_dict());
    resumed.load_state_dict(saved);
    std::vector<double> lrs;
    for (int i = 0; i < 3; ++i) {
        opt2.step();
        resumed.step();
        lrs.push_back(opt2.lr());
    }
    ref().check(tg::from_vector(lrs, {3}, tg::dtype(tg::kDouble)), "sched.step.resumed_lrs");

    // A dictionary for another number of groups, or without an entry, is refused and changes nothing.
    tg::nn::NamedTensors wrong = saved;
    for (auto& [name, value] : wrong)
        if (name == "base_lrs") value = f64({0.1, 0.2});
    CHECK_THROWS_WITH_AS(resumed.load_state_dict(wrong), doctest::Contains("'base_lrs' must hold one lr per param group (1)"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(resumed.load_state_dict({}), doctest::Contains("has no 'last_epoch'"), std::invalid_argument);
    CHECK(resumed.last_epoch() == 6);

    const Tensor q = tg::zeros({1}, tg::requires_grad());
    tg::optim::SGD plateau_opt({q}, 0.1);
    tg::optim::ReduceLROnPlateauScheduler plateau(plateau_opt, {.factor = 0.5, .patience = 1});
    for (double metric : {1.0, 0.9, 0.95, 0.96}) plateau.step(metric);
    const tg::nn::NamedTensors state = plateau.state_dict();
    for (const char* name : {"best", "num_bad_epochs", "cooldown_counter", "last_epoch"})
        ref().check(entry(state, name), std::string("sched.plateau.") + name);
    const Tensor q2 = tg::zeros({1}, tg::requires_grad());
    tg::optim::SGD plateau_opt2({q2}, 0.1);
    tg::optim::ReduceLROnPlateauScheduler plateau2(plateau_opt2, {.factor = 0.5, .patience = 1});
    plateau_opt2.load_state_dict(plateau_opt.state_dict());
    plateau2.load_state_dict(state);
    std::vector<double> plateau_lrs;
    for (double metric : {0.97, 0.98, 0.5, 0.6, 0.7}) {
        plateau2.step(metric);
        plateau_lrs.push_back(plateau_opt2.lr());
    }
    ref().check(tg::from_vector(plateau_lrs, {5}, tg::dtype(tg::kDouble)), "sched.plateau.resumed_lrs");
}

TEST_CASE("libtorch spellings: MultiheadAttention and scaled_dot_product_attention take bool masks as PyTorch") {
    tg::nn::MultiheadAttention mha(4, 2);
    mha.to(tg::kDouble);
    {
        tg::NoGradGuard no_grad;
        mha.in_proj_weight.copy_(ref().tensor("mha.in_proj_weight"));
        mha.in_proj_bias.copy_(ref().tensor("mha.in_proj_bias"));
        mha.out_proj->weight.copy_(ref().tensor("mha.out_proj.weight"));
        mha.out_proj->bias.copy_(ref().tensor("mha.out_proj.bias"));
    }
    const Tensor q = ref().tensor("mha.q").requires_grad_();
    const Tensor key_padding_mask = tg::tensor({{0, 0, 1}, {0, 1, 0}}).gt(0.5);  // true: the key is padding
    const Tensor attn_mask = tg::tensor({{0, 1, 0}, {0, 0, 0}, {1, 0, 0}}).gt(0.5);  // true: may not attend
    auto [out, weights] = mha.forward(q, ref().tensor("mha.k"), ref().tensor("mha.v"), key_padding_mask, true, attn_mask);
    ((out * ((tg::arange(out.numel(), tg::kDouble) - 5.5) * 0.25).reshape(out.shape())).sum() + (weights * weights).sum()).backward();
    ref().check(out, "mha.out");
    ref().check(weights, "mha.weights");
    ref().check(q.grad(), "mha.q_grad");
    ref().check(mha.in_proj_weight.grad(), "mha.in_proj_weight_grad");

    // scaled_dot_product_attention's bool mask is true where a query may attend (PyTorch 2.0's rule).
    const Tensor sq = ref().tensor("sdpa.q").requires_grad_();
    const Tensor mask = tg::tensor({{1, 0, 1, 1, 0}, {0, 1, 1, 0, 0}, {1, 1, 1, 1, 1}}).gt(0.5);
    const Tensor y = tg::scaled_dot_product_attention(sq, ref().tensor("sdpa.k"), ref().tensor("sdpa.v"), mask);
    (y * y).sum().backward();
    ref().check(y, "sdpa.out");
    ref().check(sq.grad(), "sdpa.q_grad");
}

TEST_CASE("libtorch spellings: max and min of a bool tensor, as PyTorch") {
    const Tensor m = tg::tensor({{1, 0, 1}, {0, 0, 0}}).gt(0.5);
    CHECK(m.max().dtype() == tg::kBool);
    ref().check(m.max(), "bool.max");
    ref().check(m.min(), "bool.min");
    auto [max_values, max_indices] = m.max(1);
    CHECK(max_values.dtype() == tg::kBool);
    ref().check(max_values, "bool.max1.values");
    ref().check(max_indices, "bool.max1.indices");
    auto [min_values, min_indices] = m.min(1);
    ref().check(min_values, "bool.min1.values");
    ref().check(min_indices, "bool.min1.indices");
}
