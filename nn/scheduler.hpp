#pragma once
// Learning-rate schedulers with PyTorch's values (torch.optim.lr_scheduler, 1.13), for every param
// group. An epoch-based scheduler computes each epoch's lr in closed form from the group's base
// lr, which is the lr the group had when the first scheduler was built on the optimizer (PyTorch's
// group['initial_lr']). Construction sets the lrs to the epoch-0 values; step() advances one epoch
// and sets the lrs for it. A value the optimizer refuses (not finite) leaves lrs and epoch as they were.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nn/optimizer.hpp"

namespace tapegrad::nn {

class LRScheduler {
public:
    virtual ~LRScheduler() = default;
    void step() { set_epoch(last_epoch_ + 1); }
    // Jumps to `epoch` (for resuming from a checkpoint).
    void set_epoch(int64_t epoch);
    int64_t last_epoch() const { return last_epoch_; }
    double base_lr(std::size_t group = 0) const { return base_lrs_.at(group); }
    // Group 0's current learning rate, and every group's (PyTorch's get_last_lr()).
    double last_lr() const { return optimizer_.lr(); }
    std::vector<double> last_lrs() const;
    // The learning rate of a group at `epoch`.
    double lr_at(int64_t epoch, std::size_t group = 0) const { return compute_lr(epoch, group); }
    Optimizer& optimizer() const { return optimizer_; }
    // PyTorch's scheduler.state_dict(), as named tensors: "last_epoch" and "base_lrs" (what the
    // schedule depends on) and "_last_lr" (every group's current lr). load_state_dict restores the
    // first two, checked before anything changes, and leaves the lrs to the optimizer's own
    // load_state_dict, as PyTorch does; the next step() continues the schedule. A scheduler's
    // constructor arguments (step_size, gamma, ...) are not stored: build it with the same ones.
    NamedTensors state_dict() const;
    void load_state_dict(const NamedTensors& dict);

protected:
    explicit LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {}
    // Ends a constructor: takes each group's base lr (the given ones, or the optimizer's initial_lr,
    // its lr where it has none) and sets the epoch-0 lrs; then records the base lrs as the groups'
    // initial_lr (the given ones always, the others where absent). Changes nothing if it throws.
    void start(std::vector<double> base_lrs = {});
    virtual double compute_lr(int64_t epoch, std::size_t group) const = 0;
    // The momentum (or beta1) a scheduler sets with the lr; none leaves it alone.
    virtual std::optional<double> compute_momentum(int64_t, std::size_t) const { return std::nullopt; }
    // One value per param group: a single value for all, or one each ("<who>: expected N values for <what>").
    std::vector<double> per_group(const std::vector<double>& values, const std::string& who, const std::string& what) const;

private:
    friend class SequentialLR;
    Optimizer& optimizer_;
    std::vector<double> base_lrs_;
    int64_t last_epoch_ = 0;
};

// lr = base_lr * gamma^floor(epoch / step_size)
class StepLR : public LRScheduler {
public:
    StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

protected:
    double compute_lr(int64_t epoch, std::size_t group) const override;

private:
    int64_t step_size_;
    double gamma_;
};

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
class CosineAnnealingLR : public LRScheduler {
public:
    CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min = 0.0);

protected:
    double compute_lr(int64_t epoch, std::size_t group) const override;

private:
    int64_t t_max_;
    double eta_min_;
};

// lr = base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters)
class LinearLR : public LRScheduler {
public:
    LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0, int64_t total_iters = 5);

protected:
    double compute_lr(int64_t epoch, std::size_t group) const override;

private:
    double start_factor_, end_factor_;
    int64_t total_iters_;
};

struct OneCycleLROptions {
    std::vector<double> max_lr;  // one for all groups, or one per group
    // The cycle's length: total_steps, or epochs * steps_per_epoch when total_steps is 0.
    int64_t total_steps = 0;
    int64_t epochs = 0;
    int64_t steps_per_epoch = 0;
    double pct_start = 0.3;               // share of the cycle spent increasing the lr
    std::string anneal_strategy = "cos";  // "cos" or "linear"
    // Cycles momentum (SGD, RMSprop) or beta1 (Adam, AdamW) inversely to the lr.
    bool cycle_momentum = true;
    std::vector<double> base_momentum = {0.85};
    std::vector<double> max_momentum = {0.95};
    double div_factor = 25.0;          // initial lr = max_lr / div_factor
    double final_div_factor = 1e4;     // min lr = initial lr / final_div_factor
    // Three phases (up, down to the initial lr, down to the min lr) instead of two (up, down to the min lr).
    bool three_phase = false;
};

