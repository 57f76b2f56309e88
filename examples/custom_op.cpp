// A user-defined op through tapegrad::Function: softplus(x) = log(1 + exp(x)), written as a raw
// loop (stable for large |x|), with its derivative sigmoid(x). gradcheck compares the analytical
// gradient with finite differences in float64; then the op is used in a small model like any other.
#include <cmath>
#include <iostream>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

struct Softplus : tg::Function<Softplus> {
    static constexpr const char* name = "softplus";

    static Tensor forward(tg::FunctionCtx& ctx, const Tensor& input) {
        ctx.save_for_backward({input});
        const Tensor x = input.contiguous();
        Tensor y = tg::empty(x.shape(), {.dtype = x.dtype()});
        tg::dispatch(x.dtype(), [&]<class T>() {
            const T* xp = x.data<T>();
            T* yp = y.data<T>();
            // max(x, 0) + log1p(exp(-|x|)) never overflows.
            for (int64_t i = 0; i < x.numel(); ++i) yp[i] = std::max(xp[i], T(0)) + std::log1p(std::exp(-std::abs(xp[i])));
        });
        return y;
    }

    // d softplus / dx = sigmoid(x); built from existing ops, so it is itself differentiable.
    static std::vector<Tensor> backward(tg::FunctionCtx& ctx, const Tensor& grad_output) {
        return {grad_output * tg::sigmoid(ctx.saved()[0])};
    }
};

int main() {
    tg::Generator gen(0);
    const Tensor x = tg::randn({4, 5}, gen, {.dtype = tg::kFloat64, .requires_grad = true});
    const tg::GradcheckResult check =
        tg::gradcheck([](const std::vector<Tensor>& in) { return Softplus::apply(in[0]); }, {x});
    std::cout << "gradcheck of softplus: " << (check ? "passed" : "FAILED: " + check.message) << "\n";
    if (!check) return 1;

    // Used in a model: fit y = softplus(3x - 1) with a linear layer followed by the custom op.
    nn::Linear layer(1, 1, gen);
    nn::SGD optimizer(layer.parameters(), {.lr = 0.1, .momentum = 0.9});
    const Tensor inputs = tg::randn({64, 1}, gen);
    const Tensor targets = Softplus::apply(inputs * 3.0 - 1.0).detach();
    double loss_value = 0;
    for (int step = 0; step < 300; ++step) {
        Tensor loss = tg::mse_loss(Softplus::apply(layer(inputs)), targets);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        loss_value = loss.item();
    }
    std::cout << "fitted weight " << layer.weight.item() << " (target 3), bias " << layer.bias.item()
              << " (target -1), loss " << loss_value << "\n";
    return loss_value < 1e-3 ? 0 : 1;
}
