#pragma once
// Learning-rate schedulers with PyTorch's closed-form values. Construction sets the optimizer's
// lr to the epoch-0 value; step() advances one epoch and sets the lr for it.
#include <cstdint>

#include "nn/optim.hpp"

namespace tapegrad::nn {

class LRScheduler {
public:
    virtual ~LRScheduler() = default;
    void step() { set_epoch(last_epoch_ + 1); }
    // Jumps to `epoch` (for resuming from a checkpoint).
    void set_epoch(int64_t epoch);
    int64_t last_epoch() const { return last_epoch_; }
    double base_lr() const { return base_lr_; }
    double last_lr() const { return optimizer_.lr(); }
    // The learning rate at `epoch`.
    virtual double lr_at(int64_t epoch) const = 0;

protected:
    explicit LRScheduler(Optimizer& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}

private:
    Optimizer& optimizer_;
    double base_lr_;
    int64_t last_epoch_ = 0;
};

// lr = base_lr * gamma^floor(epoch / step_size)
class StepLR : public LRScheduler {
public:
    StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
    double lr_at(int64_t epoch) const override;

private:
    int64_t step_size_;
    double gamma_;
};

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
class CosineAnnealingLR : public LRScheduler {
public:
    CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min = 0.0);
    double lr_at(int64_t epoch) const override;

private:
    int64_t t_max_;
    double eta_min_;
};

}  // namespace tapegrad::nn
