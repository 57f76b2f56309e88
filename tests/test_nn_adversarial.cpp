// nn off the beaten path, by class: parameters in any layout, all-or-nothing loading, shared
// submodules, defaults that must match PyTorch's, dropout streams, the loader's normalisation and
// shape arithmetic, frozen parameters and non-contiguous inputs to layers.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>

#include "engine/tensor_math.hpp"
#include "tapegrad.hpp"
#include "tests/error_text.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

using tapegrad::testing::contains;
using tapegrad::testing::error_of;

// Bit-identical values, element by element in logical order.
bool same_values(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

// Equal up to rounding: the same update may run in a vectorised loop for one layout and in its
// scalar tail for another. A wrong element is off by the size of the values.
bool same_up_to_rounding(const Tensor& a, const Tensor& b) {
    const double rtol = a.dtype() == tg::kFloat64 ? 1e-13 : 1e-6;
    return tg::allclose(a, b, rtol, rtol);
}

using MakeOptimizer = std::function<std::unique_ptr<nn::Optimizer>(std::vector<Tensor>)>;

const std::vector<std::pair<const char*, MakeOptimizer>>& optimizers() {
    static const std::vector<std::pair<const char*, MakeOptimizer>> all = {
        {"SGD", [](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1, .weight_decay = 0.01}); }},
        {"SGD momentum", [](auto ps) {
             return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1});
         }},
        {"SGD nesterov", [](auto ps) {
             return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
         }},
        {"Adam", [](auto ps) { return std::make_unique<nn::Adam>(ps, nn::AdamOptions{.lr = 0.01, .weight_decay = 0.1}); }},
        {"AdamW", [](auto ps) { return std::make_unique<nn::AdamW>(ps, nn::AdamWOptions{.lr = 0.01}); }},
    };
    return all;
}

// Three steps on `param` (any layout) and on a contiguous copy, with the same logical gradients
// handed over in `grad_layout`; both must end with the same values and the same optimizer state.
void check_same_update_as_contiguous(Tensor param, const std::function<Tensor(const Tensor&)>& grad_layout) {
    for (const auto& [name, make] : optimizers()) {
        CAPTURE(name);
        tg::Generator gen(11);
        {
            tg::NoGradGuard no_grad;
            param.detach().copy_(tg::randn(param.shape(), gen, {.dtype = param.dtype()}));
        }
        Tensor copy = param.detach().contiguous().clone().requires_grad_();
        REQUIRE(copy.is_contiguous());
        auto opt = make({param});
        auto opt_copy = make({copy});
        for (int step = 0; step < 3; ++step) {
            const Tensor g = tg::randn(param.shape(), gen, {.dtype = param.dtype()});
            param.set_grad(grad_layout(g));
            copy.set_grad(g);
            opt->step();
            opt_copy->step();
        }
        CHECK(same_up_to_rounding(param, copy));
        const auto state = opt->state_dict(), state_copy = opt_copy->state_dict();
        REQUIRE(state.size() == state_copy.size());
        for (std::size_t k = 0; k < state.size(); ++k) {
            CAPTURE(state[k].first);
            CHECK(same_up_to_rounding(state[k].second, state_copy[k].second));
        }
    }
}

Tensor row_major(const Tensor& g) { return g.contiguous(); }

}  // namespace

// ---------------------------------------------------------------- parameters in any layout

TEST_CASE("every optimizer updates a transposed parameter at the right elements") {
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        const Tensor param = tg::zeros({4, 3}, {.dtype = dtype}).transpose(0, 1).requires_grad_();
        REQUIRE_FALSE(param.is_contiguous());
        check_same_update_as_contiguous(param, row_major);
        // A gradient that arrives in yet another layout (its own transpose's view).
        check_same_update_as_contiguous(param, [](const Tensor& g) { return g.transpose(0, 1).contiguous().transpose(0, 1); });
    }
}

