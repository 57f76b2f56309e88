#include "nn/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace tapegrad::nn {
using detail::format_number;

// ---------------------------------------------------------------- LRScheduler

void LRScheduler::start(std::vector<double> base_lrs) {
    const bool given = !base_lrs.empty();
    if (!given)
        for (std::size_t g = 0; g < optimizer_.param_group_count(); ++g)
            base_lrs.push_back(optimizer_.initial_lr(g).value_or(optimizer_.lr(g)));
    base_lrs_ = std::move(base_lrs);
    set_epoch(0);
    for (std::size_t g = 0; g < base_lrs_.size(); ++g)
        if (given || !optimizer_.initial_lr(g)) optimizer_.set_initial_lr(g, base_lrs_[g]);
}

void LRScheduler::set_epoch(int64_t epoch) {
    if (epoch < 0) throw std::invalid_argument("LRScheduler: epoch must be non-negative, got " + std::to_string(epoch));
    std::vector<double> lrs;
    std::vector<std::optional<double>> momenta;
    for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
        lrs.push_back(compute_lr(epoch, g));
        momenta.push_back(compute_momentum(epoch, g));
    }
    optimizer_.set_schedule(lrs, momenta);  // first: a value it refuses leaves the epoch as it was
    last_epoch_ = epoch;
}

std::vector<double> LRScheduler::last_lrs() const {
    std::vector<double> lrs;
    for (std::size_t g = 0; g < optimizer_.param_group_count(); ++g) lrs.push_back(optimizer_.lr(g));
    return lrs;
}

std::vector<double> LRScheduler::per_group(const std::vector<double>& values, const std::string& who,
                                           const std::string& what) const {
    const std::size_t groups = optimizer_.param_group_count();
    if (values.size() == 1) return std::vector<double>(groups, values[0]);
    if (values.size() != groups)
        throw std::invalid_argument(who + ": expected " + std::to_string(groups) + " values for " + what +
                                    " (one per param group, or one for all), got " + std::to_string(values.size()));
    return values;
}

namespace {

// The entry `name` of a scheduler's state dict, refused by name when absent.
const Tensor& state_entry(const NamedTensors& dict, const std::string& name, const std::string& who) {
    for (const auto& [key, value] : dict)
        if (key == name) return value;
    throw std::invalid_argument(who + ".load_state_dict: the state dict has no '" + name + "'; pass what state_dict() returned");
}

int64_t decode_count(const NamedTensors& dict, const std::string& name, const std::string& who) {
    int64_t value = 0;
    detail::decode_hyper_parameter(state_entry(dict, name, who), value, who + ".load_state_dict: '" + name + "'");
    if (value < 0) throw std::invalid_argument(who + ".load_state_dict: '" + name + "' must be non-negative, got " + std::to_string(value));
    return value;
}

Tensor float64_vector(const std::vector<double>& values) {
    return from_vector(values, {static_cast<int64_t>(values.size())}, {.dtype = kFloat64});
}

}  // namespace

NamedTensors LRScheduler::state_dict() const {
    return {{"last_epoch", detail::encode_hyper_parameter(last_epoch_)},
            {"base_lrs", float64_vector(base_lrs_)},
            {"_last_lr", float64_vector(last_lrs())}};
}

void LRScheduler::load_state_dict(const NamedTensors& dict) {
    const std::string who = "LRScheduler";
    const int64_t epoch = decode_count(dict, "last_epoch", who);
    const Tensor& base = state_entry(dict, "base_lrs", who);
    if (base.dim() != 1 || base.size(0) != static_cast<int64_t>(base_lrs_.size()))
        throw std::invalid_argument(who + ".load_state_dict: 'base_lrs' must hold one lr per param group (" +
                                    std::to_string(base_lrs_.size()) + "), got " + describe(base));
    std::vector<double> lrs = base.to_vector<double>();
    for (double lr : lrs)
        if (!(std::isfinite(lr) && lr >= 0.0))
            throw std::invalid_argument(who + ".load_state_dict: 'base_lrs' holds " + format_number(lr) +
                                        "; learning rates must be finite and non-negative");
    base_lrs_ = std::move(lrs);
    last_epoch_ = epoch;
}

// ---------------------------------------------------------------- StepLR, CosineAnnealingLR, LinearLR

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
    if (step_size <= 0) throw std::invalid_argument("StepLR: step_size must be positive, got " + std::to_string(step_size));
    if (!(gamma >= 0.0 && std::isfinite(gamma)))
        throw std::invalid_argument("StepLR: gamma must be finite and non-negative, got " + std::to_string(gamma));
    start();
}

