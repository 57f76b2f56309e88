#include "nn/optim.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "engine/autograd.hpp"
#include "engine/strided.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad::nn {
namespace {

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

// A tensor with `like`'s shape, dtype and strides when `like` is dense (so that the update loop
// walks the parameter and its state as one run), row-major otherwise.
Tensor empty_with_layout_of(const Tensor& like) {
    if (!is_dense(like)) return empty(like.shape(), {.dtype = like.dtype()});
    // A dense tensor with non-negative strides starts at its lowest address and spans numel elements.
    return as_strided(empty({like.numel()}, {.dtype = like.dtype()}), like.shape(), like.strides());
}

// The one place where step() writes parameters: calls update(p, g, state...) on matching elements
// of operands = {parameter, gradient, state slots...}, each walked by its own strides, and records
// the in-place write in the parameter's version counter (a graph that saved it refuses backward).
template <class T, std::size_t N, class Update>
void update_parameter(const std::array<Tensor, N>& operands, Update&& update) {
    // Dimensions in the parameter's memory order, so that a dense parameter and its state are one
    // run. One thread, always the same runs: the result does not depend on the thread count (a
    // vectorised loop and its scalar tail may round differently).
    const Tensor& param = operands[0];
    std::vector<std::size_t> order(param.dim());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return param.strides()[a] > param.strides()[b]; });
    Shape shape;
    std::array<Strides, N> strides;
    std::array<T*, N> base;
    for (std::size_t d : order) {
        shape.push_back(param.shape()[d]);
        for (std::size_t k = 0; k < N; ++k) strides[k].push_back(operands[k].strides()[d]);
    }
    for (std::size_t k = 0; k < N; ++k) base[k] = operands[k].template data<T>();
    for_each_run<N>(shape, strides, [&](const auto& offsets, int64_t count, const auto& steps) {
        [&]<std::size_t... K>(std::index_sequence<K...>) {
            if (((steps[K] == 1) && ...)) {
#pragma omp simd
                for (int64_t j = 0; j < count; ++j) update(base[K][offsets[K] + j]...);
            } else {
                for (int64_t j = 0; j < count; ++j) update(base[K][offsets[K] + j * steps[K]]...);
            }
        }(std::make_index_sequence<N>{});
    });
    param.bump_version();
}

}  // namespace

Optimizer::Optimizer(std::string name, std::vector<Tensor> params, double lr, std::vector<std::string> slots)
    : name_(std::move(name)), params_(std::move(params)), lr_(lr), slots_(std::move(slots)) {
    require(lr >= 0.0, "learning rate", lr);
    if (params_.empty()) throw std::invalid_argument(name_ + ": got an empty parameter list");
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor& p = params_[i];
        // As torch.optim: any leaf; one that does not require grad gets no gradient and is skipped.
        if (!p.defined() || !p.is_leaf())
            throw std::invalid_argument(name_ + ": parameter " + std::to_string(i) +
                                        " must be a leaf tensor (can't optimize a tensor computed by an op)");
        if (may_overlap(p))
            throw std::invalid_argument(name_ + ": parameter " + std::to_string(i) + " " + describe(p) +
                                        " has elements that share memory (an expanded view); pass a .clone()");
        for (std::size_t j = 0; j < i; ++j)
            if (params_[j].same(p))
                throw std::invalid_argument(name_ + ": parameter " + std::to_string(i) + " appears twice in the list");
    }
    state_.assign(params_.size(), std::vector<Tensor>(slots_.size()));
    steps_.assign(params_.size(), 0);
}

void Optimizer::require(bool ok, const std::string& what, double value) const {
    if (!ok || !std::isfinite(value)) {
        std::ostringstream s;
        s << name_ << ": invalid " << what << ": " << value;
        throw std::invalid_argument(s.str());
    }
}

void Optimizer::set_lr(double lr) {
    require(lr >= 0.0, "learning rate", lr);
    lr_ = lr;
}

void Optimizer::zero_grad() {
    for (Tensor& p : params_) p.zero_grad();
}

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