TEST_CASE("every optimizer updates a channels-last parameter like its row-major copy") {
    const Tensor param = tg::zeros({2, 3, 2, 2}).contiguous(tg::MemoryFormat::ChannelsLast).requires_grad_();
    REQUIRE(param.suggest_memory_format() == tg::MemoryFormat::ChannelsLast);
    check_same_update_as_contiguous(param, row_major);
    check_same_update_as_contiguous(param, [](const Tensor& g) { return g.contiguous(tg::MemoryFormat::ChannelsLast); });
}

TEST_CASE("every optimizer updates a non-dense parameter (every other column of a matrix)") {
    const Tensor base = tg::zeros({4, 6});
    const Tensor param = tg::as_strided(base, {4, 3}, {6, 2}).requires_grad_();
    REQUIRE_FALSE(tg::is_dense(param));
    check_same_update_as_contiguous(param, row_major);
    // The columns in between are not touched.
    for (int64_t r = 0; r < 4; ++r)
        for (int64_t c = 1; c < 6; c += 2) CHECK(base.at({r, c}) == 0.0);
}

TEST_CASE("SGD on a transposed parameter: p[i][j] -= lr * g[i][j], by hand") {
    // p is [[1,2],[3,4]] stored transposed; g = [[10,20],[30,40]] row-major; lr 0.01.
    Tensor p = tg::tensor({{1.0, 3.0}, {2.0, 4.0}}, {.dtype = tg::kFloat64}).transpose(0, 1).requires_grad_();
    nn::SGD opt({p}, {.lr = 0.01});
    p.set_grad(tg::tensor({{10.0, 20.0}, {30.0, 40.0}}, {.dtype = tg::kFloat64}));
    opt.step();
    CHECK(p.at({0, 0}) == doctest::Approx(0.9));
    CHECK(p.at({0, 1}) == doctest::Approx(1.8));
    CHECK(p.at({1, 0}) == doctest::Approx(2.7));
    CHECK(p.at({1, 1}) == doctest::Approx(3.6));
}

TEST_CASE("optimizer.step() between two backward passes of a retained graph is refused") {
    for (const auto& [name, make] : optimizers()) {
        CAPTURE(name);
        Tensor w = tg::tensor({1.0, 2.0}, {.requires_grad = true});
        auto opt = make({w});
        Tensor loss = (w * w).sum();
        loss.backward(Tensor(), /*retain_graph=*/true);
        opt->step();
        CHECK(contains(error_of([&] { loss.backward(); }), "modified by an in-place operation"));
    }
}

TEST_CASE("an optimizer refuses a parameter whose elements share memory") {
    const Tensor expanded = tg::as_strided(tg::zeros({3}), {3, 3}, {0, 1}).requires_grad_();
    const std::string message = error_of([&] { nn::SGD({expanded}, {.lr = 0.1}); });
    CHECK(contains(message, "SGD: parameter 0"));
    CHECK(contains(message, "share memory"));
}

// ---------------------------------------------------------------- frozen parameters

TEST_CASE("a frozen parameter (requires_grad false) is accepted and left alone, as in torch.optim") {
    tg::Generator gen(2);
    auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(3, 4, gen), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(4, 2, gen)});
    auto first = std::dynamic_pointer_cast<nn::Linear>((*model)[0]);
    first->weight.requires_grad_(false);
    const Tensor frozen_before = first->weight.detach().clone();
    const Tensor bias_before = first->bias.detach().clone();
    nn::SGD opt(model->parameters(), {.lr = 0.1, .momentum = 0.9});
    nn::AdamW adamw(model->parameters(), {.lr = 0.01});
    const Tensor x = tg::randn({5, 3}, gen);
    for (int step = 0; step < 2; ++step) {
        opt.zero_grad();
        tg::mse_loss(model->forward(x), tg::zeros({5, 2})).backward();
        CHECK_FALSE(first->weight.grad().defined());
        opt.step();
        adamw.step();
    }
    CHECK(same_values(first->weight, frozen_before));
    CHECK_FALSE(same_values(first->bias, bias_before));
    // A tensor computed by an op is still refused.
    const Tensor computed = tg::ones({2}, {.requires_grad = true}) * 2.0;
    CHECK(contains(error_of([&] { nn::Adam({computed}); }), "leaf"));
}

