// tg::AutocastGuard against PyTorch 1.13's torch.autocast("cpu", dtype=torch.bfloat16): a
// convolution and a linear layer forward and backward (tests/autocast_reference.txt, written by
// tests/autocast_pytorch.py), the guard's scope, and training with it: weights, gradients and
// optimizer state stay float32. ctest runs this file twice, the second time with
// DNNL_MAX_CPU_ISA=AVX2, where autocast takes its reference path (tests/CMakeLists.txt).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tapegrad.hpp"
#include "ops/autocast.hpp"
#include "tests/error_text.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

std::map<std::string, Tensor> read_reference() {
    std::istringstream in(tg::testing::slurp(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/autocast_reference.txt"));
    std::map<std::string, Tensor> out;
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string name, colon;
        int64_t ndim = 0;
        words >> name >> ndim;
        tg::Shape shape;
        for (int64_t i = 0, d = 0; i < ndim && words >> d; ++i) shape.push_back(d);
        words >> colon;
        std::vector<double> values;
        for (std::string v; words >> v;) values.push_back(std::strtod(v.c_str(), nullptr));
        out[name] = tg::from_vector(values, shape);
    }
    return out;
}

// Where both hold bfloat16 values: how many elements differ. Each difference must be at most one
// bfloat16 step (2^-7 of the larger magnitude): sums of the same exact products in another order
// can land on the other side of a rounding boundary.
int count_differences(const Tensor& got, const Tensor& want) {
    REQUIRE(got.shape() == want.shape());
    const auto g = got.to_vector<float>(), w = want.to_vector<float>();
    int differ = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
        if (g[i] == w[i]) continue;
        ++differ;
        CHECK_MESSAGE(std::abs(g[i] - w[i]) <= std::ldexp(std::max(std::abs(g[i]), std::abs(w[i])), -7),
                      "element " << i << ": " << g[i] << " against " << w[i]);
    }
    return differ;
}

Tensor bf16_values(const Tensor& t) { return t.detach().to(tg::kBFloat16).to(tg::kFloat32); }

using Layer = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;

// y and the gradients of x, w and b: under autocast in float32, or exactly (float64 sums of the
// bfloat16-rounded inputs and incoming gradient, each result rounded once to bfloat16).
std::vector<Tensor> run_layer(const Layer& fn, const std::map<std::string, Tensor>& ref, const std::string& name, bool exact) {
    auto leaf = [&](const char* what) {
        const Tensor t = ref.at(name + "." + what);
        return (exact ? bf16_values(t).to(tg::kFloat64) : t.clone()).requires_grad_();
    };
    const Tensor x = leaf("x"), w = leaf("w"), b = leaf("b");
    Tensor y;
    {
        tg::AutocastGuard autocast(tg::kBFloat16, !exact);
        y = fn(x, w, b);
    }
    y.backward(exact ? bf16_values(ref.at(name + ".gy")).to(tg::kFloat64) : ref.at(name + ".gy"));
    std::vector<Tensor> out{y, x.grad(), w.grad(), b.grad()};
    for (Tensor& t : out) {
        CHECK(t.dtype() == (exact ? tg::kFloat64 : tg::kFloat32));
        if (exact) t = bf16_values(t);
    }
    return out;
}