std::vector<Optimizer::ParamStep> Optimizer::prepare_step(std::size_t slots) const {
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
        ParamStep step{.index = i, .param = p, .grad = grad_like_param(i), .state = {}, .new_state = false,
                       .step = steps_[i] + 1};
        for (std::size_t s = 0; s < slots; ++s) {
            Tensor st = state_[i][s];
            if (!st.defined()) {
                st = empty_with_layout_of(p);
                fill_tensor(st, 0.0);
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
        for (std::size_t s = 0; s < step.state.size(); ++s) state_[step.index][s] = step.state[s];
    }
}

NamedTensors Optimizer::state_dict() const {
    NamedTensors out;
    out.emplace_back("param_groups.0.lr", scalar_tensor(lr_, {.dtype = kFloat64}));
    for (std::size_t i = 0; i < params_.size(); ++i) {
        if (steps_[i] == 0) continue;
        const std::string prefix = "state." + std::to_string(i) + ".";
        out.emplace_back(prefix + "step", scalar_tensor(static_cast<double>(steps_[i]), {.dtype = kFloat64}));
        for (std::size_t s = 0; s < slots_.size(); ++s)
            if (state_[i][s].defined()) out.emplace_back(prefix + slots_[s], state_[i][s].detach());
    }
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
    auto scalar = [&](const std::string& key) -> std::optional<double> {
        auto it = given.find(key);
        if (it == given.end()) return std::nullopt;
        if (it->second.numel() != 1)
            throw std::invalid_argument(who + ": '" + key + "' must hold one value, got " + describe(it->second));
        return it->second.item();
    };
    const auto lr = scalar("param_groups.0.lr");
    if (!lr) throw std::invalid_argument(who + ": 'param_groups.0.lr' is missing; pass what state_dict() returned");
    if (!(*lr >= 0.0 && std::isfinite(*lr)))
        throw std::invalid_argument(who + ": 'param_groups.0.lr' is " + std::to_string(*lr) +
                                    "; a learning rate is finite and >= 0");
    std::vector<int64_t> steps(params_.size(), 0);
    std::vector<std::vector<Tensor>> state(params_.size(), std::vector<Tensor>(slots_.size()));
    std::size_t used = 1;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const std::string prefix = "state." + std::to_string(i) + ".";
        if (auto st = scalar(prefix + "step")) {
            if (!(*st >= 1 && *st < 9e15 && std::floor(*st) == *st))
                throw std::invalid_argument(who + ": '" + prefix + "step' is " + std::to_string(*st) +
                                            ", not a step count (a whole number from 1)");
            steps[i] = static_cast<int64_t>(*st);
            ++used;
        }
        for (std::size_t s = 0; s < slots_.size(); ++s) {
            auto it = given.find(prefix + slots_[s]);
            if (it == given.end()) continue;
            if (it->second.shape() != params_[i].shape())
                throw std::invalid_argument(who + ": size mismatch for '" + it->first + "': the state is " +
                                            to_string(it->second.shape()) + ", " + describe_param(i));
            state[i][s] = empty_with_layout_of(params_[i]);
            copy_into(state[i][s], it->second);
            ++used;
        }
    }
    if (used != given.size()) {
        std::string extra;
        for (const auto& [k, _] : given) {
            const bool known = k == "param_groups.0.lr" || k.rfind("state.", 0) == 0;
            if (!known) extra += " " + k;
        }
        throw std::invalid_argument(who + ": the state does not fit this optimizer (" +
                                    std::to_string(given.size() - used) + " entries unused:" +
                                    (extra.empty() ? std::string(" state of parameters it does not have") : extra) + ")");
    }
    return {*lr, std::move(steps), std::move(state)};
}

void Optimizer::commit_load(PreparedState prepared) {
    if (prepared.steps.size() != params_.size() || prepared.state.size() != params_.size())
        throw std::logic_error(name_ + ".commit_load: the prepared state is for another optimizer");
    lr_ = prepared.lr;
    steps_ = std::move(prepared.steps);
    state_ = std::move(prepared.state);
}

// ---------------------------------------------------------------- SGD

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : Optimizer("SGD", std::move(params), options.lr, {"momentum_buffer"}), options(options) {
    check_options();
}

void SGD::check_options() const {
    require(options.momentum >= 0.0, "momentum", options.momentum);
    require(options.weight_decay >= 0.0, "weight_decay", options.weight_decay);
    require(options.dampening >= 0.0, "dampening", options.dampening);
    if (options.nesterov && (options.momentum <= 0.0 || options.dampening != 0.0))
        throw std::invalid_argument("SGD: nesterov momentum requires a momentum > 0 and zero dampening");
}