// ---------------------------------------------------------------- defaults as in PyTorch

TEST_CASE("optimizer defaults are torch.optim's, also with designated initializers") {
    Tensor p = tg::ones({2}, {.requires_grad = true});
    nn::AdamW adamw({p}, {.lr = 3e-4});
    CHECK(adamw.lr() == 3e-4);
    CHECK(adamw.options().weight_decay == 1e-2);
    CHECK(adamw.options().beta1 == 0.9);
    CHECK(adamw.options().beta2 == 0.999);
    CHECK(adamw.options().eps == 1e-8);
    nn::Adam adam({p}, {.lr = 3e-4});
    CHECK(adam.options().weight_decay == 0.0);
    CHECK(adam.options().beta1 == 0.9);
    CHECK(adam.options().beta2 == 0.999);
    CHECK(adam.options().eps == 1e-8);
    nn::Adam adam_defaults({p});
    CHECK(adam_defaults.lr() == 1e-3);
    nn::SGD sgd({p}, {.lr = 0.1});
    CHECK(sgd.options().momentum == 0.0);
    CHECK(sgd.options().dampening == 0.0);
    CHECK(sgd.options().weight_decay == 0.0);
    CHECK_FALSE(sgd.options().nesterov);
    nn::StepLR step(sgd, 2);  // gamma 0.1
    step.step();
    step.step();
    CHECK(sgd.lr() == doctest::Approx(0.01));
    nn::CosineAnnealingLR cosine(sgd, 4);  // eta_min 0
    cosine.set_epoch(4);
    CHECK(sgd.lr() == doctest::Approx(0.0).epsilon(1e-12));
}

TEST_CASE("layer defaults are torch.nn's") {
    nn::BatchNorm2d bn(3);
    CHECK(bn.config.eps == 1e-5);
    CHECK(bn.config.momentum == 0.1);
    CHECK(bn.config.affine);
    CHECK(bn.config.track_running_stats);
    nn::Dropout drop;
    CHECK(drop.p == 0.5);
    nn::Flatten flat;
    CHECK(flat.start_dim == 1);
    CHECK(flat.end_dim == -1);
    tg::Generator gen(0);
    nn::Conv2d conv(2, 3, 3, gen);
    CHECK(conv.options.stride.h == 1);
    CHECK(conv.options.padding.h == 0);
    CHECK(conv.options.dilation.h == 1);
    CHECK(conv.options.groups == 1);
    CHECK(conv.bias.defined());
    nn::MaxPool2d pool({.kernel_size = 3});
    CHECK_FALSE(pool.options.stride.has_value());  // stride defaults to the kernel size
    CHECK(pool(tg::zeros({1, 1, 9, 9})).shape() == tg::Shape{1, 1, 3, 3});
}

// ---------------------------------------------------------------- shared submodules

