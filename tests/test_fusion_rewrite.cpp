// Fusion as a rewrite of recorded ops (ops/detail/fusion.hpp): relu of a batch_norm result that
// nobody else can read becomes batch_norm_relu's node, with batch_norm_relu's values and
// gradients bit for bit; where the batch norm's result is observable (kept by the caller, viewed,
// hooked, fed to another op) the two ops run separately and the result keeps its values.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

struct Inputs {
    Tensor x, w, b, mean, var;
};

// With a NaN (for eval mode: in training it would make its channel's statistics NaN), which
// passes through relu, forward and backward.
Inputs make_inputs(tg::MemoryFormat format, uint64_t seed, bool with_nan = false) {
    tg::Generator gen(seed);
    std::vector<double> v = tg::randn({4, 3, 5, 5}, gen).to_vector<double>();
    if (with_nan) v[17] = std::numeric_limits<double>::quiet_NaN();
    return {tg::from_vector(v, {4, 3, 5, 5}).contiguous(format), tg::uniform({3}, 0.5, 1.5, gen), tg::randn({3}, gen),
            tg::randn({3}, gen), tg::uniform({3}, 0.5, 2.0, gen)};
}

struct Result {
    Tensor out;
    std::vector<Tensor> grads;  // x, w, b
    std::string node;           // the output's grad_fn
};

// out = f(x, w, b) with every input requiring grad, then the gradients of sum(out * r).
using Forward = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&, const tg::BatchNormOptions&, const Inputs&)>;
Result run(const Inputs& in, bool training, const Forward& f) {
    const Tensor x = in.x.detach().requires_grad_(), w = in.w.detach().requires_grad_(), b = in.b.detach().requires_grad_();
    const tg::BatchNormOptions options{.training = training};
    Tensor out = f(x, w, b, options, in);
    Result r{out.detach(), {}, out.grad_fn() ? out.grad_fn()->name() : ""};
    tg::Generator gen(9);
    const Tensor weights = tg::randn(out.shape(), gen).contiguous(out.suggest_memory_format());
    r.grads = tg::grad({tg::sum(out * weights)}, {x, w, b});
    return r;
}

// Running statistics are copied per call, so that every run starts from the same ones.
Tensor bn(const Tensor& x, const Tensor& w, const Tensor& b, const tg::BatchNormOptions& o, const Inputs& in) {
    return tg::batch_norm(x, in.mean.clone(), in.var.clone(), w, b, o);
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
    const Tensor ca = a.contiguous(), cb = b.contiguous();
    return std::memcmp(ca.data<float>(), cb.data<float>(), ca.numel() * sizeof(float)) == 0;
}

double smallest(const Tensor& t) {
    double m = INFINITY;
    for (double v : t.to_vector<double>()) m = std::min(m, v);  // NaN never wins
    return m;
}

const Forward fused_op = [](const Tensor& x, const Tensor& w, const Tensor& b, const tg::BatchNormOptions& o, const Inputs& in) {
    return tg::batch_norm_relu(x, in.mean.clone(), in.var.clone(), w, b, o);
};
const Forward rewritten = [](const Tensor& x, const Tensor& w, const Tensor& b, const tg::BatchNormOptions& o, const Inputs& in) {
    return tg::relu(bn(x, w, b, o, in));
};
const Forward unfused = [](const Tensor& x, const Tensor& w, const Tensor& b, const tg::BatchNormOptions& o, const Inputs& in) {
    const Tensor y = bn(x, w, b, o, in);
    return tg::relu(y);
};

void check_same_bits(const Result& a, const Result& b) {
    CHECK(same_bits(a.out, b.out));
    for (std::size_t i = 0; i < 3; ++i) CHECK(same_bits(a.grads[i], b.grads[i]));
}

// NaN where the other has NaN, else within tol.
bool close(const Tensor& a, const Tensor& b, double tol) {
    const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
    if (va.size() != vb.size()) return false;
    for (std::size_t i = 0; i < va.size(); ++i)
        if (std::isnan(va[i]) != std::isnan(vb[i]) || std::abs(va[i] - vb[i]) > tol) return false;
    return true;
}

// The fused backward masks g inside batch norm's passes: its float32 sums may round in another
// order than the two separate kernels'.
void check_close(const Result& a, const Result& b) {
    CHECK(same_bits(a.out, b.out));  // the forward is exact either way
    for (std::size_t i = 0; i < 3; ++i) CHECK(close(a.grads[i], b.grads[i], 1e-5));
}

}  // namespace

