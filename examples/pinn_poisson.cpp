// A physics-informed network: solves -u''(x) = pi^2 sin(pi x) on [0, 1] with u(0) = u(1) = 0,
// whose solution is u(x) = sin(pi x), without ever seeing it. The loss puts the network's own
// second derivative, computed with grad(create_graph=true) twice, into the residual of the PDE;
// training then differentiates through those derivatives (third order in the network's weights
// and input). Prints the maximum error against sin(pi x) on a fine grid and exits non-zero if it
// misses the target.
//   pinn_poisson [--steps N] [--tolerance T]
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <numbers>
#include <string>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

// u(x) = W3 tanh(W2 tanh(W1 x + b1) + b2) + b3 for x [N,1]; float64 throughout.
struct Mlp {
    std::vector<Tensor> params;

    Mlp(int64_t hidden, tg::Generator& gen) {
        const std::vector<std::pair<int64_t, int64_t>> layers{{hidden, 1}, {hidden, hidden}, {1, hidden}};
        for (auto [out, in] : layers) {
            Tensor w = tg::zeros({out, in}, {.dtype = tg::kFloat64});
            nn::init::xavier_uniform_(w, gen);
            params.push_back(w.requires_grad_(true));
            params.push_back(tg::zeros({out}, {.dtype = tg::kFloat64, .requires_grad = true}));
        }
    }
    Tensor operator()(const Tensor& x) const {
        Tensor h = tg::tanh(tg::linear(x, params[0], params[1]));
        h = tg::tanh(tg::linear(h, params[2], params[3]));
        return tg::linear(h, params[4], params[5]);
    }
};

// d(sum y)/dx for a network applied row by row: each row's derivative, with its history.
Tensor derivative(const Tensor& y, const Tensor& x) {
    return tg::grad({y}, {x}, {tg::ones_like(y)}, /*retain_graph=*/true, /*create_graph=*/true)[0];
}

Tensor points(int64_t n, double lo, double hi) {
    std::vector<double> v(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(n - 1);
    return tg::from_vector(v, {n, 1}, {.dtype = tg::kFloat64});
}

// sin(pi x), elementwise, as a constant (the right-hand side and the exact solution).
Tensor sin_pi(const Tensor& x) {
    std::vector<double> v = x.to_vector<double>();
    for (double& e : v) e = std::sin(std::numbers::pi * e);
    return tg::from_vector(v, x.shape(), {.dtype = tg::kFloat64});
}

}  // namespace

int main(int argc, char** argv) {
    int64_t steps = 1500;
    double tolerance = 1e-3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--steps") steps = std::atoll(argv[i + 1]);
        else if (flag == "--tolerance") tolerance = std::atof(argv[i + 1]);
        else {
            std::cerr << "pinn_poisson: unknown flag " << flag << " (use --steps N, --tolerance T)\n";
            return 2;
        }
    }
    const double pi = std::numbers::pi;
    tg::Generator gen(0);
    Mlp u(20, gen);
    nn::Adam optimizer(u.params, {.lr = 1e-2});
    nn::CosineAnnealingLR schedule(optimizer, steps);

    // Collocation points inside (0, 1), and the two boundary points.
    const Tensor x = points(48, 0.01, 0.99).requires_grad_(true);
    const Tensor rhs = sin_pi(x) * (pi * pi);
    const Tensor boundary = tg::from_vector(std::vector<double>{0.0, 1.0}, {2, 1}, {.dtype = tg::kFloat64});

    for (int64_t step = 1; step <= steps; ++step) {
        const Tensor y = u(x);
        const Tensor d2y = derivative(derivative(y, x), x);
        const Tensor residual = d2y + rhs;  // -u'' - pi^2 sin(pi x) = 0
        const Tensor ub = u(boundary);
        const Tensor loss = tg::mean(residual * residual) + 10.0 * tg::mean(ub * ub);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        schedule.step();
        if (step % 250 == 0 || step == steps) std::cout << "step " << step << "  loss " << loss.item() << "\n";
    }

    // The error against the exact solution on a grid of 101 points, boundaries included.
    const Tensor grid = points(101, 0.0, 1.0);
    Tensor prediction;
    {
        tg::NoGradGuard no_grad;
        prediction = u(grid);
    }
    const double max_error = tg::max(tg::abs(prediction - sin_pi(grid)), 0).item();
    std::cout << "max |u - sin(pi x)| on 101 points: " << max_error << "\n";
    if (!(max_error < tolerance)) {
        std::cerr << "pinn_poisson: the error " << max_error << " is above the tolerance " << tolerance << "\n";
        return 1;
    }
    return 0;
}