TEST_CASE("a module used twice lists its parameters once; state_dict keeps both names; it trains") {
    tg::Generator gen(4);
    auto shared = std::make_shared<nn::Linear>(3, 3, gen);
    auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        shared, std::make_shared<nn::ReLU>(), shared, std::make_shared<nn::Linear>(3, 1, gen)});
    std::vector<std::string> names;
    for (const auto& [n, _] : model->named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"});
    CHECK(model->parameters().size() == 4);
    std::vector<std::string> keys;
    for (const auto& [n, _] : model->state_dict()) keys.push_back(n);
    CHECK(keys == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"});

    nn::Adam opt(model->parameters(), {.lr = 0.05});
    const Tensor x = tg::randn({8, 3}, gen), y = tg::randn({8, 1}, gen);
    double first_loss = 0, last_loss = 0;
    for (int step = 0; step < 30; ++step) {
        opt.zero_grad();
        Tensor loss = tg::mse_loss(model->forward(x), y);
        loss.backward();
        opt.step();
        (step == 0 ? first_loss : last_loss) = loss.item();
    }
    CHECK(last_loss < first_loss);
    // The state_dict loads back into a fresh model of the same structure.
    auto shared2 = std::make_shared<nn::Linear>(3, 3, gen);
    nn::Sequential copy{shared2, std::make_shared<nn::ReLU>(), shared2, std::make_shared<nn::Linear>(3, 1, gen)};
    copy.load_state_dict(model->state_dict());
    CHECK(same_values(copy.forward(x), model->forward(x)));

    // The same module under two names of one parent, and shared buffers.
    struct Twice : nn::Module {
        Twice(std::shared_ptr<nn::Module> m) : Module("Twice") {
            register_module("a", m);
            register_module("b", m);
        }
    } twice(std::make_shared<nn::BatchNorm1d>(2));
    CHECK(twice.parameters().size() == 2);
    CHECK(twice.buffers().size() == 3);
    CHECK(twice.named_buffers().front().first == "a.running_mean");
    CHECK(twice.state_dict().size() == 10);
}

TEST_CASE("a module registered inside itself, directly or through its children, is refused") {
    tg::Generator gen(6);
    auto block = std::make_shared<nn::Sequential>();
    block->push_back(std::make_shared<nn::Linear>(2, 2, gen));
    // Into itself.
    REQUIRE(error_of([&] { block->push_back(block); }) ==
            "Sequential: cannot register a module inside itself (as '1'); a module cannot be its own child");
    CHECK(error_of([&] { block->register_module("again", block); }) ==
          "Sequential: cannot register a module inside itself (as 'again'); a module cannot be its own child");
    // A cycle a -> b -> a, and a longer one through a shared child.
    auto outer = std::make_shared<nn::Sequential>();
    auto inner = std::make_shared<nn::Sequential>();
    outer->push_back("body", inner);
    inner->push_back("tail", block);
    CHECK(error_of([&] { inner->push_back("up", outer); }) ==
          "Sequential: cannot register Sequential as 'up': this Sequential is already inside it (as 'body'), so the "
          "two would contain each other; a module cannot be its own descendant");
    CHECK(contains(error_of([&] { block->push_back(outer); }), "(as 'body.tail')"));
    // Nothing was added: every walk ends, and the model still runs.
    CHECK(block->size() == 1);
    CHECK(inner->size() == 1);
    CHECK(outer->parameters().size() == 2);
    CHECK(outer->state_dict().size() == 2);
    CHECK(outer->named_modules().size() == 4);
    CHECK(outer->forward(tg::ones({1, 2})).shape() == tg::Shape{1, 2});
}

// ---------------------------------------------------------------- all-or-nothing loading

namespace {
struct TwoTensors : nn::Module {
    Tensor a, b;
    explicit TwoTensors(uint64_t seed) : Module("TwoTensors") {
        tg::Generator gen(seed);
        a = register_parameter("a", tg::randn({2, 3}, gen));
        b = register_parameter("b", tg::randn({3}, gen));
    }
};

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("tapegrad_adversarial_" + name)).string();
}
}  // namespace

