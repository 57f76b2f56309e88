// The fusions nn::Sequential applies to adjacent layers give the values and gradients of the
// layers run one by one (the unfused path is the reference), bit for bit where the fusion only
// reorders exact operations; layers with hooks, or of a derived type, are left alone.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

struct Run {
    Tensor out, dx;
    std::vector<Tensor> grads;
};

// The layers through Sequential (fused) or called one after the other (unfused), forward and
// backward of sum(out * weights) so that every output element gets its own gradient.
Run run(const std::vector<std::shared_ptr<nn::Module>>& layers, const Tensor& x_in, bool through_sequential) {
    for (const auto& l : layers)
        for (Tensor& p : l->parameters()) p.zero_grad();
    Tensor x = x_in.detach().requires_grad_();
    Tensor out;
    if (through_sequential) {
        nn::Sequential seq;
        for (const auto& l : layers) seq.push_back(l);
        out = seq(x);
    } else {
        out = x;
        for (const auto& l : layers) out = (*l)(out);
    }
    tg::Generator gen(3);
    const Tensor weights = tg::randn(out.shape(), gen, {.dtype = out.dtype()});
    tg::sum(out * weights).backward();
    Run r{out.detach(), x.grad(), {}};
    for (const auto& l : layers)
        for (Tensor& p : l->parameters()) r.grads.push_back(p.grad());
    return r;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
    for (std::size_t i = 0; i < va.size(); ++i)
        if (!(va[i] == vb[i] || (std::isnan(va[i]) && std::isnan(vb[i])))) return false;
    return true;
}

double smallest(const Tensor& t) {
    const auto v = t.to_vector<double>();
    return *std::min_element(v.begin(), v.end());
}

void check_same(const Run& fused, const Run& unfused) {
    CHECK(same_bits(fused.out, unfused.out));
    CHECK(same_bits(fused.dx, unfused.dx));
    REQUIRE(fused.grads.size() == unfused.grads.size());
    for (std::size_t i = 0; i < fused.grads.size(); ++i) CHECK(same_bits(fused.grads[i], unfused.grads[i]));
}

}  // namespace

TEST_CASE("fusion: ReLU then MaxPool2d in a Sequential gives the unfused values and gradients exactly") {
    for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        for (const tg::Pool2dOptions& pool : {tg::Pool2dOptions{.kernel_size = 2},
                                             tg::Pool2dOptions{.kernel_size = 3, .stride = tg::Pair(2), .padding = 1}}) {
            CAPTURE(tg::dtype_name(dtype));
            tg::Generator gen(1);
            auto conv = std::make_shared<nn::Conv2d>(2, 3, 3, gen, tg::Conv2dOptions{.padding = 1});
            conv->to(dtype);
            const std::vector<std::shared_ptr<nn::Module>> layers{conv, std::make_shared<nn::ReLU>(),
                                                                  std::make_shared<nn::MaxPool2d>(pool)};
            // Windows wholly negative, ties at zero and a NaN: the cases where the order could show.
            Tensor x = tg::randn({2, 2, 6, 6}, gen, {.dtype = dtype});
            check_same(run(layers, x, true), run(layers, x, false));
            const std::vector<std::shared_ptr<nn::Module>> relu_pool{std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(pool)};
            std::vector<double> v = x.to_vector<double>();
            for (std::size_t i = 0; i < v.size(); ++i) v[i] = i % 5 == 0 ? 0.0 : (i % 3 == 0 ? -std::abs(v[i]) : v[i]);
            v[7] = std::numeric_limits<double>::quiet_NaN();
            const Tensor ties = tg::from_vector(v, x.shape(), {.dtype = dtype});
            check_same(run(relu_pool, ties, true), run(relu_pool, ties, false));
        }
    }
}

TEST_CASE("fusion: a ReLU with a forward hook runs on its own and its hook sees the full-size input") {
    tg::Generator gen(2);
    auto relu = std::make_shared<nn::ReLU>();
    tg::Shape seen;
    auto handle = relu->register_forward_hook([&](nn::Module&, const Tensor& in, const Tensor&) {
        seen = in.shape();
        return Tensor();
    });
    nn::Sequential seq({relu, std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2})});
    const Tensor y = seq(tg::randn({1, 2, 4, 4}, gen));
    CHECK(seen == tg::Shape{1, 2, 4, 4});
    CHECK(y.shape() == tg::Shape{1, 2, 2, 2});
}

TEST_CASE("fusion: a subclass of ReLU with its own forward is not fused") {
    struct NegatedReLU : nn::ReLU {
        Tensor forward(const Tensor& x) override { return tg::relu(x) * -1.0; }
    };
    tg::Generator gen(4);
    const Tensor x = tg::randn({1, 1, 4, 4}, gen);
    nn::Sequential seq({std::make_shared<NegatedReLU>(), std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2})});
    // max of -relu(x) over a window is 0 unless all four are positive: not -relu(max).
    const Tensor want = tg::max_pool2d(tg::relu(x) * -1.0, {.kernel_size = 2});
    CHECK(tg::max_abs_diff(seq(x), want) == 0.0);
}

