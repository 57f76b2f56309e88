// The losses against PyTorch 1.13 (tests/models/loss_reference.tgck, written by
// tests/models/make_loss_reference.py): values, gradients and second derivatives, in float64 and
// in float32 (each against PyTorch's own computation in that dtype), probabilities of exactly 0
// and 1 included. Then what a reference file cannot show: the errors, empty inputs, and the nn
// loss modules.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>
#include <sstream>

#include "tapegrad.hpp"
#include "tests/error_text.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Reduction;
using tg::Tensor;
using tg::testing::contains;
using tg::testing::error_of;

namespace {

struct Args {
    Tensor x, t, weight, pos_weight, labels;
};
using Fn = std::function<Tensor(const Args&)>;

const std::map<std::string, Fn>& cases() {
    static const std::map<std::string, Fn> c = {
        {"bce_mean", [](const Args& a) { return tg::binary_cross_entropy(a.x, a.t); }},
        {"bce_saturated_none", [](const Args& a) { return tg::binary_cross_entropy(a.x, a.t, {.reduction = Reduction::None}); }},
        {"bce_weight_sum",
         [](const Args& a) { return tg::binary_cross_entropy(a.x, a.t, {.weight = a.weight, .reduction = Reduction::Sum}); }},
        {"bce_weight_mean_4d", [](const Args& a) { return tg::binary_cross_entropy(a.x, a.t, {.weight = a.weight}); }},
        {"bce_of_sigmoid_saturated", [](const Args& a) { return tg::binary_cross_entropy(tg::sigmoid(a.x), a.t); }},
        {"bcel_mean", [](const Args& a) { return tg::binary_cross_entropy_with_logits(a.x, a.t); }},
        {"bcel_weight_pos_weight_sum",
         [](const Args& a) {
             return tg::binary_cross_entropy_with_logits(a.x, a.t,
                                                         {.weight = a.weight, .pos_weight = a.pos_weight, .reduction = Reduction::Sum});
         }},
        {"bcel_extreme_pos_weight_none",
         [](const Args& a) {
             return tg::binary_cross_entropy_with_logits(a.x, a.t, {.pos_weight = a.pos_weight, .reduction = Reduction::None});
         }},
        {"bcel_extreme_mean", [](const Args& a) { return tg::binary_cross_entropy_with_logits(a.x, a.t); }},
        {"l1_mean", [](const Args& a) { return tg::l1_loss(a.x, a.t); }},
        {"l1_ties_none", [](const Args& a) { return tg::l1_loss(a.x, a.t, Reduction::None); }},
        {"smooth_l1_mean", [](const Args& a) { return tg::smooth_l1_loss(a.x, a.t); }},
        {"smooth_l1_beta0.5_none",
         [](const Args& a) { return tg::smooth_l1_loss(a.x, a.t, {.reduction = Reduction::None, .beta = 0.5}); }},
        {"smooth_l1_beta0_sum", [](const Args& a) { return tg::smooth_l1_loss(a.x, a.t, {.reduction = Reduction::Sum, .beta = 0}); }},
        {"huber_mean", [](const Args& a) { return tg::huber_loss(a.x, a.t); }},
        {"huber_delta2.5_none", [](const Args& a) { return tg::huber_loss(a.x, a.t, {.reduction = Reduction::None, .delta = 2.5}); }},
        {"mse_mean", [](const Args& a) { return tg::mse_loss(a.x, a.t); }},
        {"mse_sum_4d", [](const Args& a) { return tg::mse_loss(a.x, a.t, Reduction::Sum); }},
        {"kl_batchmean", [](const Args& a) { return tg::kl_div(a.x, a.t, {.reduction = Reduction::BatchMean}); }},
        {"kl_mean", [](const Args& a) { return tg::kl_div(a.x, a.t); }},
        {"kl_zero_target_none", [](const Args& a) { return tg::kl_div(a.x, a.t, {.reduction = Reduction::None}); }},
        {"kl_zero_target_sum", [](const Args& a) { return tg::kl_div(a.x, a.t, {.reduction = Reduction::Sum}); }},
        {"kl_log_target_batchmean",
         [](const Args& a) { return tg::kl_div(a.x, a.t, {.reduction = Reduction::BatchMean, .log_target = true}); }},
        {"nll_weight_ignore_mean", [](const Args& a) { return tg::nll_loss(a.x, a.labels, {.weight = a.weight}); }},
        {"nll_weight_sum",
         [](const Args& a) { return tg::nll_loss(a.x, a.labels, {.weight = a.weight, .reduction = Reduction::Sum}); }},
        {"nll_spatial_weight_ignore_mean", [](const Args& a) { return tg::nll_loss(a.x, a.labels, {.weight = a.weight}); }},
        {"nll_spatial_none", [](const Args& a) { return tg::nll_loss(a.x, a.labels, {.reduction = Reduction::None}); }},
        {"nll_all_ignored_mean", [](const Args& a) { return tg::nll_loss(a.x, a.labels); }},
        {"nll_unbatched", [](const Args& a) { return tg::nll_loss(a.x, a.labels); }},
        {"ce_probs_mean", [](const Args& a) { return tg::cross_entropy(a.x, a.t); }},
        {"ce_probs_weight_smoothing_none",
         [](const Args& a) {
             return tg::cross_entropy(a.x, a.t, {.reduction = Reduction::None, .weight = a.weight, .label_smoothing = 0.15});
         }},
        {"ce_probs_4d_weight_sum",
         [](const Args& a) { return tg::cross_entropy(a.x, a.t, {.reduction = Reduction::Sum, .weight = a.weight}); }},
        {"ce_labels_spatial_weight_ignore_smoothing_mean",
         [](const Args& a) { return tg::cross_entropy(a.x, a.labels, {.weight = a.weight, .label_smoothing = 0.1}); }},
        {"ce_labels_spatial_none", [](const Args& a) { return tg::cross_entropy(a.x, a.labels, {.reduction = Reduction::None}); }},
    };
    return c;
}

// "" when got matches want elementwise: NaN where want is NaN, the same infinity where want is
// infinite, |got - want| <= rtol |want| + atol elsewhere; else the first difference.
std::string mismatch(const Tensor& got, const Tensor& want, double rtol, double atol) {
    if (!got.defined()) return "undefined";
    if (got.shape() != want.shape()) return "shape " + tg::to_string(got.shape()) + " instead of " + tg::to_string(want.shape());
    const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
    for (std::size_t i = 0; i < g.size(); ++i) {
        const bool same = std::isnan(w[i]) ? std::isnan(g[i])
                          : std::isinf(w[i]) ? g[i] == w[i]
                                             : std::abs(g[i] - w[i]) <= rtol * std::abs(w[i]) + atol;
        if (!same) {
            std::ostringstream s;
            s.precision(17);
            s << "element " << i << " is " << g[i] << ", PyTorch's " << w[i];
            return s.str();
        }
    }
    return "";
}

std::vector<Tensor> grads_or_zeros(const Tensor& of, const std::vector<Tensor>& wrt, const Tensor& direction) {
    std::vector<Tensor> out(wrt.size());
    if (of.requires_grad()) out = tg::grad({of}, wrt, {direction}, false, false, /*allow_unused=*/true);
    for (std::size_t i = 0; i < wrt.size(); ++i)
        if (!out[i].defined()) out[i] = tg::zeros_like(wrt[i].detach());
    return out;
}

void check_all(tg::DType dtype, bool reference_kernels, double rtol, double atol) {
    std::map<std::string, Tensor> ref;
    for (auto& [name, t] : nn::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/loss_reference.tgck")) ref[name] = t;
    const std::string tag = dtype == tg::kFloat64 ? "f64" : "f32";
    auto optional = [&](const std::string& key, tg::DType as) { return ref.count(key) ? ref.at(key).to(as) : Tensor(); };
    for (const auto& [name, fn] : cases()) {
        INFO(name, " in ", tag, reference_kernels ? ", reference kernels" : "");
        Args a{.x = ref.at(name + ".x").to(dtype).detach().requires_grad_(),
               .t = optional(name + ".t", dtype),
               .weight = optional(name + ".weight", dtype),
               .pos_weight = optional(name + ".pos_weight", dtype),
               .labels = optional(name + ".labels", tg::kInt64)};
        std::vector<Tensor> wrt = {a.x};
        if (a.t.defined()) wrt.push_back(a.t.detach().requires_grad_());
        if (a.t.defined()) a.t = wrt[1];
        tg::ReferenceKernelsGuard guard(reference_kernels);
        const Tensor out = fn(a);
        CHECK_MESSAGE(mismatch(out, ref.at(name + "." + tag + ".out"), rtol, atol) == "",
                      "output: " << mismatch(out, ref.at(name + "." + tag + ".out"), rtol, atol));
        const auto grads = tg::grad({out}, wrt, {ref.at(name + ".cot").to(dtype)}, true, /*create_graph=*/true);
        const auto second = grads_or_zeros(grads[0], wrt, ref.at(name + ".v").to(dtype));
        for (std::size_t i = 0; i < wrt.size(); ++i) {
            const std::string k = name + "." + tag + ".grad" + std::to_string(i), kk = name + "." + tag + ".gg" + std::to_string(i);
            CHECK_MESSAGE(mismatch(grads[i].detach(), ref.at(k), rtol, atol) == "", "gradient " << i << ": " << mismatch(grads[i].detach(), ref.at(k), rtol, atol));
            CHECK_MESSAGE(mismatch(second[i], ref.at(kk), rtol, atol) == "", "second derivative " << i << ": " << mismatch(second[i], ref.at(kk), rtol, atol));
        }
    }
}

}  // namespace

TEST_CASE("losses match PyTorch in float64: values, gradients, second derivatives") {
    check_all(tg::kFloat64, true, 1e-10, 1e-12);
}

TEST_CASE("losses match PyTorch in float32, fast and reference kernels") {
    check_all(tg::kFloat32, false, 2e-5, 2e-6);
    check_all(tg::kFloat32, true, 2e-5, 2e-6);
}

TEST_CASE("binary_cross_entropy's vectorised float32 loops equal the scalar reference, whole vectors and a tail") {
    tg::Generator gen(11);
    // 1073 elements: many full vectors and a partial one. Probabilities of exactly 0 and 1 among
    // them (every seventh element), and logits up to +-120.
    const Tensor logits = tg::randn({37, 29}, gen) * 40.0;
    std::vector<float> probabilities = tg::rand({37, 29}, gen).to_vector<float>();
    for (std::size_t i = 0; i < probabilities.size(); i += 7) probabilities[i] = static_cast<float>((i / 7) % 2);
    const Tensor p = tg::from_vector(probabilities, {37, 29}), t = tg::rand({37, 29}, gen);
    const Tensor w = tg::uniform({29}, 0.5, 2.0, gen), pos_weight = tg::uniform({29}, 0.5, 3.0, gen);
    using Loss = std::function<Tensor(const Tensor&, const Tensor&)>;
    const std::vector<std::pair<Tensor, Loss>> losses = {
        {p, [&](const Tensor& x, const Tensor& y) { return tg::binary_cross_entropy(x, y, {.weight = w, .reduction = Reduction::None}); }},
        {p, [&](const Tensor& x, const Tensor& y) { return tg::binary_cross_entropy(x, y); }},
        {logits,
         [&](const Tensor& x, const Tensor& y) {
             return tg::binary_cross_entropy_with_logits(x, y, {.weight = w, .pos_weight = pos_weight, .reduction = Reduction::None});
         }},
        {logits, [&](const Tensor& x, const Tensor& y) { return tg::binary_cross_entropy_with_logits(x, y, {.reduction = Reduction::Sum}); }},
    };
    for (const auto& [input, loss] : losses) {
        auto run = [&](bool reference) {
            tg::ReferenceKernelsGuard guard(reference);
            const Tensor x = input.detach().requires_grad_(), y = t.detach().requires_grad_();
            const Tensor out = loss(x, y);
            auto grads = tg::grad({out}, {x, y}, {tg::ones_like(out)});
            return std::vector<Tensor>{out, grads[0], grads[1]};
        };
        const auto fast = run(false), reference = run(true);
        for (std::size_t i = 0; i < fast.size(); ++i)
            CHECK_MESSAGE(mismatch(fast[i], reference[i], 1e-5, 1e-6) == "", i << ": " << mismatch(fast[i], reference[i], 1e-5, 1e-6));
    }
}

TEST_CASE("binary_cross_entropy of a sigmoid saturated to exactly 0 and 1 is finite, where the formula written out is not") {
    // float32 sigmoid(+-200) is exactly 1 and 0: log(1 - p) and log(p) are -inf for the wrong labels.
    const Tensor logits = tg::tensor({200.0, -200.0}).requires_grad_();
    const Tensor target = tg::tensor({0.0, 1.0});
    const Tensor p = tg::sigmoid(logits);
    CHECK(p.to_vector<float>() == std::vector<float>{1.0f, 0.0f});
    const Tensor by_hand = -(target * tg::log(p) + (1.0 - target) * tg::log(1.0 - p));
    CHECK_FALSE(std::isfinite(by_hand.sum().item()));
    const Tensor loss = tg::binary_cross_entropy(p, target);
    CHECK(loss.item() == doctest::Approx(100.0));  // each log clamped at -100, as PyTorch
    loss.backward();
    for (float g : logits.grad().to_vector<float>()) CHECK(std::isfinite(g));
}

TEST_CASE("losses: a Mean over no elements is NaN and a Sum is 0, as PyTorch") {
    const Tensor empty = tg::zeros({0, 3});
    CHECK(std::isnan(tg::binary_cross_entropy(empty, empty).item()));
    CHECK(std::isnan(tg::l1_loss(empty, empty).item()));
    CHECK(std::isnan(tg::cross_entropy(empty, empty).item()));
    CHECK(std::isnan(tg::nll_loss(empty, tg::zeros({0}, {.dtype = tg::kInt64})).item()));
    CHECK(tg::huber_loss(empty, empty, {.reduction = Reduction::Sum}).item() == 0.0);
    CHECK(tg::kl_div(empty, empty, {.reduction = Reduction::Sum}).item() == 0.0);
}

TEST_CASE("nll_loss: the vector form, int64 and int32 label tensors agree") {
    tg::Generator gen(5);
    const Tensor lp = tg::log_softmax(tg::randn({4, 3}, gen), 1);
    const std::vector<int64_t> labels = {2, 0, 1, 1};
    const Tensor as_int64 = tg::from_vector(labels, {4});
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        const Tensor want = tg::nll_loss(lp, as_int64, {.reduction = r});
        CHECK(tg::allclose(tg::nll_loss(lp, labels, r), want, 0, 0));
        CHECK(tg::allclose(tg::nll_loss(lp, as_int64.to(tg::kInt32), {.reduction = r}), want, 0, 0));
    }
    CHECK(tg::nll_loss(lp, as_int64).item() == doctest::Approx(-(lp.at({0, 2}) + lp.at({1, 0}) + lp.at({2, 1}) + lp.at({3, 1})) / 4));
}