TEST_CASE("fusion rewrite: relu(batch_norm(x)) is batch_norm_relu bit for bit, and the unfused ops within rounding") {
    for (const bool training : {true, false})
        for (const tg::MemoryFormat format : {tg::MemoryFormat::Contiguous, tg::MemoryFormat::ChannelsLast}) {
            CAPTURE(training);
            const Inputs in = make_inputs(format, 1, !training);
            const Result want = run(in, training, fused_op), got = run(in, training, rewritten), apart = run(in, training, unfused);
            CHECK(want.node == "batch_norm_relu");
            CHECK(got.node == "batch_norm_relu");
            CHECK(apart.node == "relu");
            check_same_bits(got, want);
            check_close(got, apart);
            CHECK(got.out.suggest_memory_format() == format);
        }
}

TEST_CASE("fusion rewrite: a batch_norm result that someone else can read is left alone") {
    const Inputs in = make_inputs(tg::MemoryFormat::Contiguous, 2);
    const Result apart = run(in, true, unfused);
    auto check_kept = [&](const char* what, const Forward& f) {
        INFO(what);
        const Result r = run(in, true, f);
        CHECK(r.node == "relu");
        check_same_bits(r, apart);
    };
    // The caller keeps y and reads it afterwards: it still holds batch_norm's values.
    check_kept("a named result, given as an lvalue", [](auto& x, auto& w, auto& b, auto& o, auto& in) {
        const Tensor y = bn(x, w, b, o, in);
        Tensor out = tg::relu(y);
        CHECK(smallest(y) < 0.0);
        return out;
    });
    check_kept("another handle on the result", [](auto& x, auto& w, auto& b, auto& o, auto& in) {
        Tensor y = bn(x, w, b, o, in);
        const Tensor copy = y;
        Tensor out = tg::relu(std::move(y));
        CHECK(smallest(copy) < 0.0);
        return out;
    });
    check_kept("a view of the result", [](auto& x, auto& w, auto& b, auto& o, auto& in) {
        Tensor y = bn(x, w, b, o, in);
        const Tensor flat = y.reshape({-1});
        Tensor out = tg::relu(std::move(y));
        CHECK(smallest(flat) < 0.0);
        return out;
    });
    check_kept("a detached handle on the result", [](auto& x, auto& w, auto& b, auto& o, auto& in) {
        Tensor y = bn(x, w, b, o, in);
        const Tensor d = y.detach();
        Tensor out = tg::relu(std::move(y));
        CHECK(smallest(d) < 0.0);
        return out;
    });
    int hook_calls = 0;
    check_kept("a hook on the result", [&](auto& x, auto& w, auto& b, auto& o, auto& in) {
        Tensor y = bn(x, w, b, o, in);
        y.register_hook([&](const Tensor&) {
            ++hook_calls;
            return Tensor();
        });
        return tg::relu(std::move(y));
    });
    CHECK(hook_calls == 1);
    // Another op read the result (its node has a second consumer): the sum of both paths.
    {
        const Result both = run(in, true, [](auto& x, auto& w, auto& b, auto& o, auto& in) {
            Tensor y = bn(x, w, b, o, in);
            const Tensor other = y * 0.5;
            return tg::relu(std::move(y)) + other;
        });
        CHECK(both.node == "add");
        const Result want = run(in, true, [](auto& x, auto& w, auto& b, auto& o, auto& in) {
            const Tensor y = bn(x, w, b, o, in);
            const Tensor other = y * 0.5;
            return tg::relu(y) + other;
        });
        check_same_bits(both, want);
    }
    // Anomaly mode names the op the user wrote.
    {
        tg::AnomalyModeGuard anomaly;
        check_kept("anomaly mode", rewritten);
    }
}

TEST_CASE("fusion rewrite: no rewrite without a node, on the reference kernels, or for a 3-D input") {
    const Inputs in = make_inputs(tg::MemoryFormat::Contiguous, 3);
    {
        tg::NoGradGuard no_grad;
        const Tensor y = tg::relu(tg::batch_norm(in.x, Tensor(), Tensor(), in.w, in.b));
        CHECK(same_bits(y, tg::batch_norm_relu(in.x, Tensor(), Tensor(), in.w, in.b)));
    }
    const Tensor x64 = in.x.to(tg::kFloat64).requires_grad_();
    CHECK(tg::relu(tg::batch_norm(x64, Tensor(), Tensor(), Tensor(), Tensor())).grad_fn()->name() == "relu");
    {
        tg::ReferenceKernelsGuard reference;
        const Tensor x = in.x.detach().requires_grad_();
        CHECK(tg::relu(tg::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor())).grad_fn()->name() == "relu");
    }
    // [N,C,L] runs as [N,C,L,1] and comes back as a view: relu's input is squeeze's.
    const Tensor x3 = in.x.reshape({4, 3, 25}).detach().requires_grad_();
    CHECK(tg::relu(tg::batch_norm(x3, Tensor(), Tensor(), Tensor(), Tensor())).grad_fn()->name() == "relu");
}