// Ours against the exact values and against PyTorch's. PyTorch's bfloat16 GEMM for the products
// named in `pytorch_rounds_partial_sums` (1.13's CPU kernel for linear's backward) rounds partial
// sums to bfloat16, several steps off the exact value in places: there ours is held to the exact
// values and to PyTorch's within a few steps of the largest magnitude.
void compare_with_pytorch(const std::string& name, const Layer& fn, const std::set<std::string>& pytorch_rounds_partial_sums) {
    const auto ref = read_reference();
    const std::vector<Tensor> ours = run_layer(fn, ref, name, false), exact = run_layer(fn, ref, name, true);
    const char* names[] = {"y", "dx", "dw", "db"};
    for (std::size_t i = 0; i < 4; ++i) {
        const std::string what = names[i];
        const std::string where = name + "." + what;
        INFO(where);
        const Tensor theirs = ref.at(name + "." + what);
        const int total = static_cast<int>(theirs.numel());
        const int off_exact = count_differences(ours[i], exact[i]);
        CHECK(off_exact * 20 <= total);  // almost every value is the exact one, to the bit
        if (pytorch_rounds_partial_sums.count(what)) {
            double largest = 0;
            for (float v : theirs.to_vector<float>()) largest = std::max(largest, static_cast<double>(std::abs(v)));
            CHECK(tg::max_abs_diff(ours[i], theirs) <= largest / 64);
            MESSAGE(name << "." << what << ": " << off_exact << " of " << total << " values one step from the exact ones; PyTorch's "
                         << "differ by up to " << tg::max_abs_diff(exact[i], theirs));
            continue;
        }
        const int off_pytorch = count_differences(ours[i], theirs);
        CHECK(off_pytorch * 20 <= total);  // and PyTorch's
        MESSAGE(name << "." << what << ": " << off_exact << " of " << total << " values one step from the exact ones, "
                     << off_pytorch << " from PyTorch's");
    }
}

}  // namespace

TEST_CASE("autocast: linear forward and backward give PyTorch's autocast values") {
    compare_with_pytorch("linear", [](const Tensor& x, const Tensor& w, const Tensor& b) { return tg::linear(x, w, b); }, {"dx", "dw"});
}

TEST_CASE("autocast: conv2d forward and backward give PyTorch's autocast values") {
    compare_with_pytorch("conv", [](const Tensor& x, const Tensor& w, const Tensor& b) {
        return tg::conv2d(x, w, b, {.padding = 1});
    }, {});
}

TEST_CASE("autocast: conv2d with outputs of 1 and 2x2 pixels an image gives PyTorch's autocast values") {
    compare_with_pytorch("conv_1px", [](const Tensor& x, const Tensor& w, const Tensor& b) {
        return tg::conv2d(x, w, b, {.padding = 1});
    }, {});
    compare_with_pytorch("conv_2x2px", [](const Tensor& x, const Tensor& w, const Tensor& b) {
        return tg::conv2d(x, w, b, {.stride = 2, .padding = 1});
    }, {});
}

TEST_CASE("autocast: conv2d with three input channels and 32 filters gives PyTorch's autocast values") {
    compare_with_pytorch("conv_few_channels", [](const Tensor& x, const Tensor& w, const Tensor& b) {
        return tg::conv2d(x, w, b, {.padding = 1});
    }, {});
}

TEST_CASE("autocast: the guard is thread-local, nests, and takes bfloat16 only") {
    CHECK_FALSE(tg::is_autocast_enabled());
    {
        tg::AutocastGuard outer(tg::kBFloat16);
        CHECK(tg::is_autocast_enabled());
        bool other_thread = true;
        std::thread([&] { other_thread = tg::is_autocast_enabled(); }).join();
        CHECK_FALSE(other_thread);
        {
            tg::AutocastGuard off(tg::kBFloat16, false);
            CHECK_FALSE(tg::is_autocast_enabled());
        }
        CHECK(tg::is_autocast_enabled());
    }
    CHECK_FALSE(tg::is_autocast_enabled());
    const std::string message = tg::testing::error_of([] { tg::AutocastGuard g(tg::kFloat64); });
    CHECK(tg::testing::contains(message, "AutocastGuard: CPU autocast computes in bfloat16 only, got float64"));
    // DNNL_MAX_CPU_ISA=AVX2 (the second ctest run) leaves oneDNN without bf16 instructions.
    const char* isa = std::getenv("DNNL_MAX_CPU_ISA");
    if (isa && std::string(isa) == "AVX2") CHECK_FALSE(tg::autocast_is_accelerated());
    MESSAGE(std::string(tg::autocast_is_accelerated() ? "autocast is accelerated here" : "autocast is not accelerated here"));
}