TEST_CASE("load_checkpoint changes nothing when the optimizer part does not fit") {
    TwoTensors saved(1);
    nn::Adam adam(saved.parameters(), {.lr = 0.01});
    (saved.a.sum() + saved.b.sum()).backward();
    adam.step();
    const std::string path = temp_path("mismatch.ckpt");
    nn::save_checkpoint(path, saved, &adam, 3);

    TwoTensors target(2);
    const Tensor a_before = target.a.detach().clone(), b_before = target.b.detach().clone();
    auto check_untouched = [&] {
        CHECK(same_values(target.a, a_before));
        CHECK(same_values(target.b, b_before));
    };
    // Another optimizer kind (other state slots).
    nn::SGD sgd(target.parameters(), {.lr = 0.5, .momentum = 0.9});
    CHECK(contains(error_of([&] { nn::load_checkpoint(path, target, &sgd); }), path));
    check_untouched();
    CHECK(sgd.lr() == 0.5);
    // The same kind over fewer parameters.
    nn::Adam fewer({target.a}, {.lr = 0.5});
    CHECK(contains(error_of([&] { nn::load_checkpoint(path, target, &fewer); }), "does not fit"));
    check_untouched();
    // A slot of another shape.
    Tensor other_b = tg::zeros({4}, {.requires_grad = true});
    nn::Adam mismatched({target.a, other_b}, {.lr = 0.5});
    CHECK(contains(error_of([&] { nn::load_checkpoint(path, target, &mismatched); }), "state.1."));
    check_untouched();
    // And a fitting one loads both.
    nn::Adam fits(target.parameters(), {.lr = 0.5});
    nn::load_checkpoint(path, target, &fits);
    CHECK(same_values(target.a, saved.a));
    CHECK(fits.lr() == 0.01);
    std::filesystem::remove(path);
}

TEST_CASE("load_state_dict reads every value before writing any, even when they alias the module") {
    TwoTensors m(5);
    const Tensor a0 = m.a.detach().clone(), b0 = m.b.detach().clone();
    // The module's own state, loaded back, changes nothing.
    m.load_state_dict(m.state_dict());
    CHECK(same_values(m.a, a0));
    // Values that are views of the module's tensors: b's new value is a's old second row, and a's
    // new value reads b's old storage (broadcast).
    const Tensor a_row = tg::as_strided(m.a.detach(), {3}, {1}, 3);
    const Tensor b_rows = tg::as_strided(m.b.detach(), {2, 3}, {0, 1});
    m.load_state_dict({{"a", b_rows}, {"b", a_row}});
    for (int64_t j = 0; j < 3; ++j) {
        CHECK(m.b.at({j}) == a0.at({1, j}));
        CHECK(m.a.at({0, j}) == b0.at({j}));
        CHECK(m.a.at({1, j}) == b0.at({j}));
    }
    // A failed optimizer load leaves its state as it was.
    nn::Adam adam(m.parameters(), {.lr = 0.01});
    (m.a.sum() + m.b.sum()).backward();
    adam.step();
    const auto state = adam.state_dict();
    auto bad = state;
    bad.back().second = tg::zeros({7});
    CHECK(contains(error_of([&] { adam.load_state_dict(bad); }), bad.back().first));
    const auto after = adam.state_dict();
    REQUIRE(after.size() == state.size());
    for (std::size_t k = 0; k < state.size(); ++k) CHECK(same_values(after[k].second, state[k].second));
}

// ---------------------------------------------------------------- dropout

TEST_CASE("unseeded dropouts draw independent masks; a Generator forks one; p = 1 zeroes") {
    const Tensor x = tg::ones({256});
    nn::Dropout d1, d2;
    CHECK_FALSE(same_values(d1(x), d2(x)));
    tg::Generator gen(9);
    nn::Dropout g1(0.5, gen), g2(0.5, gen);
    const Tensor m1 = g1(x);
    CHECK_FALSE(same_values(m1, g2(x)));
    // The same seed and construction order give the same masks.
    tg::Generator again(9);
    nn::Dropout h1(0.5, again);
    CHECK(same_values(h1(x), m1));

    nn::Dropout all(1.0);
    Tensor leaf = tg::ones({4, 3}, {.requires_grad = true});
    const Tensor y = all(leaf);
    CHECK(same_values(y, tg::zeros({4, 3})));
    y.sum().backward();
    CHECK(same_values(leaf.grad(), tg::zeros({4, 3})));
    for (double p : {1.5, -0.1, std::numeric_limits<double>::quiet_NaN()}) {
        CAPTURE(p);
        CHECK(contains(error_of([&] { nn::Dropout bad(p); }), "Dropout: p must be in [0, 1]"));
    }
}

// ---------------------------------------------------------------- data loader

