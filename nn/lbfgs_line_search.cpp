#include "nn/lbfgs_line_search.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace tapegrad::nn::detail::lbfgs {

double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2,
                         std::optional<std::pair<double, double>> bounds) {
    const auto [xmin_bound, xmax_bound] = bounds ? *bounds : (x1 <= x2 ? std::pair(x1, x2) : std::pair(x2, x1));
    const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
    const double d2_square = d1 * d1 - g1 * g2;
    if (d2_square >= 0) {
        const double d2 = std::sqrt(d2_square);
        const double min_pos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                                        : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
        return std::min(std::max(min_pos, xmin_bound), xmax_bound);
    }
    return (xmin_bound + xmax_bound) / 2.;
}

LineSearchResult strong_wolfe(const Objective& obj_func, double t, const Vec& d, double f, const Vec& g, double gtd,
                              double c1, double c2, double tolerance_change, int64_t max_ls) {
    const double d_norm = max_abs(d);
    auto [f_new, g_new] = obj_func(t);
    int64_t ls_func_evals = 1;
    double gtd_new = dot(g_new, d);

    double t_prev = 0, f_prev = f, gtd_prev = gtd;
    Vec g_prev = g;
    bool done = false;
    int64_t ls_iter = 0;
    std::vector<double> bracket, bracket_f, bracket_gtd;
    std::vector<Vec> bracket_g;
    while (ls_iter < max_ls) {
        if (f_new > (f + c1 * t * gtd) || (ls_iter > 1 && f_new >= f_prev)) {
            bracket = {t_prev, t};
            bracket_f = {f_prev, f_new};
            bracket_g = {g_prev, g_new};
            bracket_gtd = {gtd_prev, gtd_new};
            break;
        }
        if (std::abs(gtd_new) <= -c2 * gtd) {
            bracket = {t};
            bracket_f = {f_new};
            bracket_g = {g_new};
            done = true;
            break;
        }
        if (gtd_new >= 0) {
            bracket = {t_prev, t};
            bracket_f = {f_prev, f_new};
            bracket_g = {g_prev, g_new};
            bracket_gtd = {gtd_prev, gtd_new};
            break;
        }
        // interpolate
        const double min_step = t + 0.01 * (t - t_prev);
        const double max_step = t * 10;
        const double tmp = t;
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, std::pair(min_step, max_step));
        // next step
        t_prev = tmp;
        f_prev = f_new;
        g_prev = g_new;
        gtd_prev = gtd_new;
        std::tie(f_new, g_new) = obj_func(t);
        ls_func_evals += 1;
        gtd_new = dot(g_new, d);
        ls_iter += 1;
    }
    // reached max number of iterations? (PyTorch leaves bracket_gtd as it was: the zoom below does
    // not run then, since ls_iter == max_ls.)
    if (ls_iter == max_ls) {
        bracket = {0, t};
        bracket_f = {f, f_new};
        bracket_g = {g, g_new};
    }

    // zoom phase: refine the bracket until a point satisfies the conditions
    bool insuf_progress = false;
    std::size_t low_pos = bracket_f.front() <= bracket_f.back() ? 0 : 1;
    std::size_t high_pos = 1 - low_pos;
    while (!done && ls_iter < max_ls) {
        if (std::abs(bracket[1] - bracket[0]) * d_norm < tolerance_change) break;
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]);
        // Too close to a boundary: after insufficient progress, or at the boundary, move t to 0.1 of
        // the bracket's length from the nearest end.
        const double hi = std::max(bracket[0], bracket[1]), lo = std::min(bracket[0], bracket[1]);
        const double eps = 0.1 * (hi - lo);
        if (std::min(hi - t, t - lo) < eps) {
            if (insuf_progress || t >= hi || t <= lo) {
                t = std::abs(t - hi) < std::abs(t - lo) ? hi - eps : lo + eps;
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        std::tie(f_new, g_new) = obj_func(t);
        ls_func_evals += 1;
        gtd_new = dot(g_new, d);
        ls_iter += 1;

        if (f_new > (f + c1 * t * gtd) || f_new >= bracket_f[low_pos]) {
            // Armijo condition not satisfied or not lower than lowest point
            bracket[high_pos] = t;
            bracket_f[high_pos] = f_new;
            bracket_g[high_pos] = g_new;
            bracket_gtd[high_pos] = gtd_new;
            low_pos = bracket_f[0] <= bracket_f[1] ? 0 : 1;
            high_pos = 1 - low_pos;
        } else {
            if (std::abs(gtd_new) <= -c2 * gtd) {
                done = true;  // Wolfe conditions satisfied
            } else if (gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0) {
                // old high becomes new low
                bracket[high_pos] = bracket[low_pos];
                bracket_f[high_pos] = bracket_f[low_pos];
                bracket_g[high_pos] = bracket_g[low_pos];
                bracket_gtd[high_pos] = bracket_gtd[low_pos];
            }
            // new point becomes new low
            bracket[low_pos] = t;
            bracket_f[low_pos] = f_new;
            bracket_g[low_pos] = g_new;
            bracket_gtd[low_pos] = gtd_new;
        }
    }
    return {bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals};
}

}  // namespace tapegrad::nn::detail::lbfgs