double StepLR::compute_lr(int64_t epoch, std::size_t group) const {
    return base_lr(group) * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min)
    : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
    if (t_max <= 0) throw std::invalid_argument("CosineAnnealingLR: T_max must be positive, got " + std::to_string(t_max));
    if (!(eta_min >= 0.0 && std::isfinite(eta_min)))
        throw std::invalid_argument("CosineAnnealingLR: eta_min must be finite and non-negative, got " +
                                    std::to_string(eta_min));
    start();
}

double CosineAnnealingLR::compute_lr(int64_t epoch, std::size_t group) const {
    return eta_min_ + (base_lr(group) - eta_min_) * (1.0 + std::cos(M_PI * static_cast<double>(epoch) / t_max_)) / 2.0;
}

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer), start_factor_(start_factor), end_factor_(end_factor), total_iters_(total_iters) {
    if (!(start_factor >= 0.0 && start_factor <= 1.0))
        throw std::invalid_argument("LinearLR: start_factor must be between 0 and 1, got " + format_number(start_factor));
    if (!(end_factor >= 0.0 && end_factor <= 1.0))
        throw std::invalid_argument("LinearLR: end_factor must be between 0 and 1, got " + format_number(end_factor));
    if (total_iters < 0)
        throw std::invalid_argument("LinearLR: total_iters must be >= 0, got " + std::to_string(total_iters));
    start();
}

double LinearLR::compute_lr(int64_t epoch, std::size_t group) const {
    // total_iters 0: PyTorch's recursive form keeps start_factor for good.
    if (total_iters_ == 0) return base_lr(group) * start_factor_;
    return base_lr(group) * (start_factor_ + (end_factor_ - start_factor_) *
                                                 static_cast<double>(std::min(total_iters_, epoch)) /
                                                 static_cast<double>(total_iters_));
}

// ---------------------------------------------------------------- OneCycleLR

namespace {
int64_t one_cycle_total_steps(const OneCycleLROptions& o) {
    if (o.total_steps > 0) return o.total_steps;
    if (o.total_steps < 0)
        throw std::invalid_argument("OneCycleLR: expected a positive total_steps, got " + std::to_string(o.total_steps));
    if (o.epochs <= 0 || o.steps_per_epoch <= 0)
        throw std::invalid_argument("OneCycleLR: define either total_steps or epochs and steps_per_epoch (positive), got "
                                    "epochs " + std::to_string(o.epochs) + " and steps_per_epoch " +
                                    std::to_string(o.steps_per_epoch));
    return o.epochs * o.steps_per_epoch;
}
}  // namespace

OneCycleLR::OneCycleLR(Optimizer& optimizer, OneCycleLROptions options)
    : LRScheduler(optimizer), options_(std::move(options)), total_steps_(one_cycle_total_steps(options_)) {
    const OneCycleLROptions& o = options_;
    auto positive = [](double v) { return v > 0.0 && std::isfinite(v); };
    if (!(o.pct_start >= 0.0 && o.pct_start <= 1.0))
        throw std::invalid_argument("OneCycleLR: expected pct_start between 0 and 1, got " + format_number(o.pct_start));
    if (o.anneal_strategy != "cos" && o.anneal_strategy != "linear")
        throw std::invalid_argument("OneCycleLR: anneal_strategy must be 'cos' or 'linear', got '" + o.anneal_strategy + "'");
    if (!positive(o.div_factor) || !positive(o.final_div_factor))
        throw std::invalid_argument("OneCycleLR: div_factor and final_div_factor must be positive and finite, got " +
                                    format_number(o.div_factor) + " and " + format_number(o.final_div_factor));
    const auto total = static_cast<double>(total_steps_);
    enum { kInitial = 0, kMax = 1, kMin = 2 };
    if (o.three_phase)
        phases_ = {{o.pct_start * total - 1, kInitial, kMax},
                   {2 * o.pct_start * total - 2, kMax, kInitial},
                   {total - 1, kInitial, kMin}};
    else
        phases_ = {{o.pct_start * total - 1, kInitial, kMax}, {total - 1, kMax, kMin}};
    std::vector<double> initial_lrs;
    for (double max_lr : per_group(o.max_lr, "OneCycleLR", "max_lr")) {
        if (!(max_lr >= 0.0 && std::isfinite(max_lr)))
            throw std::invalid_argument("OneCycleLR: max_lr must be finite and >= 0, got " + format_number(max_lr));
        const double initial = max_lr / o.div_factor;
        initial_lrs.push_back(initial);
        lr_anchors_.push_back({initial, max_lr, initial / o.final_div_factor});
    }
    if (o.cycle_momentum) {
        if (!optimizer.has_momentum())
            throw std::invalid_argument("OneCycleLR: " + optimizer.name() +
                                        " has no momentum or betas to cycle; pass cycle_momentum = false");
        const std::vector<double> max_m = per_group(o.max_momentum, "OneCycleLR", "max_momentum");
        const std::vector<double> base_m = per_group(o.base_momentum, "OneCycleLR", "base_momentum");
        for (std::size_t g = 0; g < max_m.size(); ++g) momentum_anchors_.push_back({max_m[g], base_m[g]});
    }
    // PyTorch sets each group's initial_lr to max_lr / div_factor.
    start(std::move(initial_lrs));
}

