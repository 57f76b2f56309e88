// A port of PyTorch 1.13's torch/optim/lbfgs.py: the same iterations, tests and evaluation order,
// so that the trajectory is PyTorch's to rounding.
#include "nn/lbfgs.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "nn/lbfgs_line_search.hpp"
#include "nn/optim_update.hpp"

namespace tapegrad::nn {
using detail::lbfgs::axpy;
using detail::lbfgs::dot;
using detail::lbfgs::LineSearchResult;
using detail::lbfgs::max_abs;
using detail::lbfgs::scaled;
using detail::lbfgs::strong_wolfe;
using detail::lbfgs::sum_abs;
using detail::lbfgs::Vec;

Tensor LBFGS::evaluate_loss(const LossClosure& closure) {
    Tensor loss = evaluate(closure);
    if (!loss.defined() || loss.numel() != 1)
        throw std::invalid_argument("LBFGS.step: the closure returned " + (loss.defined() ? describe(loss) : "nothing") +
                                    "; it must return the loss, a tensor with one element (the parameters are back "
                                    "where the step started)");
    return loss;
}

void LBFGSOptions::check(const OptionChecker& checker) const {
    checker.require(lr >= 0.0, "learning rate", lr);
    checker.require(max_iter >= 0, "max_iter", static_cast<double>(max_iter));
    if (max_eval) checker.require(*max_eval >= 0, "max_eval", static_cast<double>(*max_eval));
    checker.require(true, "tolerance_grad", tolerance_grad);
    checker.require(true, "tolerance_change", tolerance_change);
    checker.require(history_size >= 1, "history_size", static_cast<double>(history_size));
    if (line_search_fn && *line_search_fn != "strong_wolfe")
        checker.fail("line_search_fn is '" + *line_search_fn + "'; only 'strong_wolfe' (or none) is supported");
}

LBFGS::LBFGS(std::vector<Tensor> params, LBFGSOptions options)
    : OptimizerWithOptions("LBFGS", options, {}) {
    allow_one_group_only();
    if (!options.max_eval) options.max_eval = options.max_iter * 5 / 4;
    add_param_group({std::move(params), options});
}

int64_t LBFGS::numel() const {
    int64_t n = 0;
    for (const Tensor& p : params()) n += p.numel();
    return n;
}

std::vector<double> LBFGS::gather_flat_grad() const {
    Vec flat;
    flat.reserve(static_cast<std::size_t>(numel()));
    for (std::size_t i = 0; i < params().size(); ++i) {
        const Tensor& p = params()[i];
        const Tensor g = p.grad();
        if (!g.defined()) {
            flat.insert(flat.end(), static_cast<std::size_t>(p.numel()), 0.0);
            continue;
        }
        if (g.shape() != p.shape())
            throw std::invalid_argument("LBFGS.step: " + describe_param(i) + " has a gradient of another shape, " +
                                        describe(g) + "; the parameters are back where the step started");
        const Vec values = g.to_vector<double>();
        flat.insert(flat.end(), values.begin(), values.end());
    }
    return flat;
}

void LBFGS::add_grad(double step_size, const std::vector<double>& update) {
    std::size_t offset = 0;
    for (const Tensor& p : params()) {
        const auto n = static_cast<std::size_t>(p.numel());
        const Vec slice(update.begin() + static_cast<std::ptrdiff_t>(offset),
                        update.begin() + static_cast<std::ptrdiff_t>(offset + n));
        // The update in the parameter's dtype and layout, as PyTorch's p.add_(update.view_as(p), alpha=t).
        Tensor step = detail::empty_with_layout_of(p);
        copy_into(step, from_vector(slice, p.shape(), {.dtype = kFloat64}));
        dispatch(p.dtype(), [&]<class T>() {
            const T t = static_cast<T>(step_size);
            detail::update_parameter<T, 2>({p, step}, [=](T& value, const T& d) { value += t * d; });
        });
        offset += n;
    }
}

std::vector<Tensor> LBFGS::clone_params() const {
    std::vector<Tensor> copies;
    for (const Tensor& p : params()) {
        Tensor c = detail::empty_with_layout_of(p);
        copy_into(c, p);
        copies.push_back(std::move(c));
    }
    return copies;
}

void LBFGS::set_params(const std::vector<Tensor>& values) {
    for (std::size_t i = 0; i < values.size(); ++i) {
        copy_into(params()[i], values[i]);
        params()[i].bump_version();
    }
}

std::pair<double, std::vector<double>> LBFGS::directional_evaluate(const LossClosure& closure,
                                                                   const std::vector<Tensor>& x, double t,
                                                                   const std::vector<double>& d) {
    add_grad(t, d);
    const double value = evaluate_loss(closure).item();
    Vec flat_grad = gather_flat_grad();
    set_params(x);
    return {value, std::move(flat_grad)};
}

Tensor LBFGS::step(LossClosure closure) {
    if (!closure)
        throw std::invalid_argument("LBFGS.step: needs a closure that re-evaluates the model and returns the loss "
                                    "(zero_grad, forward, backward); call step(closure)");
    check_group(0);
    for (std::size_t i = 0; i < params().size(); ++i)
        if (!is_floating_point(params()[i].dtype()))
            throw std::invalid_argument("LBFGS.step: " + describe_param(i) +
                                        " is not floating point; optimizers update float32 and float64 parameters");
    const LBFGSOptions& o = options();
    const double lr = o.lr, tolerance_grad = o.tolerance_grad, tolerance_change = o.tolerance_change;
    const int64_t max_iter = o.max_iter, max_eval = o.max_eval.value_or(o.max_iter * 5 / 4);
    const auto history_size = static_cast<std::size_t>(o.history_size);
    const bool strong_wolfe_search = o.line_search_fn.has_value();

    NoGradGuard no_grad;
    // All or nothing: the history is committed when the step returns, and a closure (or a
    // gradient) that throws puts the parameters back.
    const std::vector<Tensor> start = clone_params();
    History state = history_;
    try {
        const Tensor orig_loss = evaluate_loss(closure);
        double loss = orig_loss.item();
        int64_t current_evals = 1;
        state.func_evals += 1;
        Vec flat_grad = gather_flat_grad();
        bool opt_cond = max_abs(flat_grad) <= tolerance_grad;
        if (opt_cond) {
            history_ = std::move(state);
            return orig_loss;
        }
        Vec& d = state.d;
        double& t = state.t;
        int64_t n_iter = 0;
        while (n_iter < max_iter) {
            n_iter += 1;
            state.n_iter += 1;

            // compute gradient descent direction
            if (state.n_iter == 1) {
                d = scaled(flat_grad, -1.0);
                state.old_dirs.clear();
                state.old_stps.clear();
                state.ro.clear();
                state.H_diag = 1;
            } else {
                // do lbfgs update (update memory)
                Vec y = flat_grad;
                axpy(y, -1.0, state.prev_flat_grad);
                Vec s = scaled(d, t);
                const double ys = dot(y, s);
                if (ys > 1e-10) {
                    // shift history by one (limited-memory)
                    while (state.old_dirs.size() >= history_size) {
                        state.old_dirs.erase(state.old_dirs.begin());
                        state.old_stps.erase(state.old_stps.begin());
                        state.ro.erase(state.ro.begin());
                    }
                    state.H_diag = ys / dot(y, y);  // update scale of initial Hessian approximation
                    state.old_dirs.push_back(std::move(y));
                    state.old_stps.push_back(std::move(s));
                    state.ro.push_back(1. / ys);
                }
                // the approximate inverse Hessian times the gradient, in one buffer
                const std::size_t num_old = state.old_dirs.size();
                Vec al(num_old);
                Vec q = scaled(flat_grad, -1.0);
                for (std::size_t i = num_old; i-- > 0;) {
                    al[i] = dot(state.old_stps[i], q) * state.ro[i];
                    axpy(q, -al[i], state.old_dirs[i]);
                }
                d = scaled(q, state.H_diag);
                for (std::size_t i = 0; i < num_old; ++i) {
                    const double be_i = dot(state.old_dirs[i], d) * state.ro[i];
                    axpy(d, al[i] - be_i, state.old_stps[i]);
                }
            }
            state.prev_flat_grad = flat_grad;
            state.prev_loss = loss;

            // compute step length: reset initial guess for step size
            t = state.n_iter == 1 ? std::min(1., 1. / sum_abs(flat_grad)) * lr : lr;
            const double gtd = dot(flat_grad, d);  // directional derivative
            if (gtd > -tolerance_change) break;

            int64_t ls_func_evals = 0;
            if (strong_wolfe_search) {
                const std::vector<Tensor> x_init = clone_params();
                auto obj_func = [&](double step) { return directional_evaluate(closure, x_init, step, d); };
                LineSearchResult found = strong_wolfe(obj_func, t, d, loss, flat_grad, gtd);
                loss = found.f_new;
                flat_grad = std::move(found.g_new);
                t = found.t;
                ls_func_evals = found.ls_func_evals;
                add_grad(t, d);
                opt_cond = max_abs(flat_grad) <= tolerance_grad;
            } else {
                // no line search, simply move with fixed-step
                add_grad(t, d);
                if (n_iter != max_iter) {
                    // re-evaluated except in the last iteration (of no use in a stochastic setting)
                    loss = evaluate_loss(closure).item();
                    flat_grad = gather_flat_grad();
                    opt_cond = max_abs(flat_grad) <= tolerance_grad;
                    ls_func_evals = 1;
                }
            }
            current_evals += ls_func_evals;
            state.func_evals += ls_func_evals;

            // check conditions
            if (n_iter == max_iter) break;
            if (current_evals >= max_eval) break;
            if (opt_cond) break;
            if (max_abs(scaled(d, t)) <= tolerance_change) break;  // lack of progress
            if (std::abs(loss - state.prev_loss) < tolerance_change) break;
        }
        history_ = std::move(state);
        return orig_loss;
    } catch (...) {
        set_params(start);
        throw;
    }
}

// ---------------------------------------------------------------- state_dict

namespace {
Tensor vector_tensor(const Vec& v) {
    return from_vector(v, {static_cast<int64_t>(v.size())}, {.dtype = kFloat64});
}

Tensor matrix_tensor(const std::vector<Vec>& rows, std::size_t n) {
    Vec flat;
    for (const Vec& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return from_vector(flat, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(n)}, {.dtype = kFloat64});
}
}  // namespace

void LBFGS::append_extra_state(NamedTensors& out) const {
    if (history_.func_evals == 0) return;
    const History& h = history_;
    auto scalar = [](double v) { return scalar_tensor(v, {.dtype = kFloat64}); };
    out.emplace_back("state.0.func_evals", scalar(static_cast<double>(h.func_evals)));
    out.emplace_back("state.0.n_iter", scalar(static_cast<double>(h.n_iter)));
    if (h.d.empty()) return;
    const std::size_t n = h.d.size();
    out.emplace_back("state.0.d", vector_tensor(h.d));
    out.emplace_back("state.0.t", scalar(h.t));
    out.emplace_back("state.0.old_dirs", matrix_tensor(h.old_dirs, n));
    out.emplace_back("state.0.old_stps", matrix_tensor(h.old_stps, n));
    out.emplace_back("state.0.ro", vector_tensor(h.ro));
    out.emplace_back("state.0.H_diag", scalar(h.H_diag));
    out.emplace_back("state.0.prev_flat_grad", vector_tensor(h.prev_flat_grad));
    out.emplace_back("state.0.prev_loss", scalar(h.prev_loss));
}

std::any LBFGS::prepare_extra_state(const std::function<const Tensor*(const std::string&)>& find,
                                    const std::string& who) const {
    History h;
    const auto n = numel();
    // Reads "state.0.<name>" with the shape it must have ({} a scalar); false when absent.
    auto read = [&](const std::string& name, const Shape& shape, Vec& values) {
        const Tensor* t = find("state.0." + name);
        if (!t) return false;
        if (t->shape() != shape)
            throw std::invalid_argument(who + ": 'state.0." + name + "' is " + describe(*t) + ", expected " +
                                        to_string(shape) + " for parameters with " + std::to_string(n) +
                                        " elements in all");
        values = t->to_vector<double>();
        return true;
    };
    auto read_count = [&](const std::string& name, int64_t& count) {
        Vec v;
        if (!read(name, {}, v)) return false;
        detail::decode_hyper_parameter(scalar_tensor(v[0], {.dtype = kFloat64}), count, who + ": 'state.0." + name + "'");
        return true;
    };
    Vec v;
    if (!read_count("func_evals", h.func_evals)) return h;
    if (!read_count("n_iter", h.n_iter))
        throw std::invalid_argument(who + ": 'state.0.n_iter' is missing; pass what state_dict() returned");
    if (!read("d", {n}, h.d)) return h;
    const Tensor* dirs = find("state.0.old_dirs");
    const int64_t k = dirs && dirs->dim() == 2 ? dirs->shape()[0] : 0;
    Vec flat_dirs, flat_stps;
    auto require = [&](bool found, const std::string& name) {
        if (!found)
            throw std::invalid_argument(who + ": 'state.0." + name + "' is missing; pass what state_dict() returned");
    };
    require(read("t", {}, v), "t");
    h.t = v[0];
    require(read("old_dirs", {k, n}, flat_dirs), "old_dirs");
    require(read("old_stps", {k, n}, flat_stps), "old_stps");
    require(read("ro", {k}, h.ro), "ro");
    require(read("H_diag", {}, v), "H_diag");
    h.H_diag = v[0];
    require(read("prev_flat_grad", {n}, h.prev_flat_grad), "prev_flat_grad");
    require(read("prev_loss", {}, v), "prev_loss");
    h.prev_loss = v[0];
    for (int64_t r = 0; r < k; ++r) {
        h.old_dirs.emplace_back(flat_dirs.begin() + r * n, flat_dirs.begin() + (r + 1) * n);
        h.old_stps.emplace_back(flat_stps.begin() + r * n, flat_stps.begin() + (r + 1) * n);
    }
    return h;
}

void LBFGS::commit_extra_state(std::any state) { history_ = std::any_cast<History&&>(std::move(state)); }

}  // namespace tapegrad::nn