namespace {
nn::ImageDataset ramp(int64_t n, uint8_t offset) {
    nn::ImageDataset d;
    d.count = n, d.rows = 2, d.cols = 2;
    for (int64_t i = 0; i < n * 4; ++i) d.pixels.push_back(static_cast<uint8_t>(offset + i));
    for (int64_t i = 0; i < n; ++i) d.labels.push_back(i % 10);
    return d;
}
}  // namespace

TEST_CASE("DataLoader normalises only with the statistics it is given") {
    const nn::ImageDataset train = ramp(6, 0), test = ramp(3, 100);
    // No statistics: pixels scaled to [0, 1], whatever the set.
    nn::DataLoader plain(test, {.batch_size = 3, .shuffle = false});
    CHECK(plain.mean() == 0.0);
    CHECK(plain.stddev() == 1.0);
    CHECK((*plain.begin()).images.at({0, 0, 0, 0}) == doctest::Approx(100.0 / 255.0));
    // The test set with the training set's statistics.
    const auto [mean, stddev] = train.pixel_mean_std();
    nn::DataLoader with_train(test, {.batch_size = 3, .shuffle = false, .mean = mean, .std = stddev});
    const Tensor images = (*with_train.begin()).images;
    for (int64_t k = 0; k < 4; ++k)
        CHECK(images.at({2, 0, k / 2, k % 2}) == doctest::Approx(((108.0 + k) / 255.0 - mean) / stddev).epsilon(1e-6));
    CHECK(contains(error_of([&] { nn::DataLoader(test, {.mean = 0.5, .std = 0.0}); }), "DataLoader"));
    CHECK(contains(error_of([&] { nn::DataLoader(test, {.mean = std::nan(""), .std = 1.0}); }), "DataLoader"));
}

TEST_CASE("DataLoader checks shape arithmetic before multiplying") {
    nn::ImageDataset huge;
    huge.count = int64_t{1} << 40;
    huge.rows = int64_t{1} << 20;
    huge.cols = int64_t{1} << 20;
    CHECK(contains(error_of([&] { nn::DataLoader loader(huge); }), "overflows"));
    CHECK(contains(error_of([&] { nn::DataLoader loader(huge); }), "count x rows x cols"));
    CHECK(contains(error_of([&] { huge.head(1); }), "overflows"));
    huge.rows = huge.cols = int64_t{1} << 32;
    CHECK(contains(error_of([&] { nn::DataLoader loader(huge); }), "rows x cols"));
    nn::ImageDataset negative = ramp(2, 0);
    negative.rows = -2, negative.cols = -2;
    CHECK(contains(error_of([&] { nn::DataLoader loader(negative); }), "non-negative"));
    nn::ImageDataset lying = ramp(2, 0);
    lying.count = 3;
    CHECK(contains(error_of([&] { nn::DataLoader loader(lying); }), "needs"));
    // A batch size far beyond the dataset: one batch of everything.
    nn::DataLoader one(ramp(5, 0), {.batch_size = std::numeric_limits<int64_t>::max()});
    CHECK(one.num_batches() == 1);
    int64_t batches = 0;
    for (const nn::Batch& b : one) {
        CHECK(b.labels.numel() == 5);
        ++batches;
    }
    CHECK(batches == 1);
    nn::DataLoader none(ramp(5, 0), {.batch_size = std::numeric_limits<int64_t>::max(), .drop_last = true});
    CHECK(none.num_batches() == 0);
    CHECK(!(none.begin() != none.end()));
}

TEST_CASE("DataLoader over an empty dataset yields no batches, shuffled or not") {
    for (bool shuffle : {false, true}) {
        nn::DataLoader loader(ramp(0, 0), {.batch_size = 4, .shuffle = shuffle});
        CHECK(loader.num_batches() == 0);
        CHECK(!(loader.begin() != loader.end()));
    }
}

// ---------------------------------------------------------------- non-contiguous inputs to layers

