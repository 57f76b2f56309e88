// User-defined autograd functions (engine/function.hpp) against PyTorch 1.13: libtorch's tutorial
// examples ported as they are written, saved outputs and their second derivatives, several outputs,
// and what ctx offers (saved_data, needs_input_grad, mark_dirty, mark_non_differentiable,
// set_materialize_grads). Reference values: tests/models/function_reference.tgck, written by
// tests/models/make_function_reference.py.
#include <doctest/doctest.h>

#include <map>
#include <tuple>

#include "error_text.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;
using tg::testing::contains;
using tg::testing::error_of;

namespace {

const std::map<std::string, Tensor>& reference() {
    static const std::map<std::string, Tensor> ref = [] {
        std::map<std::string, Tensor> r;
        for (auto& [name, t] : nn::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/function_reference.tgck")) r[name] = t;
        return r;
    }();
    return ref;
}
const Tensor& ref(const std::string& name) { return reference().at(name); }
Tensor leaf(const std::string& name) { return ref(name).detach().clone().requires_grad_(); }

bool close(const Tensor& got, const Tensor& want) { return got.defined() && tg::allclose(got, want, 1e-12, 1e-12); }

}  // namespace

// ---- libtorch's tutorial (https://pytorch.org/tutorials/advanced/cpp_autograd.html), with torch::
// renamed to tg:: and tensor methods tapegrad spells as functions marked where they are used.
namespace libtorch_port {
using namespace tapegrad;

class LinearFunction : public Function<LinearFunction> {
public:
    // Note that both forward and backward are static functions

