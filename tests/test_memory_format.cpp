// Memory formats as PyTorch 1.13 propagates them: suggest_memory_format's stride rule, conv2d's
// output layout (channels-last iff the input or the weight is), layouts kept by pooling,
// batch_norm and elementwise ops, and channels-last as an opt-in (Tensor::to, Module::to). What
// this buys: x.view({-1, k}) after a convolution works wherever it works in PyTorch.
// PyTorch's answers are what tests/memory_format_pytorch.py prints.
#include <doctest/doctest.h>

#include <vector>

#include "engine/tensor_math.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
using tg::MemoryFormat;
using tg::Tensor;

namespace {

// Small integers (i % mod - shift), so that every sum below is exact in float32.
Tensor ints(const tg::Shape& shape, int64_t mod, int64_t shift, tg::DType dtype = tg::kFloat32) {
    std::vector<double> values(static_cast<std::size_t>(tg::numel_of(shape)));
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(static_cast<int64_t>(i) % mod - shift);
    return tg::from_vector(values, shape).to(dtype);
}

// tests/memory_format_pytorch.py's inputs.
struct ConvCase {
    Tensor x = ints({2, 3, 4, 4}, 7, 3), w = ints({4, 3, 3, 3}, 5, 2), b = tg::tensor({1.0, -2.0, 0.0, 3.0});
};

Tensor in_format(const Tensor& t, MemoryFormat format, bool requires_grad = false) {
    Tensor c = t.detach().contiguous(format).detach();
    if (requires_grad) c.requires_grad_();
    return c;
}

MemoryFormat layout_of(const Tensor& t) {
    REQUIRE((t.is_contiguous() || t.is_contiguous(MemoryFormat::ChannelsLast)));
    return t.is_contiguous() ? MemoryFormat::Contiguous : MemoryFormat::ChannelsLast;
}

std::vector<int64_t> as_ints(const Tensor& t) {
    std::vector<int64_t> out;
    for (double v : t.to_vector<double>()) out.push_back(static_cast<int64_t>(v));
    return out;
}

}  // namespace

TEST_CASE("suggest_memory_format follows PyTorch's stride rule, size-1 ties included") {
    const Tensor base = tg::arange(200, {.dtype = tg::kFloat32});
    struct Case {
        tg::Shape shape;
        tg::Strides strides;
        MemoryFormat pytorch;
    };
    const std::vector<Case> cases{
        {{2, 3, 1, 1}, {3, 1, 3, 3}, MemoryFormat::ChannelsLast},   // channels-last strides of N,C,1,1
        {{2, 3, 1, 1}, {3, 1, 1, 1}, MemoryFormat::Contiguous},     // row-major strides of the same
        {{2, 1, 4, 4}, {16, 1, 4, 1}, MemoryFormat::ChannelsLast},  // N,1,H,W: only the channel stride differs
        {{2, 3, 4, 4}, {96, 1, 24, 3}, MemoryFormat::ChannelsLast}, // a slice of channels-last memory
        {{2, 3, 4, 4}, {48, 0, 12, 3}, MemoryFormat::Contiguous},   // a broadcast channel
        {{1, 3, 1, 4}, {12, 1, 12, 3}, MemoryFormat::ChannelsLast},
        {{2, 1, 1, 1}, {1, 1, 1, 1}, MemoryFormat::Contiguous},     // N,1,1,1: ambiguous, row-major
    };
    for (const Case& c : cases) {
        CAPTURE(tg::to_string(c.shape));
        CAPTURE(tg::to_string(c.strides));
        const Tensor t = tg::as_strided(base, c.shape, c.strides);
        CHECK(t.suggest_memory_format() == c.pytorch);
        // conv2d's output takes the suggested layout (PyTorch's probe of the same cases).
        const Tensor out = tg::conv2d(t, tg::ones({2, c.shape[1], 1, 1}));
        if (c.pytorch == MemoryFormat::ChannelsLast) CHECK(out.strides() == tg::channels_last_strides(out.shape()));
        else CHECK(out.strides() == tg::contiguous_strides(out.shape()));
    }
    CHECK(tg::zeros({2, 3, 4, 4}).suggest_memory_format() == MemoryFormat::Contiguous);
    CHECK(tg::zeros({3, 4, 5}).suggest_memory_format() == MemoryFormat::Contiguous);
}

