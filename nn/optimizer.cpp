#include "nn/optimizer.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "nn/optim_update.hpp"

namespace tapegrad::nn {
namespace {

using detail::empty_with_layout_of;

// True unless the tensor's elements provably occupy distinct memory: sorted by stride, each
// dimension must step past everything the smaller ones span. An expanded view (stride 0) fails, so
// an in-place update never writes one location twice (PyTorch refuses those writes too).
bool may_overlap(const Tensor& t) {
    std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size)
    for (std::size_t d = 0; d < t.dim(); ++d)
        if (t.shape()[d] > 1) dims.emplace_back(t.strides()[d], t.shape()[d]);
    std::sort(dims.begin(), dims.end());
    int64_t span = 0;  // largest offset reached by the dimensions so far
    for (const auto& [stride, size] : dims) {
        if (stride <= span) return true;
        span += stride * (size - 1);
    }
    return false;
}

}  // namespace

// ---------------------------------------------------------------- groups and learning rates

Optimizer::Optimizer(std::string name, std::vector<std::string> slots) : name_(std::move(name)), slots_(std::move(slots)) {}

OptionChecker Optimizer::checker(std::size_t group) const {
    return OptionChecker(group == 0 ? name_ : name_ + " param group " + std::to_string(group));
}

void Optimizer::add_params(const std::vector<Tensor>& params) {
    const std::size_t group = group_begin_.size();
    if (one_group_only_ && group > 0)
        throw std::invalid_argument(name_ + " doesn't support per-parameter options (parameter groups); give it "
                                    "one parameter list");
    if (params.empty())
        throw std::invalid_argument(name_ + ": got an empty parameter list" +
                                    (group > 0 ? " for param group " + std::to_string(group) : std::string()));
    for (std::size_t k = 0; k < params.size(); ++k) {
        const Tensor& p = params[k];
        const std::string which = "parameter " + std::to_string(params_.size() + k);
        // As torch.optim: any leaf; one that does not require grad gets no gradient and is skipped.
        if (!p.defined() || !p.is_leaf())
            throw std::invalid_argument(name_ + ": " + which +
                                        " must be a leaf tensor (can't optimize a tensor computed by an op)");
        if (may_overlap(p))
            throw std::invalid_argument(name_ + ": " + which + " " + describe(p) +
                                        " has elements that share memory (an expanded view); pass a .clone()");
        for (std::size_t j = 0; j < params_.size() + k; ++j)
            if ((j < params_.size() ? params_[j] : params[j - params_.size()]).same(p))
                throw std::invalid_argument(name_ + ": " + which + " appears twice" +
                                            (j < params_.size() ? " (it is parameter " + std::to_string(j) +
                                                                      ", in an earlier param group)"
                                                                : std::string(" in the list")));
    }
    group_begin_.push_back(params_.size());
    initial_lrs_.emplace_back();
    params_.insert(params_.end(), params.begin(), params.end());
    state_.resize(params_.size(), std::vector<Tensor>(slots_.size()));
    steps_.resize(params_.size(), 0);
}

std::size_t Optimizer::group_of(std::size_t param) const {
    return static_cast<std::size_t>(std::upper_bound(group_begin_.begin(), group_begin_.end(), param) -
                                    group_begin_.begin()) - 1;
}

double Optimizer::lr(std::size_t group) const {
    if (group >= param_group_count())
        throw std::out_of_range(name_ + ".lr: param group " + std::to_string(group) + " does not exist (it has " +
                                std::to_string(param_group_count()) + ")");
    return group_lr(group);
}

void Optimizer::check_lr(std::size_t group, double lr) const {
    if (group >= param_group_count())
        throw std::out_of_range(name_ + ".set_lr: param group " + std::to_string(group) + " does not exist (it has " +
                                std::to_string(param_group_count()) + ")");
    checker(group).require(lr >= 0.0, "learning rate", lr);
}