    // bias is an optional argument
    static Variable forward(AutogradContext* ctx, Variable input, Variable weight, Variable bias = Variable()) {
        ctx->save_for_backward({input, weight, bias});
        auto output = matmul(input, weight.transpose(0, 1));  // input.mm(weight.t())
        if (bias.defined()) {
            output.add_(expand(unsqueeze(bias, 0), output.shape()));  // output += bias.unsqueeze(0).expand_as(output)
        }
        return output;
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        auto saved = ctx->get_saved_variables();
        auto input = saved[0];
        auto weight = saved[1];
        auto bias = saved[2];

        auto grad_output = grad_outputs[0];
        auto grad_input = matmul(grad_output, weight);                  // grad_output.mm(weight)
        auto grad_weight = matmul(grad_output.transpose(0, 1), input);  // grad_output.t().mm(input)
        auto grad_bias = Variable();
        if (bias.defined()) {
            grad_bias = grad_output.sum({0});  // grad_output.sum(0)
        }

        return {grad_input, grad_weight, grad_bias};
    }
};

class MulConstant : public Function<MulConstant> {
public:
    static Variable forward(AutogradContext* ctx, Variable variable, double constant) {
        // ctx is a context object that can be used to stash information
        // for backward computation
        ctx->saved_data["constant"] = constant;
        return variable * constant;
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        // We return as many input gradients as there were arguments.
        // Gradients of non-Variable arguments to forward must be `Variable()`.
        return {grad_outputs[0] * ctx->saved_data["constant"].toDouble(), Variable()};
    }
};
}  // namespace libtorch_port

TEST_CASE("libtorch's MulConstant, ported as written, matches PyTorch") {
    Tensor x = leaf("mul_constant.x");
    auto y = libtorch_port::MulConstant::apply(x, 5.5);
    y.sum().backward();
    CHECK(close(y, ref("mul_constant.y")));
    CHECK(close(x.grad(), ref("mul_constant.grad")));
}

TEST_CASE("libtorch's LinearFunction, ported as written, matches PyTorch with and without bias") {
    Tensor x = leaf("linear.x"), weight = leaf("linear.weight"), bias = leaf("linear.bias");
    const Tensor& cot = ref("linear.cot");
    // Three arguments: backward returns one gradient each.
    Tensor y = libtorch_port::LinearFunction::apply(x, weight, bias);
    CHECK(close(y, ref("linear.y")));
    auto g = tg::grad({(y * cot).sum()}, {x, weight, bias});
    CHECK(close(g[0], ref("linear.grad_x")));
    CHECK(close(g[1], ref("linear.grad_weight")));
    CHECK(close(g[2], ref("linear.grad_bias")));
    // Two arguments (bias takes its default): the third, undefined gradient is ignored.
    y = libtorch_port::LinearFunction::apply(x, weight);
    CHECK(close(y, ref("linear_nobias.y")));
    g = tg::grad({(y * cot).sum()}, {x, weight});
    CHECK(close(g[0], ref("linear_nobias.grad_x")));
    CHECK(close(g[1], ref("linear_nobias.grad_weight")));
}

namespace {
struct Exp : tg::Function<Exp> {
    static constexpr const char* name = "my_exp";
    static Tensor forward(tg::FunctionCtx& ctx, const Tensor& x) {
        Tensor y = tg::exp(x);
        ctx.save_for_backward({y});
        return y;
    }
    static std::vector<Tensor> backward(tg::FunctionCtx& ctx, const Tensor& g) { return {g * ctx.saved()[0]}; }
};

// d sum(loss(x)) / dx, and the derivative of its sum, through tg::grad(create_graph=true).
std::pair<Tensor, Tensor> first_and_second(const std::function<Tensor(const Tensor&)>& loss, const Tensor& x) {
    const Tensor g = tg::grad({loss(x)}, {x}, {}, std::nullopt, true)[0];
    return {g, tg::grad({g.sum()}, {x})[0]};
}
}  // namespace

TEST_CASE("a saved output keeps its history: the second derivative of exp through a Function") {
    const Tensor x = leaf("exp.x");
    CHECK(close(Exp::apply(x), ref("exp.y")));
    const auto [g, g2] = first_and_second([](const Tensor& t) { return Exp::apply(t).sum(); }, x);
    CHECK(close(g, ref("exp.grad")));
    CHECK(close(g2, ref("exp.grad2")));
    CHECK(tg::allclose(g2, tg::exp(x.detach()), 1e-12, 0));  // d2/dx2 exp = exp, not half of it
    const auto check = tg::gradgradcheck([](const std::vector<Tensor>& in) { return Exp::apply(in[0]); }, {x});
    CHECK_MESSAGE(check.passed, check.message);
}

TEST_CASE("saving an output makes no reference cycle: every node is freed with the graph") {
    const int64_t before = tg::Node::live_count();
    {
        Tensor x = tg::tensor({0.5, -1.0}, {.dtype = tg::kFloat64, .requires_grad = true});
        Tensor y = Exp::apply(x);
        CHECK(y.grad_fn()->name() == "my_exp");
        CHECK(tg::Node::live_count() > before);
        y.sum().backward();
        CHECK(close(x.grad(), tg::exp(x.detach())));
    }
    {
        Tensor x = tg::tensor({0.5, -1.0}, {.dtype = tg::kFloat64, .requires_grad = true});
        Tensor y = Exp::apply(x);  // the graph kept, never run
    }
    CHECK(tg::Node::live_count() == before);
}

// ---- several outputs
namespace {
struct TanhSquare : tg::Function<TanhSquare> {
    static constexpr const char* name = "tanh_square";
    static inline std::vector<Tensor> seen;  // the gradients backward received
    static std::vector<Tensor> forward(tg::FunctionCtx& ctx, const Tensor& x, bool materialize) {
        ctx.save_for_backward({x});
        ctx.set_materialize_grads(materialize);
        return {tg::tanh(x), x * x};
    }
    static std::vector<Tensor> backward(tg::FunctionCtx& ctx, std::vector<Tensor> g) {
        seen = g;
        const Tensor x = ctx.saved()[0];
        Tensor dx;
        if (g[0].defined()) dx = g[0] * (1.0 - tg::tanh(x) * tg::tanh(x));
        if (g[1].defined()) dx = dx.defined() ? dx + g[1] * 2.0 * x : g[1] * 2.0 * x;
        return {dx, Tensor()};
    }
};

// Saves both of its outputs; the tuple form of several outputs.
struct ExpPair : tg::Function<ExpPair> {
    static std::tuple<Tensor, Tensor> forward(tg::FunctionCtx& ctx, const Tensor& x) {
        Tensor y1 = tg::exp(x), y2 = tg::exp(x * 2.0);
        ctx.save_for_backward({y1, y2});
        return {y1, y2};
    }
    static std::vector<Tensor> backward(tg::FunctionCtx& ctx, const std::vector<Tensor>& g) {
        const auto saved = ctx.get_saved_variables();
        return {g[0] * saved[0] + g[1] * 2.0 * saved[1]};
    }
};
}  // namespace

TEST_CASE("a Function with two outputs matches PyTorch, and backward gets zeros for an unused one") {
    const Tensor x = leaf("tanh_square.x");
    const Tensor &c0 = ref("tanh_square.c0"), &c1 = ref("tanh_square.c1");
    auto loss = [&](const Tensor& t) {
        const auto out = TanhSquare::apply(t, true);
        return (c0 * out[0] + c1 * out[1]).sum();
    };
    const auto [g, g2] = first_and_second(loss, x);
    CHECK(close(g, ref("tanh_square.grad")));
    CHECK(close(g2, ref("tanh_square.grad2")));

    const auto out = TanhSquare::apply(x, true);
    CHECK(out[0].grad_fn()->name() == "tanh_square[0]");
    CHECK(out[1].grad_fn()->name() == "tanh_square[1]");
    CHECK(close(tg::grad({(c0 * out[0]).sum()}, {x})[0], ref("tanh_square.grad_tanh_only")));
    REQUIRE(TanhSquare::seen.size() == 2);
    CHECK(close(TanhSquare::seen[1], tg::zeros({2, 3}, {.dtype = tg::kFloat64})));
}

TEST_CASE("set_materialize_grads(false): backward gets an undefined gradient for an unused output") {
    const Tensor x = leaf("tanh_square.x");
    const auto out = TanhSquare::apply(x, false);
    CHECK(close(tg::grad({(ref("tanh_square.c0") * out[0]).sum()}, {x})[0], ref("tanh_square.grad_tanh_only")));
    REQUIRE(TanhSquare::seen.size() == 2);
    CHECK(TanhSquare::seen[0].defined());
    CHECK_FALSE(TanhSquare::seen[1].defined());
    // The square output alone: the tanh gradient is the one missing.
    const Tensor g = tg::grad({TanhSquare::apply(x, false)[1].sum()}, {x})[0];
    CHECK(close(g, x.detach() * 2.0));
    CHECK_FALSE(TanhSquare::seen[0].defined());
}

TEST_CASE("saved outputs of a two-output Function keep their history, also when one output is dropped") {
    const Tensor x = leaf("exp_pair.x");
    const Tensor &a = ref("exp_pair.a"), &b = ref("exp_pair.b");
    const auto [g, g2] = first_and_second(
        [&](const Tensor& t) {
            auto [y1, y2] = ExpPair::apply(t);
            return (a * y1 + b * y2).sum();
        },
        x);
    CHECK(close(g, ref("exp_pair.grad")));
    CHECK(close(g2, ref("exp_pair.grad2")));
    // d2/dx2 (a e^x + b e^2x) = a e^x + 4 b e^2x
    const Tensor xd = x.detach();
    CHECK(tg::allclose(g2, a * tg::exp(xd) + b * 4.0 * tg::exp(xd * 2.0), 1e-12, 1e-12));
    // The second output is never used and gone before backward: its saved value still has history.
    const auto [h, h2] = first_and_second([&](const Tensor& t) { return (a * std::get<0>(ExpPair::apply(t))).sum(); }, x);
    CHECK(close(h2, ref("exp_pair.grad2_first_only")));
    const int64_t before = tg::Node::live_count();
    {
        auto [y1, y2] = ExpPair::apply(x);
        tg::grad({(y1 + y2).sum()}, {x}, {}, std::nullopt, true);
    }
    CHECK(tg::Node::live_count() == before);
}

TEST_CASE("outputs of a two-output Function take hooks and are valid grad() inputs") {
    Tensor x = tg::tensor({0.3, -1.2}, {.dtype = tg::kFloat64, .requires_grad = true});
    auto [y1, y2] = ExpPair::apply(x);
    Tensor seen;
    y2.register_hook([&](const Tensor& g) {
        seen = g;
        return g * 3.0;
    });
    const Tensor u = y1 * 2.0, v = y2 * 5.0;
    const auto g = tg::grad({(u + v).sum()}, {y2, x});
    CHECK(close(seen, tg::full({2}, 5.0, {.dtype = tg::kFloat64})));
    // The hook tripled y2's gradient, before grad() took it and before it reached the function.
    CHECK(close(g[0], seen * 3.0));
    CHECK(close(g[1], tg::exp(x.detach()) * 2.0 + tg::exp(x.detach() * 2.0) * 30.0));
}

TEST_CASE("gradcheck and gradgradcheck pass through the ported LinearFunction and two-output Functions") {
    using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
    const Fn linear = [](const std::vector<Tensor>& in) { return libtorch_port::LinearFunction::apply(in[0], in[1], in[2]); };
    const Fn tanh_square = [](const std::vector<Tensor>& in) {
        const auto out = TanhSquare::apply(in[0], false);
        return out[0] * out[1];
    };
    const Fn exp_pair = [](const std::vector<Tensor>& in) {
        auto [y1, y2] = ExpPair::apply(in[0]);
        return y1 * y2 + y2;
    };
    const std::vector<std::pair<Fn, std::vector<Tensor>>> cases = {
        {linear, {leaf("linear.x"), leaf("linear.weight"), leaf("linear.bias")}},
        {tanh_square, {leaf("tanh_square.x")}},
        {exp_pair, {leaf("exp_pair.x")}},
    };
    for (const auto& [fn, inputs] : cases) {
        const auto first = tg::gradcheck(fn, inputs);
        CHECK_MESSAGE(first.passed, first.message);
        const auto second = tg::gradgradcheck(fn, inputs);
        CHECK_MESSAGE(second.passed, second.message);
    }
}