// The 1cycle policy (Smith & Topin): one step() per batch, total_steps of them at most. It
// sets each group's base lr (initial_lr) to max_lr / div_factor.
class OneCycleLR : public LRScheduler {
public:
    OneCycleLR(Optimizer& optimizer, OneCycleLROptions options);
    // The momentum (or beta1) of a group at `step`; none when momentum is not cycled.
    std::optional<double> momentum_at(int64_t step, std::size_t group = 0) const { return compute_momentum(step, group); }

protected:
    double compute_lr(int64_t epoch, std::size_t group) const override;
    std::optional<double> compute_momentum(int64_t epoch, std::size_t group) const override;

private:
    struct Phase {
        double end_step;
        int start, end;  // indices into a group's anchors {initial, max, min} (lr) and {max, base} (momentum)
    };
    // The phase of `step` and how far into it (PyTorch's pct).
    std::pair<const Phase*, double> locate(int64_t step) const;
    double anneal(double start, double end, double pct) const;

    OneCycleLROptions options_;
    int64_t total_steps_;
    std::vector<Phase> phases_;
    std::vector<std::array<double, 3>> lr_anchors_;        // per group: initial, max, min
    std::vector<std::array<double, 2>> momentum_anchors_;  // per group: max, base
};

// Runs schedulers one after another: the k-th from milestones[k-1] on, counting its epochs from 0
// there (PyTorch's SequentialLR). The schedulers must be built on the same optimizer.
class SequentialLR : public LRScheduler {
public:
    SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                 std::vector<int64_t> milestones);

protected:
    double compute_lr(int64_t epoch, std::size_t group) const override;
    std::optional<double> compute_momentum(int64_t epoch, std::size_t group) const override;

private:
    // The scheduler in charge at `epoch` and its own epoch there.
    std::pair<const LRScheduler*, int64_t> locate(int64_t epoch) const;

    std::vector<std::shared_ptr<LRScheduler>> schedulers_;
    std::vector<int64_t> milestones_;
};

struct ReduceLROnPlateauOptions {
    std::string mode = "min";            // "min": lower metrics are better; "max": higher ones
    double factor = 0.1;                 // new lr = lr * factor
    int64_t patience = 10;               // epochs without improvement tolerated before reducing
    double threshold = 1e-4;             // how much better counts as an improvement
    std::string threshold_mode = "rel";  // "rel": relative to the best; "abs": absolute
    int64_t cooldown = 0;                // epochs to wait after a reduction before counting again
    std::vector<double> min_lr = {0.0};  // one for all groups, or one per group
    double eps = 1e-8;                   // reductions smaller than this are skipped
};

// Reduces the lrs when a metric has stopped improving (PyTorch's ReduceLROnPlateau): step(metric)
// once per epoch.
class ReduceLROnPlateau {
public:
    explicit ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
    void step(double metric);
    int64_t last_epoch() const { return last_epoch_; }
    double best() const { return best_; }
    int64_t num_bad_epochs() const { return num_bad_epochs_; }
    int64_t cooldown_counter() const { return cooldown_counter_; }
    std::vector<double> last_lrs() const;
    // "best", "num_bad_epochs", "cooldown_counter" and "last_epoch", as PyTorch's state_dict() has
    // them; the options are not stored.
    NamedTensors state_dict() const;
    void load_state_dict(const NamedTensors& dict);

private:
    bool is_better(double value) const;

    Optimizer& optimizer_;
    ReduceLROnPlateauOptions options_;
    std::vector<double> min_lrs_;
    double best_;
    int64_t num_bad_epochs_ = 0;
    int64_t cooldown_counter_ = 0;
    int64_t last_epoch_ = 0;
};

}  // namespace tapegrad::nn

// libtorch's torch::optim names for the schedulers.
namespace tapegrad::optim {
using nn::CosineAnnealingLR;
using nn::LinearLR;
using nn::LRScheduler;
using nn::OneCycleLR;
using nn::SequentialLR;
using nn::StepLR;
using ReduceLROnPlateauScheduler = nn::ReduceLROnPlateau;
}  // namespace tapegrad::optim
