// What a user-defined Function's ctx offers (saved_data of any IValue type, needs_input_grad,
// mark_dirty, mark_non_differentiable), the arguments and outputs apply accepts, and the errors for
// a Function written wrong, each compared with what PyTorch 1.13 does. The values against PyTorch's
// are in tests/test_custom_function.cpp.
#include <doctest/doctest.h>

#include <optional>

#include "error_text.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
using tg::Tensor;
using tg::testing::contains;
using tg::testing::error_of;

namespace {
Tensor vec(std::initializer_list<double> v, bool requires_grad = true) {
    return tg::tensor(v, {.dtype = tg::kFloat64, .requires_grad = requires_grad});
}
bool close(const Tensor& got, const Tensor& want) { return got.defined() && tg::allclose(got, want, 1e-12, 1e-12); }

// Scales by a factor kept in saved_data as every IValue type, each read back in backward.
struct ScaleBySaved : tg::Function<ScaleBySaved> {
    static Tensor forward(tg::AutogradContext* ctx, const Tensor& x, int64_t factor, const std::string& mode) {
        ctx->saved_data["factor"] = factor;
        ctx->saved_data["half"] = 0.5;
        ctx->saved_data["negate"] = mode == "negate";
        ctx->saved_data["mode"] = mode;
        ctx->saved_data["offset"] = tg::full(x.shape(), 1.0, {.dtype = x.dtype()});
        ctx->saved_data["tensors"] = std::vector<Tensor>{x, x};
        ctx->saved_data["ints"] = std::vector<int>{2, 3};
        ctx->saved_data["doubles"] = std::vector<double>{0.25, 4.0};
        return x * static_cast<double>(factor);
    }
    static tg::variable_list backward(tg::AutogradContext* ctx, tg::variable_list g) {
        const auto& d = ctx->saved_data;
        CHECK(d.at("half").toDouble() == 0.5);
        CHECK(d.at("mode").toStringRef() == (d.at("negate").toBool() ? "negate" : "keep"));
        CHECK(d.at("tensors").toTensorList().size() == 2);
        CHECK(d.at("ints").toIntVector() == std::vector<int64_t>{2, 3});
        CHECK(d.at("doubles").toDoubleList() == std::vector<double>{0.25, 4.0});
        CHECK(close(d.at("offset").toTensor(), tg::ones_like(g[0])));
        // A double read the way saved_data was read when it held doubles only.
        const double half = d.at("half");
        const double factor = static_cast<double>(d.at("factor").toInt()) * half * 2.0;
        return {g[0] * factor, Tensor(), Tensor()};
    }
};
}  // namespace

TEST_CASE("saved_data holds ints, doubles, bools, strings, tensors and lists, as libtorch's IValue") {
    Tensor x = vec({1.0, -2.0});
    ScaleBySaved::apply(x, int64_t{3}, std::string("keep")).sum().backward();
    CHECK(close(x.grad(), vec({3.0, 3.0}, false)));

    tg::IValue i = 3, b = true, s = "mode", none;
    CHECK(i.isInt());
    CHECK(i.tagKind() == "Int");
    CHECK(b.isBool());
    CHECK(s.isString());
    CHECK(none.isNone());
    const std::string wrong = error_of([&] { i.toDouble(); });
    CHECK(contains(wrong, "toDouble"));
    CHECK(contains(wrong, "an Int (3)"));
    CHECK(contains(wrong, "toInt()"));
    CHECK(contains(error_of([&] { s.toTensor(); }), "a String, not a Tensor"));
    CHECK(contains(error_of([&] { none.toBool(); }), "never set"));
    CHECK(contains(error_of([&] { static_cast<void>(static_cast<double>(s)); }), "not a number"));
}

namespace {
struct AddBoth : tg::Function<AddBoth> {
    static inline std::vector<bool> seen;
    static Tensor forward(tg::FunctionCtx* ctx, const Tensor& a, std::optional<Tensor> b, const Tensor& c) {
        ctx->save_for_backward({a});
        return b ? a + *b + c : a + c;
    }
    static tg::variable_list backward(tg::FunctionCtx* ctx, tg::variable_list g) {
        CHECK(ctx->get_saved_variables().size() == 1);
        seen = {ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad[2]};
        return {g[0], g[0], g[0]};
    }
};
}  // namespace

