#include "nn/optim.hpp"

#include <algorithm>
#include <array>
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
    if (!ok) {
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

Tensor Optimizer::grad_like_param(std::size_t i) const {
    const Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined() || (g.dtype() == p.dtype() && g.strides() == p.strides())) return g;
    // Rare (a gradient produced in another layout). The update would be right in any layout, but
    // its rounding would follow the gradient's layout (vectorised loop or scalar tail), and that
    // layout may depend on the kernel chosen: with one layout the result depends on nothing else.
    Tensor same_layout = empty_with_layout_of(p);
    copy_into(same_layout, g);
    return same_layout;
}

Tensor& Optimizer::state(std::size_t i, std::size_t slot) {
    Tensor& s = state_[i][slot];
    if (!s.defined()) {
        s = empty_with_layout_of(params_[i]);
        fill_tensor(s, 0.0);
    }
    return s;
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
    std::map<std::string, Tensor> given(dict.begin(), dict.end());
    auto scalar = [&](const std::string& key) -> std::optional<double> {
        auto it = given.find(key);
        if (it == given.end()) return std::nullopt;
        if (it->second.numel() != 1)
            throw std::invalid_argument(name_ + ".load_state_dict: '" + key + "' must hold one value, got " +
                                        describe(it->second));
        return it->second.item();
    };
    const auto lr = scalar("param_groups.0.lr");
    if (!lr) throw std::invalid_argument(name_ + ".load_state_dict: 'param_groups.0.lr' is missing");
    require(*lr >= 0.0, "learning rate in the state", *lr);
    std::vector<int64_t> steps(params_.size(), 0);
    std::vector<std::vector<Tensor>> state(params_.size(), std::vector<Tensor>(slots_.size()));
    std::size_t used = 1;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const std::string prefix = "state." + std::to_string(i) + ".";
        if (auto st = scalar(prefix + "step")) {
            if (!(*st >= 1 && *st < 9e15 && std::floor(*st) == *st))
                throw std::invalid_argument(name_ + ".load_state_dict: '" + prefix + "step' is not a step count");
            steps[i] = static_cast<int64_t>(*st);
            ++used;
        }
        for (std::size_t s = 0; s < slots_.size(); ++s) {
            auto it = given.find(prefix + slots_[s]);
            if (it == given.end()) continue;
            if (it->second.shape() != params_[i].shape())
                throw std::invalid_argument(name_ + ".load_state_dict: size mismatch for '" + it->first + "': " +
                                            to_string(it->second.shape()) + " but parameter " + std::to_string(i) +
                                            " is " + to_string(params_[i].shape()));
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
        throw std::invalid_argument(name_ + ".load_state_dict: the state does not fit this optimizer (" +
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
    require(options.momentum >= 0.0, "momentum", options.momentum);
    require(options.weight_decay >= 0.0, "weight_decay", options.weight_decay);
    require(options.dampening >= 0.0, "dampening", options.dampening);
    if (options.nesterov && (options.momentum <= 0.0 || options.dampening != 0.0))
        throw std::invalid_argument("SGD: nesterov momentum requires a momentum > 0 and zero dampening");
}

void SGD::step() {
    NoGradGuard no_grad;
    const double lr = this->lr(), mu = options.momentum, damp = options.dampening, wd = options.weight_decay;
    const bool nesterov = options.nesterov;
    for (std::size_t i = 0; i < params().size(); ++i) {
        const Tensor g = grad_like_param(i);
        if (!g.defined()) continue;
        const Tensor& param = params()[i];
        const bool first = step_count(i)++ == 0;
        dispatch(param.dtype(), [&]<class T>() {
            const T tlr = static_cast<T>(lr), twd = static_cast<T>(wd), tmu = static_cast<T>(mu),
                    tdamp = static_cast<T>(1.0 - damp);
            if (mu == 0.0) {
                update_parameter<T, 2>({param, g}, [=](T& p, const T& gk) { p -= tlr * (gk + twd * p); });
                return;
            }
            update_parameter<T, 3>({param, g, state(i, 0)}, [=](T& p, const T& gk, T& b) {
                const T d = gk + twd * p;
                // The first step copies the gradient into the buffer, without dampening.
                b = first ? d : tmu * b + tdamp * d;
                p -= tlr * (nesterov ? d + tmu * b : b);
            });
        });
    }
}

// ---------------------------------------------------------------- Adam, AdamW

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam("Adam", std::move(params), options, false) {}

Adam::Adam(const char* name, std::vector<Tensor> params, AdamOptions options, bool decoupled)
    : Optimizer(name, std::move(params), options.lr, {"exp_avg", "exp_avg_sq"}), options(options), decoupled_(decoupled) {
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
    NoGradGuard no_grad;
    const double lr = this->lr(), b1 = options.beta1, b2 = options.beta2, wd = options.weight_decay;
    for (std::size_t i = 0; i < params().size(); ++i) {
        const Tensor g = grad_like_param(i);
        if (!g.defined()) continue;
        const int64_t t = ++step_count(i);
        const Tensor m = state(i, 0);
        const Tensor v = state(i, 1);
        // torch.optim's single-tensor Adam: step_size = lr / (1 - b1^t),
        // denom = sqrt(v) / sqrt(1 - b2^t) + eps.
        const double step_size = lr / (1.0 - std::pow(b1, static_cast<double>(t)));
        const double inv_sqrt_bc2 = 1.0 / std::sqrt(1.0 - std::pow(b2, static_cast<double>(t)));
        const double decay = decoupled_ ? 1.0 - lr * wd : 1.0;
        const double l2 = decoupled_ ? 0.0 : wd;
        dispatch(params()[i].dtype(), [&]<class T>() {
            const T tb1 = static_cast<T>(b1), tb2 = static_cast<T>(b2), tdecay = static_cast<T>(decay),
                    tl2 = static_cast<T>(l2), tstep = static_cast<T>(step_size),
                    tinv = static_cast<T>(inv_sqrt_bc2), teps = static_cast<T>(options.eps);
            update_parameter<T, 4>({params()[i], g, m, v}, [=](T& p, const T& gk, T& mk, T& vk) {
                const T grad = gk + tl2 * p;
                mk = tb1 * mk + (T(1) - tb1) * grad;
                vk = tb2 * vk + (T(1) - tb2) * grad * grad;
                p = p * tdecay - tstep * mk / (std::sqrt(vk) * tinv + teps);
            });
        });
    }
}

}  // namespace tapegrad::nn