TEST_CASE("fusion rewrite: second derivatives through the rewritten node are batch_norm_relu's") {
    const Inputs in = make_inputs(tg::MemoryFormat::Contiguous, 4);
    // Without the NaN, whose second derivative is NaN everywhere it reaches.
    tg::Generator gen(4);
    const Tensor x = tg::randn({3, 3, 3, 3}, gen).requires_grad_();
    const Tensor w = in.w.detach().requires_grad_(), b = in.b.detach().requires_grad_();
    auto hessian_row = [&](int form) {
        Tensor y = form == 0   ? tg::batch_norm_relu(x, Tensor(), Tensor(), w, b)
                   : form == 1 ? tg::relu(tg::batch_norm(x, Tensor(), Tensor(), w, b))
                               : [&] {
                                     const Tensor z = tg::batch_norm(x, Tensor(), Tensor(), w, b);
                                     return tg::relu(z);
                                 }();
        CHECK(y.grad_fn()->name() == (form == 2 ? "relu" : "batch_norm_relu"));
        Tensor gx = tg::grad({tg::sum(y * y)}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
        return tg::grad({tg::sum(gx * gx)}, {x, w, b});
    };
    const auto fused = hessian_row(0), rewritten_row = hessian_row(1), apart = hessian_row(2);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(same_bits(rewritten_row[i], fused[i]));
        CHECK(tg::max_abs_diff(rewritten_row[i], apart[i]) <= 1e-4);
    }
}

TEST_CASE("fusion rewrite: an in-place write to the bias after the forward leaves the backward valid, as in PyTorch") {
    // PyTorch's batch_norm does not save the bias, and relu saves its output: writing the bias
    // between forward and backward changes no gradient. A write to the weight, which batch_norm
    // saves, is refused.
    const Inputs in = make_inputs(tg::MemoryFormat::Contiguous, 5);
    for (const bool training : {true, false})
        for (const auto& [label, f] : std::map<std::string, Forward>{{"batch_norm", bn}, {"rewritten", rewritten}, {"fused", fused_op}}) {
            CAPTURE(training);
            CAPTURE(label);
            const Result want = run(in, training, f);
            Tensor x = in.x.detach().requires_grad_(), w = in.w.detach().requires_grad_(), b = in.b.detach().requires_grad_();
            const Tensor out = f(x, w, b, tg::BatchNormOptions{.training = training}, in);
            tg::Generator gen(9);
            const Tensor weights = tg::randn(out.shape(), gen).contiguous(out.suggest_memory_format());
            const Tensor loss = tg::sum(out * weights);
            {
                tg::NoGradGuard no_grad;
                b.add_(10.0);  // would turn every relu mask to 1 if the backward recomputed it from b
            }
            const std::vector<Tensor> grads = tg::grad({loss}, {x, w, b}, {}, /*retain_graph=*/true);
            for (std::size_t i = 0; i < 3; ++i) CHECK(same_bits(grads[i], want.grads[i]));
            {
                tg::NoGradGuard no_grad;
                w.mul_(2.0);
            }
            CHECK_THROWS_WITH(tg::grad({loss}, {x, w, b}), doctest::Contains("modified by an in-place operation"));
        }
}

TEST_CASE("fusion rewrite: the profiler and to_dot show the fused node") {
    const Inputs in = make_inputs(tg::MemoryFormat::Contiguous, 5);
    const Tensor x = in.x.detach().requires_grad_(), w = in.w.detach().requires_grad_(), b = in.b.detach().requires_grad_();
    tg::Profiler profiler;
    Tensor y = tg::relu(tg::batch_norm(x, Tensor(), Tensor(), w, b));
    const std::string dot = tg::to_dot(y);
    INFO(dot);
    CHECK(dot.find("(batch_norm_relu)\\n[4,3,5,5] float32\\nsaved input: [4,3,5,5] float32 1.2 KiB\\nsaved weight: [3] float32 12 B"
                   "\\nsaved bias: [3] float64 24 B\\nsaved mean: [3] float64 24 B") != std::string::npos);
    CHECK(dot.find("(batch_norm)") == std::string::npos);
    CHECK(dot.find("(relu)") == std::string::npos);
    tg::sum(y).backward();
    profiler.stop();
    std::map<std::string, tg::Profiler::Stats> rows;
    for (const tg::Profiler::Stats& r : profiler.by_op()) rows[r.name] = r;
    CHECK(rows["batch_norm"].forward_calls == 1);
    CHECK(rows["batch_norm"].backward_calls == 0);
    CHECK(rows["batch_norm_relu"].forward_calls == 1);
    CHECK(rows["batch_norm_relu"].backward_calls == 1);
    CHECK(rows.count("relu") == 0);
}