std::pair<const OneCycleLR::Phase*, double> OneCycleLR::locate(int64_t step) const {
    if (step > total_steps_)
        throw std::invalid_argument("OneCycleLR: tried to step " + std::to_string(step + 1) +
                                    " times; the specified number of total steps is " + std::to_string(total_steps_));
    double start_step = 0;
    for (std::size_t i = 0; i < phases_.size(); ++i) {
        const double end_step = phases_[i].end_step;
        if (static_cast<double>(step) <= end_step || i + 1 == phases_.size())
            return {&phases_[i], (static_cast<double>(step) - start_step) / (end_step - start_step)};
        start_step = end_step;
    }
    throw std::logic_error("OneCycleLR: no phases");
}

double OneCycleLR::anneal(double start, double end, double pct) const {
    if (options_.anneal_strategy == "linear") return (end - start) * pct + start;
    const double cos_out = std::cos(M_PI * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

double OneCycleLR::compute_lr(int64_t epoch, std::size_t group) const {
    const auto [phase, pct] = locate(epoch);
    const auto& anchors = lr_anchors_[group];
    return anneal(anchors[static_cast<std::size_t>(phase->start)], anchors[static_cast<std::size_t>(phase->end)], pct);
}

std::optional<double> OneCycleLR::compute_momentum(int64_t epoch, std::size_t group) const {
    if (momentum_anchors_.empty()) return std::nullopt;
    const auto [phase, pct] = locate(epoch);
    // The momentum moves against the lr: from max while the lr rises, back to max as it falls.
    const auto& anchors = momentum_anchors_[group];
    auto momentum_of = [](int lr_anchor) { return lr_anchor == 1 ? 1 : 0; };  // lr max -> base momentum
    return anneal(anchors[static_cast<std::size_t>(momentum_of(phase->start))],
                  anchors[static_cast<std::size_t>(momentum_of(phase->end))], pct);
}

// ---------------------------------------------------------------- SequentialLR

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones)
    : LRScheduler(optimizer), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
    if (schedulers_.empty()) throw std::invalid_argument("SequentialLR: got no schedulers");
    for (std::size_t k = 0; k < schedulers_.size(); ++k) {
        if (!schedulers_[k]) throw std::invalid_argument("SequentialLR: scheduler " + std::to_string(k) + " is null");
        if (&schedulers_[k]->optimizer() != &optimizer)
            throw std::invalid_argument("SequentialLR: scheduler " + std::to_string(k) +
                                        " belongs to another optimizer; build every scheduler on the same one");
    }
    if (milestones_.size() + 1 != schedulers_.size())
        throw std::invalid_argument("SequentialLR: expects one more scheduler than milestones, got " +
                                    std::to_string(schedulers_.size()) + " schedulers and " +
                                    std::to_string(milestones_.size()) + " milestones");
    for (std::size_t k = 0; k < milestones_.size(); ++k)
        if (milestones_[k] <= (k == 0 ? 0 : milestones_[k - 1]))
            throw std::invalid_argument("SequentialLR: milestones must be positive and increasing, got " +
                                        std::to_string(milestones_[k]) + " at position " + std::to_string(k));
    start();
}

std::pair<const LRScheduler*, int64_t> SequentialLR::locate(int64_t epoch) const {
    const auto k = static_cast<std::size_t>(std::upper_bound(milestones_.begin(), milestones_.end(), epoch) -
                                            milestones_.begin());
    return {schedulers_[k].get(), k == 0 ? epoch : epoch - milestones_[k - 1]};
}

double SequentialLR::compute_lr(int64_t epoch, std::size_t group) const {
    const auto [scheduler, own_epoch] = locate(epoch);
    return scheduler->compute_lr(own_epoch, group);
}

std::optional<double> SequentialLR::compute_momentum(int64_t epoch, std::size_t group) const {
    const auto [scheduler, own_epoch] = locate(epoch);
    return scheduler->compute_momentum(own_epoch, group);
}