TEST_CASE("conv2d of a row-major input is row-major: view({-1, 16}) works and gives PyTorch's values") {
    const ConvCase c;
    // conv2d(x, w, b, padding=1).view(-1, 16)[:, :4] and the row sums, from PyTorch.
    const std::vector<int64_t> first4{4,   -3, -3, -1, -5, -4, 25,  -9,  -14, 0,  -17, -7, 18, 15, -3, 1,
                                      17,  -3, -3, 0,  2,  -12, -4, 16, -13, -11, 0,  -18, 8,  26, 15, 14};
    const std::vector<int64_t> row_sums{20, -44, -23, 69, 28, -63, -9, 81};
    auto check = [&](const Tensor& x, const Tensor& w, const Tensor& b) {
        const Tensor y = tg::conv2d(x, w, b, {.padding = 1});
        CHECK(y.is_contiguous());
        const Tensor rows = y.view({-1, 16});
        CHECK(as_ints(rows.slice(1, 0, 4)) == first4);
        CHECK(as_ints(rows.sum({1})) == row_sums);
    };
    SUBCASE("fast float32") { check(c.x, c.w, c.b); }
    SUBCASE("reference float32") {
        tg::ReferenceKernelsGuard reference;
        check(c.x, c.w, c.b);
    }
    SUBCASE("float64") { check(c.x.to(tg::kFloat64), c.w.to(tg::kFloat64), c.b.to(tg::kFloat64)); }
    SUBCASE("through nn::Conv2d and a flatten as libtorch code writes it") {
        tg::Generator gen(0);
        tg::nn::Conv2d conv(3, 4, 3, gen, {.padding = 1});
        const Tensor y = conv.forward(c.x);
        CHECK(y.view({-1, 4 * 16}).shape() == tg::Shape{2, 64});
    }
}

TEST_CASE("conv2d is channels-last iff the input or the weight is; conv_transpose2d is row-major, as in PyTorch 1.13") {
    const ConvCase c;
    const Tensor y = tg::conv2d(c.x, c.w, c.b, {.padding = 1});
    for (const MemoryFormat xf : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        for (const MemoryFormat wf : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
            const bool channels_last = xf == MemoryFormat::ChannelsLast || wf == MemoryFormat::ChannelsLast;
            CAPTURE(xf == MemoryFormat::ChannelsLast);
            CAPTURE(wf == MemoryFormat::ChannelsLast);
            for (const bool reference : {false, true}) {
                CAPTURE(reference);
                std::optional<tg::ReferenceKernelsGuard> guard;
                if (reference) guard.emplace();
                const Tensor out = tg::conv2d(in_format(c.x, xf), in_format(c.w, wf), c.b, {.padding = 1});
                CHECK(layout_of(out) == (channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous));
                CHECK(tg::max_abs_diff(out, y) == 0.0);
                const Tensor t = tg::conv_transpose2d(in_format(y, xf), in_format(c.w, wf));
                CHECK(layout_of(t) == MemoryFormat::Contiguous);
            }
        }
    }
}

TEST_CASE("conv2d reads channels-last weights in place, grouped and depthwise too, with the same values") {
    tg::Generator gen(8);
    const Tensor x = tg::randn({2, 4, 6, 6}, gen);
    for (const int64_t groups : {1, 2, 4}) {
        CAPTURE(groups);
        const Tensor w = tg::randn({8, 4 / groups, 3, 3}, gen), b = tg::randn({8}, gen);
        Tensor wr = w.detach().requires_grad_(), wl = in_format(w, MemoryFormat::ChannelsLast, true);
        Tensor xr = x.detach().requires_grad_(), xl = x.detach().requires_grad_();
        const Tensor yr = tg::conv2d(xr, wr, b, {.padding = 1, .groups = groups});
        const Tensor yl = tg::conv2d(xl, wl, b, {.padding = 1, .groups = groups});
        // With one channel per group a row-major weight is channels-last too, and contiguous(ChannelsLast)
        // leaves it as it is, as PyTorch's does: its strides suggest row-major.
        CHECK(layout_of(yl) == (groups == 4 ? MemoryFormat::Contiguous : MemoryFormat::ChannelsLast));
        CHECK(tg::max_abs_diff(yl, yr) == 0.0);
        const Tensor g = tg::randn(yr.shape(), gen);
        yr.backward(g);
        yl.backward(g);
        CHECK(tg::max_abs_diff(xl.grad(), xr.grad()) == 0.0);
        CHECK(tg::max_abs_diff(wl.grad(), wr.grad()) == 0.0);
        CHECK(wl.grad().is_contiguous(MemoryFormat::ChannelsLast));  // with one channel per group, also row-major
    }
}

TEST_CASE("conv2d's gradients come back in the input's and the weight's layouts, with the same values in either") {
    const ConvCase c;
    tg::Generator gen(4);
    const Tensor g = tg::randn({2, 4, 2, 2}, gen);
    struct Result {
        Tensor out, dx, dw, db;
    };
    auto run = [&](MemoryFormat xf, MemoryFormat wf, MemoryFormat gf) {
        Tensor x = in_format(c.x, xf, true), w = in_format(c.w, wf, true), b = c.b.detach().requires_grad_();
        Tensor out = tg::conv2d(x, w, b, {.stride = 2, .padding = 1});
        out.backward(in_format(g, gf));
        CHECK(layout_of(x.grad()) == xf);
        CHECK(layout_of(w.grad()) == wf);
        return Result{out, x.grad(), w.grad(), b.grad()};
    };
    for (const bool reference : {false, true}) {
        CAPTURE(reference);
        std::optional<tg::ReferenceKernelsGuard> guard;
        if (reference) guard.emplace();
        const Result base = run(MemoryFormat::Contiguous, MemoryFormat::Contiguous, MemoryFormat::Contiguous);
        for (const MemoryFormat xf : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast})
            for (const MemoryFormat wf : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast})
                for (const MemoryFormat gf : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
                    const Result r = run(xf, wf, gf);
                    // The same kernels on the same values: only the copies around them differ.
                    CHECK(tg::max_abs_diff(r.out, base.out) == 0.0);
                    CHECK(tg::max_abs_diff(r.dx, base.dx) == 0.0);
                    CHECK(tg::max_abs_diff(r.dw, base.dw) == 0.0);
                    CHECK(tg::max_abs_diff(r.db, base.db) == 0.0);
                }
    }
}