TEST_CASE("fusion rewrite: Sequential hands each layer's output on, and hooks see what PyTorch's layers give them") {
    tg::Generator gen(6);
    const Tensor x = tg::randn({4, 2, 3, 3}, gen).requires_grad_();
    auto bn_layer = std::make_shared<nn::BatchNorm2d>(2);
    auto relu_layer = std::make_shared<nn::ReLU>();
    nn::Sequential seq({bn_layer, relu_layer});
    CHECK(seq(x).grad_fn()->name() == "batch_norm_relu");
    // Called one by one with the result kept: two ops.
    const Tensor h = (*bn_layer)(x);
    CHECK((*relu_layer)(h).grad_fn()->name() == "relu");
    CHECK(smallest(h) < 0.0);
    // A module call on a temporary consumes it, as in functional code.
    CHECK((*relu_layer)((*bn_layer)(x)).grad_fn()->name() == "batch_norm_relu");
    // ReLU's forward hook gets its input as PyTorch's does: batch_norm's output, negatives and all.
    double seen_input = 0, seen_output = -1;
    {
        tg::HookHandle hook = relu_layer->register_forward_hook([&](nn::Module&, const Tensor& in, const Tensor& out) {
            seen_input = smallest(in);
            seen_output = smallest(out);
            return Tensor();
        });
        CHECK(seq(x).grad_fn()->name() == "relu");
        CHECK(seen_input < 0.0);
        CHECK(seen_output == 0.0);
        hook.remove();
    }
    {
        tg::HookHandle hook = relu_layer->register_forward_pre_hook([&](nn::Module&, const Tensor& in) {
            seen_input = smallest(in);
            return Tensor();
        });
        seen_input = 0;
        CHECK(seq(x).grad_fn()->name() == "relu");
        CHECK(seen_input < 0.0);
        hook.remove();
    }
    // Hooks removed: fused again.
    CHECK(seq(x).grad_fn()->name() == "batch_norm_relu");
}

TEST_CASE("fusion rewrite: max_pool2d(relu(h)) runs as relu(max_pool2d(h)), bit for bit, ties at zero and NaN included") {
    for (const tg::Pool2dOptions& pool :
         {tg::Pool2dOptions{.kernel_size = 2}, tg::Pool2dOptions{.kernel_size = 3, .stride = tg::Pair(2), .padding = 1}}) {
        tg::Generator gen(7);
        std::vector<double> v = tg::randn({2, 3, 6, 6}, gen).to_vector<double>();
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = i % 5 == 0 ? 0.0 : (i % 3 == 0 ? -std::abs(v[i]) : v[i]);
        v[7] = std::numeric_limits<double>::quiet_NaN();
        const Tensor x = tg::from_vector(v, {2, 3, 6, 6}).requires_grad_();
        const Tensor weights = tg::randn({2, 3, 3, 3}, gen);  // both pools give 3x3
        auto run_pool = [&](bool rewrite) {
            const Tensor h = x * 1.0;  // relu's input has a node: the rewrite needs one to record the pool on
            Tensor out;
            if (rewrite) {
                out = tg::max_pool2d(tg::relu(h), pool);
            } else {
                const Tensor r = tg::relu(h);
                out = tg::max_pool2d(r, pool);
            }
            const std::string node = out.grad_fn()->name();
            const Tensor dx = tg::grad({tg::sum(out * weights)}, {x})[0];
            return std::make_tuple(out.detach(), dx, node);
        };
        const auto [out_r, dx_r, node_r] = run_pool(true);
        const auto [out_u, dx_u, node_u] = run_pool(false);
        CHECK(node_r == "relu");
        CHECK(node_u == "max_pool2d");
        CHECK(same_bits(out_r, out_u));
        CHECK(same_bits(dx_r, dx_u));
    }
    // relu of a leaf: the pool's node would need the leaf's own edge; left alone.
    tg::Generator gen(8);
    const Tensor leaf = tg::randn({1, 2, 4, 4}, gen).requires_grad_();
    CHECK(tg::max_pool2d(tg::relu(leaf), {.kernel_size = 2}).grad_fn()->name() == "max_pool2d");
    // relu's result kept by the caller: left alone, and it keeps its full size.
    const Tensor h = leaf * 1.0;
    const Tensor r = tg::relu(h);
    CHECK(tg::max_pool2d(r, {.kernel_size = 2}).grad_fn()->name() == "max_pool2d");
}
