#pragma once
// The vector arithmetic and the strong-Wolfe line search of L-BFGS (internal to nn/lbfgs*.cpp):
// PyTorch's _strong_wolfe and _cubic_interpolate (torch/optim/lbfgs.py, 1.13), in float64.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace tapegrad::nn::detail::lbfgs {

using Vec = std::vector<double>;

inline double dot(const Vec& a, const Vec& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

inline double max_abs(const Vec& a) {
    double m = 0;
    for (double v : a) m = std::max(m, std::abs(v));
    return m;
}

inline double sum_abs(const Vec& a) {
    double s = 0;
    for (double v : a) s += std::abs(v);
    return s;
}

// a += alpha * b
inline void axpy(Vec& a, double alpha, const Vec& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += alpha * b[i];
}

inline Vec scaled(const Vec& a, double alpha) {
    Vec out(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) out[i] = a[i] * alpha;
    return out;
}

// Minimum of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, within the bounds
// (the two points when none are given); their middle when the cubic has no minimum.
double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2,
                         std::optional<std::pair<double, double>> bounds = std::nullopt);

struct LineSearchResult {
    double f_new;
    Vec g_new;
    double t;
    int64_t ls_func_evals;
};

// The loss and flat gradient at x + t d.
using Objective = std::function<std::pair<double, Vec>(double t)>;

// A step length t along d from x (loss f, gradient g, directional derivative gtd there)
// satisfying the strong Wolfe conditions, found by bracketing then zooming with cubic
// interpolation (minFunc's lswolfe, as PyTorch ports it).
LineSearchResult strong_wolfe(const Objective& obj_func, double t, const Vec& d, double f, const Vec& g, double gtd,
                              double c1 = 1e-4, double c2 = 0.9, double tolerance_change = 1e-9, int64_t max_ls = 25);

}  // namespace tapegrad::nn::detail::lbfgs
