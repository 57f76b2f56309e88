#include "nn/optim.hpp"

#include <cmath>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad::nn {

Optimizer::Optimizer(std::string name, std::vector<Tensor> params, double lr, std::vector<std::string> slots)
    : name_(std::move(name)), params_(std::move(params)), lr_(lr), slots_(std::move(slots)) {
    require(lr >= 0.0, "learning rate", lr);
    if (params_.empty()) throw std::invalid_argument(name_ + ": got an empty parameter list");
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor& p = params_[i];
        if (!p.defined() || !p.is_leaf() || !p.requires_grad())
            throw std::invalid_argument(name_ + ": parameter " + std::to_string(i) +
                                        " must be a leaf tensor that requires grad");
        if (!is_dense(p)) throw std::invalid_argument(name_ + ": parameter " + std::to_string(i) + " is not dense");
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
    Tensor g = p.grad();
    if (!g.defined()) return g;
    if (g.dtype() == p.dtype() && g.strides() == p.strides() && is_dense(g)) return g;
    // Rare (a gradient produced in another layout): lay it out like the parameter so the fused
    // loops can walk both as flat arrays.
    Tensor same_layout = empty_like(p);
    copy_into(same_layout, g);
    return same_layout;
}

Tensor& Optimizer::state(std::size_t i, std::size_t slot) {
    Tensor& s = state_[i][slot];
    if (!s.defined()) s = zeros_like(params_[i]);
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

void Optimizer::load_state_dict(const NamedTensors& dict) {
    std::map<std::string, Tensor> given(dict.begin(), dict.end());
    auto scalar = [&](const std::string& key) -> std::optional<double> {
        auto it = given.find(key);
        if (it == given.end()) return std::nullopt;
        if (it->second.numel() != 1)
            throw std::invalid_argument(name_ + ".load_state_dict: '" + key + "' must hold one value, got " +
                                        describe(it->second));
        return it->second.item();
    };
    // Validate everything before changing anything.
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
            state[i][s] = empty_like(params_[i]);
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
    lr_ = *lr;
    steps_ = std::move(steps);
    state_ = std::move(state);
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
    for (std::size_t i = 0; i < params().size(); ++i) {
        const Tensor g = grad_like_param(i);
        if (!g.defined()) continue;
        const bool first = step_count(i)++ == 0;
        Tensor buf = mu != 0.0 ? state(i, 0) : Tensor();
        dispatch(params()[i].dtype(), [&]<class T>() {
            T* p = params()[i].data<T>();
            const T* gp = g.data<T>();
            T* b = buf.defined() ? buf.data<T>() : nullptr;
            const int64_t n = params()[i].numel();
            for (int64_t k = 0; k < n; ++k) {
                T d = gp[k] + static_cast<T>(wd) * p[k];
                if (b) {
                    // The first step copies the gradient into the buffer, without dampening.
                    b[k] = first ? d : static_cast<T>(mu) * b[k] + static_cast<T>(1.0 - damp) * d;
                    d = options.nesterov ? d + static_cast<T>(mu) * b[k] : b[k];
                }
                p[k] -= static_cast<T>(lr) * d;
            }
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

AdamW::AdamW(std::vector<Tensor> params, AdamOptions options) : Adam("AdamW", std::move(params), options, true) {}

void Adam::step() {
    NoGradGuard no_grad;
    const double lr = this->lr(), b1 = options.beta1, b2 = options.beta2, wd = options.weight_decay;
    for (std::size_t i = 0; i < params().size(); ++i) {
        const Tensor g = grad_like_param(i);
        if (!g.defined()) continue;
        const int64_t t = ++step_count(i);
        Tensor& m = state(i, 0);
        Tensor& v = state(i, 1);
        // torch.optim's single-tensor Adam: step_size = lr / (1 - b1^t),
        // denom = sqrt(v) / sqrt(1 - b2^t) + eps.
        const double step_size = lr / (1.0 - std::pow(b1, static_cast<double>(t)));
        const double inv_sqrt_bc2 = 1.0 / std::sqrt(1.0 - std::pow(b2, static_cast<double>(t)));
        const double decay = decoupled_ ? 1.0 - lr * wd : 1.0;
        const double l2 = decoupled_ ? 0.0 : wd;
        dispatch(params()[i].dtype(), [&]<class T>() {
            T* __restrict p = params()[i].data<T>();
            const T* __restrict gp = g.data<T>();
            T* __restrict mp = m.data<T>();
            T* __restrict vp = v.data<T>();
            const T tb1 = static_cast<T>(b1), tb2 = static_cast<T>(b2), tdecay = static_cast<T>(decay),
                    tl2 = static_cast<T>(l2), tstep = static_cast<T>(step_size),
                    tinv = static_cast<T>(inv_sqrt_bc2), teps = static_cast<T>(options.eps);
            const int64_t n = params()[i].numel();
#pragma omp simd
            for (int64_t k = 0; k < n; ++k) {
                const T pk = p[k] * tdecay;
                const T gk = gp[k] + tl2 * p[k];
                const T mk = tb1 * mp[k] + (T(1) - tb1) * gk;
                const T vk = tb2 * vp[k] + (T(1) - tb2) * gk * gk;
                mp[k] = mk;
                vp[k] = vk;
                p[k] = pk - tstep * mk / (std::sqrt(vk) * tinv + teps);
            }
        });
    }
}

}  // namespace tapegrad::nn