TEST_CASE("autocast: ops outside the four stay float32, and a float32 result feeds them") {
    tg::Generator gen(3);
    const Tensor x = tg::randn({4, 10}, gen), w = tg::randn({6, 10}, gen);
    tg::AutocastGuard autocast(tg::kBFloat16);
    const Tensor y = tg::linear(x, w);
    const Tensor s = tg::softmax(y, 1);
    CHECK(s.dtype() == tg::kFloat32);
    // softmax ran in float32 on the bfloat16 values: the same as outside the guard on those values
    tg::AutocastGuard off(tg::kBFloat16, false);
    CHECK(tg::allclose(s, tg::softmax(y.detach(), 1), 0, 0));
    // a rounded float32 tensor: the same values as the bf16 tensor widened
    CHECK(tg::allclose(y, y.to(tg::kBFloat16).to(tg::kFloat32), 0, 0));
}

TEST_CASE("autocast: training keeps weights, gradients and optimizer state float32, and learns") {
    namespace nn = tg::nn;
    tg::Generator gen(11);
    nn::Sequential model{std::make_shared<nn::Conv2d>(1, 4, 3, gen, tg::Conv2dOptions{.padding = 1}), std::make_shared<nn::ReLU>(),
                         std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(4 * 6 * 6, 3, gen)};
    nn::Adam opt(model.parameters(), {.lr = 1e-2});
    const Tensor x = tg::randn({8, 1, 6, 6}, gen);
    const Tensor labels = tg::from_vector(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1}, {8});
    double first = 0, last = 0;
    for (int step = 0; step < 30; ++step) {
        opt.zero_grad();
        Tensor loss;
        {
            tg::AutocastGuard autocast(tg::kBFloat16);
            loss = tg::cross_entropy(model(x), labels);
        }
        CHECK(loss.dtype() == tg::kFloat32);
        loss.backward();
        opt.step();
        (step == 0 ? first : last) = loss.item();
    }
    for (const Tensor& p : model.parameters()) {
        CHECK(p.dtype() == tg::kFloat32);
        CHECK(p.grad().dtype() == tg::kFloat32);
    }
    for (const auto& [name, t] : opt.state_dict()) CHECK_MESSAGE(t.dtype() != tg::kBFloat16, name);
    CHECK(last < 0.5 * first);
}

TEST_CASE("autocast: the four ops keep their precision as saved state, which to_dot shows by name") {
    tg::Generator gen(2);
    const Tensor x = tg::randn({2, 3, 5, 5}, gen).requires_grad_(), w = tg::randn({4, 3, 3, 3}, gen).requires_grad_();
    const Tensor wt = tg::randn({3, 2, 3, 3}, gen).requires_grad_(), m = tg::randn({5, 4}, gen).requires_grad_();
    auto graph = [&] {
        const Tensor y = tg::conv2d(x, w, Tensor(), {.padding = 1}) + tg::conv_transpose2d(x, wt, Tensor(), {.padding = 1}).sum();
        return tg::to_dot((tg::matmul(y, m) + tg::linear(y, m.t())).sum());
    };
    auto count = [](const std::string& text, const std::string& what) {
        int n = 0;
        for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
        return n;
    };
    std::string dot;
    {
        tg::AutocastGuard autocast(tg::kBFloat16);
        dot = graph();
    }
    INFO(dot);
    // conv2d, conv_transpose2d, matmul, linear; the precision is each box's last line
    const std::string precision = tg::autocast_is_accelerated() ? "saved precision: bfloat16\"" : "saved precision: bfloat16 (reference path)\"";
    CHECK(count(dot, "saved precision: ") == 4);
    CHECK(count(dot, precision) == 4);
    CHECK(count(graph(), "saved precision") == 0);  // float32: nothing added
}
