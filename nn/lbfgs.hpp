#pragma once
// L-BFGS as torch.optim.LBFGS (PyTorch 1.13's lbfgs.py, strong-Wolfe line search included). One
// param group only; step(closure) evaluates the closure as often as the iterations need. The
// flattened gradient, the direction and the history are kept in float64 whatever the parameters'
// dtype (PyTorch keeps them in the parameters' dtype: float32 parameters round differently).
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nn/arg.hpp"
#include "nn/optimizer.hpp"

namespace tapegrad::optim {
class LBFGSOptions;
}  // namespace tapegrad::optim

namespace tapegrad::nn {

struct LBFGSOptions {
    double lr = 1.0;
    int64_t max_iter = 20;              // iterations per step()
    std::optional<int64_t> max_eval = std::nullopt;  // closure evaluations per step(); none: max_iter * 5 / 4
    double tolerance_grad = 1e-7;       // stop when max |gradient| <= this
    double tolerance_change = 1e-9;     // stop when the step or the loss changes less than this
    int64_t history_size = 100;
    std::optional<std::string> line_search_fn = std::nullopt;  // none, or "strong_wolfe"

    template <class F>
    void for_each_field(F&& f) {
        f("lr", lr);
        f("max_iter", max_iter);
        f("max_eval", max_eval);
        f("tolerance_grad", tolerance_grad);
        f("tolerance_change", tolerance_change);
        f("history_size", history_size);
        f("line_search_fn", line_search_fn);
    }
    void check(const OptionChecker& checker) const;
};

class LBFGS : public OptimizerWithOptions<LBFGSOptions> {
public:
    LBFGS(std::vector<Tensor> params, LBFGSOptions options = {});
    // libtorch's LBFGS(params, optim::LBFGSOptions(1).line_search_fn("strong_wolfe")).
    template <std::convertible_to<optim::LBFGSOptions> Options, class Chained = optim::LBFGSOptions>
    LBFGS(std::vector<Tensor> params, const Options& options) : LBFGS(std::move(params), static_cast<LBFGSOptions>(Chained(options))) {}
    // Requires a closure: L-BFGS evaluates the loss and its gradient at the points it tries.
    // Returns the loss of the first evaluation. A closure that throws leaves the parameters as they
    // were before that evaluation's trial point; the history is updated only when step() returns.
    Tensor step(LossClosure closure = nullptr) override;

    // The state PyTorch keeps on the first parameter; state_dict() stores it as "state.0.<name>".
    struct History {
        int64_t func_evals = 0;
        int64_t n_iter = 0;
        std::vector<double> d;  // the last direction; empty before the first iteration
        double t = 0;           // the last step length
        std::vector<std::vector<double>> old_dirs, old_stps;
        std::vector<double> ro;
        double H_diag = 1;
        std::vector<double> prev_flat_grad;
        double prev_loss = 0;
    };
    const History& history() const { return history_; }

protected:
    void append_extra_state(NamedTensors& out) const override;
    std::any prepare_extra_state(const std::function<const Tensor*(const std::string&)>& find,
                                 const std::string& who) const override;
    void commit_extra_state(std::any state) override;

private:
    int64_t numel() const;
    // Evaluates the closure and checks that it returned a loss.
    static Tensor evaluate_loss(const LossClosure& closure);
    std::vector<double> gather_flat_grad() const;
    void add_grad(double step_size, const std::vector<double>& update);
    std::vector<Tensor> clone_params() const;
    void set_params(const std::vector<Tensor>& values);
    // Moves to x + t d, evaluates the closure, and moves back to x: the loss and flat gradient there.
    std::pair<double, std::vector<double>> directional_evaluate(const LossClosure& closure, const std::vector<Tensor>& x,
                                                                double t, const std::vector<double>& d);

    History history_;
};

}  // namespace tapegrad::nn

namespace tapegrad::optim {

using nn::LBFGS;

// libtorch's chained LBFGSOptions, converting to nn::LBFGSOptions.
class LBFGSOptions {
public:
    LBFGSOptions(double lr = 1.0) : lr_(lr) {}
    operator nn::LBFGSOptions() const {
        return {.lr = lr_, .max_iter = max_iter_, .max_eval = max_eval_, .tolerance_grad = tolerance_grad_,
                .tolerance_change = tolerance_change_, .history_size = history_size_, .line_search_fn = line_search_fn_};
    }
    TAPEGRAD_ARG(double, lr);
    TAPEGRAD_ARG(int64_t, max_iter) = 20;
    TAPEGRAD_ARG(std::optional<int64_t>, max_eval) = std::nullopt;
    TAPEGRAD_ARG(double, tolerance_grad) = 1e-7;
    TAPEGRAD_ARG(double, tolerance_change) = 1e-9;
    TAPEGRAD_ARG(int64_t, history_size) = 100;
    TAPEGRAD_ARG(std::optional<std::string>, line_search_fn) = std::nullopt;
};

}  // namespace tapegrad::optim
