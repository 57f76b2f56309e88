#pragma once
// Module: the building block of models, as in PyTorch's nn.Module. A module owns named parameters
// (trained), named buffers (state that is saved but not trained, such as BatchNorm's running
// statistics) and named child modules; names nest with dots ("features.0.weight").
#include <functional>
#include <memory>
#include "engine/source_location.hpp"
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad::nn {

// Ordered (name, tensor) pairs: a module's state_dict, an optimizer's state, a checkpoint.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What a non-strict load_state_dict did not match.
struct LoadResult {
    std::vector<std::string> missing_keys;     // in the module, absent from the dictionary
    std::vector<std::string> unexpected_keys;  // in the dictionary, absent from the module
};

class Module {
public:
    explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // Modules with one input and one output override this; Sequential chains them.
    virtual Tensor forward(const Tensor& x);
    // A module with several inputs (a U-Net decoder block's forward(x, skip)) overrides this one,
    // which module(x, skip) calls with {x, skip}. The default accepts exactly one input and runs
    // forward(inputs[0]); any other count throws std::invalid_argument naming the module. (A name
    // of its own, not a forward overload, so that overriding one never hides the other.)
    virtual Tensor forward_inputs(const std::vector<Tensor>& inputs);
    // forward_inputs() between the forward pre-hooks and the forward hooks, as PyTorch's
    // module(x) / module(x, skip). In anomaly mode the ops it records are traced to the caller's line.
    Tensor operator()(const Tensor& x, SourceLocation loc = SourceLocation::current());
    Tensor operator()(const Tensor& a, const Tensor& b, SourceLocation loc = SourceLocation::current());
    Tensor operator()(const Tensor& a, const Tensor& b, const Tensor& c, SourceLocation loc = SourceLocation::current());
    Tensor operator()(std::vector<Tensor> inputs, SourceLocation loc = SourceLocation::current());

    // As in PyTorch: a pre-hook gets the inputs and may return replacements (an empty list keeps
    // them); a forward hook gets the inputs and the output and may replace the output (an undefined
    // Tensor keeps it). They run in registration order when the module is called (module(x)), not
    // on a direct forward(x). The one-Tensor forms are for single-input modules: called with
    // several inputs they throw std::invalid_argument.
    using ForwardPreHook = std::function<Tensor(Module& module, const Tensor& input)>;
    using ForwardHook = std::function<Tensor(Module& module, const Tensor& input, const Tensor& output)>;
    using ForwardPreHookInputs = std::function<std::vector<Tensor>(Module& module, const std::vector<Tensor>& inputs)>;
    using ForwardHookInputs =
        std::function<Tensor(Module& module, const std::vector<Tensor>& inputs, const Tensor& output)>;
    HookHandle register_forward_pre_hook(ForwardPreHook hook);
    HookHandle register_forward_pre_hook(ForwardPreHookInputs hook);
    HookHandle register_forward_hook(ForwardHook hook);
    HookHandle register_forward_hook(ForwardHookInputs hook);
    // Whether a forward pre-hook or hook is registered (Sequential fuses only layers without).
    bool has_forward_hooks() const;
    // This layer followed by `next`, its neighbour in a Sequential, in a faster joint form with the
    // same values and gradients, or an undefined Tensor where there is none (the default). A layer
    // that overrides it checks that neither layer has hooks and that both are exactly the types
    // it fuses (a subclass may have changed forward).
    virtual Tensor forward_fused(Module& next, const Tensor& x);

    // Registration: names are unique per module and contain no dots. The returned tensor or module
    // is the registered one (the same storage as the argument).
    Tensor& register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
    Tensor& register_buffer(const std::string& name, Tensor tensor);
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        add_child(name, module);
        return module;
    }

    // Recursive, in registration order: this module's own entries first, then each child's. A tensor
    // reachable under several names (a shared submodule) is listed once, under its first name, as
    // in PyTorch; state_dict() keeps every name.
    std::vector<Tensor> parameters() const;
    NamedTensors named_parameters() const;
    std::vector<Tensor> buffers() const;
    NamedTensors named_buffers() const;
    std::vector<std::shared_ptr<Module>> children() const;
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
    // The child registered under `name`; throws std::invalid_argument if there is none.
    std::shared_ptr<Module> child(const std::string& name) const;
    // This module (named "") and every descendant, depth first in registration order, each once
    // even when shared ("layer1.0.conv1"), as PyTorch's named_modules().
    std::vector<std::pair<std::string, Module*>> named_modules();
    // Calls fn on every descendant, then on this module (PyTorch's apply; a child registered under
    // two names runs once), e.g. to re-initialise
    // layers: model.apply([&](nn::Module& m) { if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) ... }).
    Module& apply(const std::function<void(Module&)>& fn);
    // Converts every parameter and buffer to `dtype` in place (PyTorch's model.double() /
    // model.to(torch.float64)): the layers' own handles see the new tensors, and accumulated
    // gradients are dropped. Build an optimizer after converting.
    Module& to(DType dtype);
    // Stores every 4-D parameter and buffer, and its accumulated gradient, in `format`, in place
    // (PyTorch's model.to(memory_format=torch.channels_last)). With channels-last weights,
    // conv2d's outputs are channels-last too, whatever the input's layout.
    Module& to(MemoryFormat format);

    // Training mode switches dropout and batch norm; it propagates to every descendant.
    virtual void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // Drops every parameter's accumulated gradient.
    void zero_grad();

    // Parameters and buffers by nested name, as detached aliases of the module's own storage.
    NamedTensors state_dict() const;
    // Copies the values in (no grad). A shape mismatch always throws std::invalid_argument naming
    // the entry. Strict: missing or unexpected keys throw, listing them all; non-strict: they are
    // returned.
    LoadResult load_state_dict(const NamedTensors& dict, bool strict = true);
    // load_state_dict in two steps, so that a caller loading several objects (load_checkpoint) can
    // check all of them before changing any: prepare_load checks everything and changes nothing;
    // commit_load copies the values in and cannot fail.
    struct PreparedLoad {
        LoadResult result;
        std::vector<std::pair<Tensor, Tensor>> copies;  // (the module's tensor, its new value)
    };
    PreparedLoad prepare_load(const NamedTensors& dict, bool strict = true) const;
    static void commit_load(const PreparedLoad& prepared);

    const std::string& type_name() const { return type_name_; }
    // One line per module, indented by depth: "features (Sequential)".
    std::string to_string() const;

private:
    void add_child(const std::string& name, std::shared_ptr<Module> module);
    void check_new_name(const std::string& name, const char* what) const;
    void collect(const std::string& prefix, NamedTensors& out, bool params, bool bufs) const;
    void describe_into(std::string& out, const std::string& name, int depth) const;
    Tensor call(std::vector<Tensor> inputs, SourceLocation loc);

    std::string type_name_;
    bool training_ = true;
    NamedTensors parameters_;
    NamedTensors buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    std::shared_ptr<HookList<ForwardPreHookInputs>> forward_pre_hooks_ = std::make_shared<HookList<ForwardPreHookInputs>>();
    std::shared_ptr<HookList<ForwardHookInputs>> forward_hooks_ = std::make_shared<HookList<ForwardHookInputs>>();
};

// Runs its children in order; they are named "0", "1", ..., or given names as PyTorch's
// Sequential(OrderedDict(...)): Sequential({{"conv", conv}, {"bn", bn}, {"relu", relu}}).
// Adjacent layers that have a faster joint form run in it, with the same values and gradients
// (Module::forward_fused; nn/layers.cpp has them); a layer with forward hooks always runs on its own.
class Sequential : public Module {
public:
    Sequential() : Module("Sequential") {}
    Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
    explicit Sequential(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named);
    void push_back(std::shared_ptr<Module> module);
    void push_back(const std::string& name, std::shared_ptr<Module> module);
    std::size_t size() const { return named_children().size(); }
    std::shared_ptr<Module> operator[](std::size_t i) const { return named_children().at(i).second; }
    Tensor forward(const Tensor& x) override;
};

}  // namespace tapegrad::nn

namespace tapegrad {
// to_dot with every leaf that is one of the module's parameters named after it ("features.0.weight").
std::string to_dot(const Tensor& output, const nn::Module& module);
}  // namespace tapegrad