TEST_CASE("conv_transpose2d's gradients come back in the input's and the weight's layouts") {
    tg::Generator gen(5);
    const Tensor x0 = tg::randn({2, 4, 3, 3}, gen), w0 = tg::randn({4, 3, 3, 3}, gen);
    for (const MemoryFormat f : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        Tensor x = in_format(x0, f, true), w = in_format(w0, f, true);
        tg::conv_transpose2d(x, w, Tensor(), {.stride = 2}).sum().backward();
        CHECK(layout_of(x.grad()) == f);
        CHECK(layout_of(w.grad()) == f);
    }
}

TEST_CASE("channel_shuffle (view, transpose, contiguous, view) after a convolution gives PyTorch's channels") {
    const ConvCase c;
    for (const MemoryFormat f : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        const Tensor y = tg::conv2d(in_format(c.x, f), c.w, c.b, {.padding = 1});
        const Tensor s = y.view({2, 2, 2, 4, 4}).transpose(1, 2).contiguous().view({2, 4, 4, 4});
        CHECK(as_ints(s.select(0, 0).sum({1, 2})) == std::vector<int64_t>{20, -23, -44, 69});
    }
}

TEST_CASE("pooling, batch_norm, activations and elementwise ops keep the input's layout") {
    tg::Generator gen(6);
    const Tensor x0 = tg::randn({2, 3, 6, 6}, gen);
    const Tensor gamma = tg::ones({3}), beta = tg::zeros({3});
    for (const MemoryFormat f : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        CAPTURE(f == MemoryFormat::ChannelsLast);
        Tensor x = in_format(x0, f, true);
        const std::vector<Tensor> outs{tg::relu(x),
                                       x + x,
                                       x * 2.0,
                                       tg::max_pool2d(x, {.kernel_size = 2}),
                                       tg::avg_pool2d(x, {.kernel_size = 2}),
                                       tg::adaptive_avg_pool2d(x, {3, 3}),
                                       tg::batch_norm(x, Tensor(), Tensor(), gamma, beta)};
        for (const Tensor& out : outs) {
            CHECK(layout_of(out) == f);
            x.zero_grad();
            out.backward(tg::ones(out.shape()));
            CHECK(layout_of(x.grad()) == f);
        }
    }
}

TEST_CASE("Tensor::to and Module::to make channels-last an opt-in, with the same values") {
    tg::Generator gen(7);
    const Tensor x = tg::randn({2, 3, 8, 8}, gen);
    const Tensor xl = x.to(MemoryFormat::ChannelsLast);
    CHECK(layout_of(xl) == MemoryFormat::ChannelsLast);
    CHECK(tg::max_abs_diff(xl, x) == 0.0);
    CHECK(xl.to(MemoryFormat::ChannelsLast).same(xl));
    CHECK(layout_of(xl.to(MemoryFormat::Contiguous)) == MemoryFormat::Contiguous);

    tg::nn::Sequential model{std::make_shared<tg::nn::Conv2d>(3, 4, 3, gen, tg::Conv2dOptions{.padding = 1}),
                             std::make_shared<tg::nn::BatchNorm2d>(4)};
    const Tensor before = model.forward(x);
    CHECK(layout_of(before) == MemoryFormat::Contiguous);
    model.forward(x).sum().backward();
    const Tensor weight = model.named_parameters().front().second;
    REQUIRE(weight.dim() == 4);
    const Tensor grad_before = weight.grad().detach().clone();
    model.to(MemoryFormat::ChannelsLast);
    CHECK(layout_of(weight) == MemoryFormat::ChannelsLast);       // the layer's own handle sees it
    CHECK(layout_of(weight.grad()) == MemoryFormat::ChannelsLast);  // as PyTorch's _apply converts .grad
    CHECK(tg::max_abs_diff(weight.grad(), grad_before) == 0.0);
    for (const auto& [name, p] : model.named_parameters())
        if (p.dim() != 4) CHECK(p.is_contiguous());  // only 4-D tensors have the format
    // A row-major input through channels-last weights: a channels-last output, the same values.
    const Tensor after = model.forward(x);
    CHECK(layout_of(after) == MemoryFormat::ChannelsLast);
    CHECK(tg::max_abs_diff(after, before) == 0.0);
    model.to(MemoryFormat::Contiguous);
    CHECK(weight.is_contiguous());
}