TEST_CASE("needs_input_grad(i) and an optional tensor argument, as libtorch") {
    Tensor a = vec({1.0}), b = vec({2.0}, false), c = vec({3.0});
    // Three tensor inputs, one per argument; b needs no gradient.
    AddBoth::apply(a, std::optional<Tensor>(b), c).sum().backward();
    CHECK(AddBoth::seen == std::vector<bool>{true, false, true});
    // An empty optional is no tensor argument: a and c are inputs 0 and 1, and backward's middle
    // gradient (for the optional) must then be undefined.
    const std::string err = error_of([&] { AddBoth::apply(a, std::optional<Tensor>(), c).sum().backward(); });
    CHECK(contains(err, "argument 1 of forward, which is not a tensor"));
}

namespace {
// Adds one to its input in place and returns it, as libtorch's mark_dirty example.
struct AddOneInPlace : tg::Function<AddOneInPlace> {
    static constexpr const char* name = "add_one_";
    static Tensor forward(tg::FunctionCtx& ctx, Tensor x) {
        x.add_(1.0);
        ctx.mark_dirty({x});
        return x;
    }
    static std::vector<Tensor> backward(tg::FunctionCtx&, const Tensor& g) { return {g}; }
};
}  // namespace

TEST_CASE("mark_dirty: the input written in place is returned and takes the function's history") {
    Tensor a = vec({1.0, 2.0});
    Tensor x = a * 3.0;
    Tensor y = AddOneInPlace::apply(x);
    CHECK(y.same(x));
    CHECK(x.grad_fn()->name() == "add_one_");
    CHECK(close(x.detach(), vec({4.0, 7.0}, false)));
    (y * y).sum().backward();
    CHECK(close(a.grad(), vec({24.0, 42.0}, false)));  // 2 y * 3

    // A tensor saved before the write is refused, as after any in-place op.
    Tensor x2 = a * 3.0;
    Tensor z = x2 * x2;
    AddOneInPlace::apply(x2);
    CHECK(contains(error_of([&] { z.sum().backward(); }), "modified by an in-place operation"));
    // A leaf that requires grad cannot be written in place (PyTorch raises the same).
    CHECK(contains(error_of([&] { AddOneInPlace::apply(a); }), "leaf tensor that requires grad"));
    // A view, as tapegrad's in-place ops refuse it (PyTorch would rewrite the base's history).
    CHECK(contains(error_of([&] { AddOneInPlace::apply((a * 1.0).narrow(0, 0, 1)); }), "a view of another tensor"));
}

namespace {
// Returns its input doubled and a mask of its positive elements, which has no gradient.
struct DoubleAndMask : tg::Function<DoubleAndMask> {
    static inline std::vector<Tensor> seen;
    static std::vector<Tensor> forward(tg::FunctionCtx& ctx, const Tensor& x) {
        Tensor mask = tg::from_vector(std::vector<double>{1.0, 0.0}, {2}, {.dtype = x.dtype()});
        Tensor index = tg::argmax(x);  // int64: never differentiable
        ctx.mark_non_differentiable({mask});
        return {x * 2.0, mask, index};
    }
    static std::vector<Tensor> backward(tg::FunctionCtx&, const std::vector<Tensor>& g) {
        seen = g;
        return {g[0] * 2.0};
    }
};
}  // namespace

TEST_CASE("non-differentiable outputs need no gradient, and backward gets zeros for them") {
    Tensor x = vec({1.0, -1.0});
    const auto out = DoubleAndMask::apply(x);
    CHECK(out[0].requires_grad());
    CHECK(out[0].grad_fn()->name() == "custom_function");  // one differentiable output: no split needed
    CHECK_FALSE(out[1].requires_grad());
    CHECK_FALSE(out[2].requires_grad());
    out[0].sum().backward();
    CHECK(close(x.grad(), vec({2.0, 2.0}, false)));
    REQUIRE(DoubleAndMask::seen.size() == 3);
    CHECK(close(DoubleAndMask::seen[1], tg::zeros({2}, {.dtype = tg::kFloat64})));
    CHECK(DoubleAndMask::seen[2].dtype() == tg::kInt64);
    CHECK(DoubleAndMask::seen[2].shape() == tg::Shape{});
}

