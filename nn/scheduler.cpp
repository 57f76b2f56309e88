#include "nn/scheduler.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace tapegrad::nn {

void LRScheduler::set_epoch(int64_t epoch) {
    if (epoch < 0) throw std::invalid_argument("LRScheduler: epoch must be non-negative, got " + std::to_string(epoch));
    optimizer_.set_lr(lr_at(epoch));  // first: a learning rate it refuses leaves the epoch as it was
    last_epoch_ = epoch;
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
    if (step_size <= 0) throw std::invalid_argument("StepLR: step_size must be positive, got " + std::to_string(step_size));
    if (!(gamma >= 0.0 && std::isfinite(gamma)))
        throw std::invalid_argument("StepLR: gamma must be finite and non-negative, got " + std::to_string(gamma));
    set_epoch(0);
}

double StepLR::lr_at(int64_t epoch) const {
    return base_lr() * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min)
    : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
    if (t_max <= 0) throw std::invalid_argument("CosineAnnealingLR: T_max must be positive, got " + std::to_string(t_max));
    if (!(eta_min >= 0.0 && std::isfinite(eta_min)))
        throw std::invalid_argument("CosineAnnealingLR: eta_min must be finite and non-negative, got " +
                                    std::to_string(eta_min));
    set_epoch(0);
}

double CosineAnnealingLR::lr_at(int64_t epoch) const {
    return eta_min_ + (base_lr() - eta_min_) * (1.0 + std::cos(M_PI * static_cast<double>(epoch) / t_max_)) / 2.0;
}

}  // namespace tapegrad::nn
