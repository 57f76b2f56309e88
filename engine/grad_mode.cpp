// Grad mode and anomaly mode, per thread: an evaluation thread under NoGradGuard does not change
// what a training thread records.
#include "engine/autograd.hpp"

namespace tapegrad {

namespace {
thread_local bool t_grad_enabled = true;
thread_local bool t_anomaly_enabled = false;
}  // namespace

bool is_grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool enabled) { t_grad_enabled = enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }
GradModeGuard::GradModeGuard(bool enabled) : previous_(t_grad_enabled) { t_grad_enabled = enabled; }
GradModeGuard::~GradModeGuard() { t_grad_enabled = previous_; }

bool is_anomaly_enabled() { return t_anomaly_enabled; }
void set_anomaly_enabled(bool enabled) { t_anomaly_enabled = enabled; }
AnomalyModeGuard::AnomalyModeGuard(bool enabled) : previous_(t_anomaly_enabled) { t_anomaly_enabled = enabled; }
AnomalyModeGuard::~AnomalyModeGuard() { t_anomaly_enabled = previous_; }

}  // namespace tapegrad