namespace {
struct Identity : tg::Function<Identity> {
    static Tensor forward(tg::FunctionCtx& ctx, const Tensor& x) {
        ctx.save_for_backward({x});
        return x;
    }
    static std::vector<Tensor> backward(tg::FunctionCtx& ctx, const Tensor& g) {
        CHECK(ctx.saved()[0].defined());
        return {g};
    }
};
// float32 and float64 outputs of one function.
struct MixedPrecision : tg::Function<MixedPrecision> {
    static std::tuple<Tensor, Tensor> forward(tg::FunctionCtx&, const Tensor& x) { return {x * 2.0, x.to(tg::kFloat32) * 3.0}; }
    static std::vector<Tensor> backward(tg::FunctionCtx&, const std::vector<Tensor>& g) {
        CHECK(g[1].dtype() == tg::kFloat32);
        return {g[0] * 2.0 + g[1].to(tg::kFloat64) * 3.0};
    }
};
}  // namespace

TEST_CASE("an input returned as it is becomes a new tensor with the function's history") {
    Tensor a = vec({1.0, 2.0});
    Tensor x = a * 1.0;
    const auto x_history = x.grad_fn();
    Tensor y = Identity::apply(x);
    CHECK_FALSE(y.same(x));
    CHECK(y.data_ptr() == x.data_ptr());
    CHECK(x.grad_fn() == x_history);
    (y * 5.0).sum().backward();
    CHECK(close(a.grad(), vec({5.0, 5.0}, false)));
}

TEST_CASE("outputs of different float dtypes get gradients of their own dtype") {
    Tensor x = vec({1.0, 2.0});
    auto [y64, y32] = MixedPrecision::apply(x);
    CHECK(y32.dtype() == tg::kFloat32);
    (y64.sum() + y32.sum().to(tg::kFloat64)).backward();
    CHECK(close(x.grad(), vec({5.0, 5.0}, false)));
}

namespace {
struct WrongCount : tg::Function<WrongCount> {
    static constexpr const char* name = "wrong_count";
    static Tensor forward(tg::FunctionCtx&, const Tensor& a, const Tensor& b, double) { return a + b; }
    static std::vector<Tensor> backward(tg::FunctionCtx&, const Tensor& g) { return {g, g, g, g}; }
};
struct TwoOutputsOneGrad : tg::Function<TwoOutputsOneGrad> {
    static std::vector<Tensor> forward(tg::FunctionCtx&, const Tensor& x) { return {x * 1.0, x * 2.0}; }
    static std::vector<Tensor> backward(tg::FunctionCtx&, const Tensor& g) { return {g}; }
};
struct ReturnsUndefined : tg::Function<ReturnsUndefined> {
    static constexpr const char* name = "returns_undefined";
    static std::vector<Tensor> forward(tg::FunctionCtx&, const Tensor& x) { return {x * 1.0, Tensor()}; }
    static std::vector<Tensor> backward(tg::FunctionCtx&, const std::vector<Tensor>& g) { return {g[0]}; }
};
struct ForgetsDirty : tg::Function<ForgetsDirty> {
    static Tensor forward(tg::FunctionCtx& ctx, Tensor x) {
        ctx.mark_dirty({x});
        return x * 1.0;
    }
    static std::vector<Tensor> backward(tg::FunctionCtx&, const Tensor& g) { return {g}; }
};
}  // namespace

TEST_CASE("a Function written wrong gets an error that names it and says what to return") {
    Tensor a = vec({1.0}), b = vec({2.0});
    const std::string count = error_of([&] { WrongCount::apply(a, b, 1.0).sum().backward(); });
    CHECK(contains(count, "wrong_count: backward returned 4 gradients"));
    CHECK(contains(count, "3 arguments, 2 of them tensors"));
    CHECK_FALSE(a.grad().defined());
    CHECK(contains(error_of([&] { TwoOutputsOneGrad::apply(a)[0].sum().backward(); }), "std::vector<Tensor> grad_outputs"));
    CHECK(contains(error_of([&] { ReturnsUndefined::apply(a); }),
                   "returns_undefined: forward returned an undefined tensor as output 1"));
    CHECK(contains(error_of([&] { ForgetsDirty::apply(a * 1.0); }), "did not return it"));
}