// ---------------------------------------------------------------- ReduceLROnPlateau

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options)
    : optimizer_(optimizer), options_(std::move(options)) {
    const ReduceLROnPlateauOptions& o = options_;
    if (!(o.factor < 1.0 && std::isfinite(o.factor)))
        throw std::invalid_argument("ReduceLROnPlateau: factor must be < 1.0, got " + format_number(o.factor));
    if (o.mode != "min" && o.mode != "max")
        throw std::invalid_argument("ReduceLROnPlateau: mode must be 'min' or 'max', got '" + o.mode + "'");
    if (o.threshold_mode != "rel" && o.threshold_mode != "abs")
        throw std::invalid_argument("ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got '" +
                                    o.threshold_mode + "'");
    if (o.patience < 0 || o.cooldown < 0)
        throw std::invalid_argument("ReduceLROnPlateau: patience and cooldown must be >= 0, got " +
                                    std::to_string(o.patience) + " and " + std::to_string(o.cooldown));
    if (!std::isfinite(o.threshold) || !std::isfinite(o.eps))
        throw std::invalid_argument("ReduceLROnPlateau: threshold and eps must be finite, got " +
                                    format_number(o.threshold) + " and " + format_number(o.eps));
    const std::size_t groups = optimizer.param_group_count();
    if (o.min_lr.size() != 1 && o.min_lr.size() != groups)
        throw std::invalid_argument("ReduceLROnPlateau: expected " + std::to_string(groups) + " min_lrs, got " +
                                    std::to_string(o.min_lr.size()));
    for (std::size_t g = 0; g < groups; ++g) {
        const double min_lr = o.min_lr.size() == 1 ? o.min_lr[0] : o.min_lr[g];
        if (!(min_lr >= 0.0 && std::isfinite(min_lr)))
            throw std::invalid_argument("ReduceLROnPlateau: min_lr must be finite and >= 0, got " + format_number(min_lr));
        min_lrs_.push_back(min_lr);
    }
    best_ = o.mode == "min" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
}

bool ReduceLROnPlateau::is_better(double a) const {
    const ReduceLROnPlateauOptions& o = options_;
    const bool rel = o.threshold_mode == "rel";
    if (o.mode == "min") return rel ? a < best_ * (1.0 - o.threshold) : a < best_ - o.threshold;
    return rel ? a > best_ * (o.threshold + 1.0) : a > best_ + o.threshold;
}

void ReduceLROnPlateau::step(double metric) {
    int64_t num_bad_epochs = num_bad_epochs_, cooldown_counter = cooldown_counter_;
    double best = best_;
    if (is_better(metric)) {
        best = metric;
        num_bad_epochs = 0;
    } else {
        num_bad_epochs += 1;
    }
    if (cooldown_counter > 0) {
        cooldown_counter -= 1;
        num_bad_epochs = 0;  // ignore any bad epochs in cooldown
    }
    if (num_bad_epochs > options_.patience) {
        std::vector<double> lrs = last_lrs();
        for (std::size_t g = 0; g < lrs.size(); ++g) {
            const double new_lr = std::max(lrs[g] * options_.factor, min_lrs_[g]);
            if (lrs[g] - new_lr > options_.eps) lrs[g] = new_lr;
        }
        optimizer_.set_schedule(lrs, {});  // first: a value it refuses leaves the scheduler as it was
        cooldown_counter = options_.cooldown;
        num_bad_epochs = 0;
    }
    best_ = best;
    num_bad_epochs_ = num_bad_epochs;
    cooldown_counter_ = cooldown_counter;
    last_epoch_ += 1;
}

std::vector<double> ReduceLROnPlateau::last_lrs() const {
    std::vector<double> lrs;
    for (std::size_t g = 0; g < optimizer_.param_group_count(); ++g) lrs.push_back(optimizer_.lr(g));
    return lrs;
}


NamedTensors ReduceLROnPlateau::state_dict() const {
    return {{"best", detail::encode_hyper_parameter(best_)},
            {"num_bad_epochs", detail::encode_hyper_parameter(num_bad_epochs_)},
            {"cooldown_counter", detail::encode_hyper_parameter(cooldown_counter_)},
            {"last_epoch", detail::encode_hyper_parameter(last_epoch_)}};
}

void ReduceLROnPlateau::load_state_dict(const NamedTensors& dict) {
    const std::string who = "ReduceLROnPlateau";
    double best = 0.0;
    detail::decode_hyper_parameter(state_entry(dict, "best", who), best, who + ".load_state_dict: 'best'");
    const int64_t bad = decode_count(dict, "num_bad_epochs", who);
    const int64_t cooldown = decode_count(dict, "cooldown_counter", who);
    const int64_t epoch = decode_count(dict, "last_epoch", who);
    best_ = best;
    num_bad_epochs_ = bad;
    cooldown_counter_ = cooldown;
    last_epoch_ = epoch;
}

}  // namespace tapegrad::nn