void SGD::step() {
    check_options();
    const double lr = this->lr(), mu = options.momentum, damp = options.dampening, wd = options.weight_decay;
    const bool nesterov = options.nesterov;
    const std::vector<ParamStep> steps = prepare_step(mu == 0.0 ? 0 : 1);
    NoGradGuard no_grad;
    for (const ParamStep& step : steps) {
        // A new buffer takes the gradient as it is, without dampening (PyTorch's clone on first use).
        const bool first = step.new_state;
        dispatch(step.param.dtype(), [&]<class T>() {
            const T tlr = static_cast<T>(lr), twd = static_cast<T>(wd), tmu = static_cast<T>(mu),
                    tdamp = static_cast<T>(1.0 - damp);
            if (mu == 0.0) {
                update_parameter<T, 2>({step.param, step.grad}, [=](T& p, const T& gk) { p -= tlr * (gk + twd * p); });
                return;
            }
            update_parameter<T, 3>({step.param, step.grad, step.state[0]}, [=](T& p, const T& gk, T& b) {
                const T d = gk + twd * p;
                b = first ? d : tmu * b + tdamp * d;
                p -= tlr * (nesterov ? d + tmu * b : b);
            });
        });
    }
    commit_step(steps);
}

// ---------------------------------------------------------------- Adam, AdamW

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam("Adam", std::move(params), options, false) {}

Adam::Adam(const char* name, std::vector<Tensor> params, AdamOptions options, bool decoupled)
    : Optimizer(name, std::move(params), options.lr, {"exp_avg", "exp_avg_sq"}), options(options), decoupled_(decoupled) {
    check_options();
}

void Adam::check_options() const {
    require(options.eps >= 0.0, "epsilon value", options.eps);
    require(options.beta1 >= 0.0 && options.beta1 < 1.0, "beta parameter at index 0", options.beta1);
    require(options.beta2 >= 0.0 && options.beta2 < 1.0, "beta parameter at index 1", options.beta2);
    require(options.weight_decay >= 0.0, "weight_decay value", options.weight_decay);
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : Adam("AdamW", std::move(params),
           {.lr = options.lr, .beta1 = options.beta1, .beta2 = options.beta2, .eps = options.eps,
            .weight_decay = options.weight_decay},
           true) {}

void Adam::step() {
    check_options();
    const double lr = this->lr(), b1 = options.beta1, b2 = options.beta2, wd = options.weight_decay;
    const std::vector<ParamStep> steps = prepare_step(2);
    NoGradGuard no_grad;
    for (const ParamStep& step : steps) {
        const auto t = static_cast<double>(step.step);
        // torch.optim's single-tensor Adam: step_size = lr / (1 - b1^t),
        // denom = sqrt(v) / sqrt(1 - b2^t) + eps.
        const double step_size = lr / (1.0 - std::pow(b1, t));
        const double inv_sqrt_bc2 = 1.0 / std::sqrt(1.0 - std::pow(b2, t));
        const double decay = decoupled_ ? 1.0 - lr * wd : 1.0;
        const double l2 = decoupled_ ? 0.0 : wd;
        dispatch(step.param.dtype(), [&]<class T>() {
            const T tb1 = static_cast<T>(b1), tb2 = static_cast<T>(b2), tdecay = static_cast<T>(decay),
                    tl2 = static_cast<T>(l2), tstep = static_cast<T>(step_size),
                    tinv = static_cast<T>(inv_sqrt_bc2), teps = static_cast<T>(options.eps);
            update_parameter<T, 4>({step.param, step.grad, step.state[0], step.state[1]},
                                   [=](T& p, const T& gk, T& mk, T& vk) {
                                       const T grad = gk + tl2 * p;
                                       mk = tb1 * mk + (T(1) - tb1) * grad;
                                       vk = tb2 * vk + (T(1) - tb2) * grad * grad;
                                       p = p * tdecay - tstep * mk / (std::sqrt(vk) * tinv + teps);
                                   });
        });
    }
    commit_step(steps);
}

}  // namespace tapegrad::nn