TEST_CASE("layers give the same output and input gradient for non-contiguous inputs") {
    tg::Generator gen(8);
    std::vector<std::pair<const char*, std::shared_ptr<nn::Module>>> layers = {
        {"Conv2d", std::make_shared<nn::Conv2d>(3, 4, 3, gen, tg::Conv2dOptions{.padding = 1})},
        {"BatchNorm2d", std::make_shared<nn::BatchNorm2d>(3)},
        {"ReLU", std::make_shared<nn::ReLU>()},
        {"MaxPool2d", std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2})},
        {"AvgPool2d", std::make_shared<nn::AvgPool2d>(tg::Pool2dOptions{.kernel_size = 2})},
        {"AdaptiveAvgPool2d", std::make_shared<nn::AdaptiveAvgPool2d>(tg::Pair{1, 1})},
        {"Flatten", std::make_shared<nn::Flatten>()},
    };
    const Tensor base = tg::randn({2, 3, 4, 4}, gen);
    // [N,C,H,W] stored as [N,C,W,H] (transposed planes) and as channels-last.
    const std::vector<Tensor> layouts = {base.transpose(2, 3).contiguous().transpose(2, 3),
                                         base.contiguous(tg::MemoryFormat::ChannelsLast)};
    for (auto& [name, layer] : layers) {
        for (const Tensor& x : layouts) {
            CAPTURE(name);
            Tensor a = base.clone().requires_grad_(), b = x.detach().requires_grad_();
            REQUIRE(same_values(a, b));
            const Tensor ya = layer->forward(a), yb = layer->forward(b);
            CHECK(tg::allclose(ya, yb, 1e-5, 1e-6));
            const Tensor weights = tg::randn(ya.shape(), gen);
            (ya * weights).sum().backward();
            (yb * weights).sum().backward();
            CHECK(tg::allclose(a.grad(), b.grad(), 1e-5, 1e-6));
        }
    }
    // 2-D layers on a transposed [N,F] input.
    std::vector<std::pair<const char*, std::shared_ptr<nn::Module>>> flat_layers = {
        {"Linear", std::make_shared<nn::Linear>(4, 5, gen)},
        {"BatchNorm1d", std::make_shared<nn::BatchNorm1d>(4)},
        {"Dropout", std::make_shared<nn::Dropout>(0.0)},
    };
    const Tensor m = tg::randn({4, 3}, gen);
    for (auto& [name, layer] : flat_layers) {
        CAPTURE(name);
        Tensor a = m.transpose(0, 1).contiguous().requires_grad_(), b = m.detach().transpose(0, 1);
        b.requires_grad_();
        const Tensor ya = layer->forward(a), yb = layer->forward(b);
        CHECK(tg::allclose(ya, yb, 1e-5, 1e-6));
        ya.sum().backward();
        yb.sum().backward();
        CHECK(tg::allclose(a.grad(), b.grad(), 1e-5, 1e-6));
    }
}

TEST_CASE("a frozen feature extractor still passes the gradient to its input") {
    tg::Generator gen(12);
    nn::Conv2d conv(2, 3, 3, gen, {.padding = 1});
    nn::Linear fc(3 * 4 * 4, 2, gen);
    for (Tensor& p : conv.parameters()) p.requires_grad_(false);
    fc.weight.requires_grad_(false);  // only fc's bias trains
    Tensor x = tg::randn({2, 2, 4, 4}, gen).requires_grad_();
    fc(conv(x).flatten(1)).sum().backward();
    CHECK_FALSE(conv.weight.grad().defined());
    CHECK_FALSE(fc.weight.grad().defined());
    REQUIRE(fc.bias.grad().defined());
    CHECK(same_values(fc.bias.grad(), tg::full({2}, 2.0)));
    REQUIRE(x.grad().defined());
    // The same gradient as with everything trainable.
    Tensor x2 = x.detach().clone().requires_grad_();
    for (Tensor& p : conv.parameters()) p.requires_grad_(true);
    fc.weight.requires_grad_(true);
    fc(conv(x2).flatten(1)).sum().backward();
    CHECK(tg::allclose(x.grad(), x2.grad(), 1e-5, 1e-6));
}
