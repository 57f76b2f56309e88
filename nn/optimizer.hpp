#pragma once
// The optimizer base: parameter groups (each with its own options, as torch.optim's param_groups),
// per-parameter state, and state_dict()/load_state_dict() carrying both. The update rules are in
// nn/optim.hpp and nn/lbfgs.hpp.
//
// step() updates the parameters in place, outside autograd, with one fused loop per parameter that
// walks the parameter, its gradient and its state in logical index order, whatever their strides (a
// transposed or channels-last parameter gets the same update as its contiguous copy). Parameters
// without a gradient are skipped, so a frozen parameter (requires_grad false) may be listed.
// A step checks everything first (every group's hyper-parameters, and every gradient and state slot
// against its parameter) and changes nothing when it throws. A parameter converted with
// Module::to() after the optimizer stepped no longer matches its state: build the optimizer after
// .to(), or convert the state with load_state_dict(state_dict()).
#include <any>
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace tapegrad::nn {

// Re-evaluates the model and returns the loss (zero_grad, forward, backward), as libtorch's LossClosure.
using LossClosure = std::function<Tensor()>;

// Parameters with their own options (libtorch's OptimizerParamGroup; Python's {'params': ..., 'lr': ...}).
// A group given without options takes the optimizer's defaults; a group held by an optimizer always
// has them.
template <class Options>
struct ParamGroup {
    std::vector<Tensor> params;
    std::optional<Options> options = std::nullopt;
};

// Checks hyper-parameters; errors start with `who` ("SGD", or "SGD param group 1" beyond group 0).
class OptionChecker {
public:
    explicit OptionChecker(std::string who) : who_(std::move(who)) {}
    // Throws std::invalid_argument("<who>: invalid <what>: <value>") unless ok and value is finite.
    void require(bool ok, const std::string& what, double value) const;
    [[noreturn]] void fail(const std::string& problem) const;

private:
    std::string who_;
};

namespace detail {
// A hyper-parameter as errors print it ("0.5", "inf", "1e-08").
std::string format_number(double value);

// The tensors state_dict() stores a hyper-parameter as: a float64 scalar (double, bool as 0/1,
// integer), a float64 [2] (betas), a float64 [n] of character codes (a string) or [0] (none).
Tensor encode_hyper_parameter(double value);
Tensor encode_hyper_parameter(bool value);
Tensor encode_hyper_parameter(int64_t value);
Tensor encode_hyper_parameter(const std::array<double, 2>& value);
Tensor encode_hyper_parameter(const std::optional<int64_t>& value);
Tensor encode_hyper_parameter(const std::optional<std::string>& value);
// The reverse; `what` ("SGD.load_state_dict: 'param_groups.0.nesterov'") starts the error a value of
// the wrong kind throws.
void decode_hyper_parameter(const Tensor& t, double& value, const std::string& what);
void decode_hyper_parameter(const Tensor& t, bool& value, const std::string& what);
void decode_hyper_parameter(const Tensor& t, int64_t& value, const std::string& what);
void decode_hyper_parameter(const Tensor& t, std::array<double, 2>& value, const std::string& what);
void decode_hyper_parameter(const Tensor& t, std::optional<int64_t>& value, const std::string& what);
void decode_hyper_parameter(const Tensor& t, std::optional<std::string>& value, const std::string& what);
}  // namespace detail

class Optimizer {
public:
    virtual ~Optimizer() = default;
    // Evaluates the closure (with gradients enabled) when one is given, then updates the parameters;
    // returns the closure's loss, or an undefined tensor without a closure.
    virtual Tensor step(LossClosure closure = nullptr) = 0;
    // Drops every parameter's gradient (PyTorch's set_to_none).
    void zero_grad();

    std::size_t param_group_count() const { return group_begin_.size(); }
    // The learning rate of a group (group 0 unless named).
    double lr(std::size_t group = 0) const;
    // Sets every group's learning rate.
    void set_lr(double lr);
    void set_lr(std::size_t group, double lr);
    // The momentum a scheduler cycles: momentum (SGD, RMSprop) or beta1 (Adam, AdamW); none for the others.
    virtual bool has_momentum() const { return false; }
    std::optional<double> momentum(std::size_t group) const;
    // A scheduler's learning rates (and momenta, when given) for every group at once: all are
    // checked before any is set, so an invalid one changes nothing.
    void set_schedule(const std::vector<double>& lrs, const std::vector<std::optional<double>>& momenta);
    // The learning rate a scheduler starts from (PyTorch's group['initial_lr']): set by the first
    // scheduler built on this optimizer, kept by state_dict().
    std::optional<double> initial_lr(std::size_t group) const { return initial_lrs_.at(group); }
    void set_initial_lr(std::size_t group, double lr);

    // Every parameter, group after group (the numbering state_dict() uses).
    const std::vector<Tensor>& params() const { return params_; }
    const std::string& name() const { return name_; }

    // For checkpoints, named tensors:
    //   param_groups.<g>.<hyper-parameter>   each option of group g (lr, momentum, betas, ...), as
    //                                        detail::encode_hyper_parameter stores it
    //   param_groups.<g>.params              the positions of the group's parameters (float64 [n])
    //   param_groups.<g>.initial_lr          where a scheduler set it
    //   state.<i>.step, state.<i>.<slot>     parameter i's step count (float64 scalar) and state.
    NamedTensors state_dict() const;
    // Restores what state_dict() wrote, hyper-parameters included (as PyTorch does), each slot
    // converted to its parameter's dtype and layout. Every group's lr is required; another option
    // missing (a state written before options were stored) keeps its current value. A missing lr, an
    // undefined entry, a slot whose shape differs from its parameter's, a group of another size or
    // an invalid option throws std::invalid_argument naming it, and the optimizer is left as it was.
    void load_state_dict(const NamedTensors& dict);

    // load_state_dict in two steps, so that a caller loading several objects (load_checkpoint) can
    // check all of them before changing any: prepare_load checks and converts without changing the
    // optimizer; commit_load installs what it returned and cannot fail.
    struct PreparedState {
        std::any options;  // the groups' options, as the optimizer type holds them
        std::vector<std::optional<double>> initial_lrs;
        std::vector<int64_t> steps;
        std::vector<std::vector<Tensor>> state;
        std::any extra;  // what an optimizer keeps besides per-parameter slots (LBFGS's history)
    };
    PreparedState prepare_load(const NamedTensors& dict) const;
    void commit_load(PreparedState prepared);

protected:
    Optimizer(std::string name, std::vector<std::string> slots);
    // The checker for a group's options: errors name the optimizer and, beyond group 0, the group.
    OptionChecker checker(std::size_t group) const;
    // Checks a new group's parameters (leaves, no shared memory, none already held) and appends them.
    void add_params(const std::vector<Tensor>& params);
    void allow_one_group_only() { one_group_only_ = true; }
    std::size_t group_of(std::size_t param) const;

    // What the optimizer type provides for its groups' options.
    virtual double group_lr(std::size_t group) const = 0;
    virtual void store_group_lr(std::size_t group, double lr) = 0;
    virtual std::optional<double> group_momentum(std::size_t) const { return std::nullopt; }
    virtual void store_group_momentum(std::size_t, double) {}
    // Throws as a step would if the group's momentum (or beta1) were `momentum`.
    virtual void check_group_momentum(std::size_t, double) const {}
    // Throws std::invalid_argument naming the group's invalid option.
    virtual void check_group(std::size_t group) const = 0;
    virtual void append_group_options(std::size_t group, NamedTensors& out) const = 0;
    // The groups' options, each read through `find` ("param_groups.<g>.<name>") where the
    // dictionary has it and kept otherwise, and checked.
    virtual std::any prepare_group_options(const std::function<const Tensor*(const std::string&)>& find,
                                           const std::string& who) const = 0;
    virtual void commit_group_options(std::any options) = 0;
    // State besides the per-parameter slots (LBFGS): appended by state_dict(), read back by
    // prepare_extra_state (which marks what it read through `find`), installed by commit.
    virtual void append_extra_state(NamedTensors&) const {}
    virtual std::any prepare_extra_state(const std::function<const Tensor*(const std::string&)>&,
                                         const std::string&) const {
        return {};
    }
    virtual void commit_extra_state(std::any) {}

    // For each state slot of a parameter in `group`: the value a new slot starts with, or none if the
    // group's options do not use the slot.
    virtual std::vector<std::optional<double>> slot_start_values(std::size_t) const { return {}; }

    // What step() does to one parameter, decided before any parameter changes.
    struct ParamStep {
        std::size_t index = 0;      // the parameter's position in params()
        std::size_t group = 0;
        Tensor param;
        Tensor grad;                // with the parameter's dtype and strides
        std::vector<Tensor> state;  // one per slot; undefined where the group does not use it
        bool new_state = false;     // whether they were created for this step (PyTorch's empty state)
        int64_t step = 0;           // the parameter's step count after this step
    };
    // Checks every group's options and every parameter that has a gradient (the gradient's and the
    // state's dtype and shape against the parameter's) and returns one ParamStep each, changing
    // nothing: a step() that throws leaves every parameter and the optimizer (step counts included)
    // as they were.
    std::vector<ParamStep> prepare_step() const;
    // Records the state and step counts of a step whose updates are done; cannot fail.
    void commit_step(const std::vector<ParamStep>& steps);
    // Runs the closure with gradients enabled; an undefined tensor without one.
    static Tensor evaluate(const LossClosure& closure);
    // "parameter 2 [16,3,3,3] float64", as errors name it.
    std::string describe_param(std::size_t i) const;

private:
    // The gradient of parameter i with the parameter's strides; it has the parameter's dtype and shape.
    Tensor grad_like_param(std::size_t i) const;
    void check_lr(std::size_t group, double lr) const;

    std::string name_;
    std::vector<Tensor> params_;
    std::vector<std::size_t> group_begin_;  // the position of each group's first parameter
    std::vector<std::optional<double>> initial_lrs_;
    bool one_group_only_ = false;
    std::vector<std::string> slots_;
    std::vector<std::vector<Tensor>> state_;  // [param][slot]
    std::vector<int64_t> steps_;
};

// An optimizer whose groups hold `Options`, a struct with members
//   template <class F> void for_each_field(F&& f)   calling f("name", field) for each hyper-parameter
//                                                   (PyTorch's names), reading or writing it
//   void check(const OptionChecker&) const          refusing invalid values.
template <class Options>
class OptimizerWithOptions : public Optimizer {
public:
    using Group = ParamGroup<Options>;
    const std::vector<Group>& param_groups() const { return groups_; }
    // A group's options, to read or change; a step checks them again before anything moves.
    Options& options(std::size_t group = 0) { return *groups_.at(group).options; }
    const Options& options(std::size_t group = 0) const { return *groups_.at(group).options; }
    // The options a group added without its own takes.
    const Options& default_options() const { return defaults_; }
    bool has_momentum() const override {
        return requires(Options o) { o.momentum; } || requires(Options o) { o.beta1; };
    }
    void add_param_group(Group group) {
        if (!group.options) group.options = defaults_;
        group.options->check(checker(groups_.size()));
        add_params(group.params);
        groups_.push_back(std::move(group));
    }

protected:
    OptimizerWithOptions(std::string name, std::vector<Group> groups, Options defaults, std::vector<std::string> slots)
        : OptimizerWithOptions(std::move(name), defaults, std::move(slots)) {
        if (groups.empty()) throw std::invalid_argument(this->name() + ": got an empty parameter list");
        for (Group& g : groups) add_param_group(std::move(g));
    }
    // Without groups yet: the constructor adds them with add_param_group.
    OptimizerWithOptions(std::string name, Options defaults, std::vector<std::string> slots)
        : Optimizer(std::move(name), std::move(slots)), defaults_(defaults) {
        defaults_.check(checker(0));
    }

    double group_lr(std::size_t group) const override { return groups_[group].options->lr; }
    void store_group_lr(std::size_t group, double lr) override { groups_[group].options->lr = lr; }
    void check_group(std::size_t group) const override { groups_[group].options->check(checker(group)); }
    std::optional<double> group_momentum(std::size_t group) const override {
        const Options& o = *groups_[group].options;
        if constexpr (requires { o.momentum; }) return o.momentum;
        else if constexpr (requires { o.beta1; }) return o.beta1;
        else return std::nullopt;
    }
    void store_group_momentum(std::size_t group, double momentum) override {
        set_momentum(*groups_[group].options, momentum);
    }
    void check_group_momentum(std::size_t group, double momentum) const override {
        Options o = *groups_[group].options;
        set_momentum(o, momentum);
        o.check(checker(group));
    }

    void append_group_options(std::size_t group, NamedTensors& out) const override {
        const std::string prefix = "param_groups." + std::to_string(group) + ".";
        Options copy = *groups_[group].options;
        copy.for_each_field(
            [&](const char* field, const auto& value) { out.emplace_back(prefix + field, detail::encode_hyper_parameter(value)); });
    }
    std::any prepare_group_options(const std::function<const Tensor*(const std::string&)>& find,
                                   const std::string& who) const override {
        std::vector<Options> options;
        for (std::size_t g = 0; g < groups_.size(); ++g) {
            Options o = *groups_[g].options;
            const std::string prefix = "param_groups." + std::to_string(g) + ".";
            o.for_each_field([&](const char* field, auto& value) {
                if (const Tensor* t = find(prefix + field))
                    detail::decode_hyper_parameter(*t, value, who + ": '" + prefix + field + "'");
            });
            try {
                o.check(checker(g));
            } catch (const std::invalid_argument& e) {
                throw std::invalid_argument(who + ": the saved options of param group " + std::to_string(g) +
                                            " are invalid: " + e.what());
            }
            options.push_back(o);
        }
        return options;
    }
    void commit_group_options(std::any options) override {
        auto& all = std::any_cast<std::vector<Options>&>(options);
        for (std::size_t g = 0; g < groups_.size(); ++g) groups_[g].options = all[g];
    }

private:
    static void set_momentum(Options& o, double momentum) {
        if constexpr (requires { o.momentum; }) o.momentum = momentum;
        else if constexpr (requires { o.beta1; }) o.beta1 = momentum;
    }

    Options defaults_;
    std::vector<Group> groups_;
};

}  // namespace tapegrad::nn