TEST_CASE("losses refuse bad arguments with a sentence naming the loss") {
    const Tensor p = tg::tensor({0.2, 1.5, 0.7}), t = tg::tensor({0.0, 1.0, 1.0});
    const Tensor ints = tg::from_vector(std::vector<int64_t>{0, 1, 1}, {3});
    const Tensor lp = tg::zeros({2, 3});
    const Tensor labels = tg::from_vector(std::vector<int64_t>{0, 2}, {2});
    struct Bad {
        std::function<void()> call;
        std::vector<std::string> parts;
    };
    const std::vector<Bad> bad = {
        {[&] { tg::binary_cross_entropy(p, t); }, {"binary_cross_entropy", "[0, 1]", "element 1", "1.5", "with_logits"}},
        {[&] { tg::binary_cross_entropy(tg::tensor({NAN, 0.5, 0.5}), t); }, {"binary_cross_entropy", "element 0", "nan"}},
        {[&] { tg::binary_cross_entropy(ints, t); }, {"binary_cross_entropy", "float32 or float64", "int64"}},
        {[&] { tg::binary_cross_entropy_with_logits(ints, t); }, {"binary_cross_entropy_with_logits", "int64"}},
        {[&] { tg::l1_loss(ints, ints); }, {"l1_loss", "int64"}},
        {[&] { tg::mse_loss(ints, ints); }, {"mse_loss", "int64"}},  // an int64 target of a float input is promoted, as PyTorch
        {[&] { tg::smooth_l1_loss(ints, ints); }, {"smooth_l1_loss", "int64"}},
        {[&] { tg::smooth_l1_loss(ints, ints, {.beta = 0}); }, {"smooth_l1_loss", "int64"}},
        {[&] { tg::huber_loss(ints, t); }, {"huber_loss", "int64"}},
        {[&] { tg::kl_div(ints, t); }, {"kl_div", "int64"}},
        {[&] { tg::nll_loss(lp.to(tg::kInt64), labels); }, {"nll_loss", "int64"}},
        {[&] { tg::cross_entropy(lp.to(tg::kInt64), labels); }, {"cross_entropy", "int64"}},
        {[&] { tg::cross_entropy(lp.to(tg::kInt64), std::vector<int64_t>{0, 2}); }, {"cross_entropy", "int64"}},
        {[&] { tg::binary_cross_entropy(t, t, {.weight = tg::ones({3}, {.requires_grad = true})}); },
         {"binary_cross_entropy", "weight requires grad", "detach"}},
        {[&] { tg::binary_cross_entropy_with_logits(t, t, {.pos_weight = tg::ones({2})}); },
         {"binary_cross_entropy_with_logits", "pos_weight", "[2]", "[3]"}},
        {[&] { tg::binary_cross_entropy(t, t, {.weight = tg::ones({3}, {.dtype = tg::kFloat64})}); }, {"binary_cross_entropy", "dtype"}},
        {[&] { tg::l1_loss(t, tg::zeros({3, 1})); }, {"l1_loss", "[3]", "[3,1]"}},
        {[&] { tg::mse_loss(t, t, Reduction::BatchMean); }, {"mse_loss", "BatchMean", "kl_div"}},
        {[&] { tg::smooth_l1_loss(t, t, {.beta = -1}); }, {"smooth_l1_loss", "beta"}},
        {[&] { tg::huber_loss(t, t, {.delta = 0}); }, {"huber_loss", "delta"}},
        {[&] { tg::nll_loss(lp, tg::from_vector(std::vector<int64_t>{0, 3}, {2})); }, {"nll_loss", "label 3", "row 1", "[0, 3)"}},
        {[&] { tg::nll_loss(lp, tg::tensor({0.0, 1.0})); }, {"nll_loss", "integer tensor"}},
        {[&] { tg::nll_loss(lp, tg::from_vector(std::vector<int64_t>{0, 1, 2}, {3})); }, {"nll_loss", "[2]", "[3]"}},
        {[&] { tg::nll_loss(lp, labels, {.weight = tg::ones({4})}); }, {"nll_loss", "weight", "[3]"}},
        {[&] { tg::nll_loss(tg::zeros({2, 3, 4}), tg::from_vector(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 9}, {2, 4})); },
         {"nll_loss", "label 9", "target element 7"}},
        {[&] { tg::cross_entropy(lp, tg::zeros({2, 4})); }, {"cross_entropy", "integer tensor", "probabilities", "[2,4]"}},
        {[&] { tg::cross_entropy(lp, tg::zeros({2, 3}), {.weight = tg::ones({2})}); }, {"cross_entropy", "weight", "[3]"}},
    };
    for (const Bad& b : bad) {
        const std::string message = error_of(b.call);
        INFO(message);
        CHECK(!message.empty());
        for (const auto& part : b.parts) CHECK_MESSAGE(contains(message, part), "missing '" << part << "'");
    }
}

