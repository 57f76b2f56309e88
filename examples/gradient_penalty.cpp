// A WGAN-GP critic (Gulrajani et al. 2017) on 8x8 images: the loss holds the gradient penalty
// lambda (||dD/dx(x_hat)|| - 1)^2 at points x_hat between real and fake images, so training the
// critic differentiates a gradient: D's input gradient is computed with grad(create_graph=true)
// and then differentiated with respect to D's weights (through conv2d's double backward:
// conv_transpose2d and conv2d_weight_grad). The script
//   1. checks the penalty's gradient with respect to the weights against central finite
//      differences (float64) and that it is not zero;
//   2. trains the critic twice from the same start, with and without the penalty, and reports the
//      mean gradient norm at x_hat: without it the norm grows with the Wasserstein term, with it
//      the norm is held near 1.
// Exits non-zero if a check fails.   gradient_penalty [--steps N]
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

// D(x) = linear(flatten(avg_pool(tanh(conv2d(x))))) for x [N,1,8,8]: one score per image.
struct Critic {
    std::vector<Tensor> params;

    explicit Critic(tg::Generator& gen) {
        auto param = [&](tg::Shape shape, double scale) {
            params.push_back((tg::randn(shape, gen, {.dtype = tg::kFloat64}) * scale).detach().requires_grad_(true));
        };
        param({4, 1, 3, 3}, 0.3);
        param({4}, 0.1);
        param({1, 4 * 4 * 4}, 0.2);
        param({1}, 0.0);
    }
    Tensor operator()(const Tensor& x) const {
        Tensor h = tg::tanh(tg::conv2d(x, params[0], params[1], {.padding = 1}));
        h = tg::avg_pool2d(h, {.kernel_size = 2});
        return tg::linear(h.flatten(1), params[2], params[3]);
    }
};

// "Real" images: a bright 3x3 blob at a random place; "fake": noise.
Tensor real_batch(int64_t n, tg::Generator& gen) {
    Tensor x = tg::randn({n, 1, 8, 8}, gen, {.dtype = tg::kFloat64}) * 0.1;
    double* p = x.data<double>();
    for (int64_t i = 0; i < n; ++i) {
        const auto r = static_cast<int64_t>(gen.below(6)), c = static_cast<int64_t>(gen.below(6));
        for (int64_t dr = 0; dr < 3; ++dr)
            for (int64_t dc = 0; dc < 3; ++dc) p[i * 64 + (r + dr) * 8 + c + dc] += 1.0;
    }
    return x;
}

struct Penalty {
    Tensor value;      // mean (||g|| - 1)^2, with history in the critic's weights
    double mean_norm;  // mean ||g|| over the batch
};

// The gradient penalty at x_hat = e real + (1 - e) fake (before its weight lambda).
Penalty gradient_penalty(const Critic& critic, const Tensor& real, const Tensor& fake, const Tensor& e) {
    const Tensor x_hat = (e * real + (1.0 - e) * fake).detach().requires_grad_(true);
    const Tensor scores = critic(x_hat);
    const Tensor g = tg::grad({scores}, {x_hat}, {tg::ones_like(scores)}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    const Tensor norm = tg::sqrt(tg::sum(g * g, {1, 2, 3}) + 1e-12);
    const Tensor gap = norm - 1.0;
    return {tg::mean(gap * gap), tg::mean(norm).item()};
}

struct Trained {
    double mean_norm;   // at fresh interpolates
    double separation;  // mean D(real) - mean D(fake)
};

// Trains the critic on the Wasserstein loss D(fake) - D(real) + lambda * penalty.
Trained train(Critic critic, double lambda, int64_t steps, const Tensor& real, const Tensor& fake, tg::Generator gen) {
    for (Tensor& p : critic.params) p = p.detach().clone().requires_grad_(true);  // private copies
    nn::Adam optimizer(critic.params, {.lr = 1e-2, .beta1 = 0.5, .beta2 = 0.9});
    const auto n = real.size(0);
    for (int64_t step = 1; step <= steps; ++step) {
        const Tensor e = tg::rand({n, 1, 1, 1}, gen, {.dtype = tg::kFloat64});
        Tensor loss = tg::mean(critic(fake)) - tg::mean(critic(real));
        if (lambda > 0) loss = loss + lambda * gradient_penalty(critic, real, fake, e).value;
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
    }
    const Tensor e = tg::rand({n, 1, 1, 1}, gen, {.dtype = tg::kFloat64});
    return {gradient_penalty(critic, real, fake, e).mean_norm, (tg::mean(critic(real)) - tg::mean(critic(fake))).item()};
}

}  // namespace

int main(int argc, char** argv) {
    int64_t steps = 300;
    if (argc == 3 && std::string(argv[1]) == "--steps") steps = std::atoll(argv[2]);
    else if (argc != 1) {
        std::cerr << "gradient_penalty: usage: gradient_penalty [--steps N]\n";
        return 2;
    }
    tg::Generator gen(0);
    Critic critic(gen);
    const int64_t n = 16;
    const Tensor real = real_batch(n, gen);
    const Tensor fake = tg::randn({n, 1, 8, 8}, gen, {.dtype = tg::kFloat64});
    const Tensor e = tg::rand({n, 1, 1, 1}, gen, {.dtype = tg::kFloat64});

    // 1. The penalty's gradient with respect to the conv weights against finite differences.
    Tensor& w = critic.params[0];
    const Tensor analytical = tg::grad({gradient_penalty(critic, real, fake, e).value}, {w})[0];
    double largest = 0, worst = 0;
    const double eps = 1e-6;
    for (int64_t i = 0; i < w.numel(); ++i) {
        double* p = w.data<double>() + i;
        const double saved = *p;
        *p = saved + eps;
        const double plus = gradient_penalty(critic, real, fake, e).value.item();
        *p = saved - eps;
        const double minus = gradient_penalty(critic, real, fake, e).value.item();
        *p = saved;
        const double numerical = (plus - minus) / (2 * eps);
        const double a = analytical.data<double>()[i];
        largest = std::max(largest, std::abs(a));
        worst = std::max(worst, std::abs(a - numerical) / (1e-6 + std::abs(numerical)));
    }
    std::cout << "penalty gradient w.r.t. the conv weights: max |entry| " << largest
              << ", worst relative difference from finite differences " << worst << "\n";
    if (!(largest > 1e-3) || !(worst < 1e-4)) {
        std::cerr << "gradient_penalty: the penalty's gradient is zero or disagrees with finite differences\n";
        return 1;
    }

    // 2. Train with and without the penalty (lambda = 10, as in the paper), from the same start.
    const double start = gradient_penalty(critic, real, fake, e).mean_norm;
    const Trained with = train(critic, 10.0, steps, real, fake, gen);
    const Trained without = train(critic, 0.0, steps, real, fake, gen);
    std::cout << "mean ||dD/dx|| at interpolates: " << start << " at the start; after " << steps
              << " steps, with the penalty " << with.mean_norm << " (D(real) - D(fake) " << with.separation
              << "), without " << without.mean_norm << " (D(real) - D(fake) " << without.separation << ")\n";
    if (!(std::abs(with.mean_norm - 1.0) < 0.5) || !(without.mean_norm > 2 * with.mean_norm) || !(with.separation > 0)) {
        std::cerr << "gradient_penalty: the penalty did not hold ||dD/dx|| near 1 while the critic separates real from fake\n";
        return 1;
    }
    return 0;
}
