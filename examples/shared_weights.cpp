// Shared weights (a siamese pair): one conv layer embeds two inputs, and the loss compares the
// embeddings. The layer's weight gradient is the sum of what each branch contributes. To show it,
// the same loss is computed again with two independent copies of the weight, one per branch; the
// sum of their gradients must equal the shared weight's gradient.
#include <cstdio>
#include <iostream>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

// Squared distance between the two embeddings.
Tensor siamese_loss(const Tensor& e1, const Tensor& e2) {
    Tensor d = e1 - e2;
    return (d * d).mean();
}

int main() {
    tg::Generator gen(0);
    nn::Conv2d conv(1, 4, 3, gen, {.padding = 1});
    const Tensor x1 = tg::randn({2, 1, 6, 6}, gen);
    const Tensor x2 = tg::randn({2, 1, 6, 6}, gen);

    // Shared: both branches use conv.weight.
    siamese_loss(conv(x1), conv(x2)).backward();
    const Tensor shared = conv.weight.grad();

    // Separately: each branch gets its own copy of the weight.
    Tensor w1 = conv.weight.detach().clone().requires_grad_();
    Tensor w2 = conv.weight.detach().clone().requires_grad_();
    const tg::Conv2dOptions same = conv.options;
    siamese_loss(tg::conv2d(x1, w1, conv.bias.detach(), same), tg::conv2d(x2, w2, conv.bias.detach(), same)).backward();
    const Tensor summed = w1.grad() + w2.grad();

    const auto a = shared.to_vector<float>(), b = summed.to_vector<float>();
    std::printf("%-6s %14s %14s\n", "index", "shared grad", "branch1+branch2");
    for (std::size_t i = 0; i < a.size(); i += 4) std::printf("%-6zu %14.7f %14.7f\n", i, a[i], b[i]);
    const double diff = tg::max_abs_diff(shared, summed);
    std::printf("max |difference| = %.3g\n", diff);
    if (!tg::allclose(shared, summed, 1e-5, 1e-6)) {
        std::cerr << "shared_weights: the shared gradient is not the sum of the branch gradients\n";
        return 1;
    }
    std::cout << "match: the shared weight's gradient is the sum over its uses\n";
    return 0;
}
