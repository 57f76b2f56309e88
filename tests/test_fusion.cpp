// The fusions nn::Sequential applies to adjacent layers give the values and gradients of the
// layers run one by one (the unfused path is the reference), bit for bit where the fusion only
// reorders exact operations; layers with hooks, or of a derived type, are left alone.
#include <doctest/doctest.h>

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

void check_same(const Run& fused, const Run& unfused) {
    CHECK(same_bits(fused.out, unfused.out));
    CHECK(same_bits(fused.dx, unfused.dx));
    REQUIRE(fused.grads.size() == unfused.grads.size());
    for (std::size_t i = 0; i < fused.grads.size(); ++i) CHECK(same_bits(fused.grads[i], unfused.grads[i]));
}

}  // namespace

TEST_CASE("fusion: ReLU then MaxPool2d in a Sequential gives the unfused values and gradients exactly") {
    for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        for (const tg::Pool2dOptions pool : {tg::Pool2dOptions{.kernel_size = 2},
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