void Optimizer::set_lr(double lr) {
    for (std::size_t g = 0; g < param_group_count(); ++g) check_lr(g, lr);
    for (std::size_t g = 0; g < param_group_count(); ++g) store_group_lr(g, lr);
}

void Optimizer::set_lr(std::size_t group, double lr) {
    check_lr(group, lr);
    store_group_lr(group, lr);
}

std::optional<double> Optimizer::momentum(std::size_t group) const {
    if (group >= param_group_count())
        throw std::out_of_range(name_ + ".momentum: param group " + std::to_string(group) + " does not exist");
    return group_momentum(group);
}

void Optimizer::set_schedule(const std::vector<double>& lrs, const std::vector<std::optional<double>>& momenta) {
    if (lrs.size() != param_group_count() || (!momenta.empty() && momenta.size() != param_group_count()))
        throw std::logic_error(name_ + ".set_schedule: one value per param group expected");
    for (std::size_t g = 0; g < lrs.size(); ++g) {
        check_lr(g, lrs[g]);
        if (!momenta.empty() && momenta[g]) check_group_momentum(g, *momenta[g]);
    }
    for (std::size_t g = 0; g < lrs.size(); ++g) {
        store_group_lr(g, lrs[g]);
        if (!momenta.empty() && momenta[g]) store_group_momentum(g, *momenta[g]);
    }
}

void Optimizer::set_initial_lr(std::size_t group, double lr) {
    check_lr(group, lr);
    initial_lrs_[group] = lr;
}

void Optimizer::zero_grad() {
    for (Tensor& p : params_) p.zero_grad();
}

Tensor Optimizer::evaluate(const LossClosure& closure) {
    if (!closure) return {};
    GradModeGuard enable_grad(true);
    return closure();
}

// ---------------------------------------------------------------- steps

std::string Optimizer::describe_param(std::size_t i) const {
    return "parameter " + std::to_string(i) + " " + describe(params_[i]);
}

Tensor Optimizer::grad_like_param(std::size_t i) const {
    const Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (g.strides() == p.strides()) return g;
    // Rare (a gradient produced in another layout). The update would be right in any layout, but
    // its rounding would follow the gradient's layout (vectorised loop or scalar tail), and that
    // layout may depend on the kernel chosen: with one layout the result depends on nothing else.
    Tensor same_layout = empty_with_layout_of(p);
    copy_into(same_layout, g);
    return same_layout;
}

std::vector<Optimizer::ParamStep> Optimizer::prepare_step() const {
    for (std::size_t g = 0; g < param_group_count(); ++g) check_group(g);
    std::vector<std::vector<std::optional<double>>> start_values;
    for (std::size_t g = 0; g < param_group_count(); ++g) start_values.push_back(slot_start_values(g));
    std::vector<ParamStep> steps;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor& p = params_[i];
        const Tensor g = p.grad();
        if (!g.defined()) continue;
        auto fail = [&](const std::string& problem) {
            throw std::invalid_argument(name_ + ".step: " + describe_param(i) + " " + problem +
                                        "; nothing was updated");
        };
        if (!is_floating_point(p.dtype())) fail("is not floating point; optimizers update float32 and float64 parameters");
        if (g.shape() != p.shape()) fail("has a gradient of another shape, " + describe(g));
        if (g.dtype() != p.dtype())
            fail("has a gradient " + describe(g) +
                 " (was the parameter converted with .to() between the forward pass and step()?); compute the "
                 "gradient again after converting: zero_grad(), forward, backward");
        for (std::size_t s = 0; s < slots_.size(); ++s) {
            const Tensor& st = state_[i][s];
            if (!st.defined()) continue;
            if (st.shape() != p.shape()) fail("has " + slots_[s] + " state of another shape, " + describe(st));
            if (st.dtype() != p.dtype())
                fail("has " + slots_[s] + " state " + describe(st) +
                     ": the parameter was converted (Module::to) after this optimizer stepped; build the optimizer "
                     "after .to(), or convert its state with load_state_dict(state_dict())");
        }
        const std::size_t group = group_of(i);
        ParamStep step{.index = i, .group = group, .param = p, .grad = grad_like_param(i), .state = {},
                       .new_state = false, .step = steps_[i] + 1};
        const std::vector<std::optional<double>>& start = start_values[group];
        for (std::size_t s = 0; s < slots_.size(); ++s) {
            Tensor st = state_[i][s];
            if (s < start.size() && start[s] && !st.defined()) {
                st = empty_with_layout_of(p);
                fill_tensor(st, *start[s]);
                step.new_state = true;
            }
            step.state.push_back(std::move(st));
        }
        steps.push_back(std::move(step));
    }
    return steps;
}