TEST_CASE("nn loss modules equal the functional losses, keep their weights as buffers and convert with to()") {
    tg::Generator gen(9);
    const Tensor x = tg::randn({4, 3}, gen), t = tg::rand({4, 3}, gen);
    const Tensor probs = tg::sigmoid(x), labels = tg::from_vector(std::vector<int64_t>{0, 2, 1, -100}, {4});
    const Tensor w = tg::uniform({3}, 0.5, 2.0, gen);
    auto same = [](const Tensor& a, const Tensor& b) { return tg::allclose(a, b, 0, 0); };
    CHECK(same(nn::BCELoss({.weight = w})(probs, t), tg::binary_cross_entropy(probs, t, {.weight = w})));
    CHECK(same(nn::BCEWithLogitsLoss({.pos_weight = w, .reduction = Reduction::Sum})(x, t),
               tg::binary_cross_entropy_with_logits(x, t, {.pos_weight = w, .reduction = Reduction::Sum})));
    CHECK(same(nn::CrossEntropyLoss({.weight = w})(x, labels), tg::cross_entropy(x, labels, {.weight = w})));
    CHECK(same(nn::CrossEntropyLoss({.label_smoothing = 0.1})(x, t), tg::cross_entropy(x, t, {.label_smoothing = 0.1})));
    CHECK(same(nn::NLLLoss({.reduction = Reduction::None})(x, labels), tg::nll_loss(x, labels, {.reduction = Reduction::None})));
    CHECK(same(nn::KLDivLoss({.reduction = Reduction::BatchMean})(tg::log_softmax(x, 1), t),
               tg::kl_div(tg::log_softmax(x, 1), t, {.reduction = Reduction::BatchMean})));
    CHECK(same(nn::MSELoss(Reduction::Sum)(x, t), tg::mse_loss(x, t, Reduction::Sum)));
    CHECK(same(nn::L1Loss()(x, t), tg::l1_loss(x, t)));
    CHECK(same(nn::SmoothL1Loss({.beta = 0.3})(x, t), tg::smooth_l1_loss(x, t, {.beta = 0.3})));
    CHECK(same(nn::HuberLoss({.delta = 0.3})(x, t), tg::huber_loss(x, t, {.delta = 0.3})));

    nn::BCEWithLogitsLoss weighted({.weight = w.clone(), .pos_weight = w.clone()});
    const auto state = weighted.state_dict();
    REQUIRE(state.size() == 2);
    CHECK(state[0].first == "weight");
    CHECK(state[1].first == "pos_weight");
    CHECK(nn::L1Loss().state_dict().empty());
    weighted.to(tg::kFloat64);
    CHECK(weighted.options.weight.dtype() == tg::kFloat64);
    CHECK(weighted(x.to(tg::kFloat64), t.to(tg::kFloat64)).dtype() == tg::kFloat64);

    nn::MSELoss loss;
    CHECK(contains(error_of([&] { loss(std::vector<Tensor>{x}); }), "MSELoss: takes two inputs"));
}