TEST_CASE("fusion: BatchNorm then ReLU in a Sequential (batch_norm_relu) gives the unfused values and gradients") {
    for (const bool training : {true, false}) {
        for (const tg::MemoryFormat format : {tg::MemoryFormat::Contiguous, tg::MemoryFormat::ChannelsLast}) {
            CAPTURE(training);
            tg::Generator gen(5);
            auto conv = std::make_shared<nn::Conv2d>(3, 4, 3, gen, tg::Conv2dOptions{.padding = 1});
            auto bn = std::make_shared<nn::BatchNorm2d>(4);
            // Non-trivial affine parameters and running statistics, so that every term shows.
            {
                tg::NoGradGuard no_grad;
                bn->weight.copy_(tg::uniform({4}, 0.5, 1.5, gen));
                bn->bias.copy_(tg::randn({4}, gen));
                bn->running_mean.copy_(tg::randn({4}, gen));
                bn->running_var.copy_(tg::uniform({4}, 0.5, 2.0, gen));
            }
            bn->train(training);
            const std::vector<std::shared_ptr<nn::Module>> layers{conv, bn, std::make_shared<nn::ReLU>(),
                                                                  std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2})};
            const Tensor x = tg::randn({4, 3, 6, 6}, gen).contiguous(format);
            // Running statistics move in training: each run starts from the same ones.
            const Tensor mean0 = bn->running_mean.clone(), var0 = bn->running_var.clone();
            const Run fused = run(layers, x, true);
            const Tensor fused_mean = bn->running_mean.clone();
            {
                tg::NoGradGuard no_grad;
                bn->running_mean.copy_(mean0);
                bn->running_var.copy_(var0);
            }
            const Run unfused = run(layers, x, false);
            CHECK(tg::max_abs_diff(fused_mean, bn->running_mean) == 0.0);
            // The fused backward masks g inside the batch norm's passes; float32 sums may round
            // in another order than the two separate kernels'.
            CHECK(tg::max_abs_diff(fused.out, unfused.out) == 0.0);
            CHECK(tg::max_abs_diff(fused.dx, unfused.dx) <= 1e-5);
            REQUIRE(fused.grads.size() == unfused.grads.size());
            for (std::size_t i = 0; i < fused.grads.size(); ++i) CHECK(tg::max_abs_diff(fused.grads[i], unfused.grads[i]) <= 1e-5);
        }
    }
}

TEST_CASE("fusion: batch_norm_relu's second derivative matches the unfused ops'") {
    tg::Generator gen(6);
    const Tensor x = tg::randn({3, 2, 3, 3}, gen).requires_grad_();
    const Tensor w = tg::uniform({2}, 0.5, 1.5, gen).requires_grad_(), b = tg::randn({2}, gen).requires_grad_();
    auto hessian_row = [&](bool fused) {
        Tensor y = fused ? tg::batch_norm_relu(x, Tensor(), Tensor(), w, b) : tg::relu(tg::batch_norm(x, Tensor(), Tensor(), w, b));
        Tensor gx = tg::grad({tg::sum(y * y)}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
        return tg::grad({tg::sum(gx * gx)}, {x, w, b});
    };
    const auto fused = hessian_row(true), unfused = hessian_row(false);
    for (std::size_t i = 0; i < fused.size(); ++i) CHECK(tg::max_abs_diff(fused[i], unfused[i]) <= 1e-4);
}

TEST_CASE("fusion: a BatchNorm with a forward hook is not fused, and its hook sees batch_norm's output") {
    tg::Generator gen(8);
    auto bn = std::make_shared<nn::BatchNorm2d>(2);
    int calls = 0;
    auto handle = bn->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& out) {
        ++calls;
        CHECK(smallest(out) < 0.0);  // the hook sees batch_norm's output, before relu
        return Tensor();
    });
    nn::Sequential seq({bn, std::make_shared<nn::ReLU>()});
    const Tensor y = seq(tg::randn({4, 2, 3, 3}, gen));
    CHECK(calls == 1);
    CHECK(smallest(y) >= 0.0);
}

// Conv2d then ReLU is not fused: oneDNN 2.6's relu post-op writes 0 for a NaN input, where relu
// (PyTorch's and ours) passes NaN through. This pins the behaviour a fusion would have to keep.
TEST_CASE("fusion: Conv2d then ReLU in a Sequential passes a NaN through as relu does") {
    tg::Generator gen(10);
    auto conv = std::make_shared<nn::Conv2d>(2, 3, 3, gen, tg::Conv2dOptions{.padding = 1});
    std::vector<double> v = tg::randn({1, 2, 4, 4}, gen).to_vector<double>();
    v[5] = std::numeric_limits<double>::quiet_NaN();
    const Tensor x = tg::from_vector(v, {1, 2, 4, 4});
    nn::Sequential seq({conv, std::make_shared<nn::ReLU>()});
    const Tensor want = tg::relu(tg::conv2d(x, conv->weight, conv->bias, conv->options));
    CHECK(same_bits(seq(x), want));
    const auto out = want.to_vector<double>();
    CHECK(std::any_of(out.begin(), out.end(), [](double e) { return std::isnan(e); }));
}

TEST_CASE("fusion: Sequential does take the fused forms (the graph shows which ops ran last)") {
    tg::Generator gen(11);
    const Tensor x = tg::randn({2, 3, 4, 4}, gen).requires_grad_();
    // ReLU then MaxPool2d: relu runs last, on the pooled [2,3,2,2] (relu's input must have a node
    // of its own for the pool to be recorded on: not a leaf).
    nn::Sequential relu_pool({std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2})});
    const Tensor y = relu_pool(x * 1.0);
    CHECK(y.grad_fn()->name() == "relu");
    // BatchNorm2d then ReLU: one batch_norm_relu node on the float32 fast kernels ...
    nn::Sequential bn_relu({std::make_shared<nn::BatchNorm2d>(3), std::make_shared<nn::ReLU>()});
    CHECK(bn_relu(x).grad_fn()->name() == "batch_norm_relu");
    // ... and the two ops on the reference kernels (float64), which are its reference.
    bn_relu.to(tg::kFloat64);
    CHECK(bn_relu(x.detach().to(tg::kFloat64).requires_grad_()).grad_fn()->name() == "relu");
}