void Optimizer::commit_step(const std::vector<ParamStep>& steps) {
    for (const ParamStep& step : steps) {
        steps_[step.index] = step.step;
        for (std::size_t s = 0; s < step.state.size(); ++s)
            if (step.state[s].defined()) state_[step.index][s] = step.state[s];
    }
}

// ---------------------------------------------------------------- state_dict

NamedTensors Optimizer::state_dict() const {
    NamedTensors out;
    for (std::size_t g = 0; g < param_group_count(); ++g) {
        append_group_options(g, out);
        const std::string prefix = "param_groups." + std::to_string(g) + ".";
        const std::size_t end = g + 1 < param_group_count() ? group_begin_[g + 1] : params_.size();
        std::vector<double> positions;
        for (std::size_t i = group_begin_[g]; i < end; ++i) positions.push_back(static_cast<double>(i));
        out.emplace_back(prefix + "params",
                         from_vector(positions, {static_cast<int64_t>(positions.size())}, {.dtype = kFloat64}));
        if (initial_lrs_[g]) out.emplace_back(prefix + "initial_lr", detail::encode_hyper_parameter(*initial_lrs_[g]));
    }
    for (std::size_t i = 0; i < params_.size(); ++i) {
        if (steps_[i] == 0) continue;
        const std::string prefix = "state." + std::to_string(i) + ".";
        out.emplace_back(prefix + "step", scalar_tensor(static_cast<double>(steps_[i]), {.dtype = kFloat64}));
        for (std::size_t s = 0; s < slots_.size(); ++s)
            if (state_[i][s].defined()) out.emplace_back(prefix + slots_[s], state_[i][s].detach());
    }
    append_extra_state(out);
    return out;
}

void Optimizer::load_state_dict(const NamedTensors& dict) { commit_load(prepare_load(dict)); }

Optimizer::PreparedState Optimizer::prepare_load(const NamedTensors& dict) const {
    const std::string who = name_ + ".load_state_dict";
    std::map<std::string, Tensor> given;
    for (const auto& [key, t] : dict) {
        if (!t.defined()) {
            // "state.<i>.<slot>": say which parameter the entry belongs to.
            std::string owner;
            std::size_t i = 0;
            const char* digits = key.data() + std::min<std::size_t>(key.size(), 6);
            const auto [end, ec] = std::from_chars(digits, key.data() + key.size(), i);
            if (key.rfind("state.", 0) == 0 && ec == std::errc() && *end == '.' && i < params_.size())
                owner = " (state of " + describe_param(i) + ")";
            throw std::invalid_argument(who + ": entry '" + key + "'" + owner +
                                        " is an undefined tensor; pass the dictionary state_dict() returned, where "
                                        "every entry holds a tensor");
        }
        if (!given.emplace(key, t).second)
            throw std::invalid_argument(who + ": the dictionary has '" + key + "' twice; give each entry once");
    }
    std::set<std::string> used;
    const auto find = [&](const std::string& key) -> const Tensor* {
        auto it = given.find(key);
        if (it == given.end()) return nullptr;
        used.insert(key);
        return &it->second;
    };
    auto scalar = [&](const std::string& key) -> std::optional<double> {
        const Tensor* t = find(key);
        if (!t) return std::nullopt;
        double value = 0;
        detail::decode_hyper_parameter(*t, value, who + ": '" + key + "'");
        return value;
    };

    PreparedState prepared;
    for (std::size_t g = 0; g < param_group_count(); ++g) {
        const std::string prefix = "param_groups." + std::to_string(g) + ".";
        const auto lr = scalar(prefix + "lr");
        if (!lr) throw std::invalid_argument(who + ": '" + prefix + "lr' is missing; pass what state_dict() returned");
        if (!(*lr >= 0.0 && std::isfinite(*lr)))
            throw std::invalid_argument(who + ": '" + prefix + "lr' is " + std::to_string(*lr) +
                                        "; a learning rate is finite and >= 0");
        if (const Tensor* positions = find(prefix + "params")) {
            const std::size_t end = g + 1 < param_group_count() ? group_begin_[g + 1] : params_.size();
            if (static_cast<std::size_t>(positions->numel()) != end - group_begin_[g])
                throw std::invalid_argument(who + ": the state does not fit this optimizer: the saved param group " +
                                            std::to_string(g) + " has " + std::to_string(positions->numel()) +
                                            " parameters, this optimizer's has " +
                                            std::to_string(end - group_begin_[g]) +
                                            "; build the optimizer with the same param groups as the saved one");
        }
        const auto initial = scalar(prefix + "initial_lr");
        if (initial && !(*initial >= 0.0 && std::isfinite(*initial)))
            throw std::invalid_argument(who + ": '" + prefix + "initial_lr' is " + std::to_string(*initial) +
                                        "; a learning rate is finite and >= 0");
        prepared.initial_lrs.push_back(initial);
    }
    const std::string extra_group = "param_groups." + std::to_string(param_group_count()) + ".lr";
    if (given.count(extra_group))
        throw std::invalid_argument(who + ": the state does not fit this optimizer: it has more param groups than this optimizer's " +
                                    std::to_string(param_group_count()) +
                                    "; build the optimizer with the same param groups as the saved one");
    prepared.options = prepare_group_options(find, who);

    prepared.steps.assign(params_.size(), 0);
    prepared.state.assign(params_.size(), std::vector<Tensor>(slots_.size()));
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const std::string prefix = "state." + std::to_string(i) + ".";
        if (auto st = scalar(prefix + "step")) {
            if (!(*st >= 1 && *st < 9e15 && std::floor(*st) == *st))
                throw std::invalid_argument(who + ": '" + prefix + "step' is " + std::to_string(*st) +
                                            ", not a step count (a whole number from 1)");
            prepared.steps[i] = static_cast<int64_t>(*st);
        }
        for (std::size_t s = 0; s < slots_.size(); ++s) {
            const Tensor* t = find(prefix + slots_[s]);
            if (!t) continue;
            if (t->shape() != params_[i].shape())
                throw std::invalid_argument(who + ": size mismatch for '" + prefix + slots_[s] + "': the state is " +
                                            to_string(t->shape()) + ", " + describe_param(i));
            prepared.state[i][s] = empty_with_layout_of(params_[i]);
            copy_into(prepared.state[i][s], *t);
        }
    }
    prepared.extra = prepare_extra_state(find, who);
    if (used.size() != given.size()) {
        std::string unused;
        for (const auto& [k, _] : given)
            if (!used.count(k)) unused += " " + k;
        throw std::invalid_argument(who + ": the state does not fit this optimizer (" +
                                    std::to_string(given.size() - used.size()) + " entries unused:" + unused + ")");
    }
    return prepared;
}

void Optimizer::commit_load(PreparedState prepared) {
    if (prepared.steps.size() != params_.size() || prepared.state.size() != params_.size() ||
        prepared.initial_lrs.size() != param_group_count())
        throw std::logic_error(name_ + ".commit_load: the prepared state is for another optimizer");
    commit_group_options(std::move(prepared.options));
    initial_lrs_ = std::move(prepared.initial_lrs);
    steps_ = std::move(prepared.steps);
    state_ = std::move(prepared.state);
    commit_extra_state(std::move(prepared.extra));
}

}  // namespace tapegrad::nn
