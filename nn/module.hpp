#pragma once
// Module: the building block of models, as in PyTorch's nn.Module. A module owns named parameters
// (trained), named buffers (state that is saved but not trained, such as BatchNorm's running
// statistics) and named child modules; names nest with dots ("features.0.weight").
#include <concepts>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include "engine/source_location.hpp"
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad::nn {

// Ordered (name, tensor) pairs: a module's state_dict, an optimizer's state, a checkpoint.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module;

}  // namespace tapegrad::nn

namespace tapegrad {
class Device;
}  // namespace tapegrad

namespace tapegrad::nn {

// A ModuleHolder (nn/module_holder.hpp): a handle with the module's type and its shared pointer.
template <class T>
concept ModuleHolderType = requires(const T& holder) {
    typename T::ContainedType;
    { holder.ptr() } -> std::convertible_to<std::shared_ptr<Module>>;
};

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
    // Whether a forward pre-hook or hook is registered.
    bool has_forward_hooks() const;
    // module(x) for an x the caller gives up (Sequential hands each layer's output on this way):
    // without forward hooks the layer may consume x (forward_owned), so that its op can fuse with
    // the op that made x (docs/architecture.md, "Fusion"); with hooks, exactly module(x), so that
    // every hook sees what PyTorch's layer gives it.
    Tensor operator()(Tensor&& x, SourceLocation loc = SourceLocation::current());

    // Registration: names are unique per module and contain no dots. The returned tensor or module
    // is the registered one (the same storage as the argument), as libtorch's:
    // fc = register_module("fc", std::make_shared<nn::Linear>(10, 20)), or with a ModuleHolder
    // (nn/module_holder.hpp) fc = register_module("fc", Block(64)).
    Tensor& register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
    Tensor& register_buffer(const std::string& name, Tensor tensor);
    // A buffer that state dicts saved before it existed lack (BatchNorm's num_batches_tracked):
    // load_state_dict, strict or not, sets it to `value_when_missing` where the dictionary has no
    // entry for it, instead of reporting it missing, as PyTorch does for such a buffer.
    Tensor& register_buffer(const std::string& name, Tensor tensor, Tensor value_when_missing);
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        add_child(name, module);
        return module;
    }
    template <ModuleHolderType Holder>
    Holder register_module(const std::string& name, Holder holder) {
        add_child(name, holder.ptr());
        return holder;
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
    // libtorch's module->as<Linear>(): this module as type M (a module, or a holder, which names
    // its module), or nullptr when it is of another type.
    template <class M>
    auto* as() noexcept {
        if constexpr (requires { typename M::ContainedType; })
            return dynamic_cast<typename M::ContainedType*>(this);
        else
            return dynamic_cast<M*>(this);
    }
    template <class M>
    const auto* as() const noexcept {
        return const_cast<Module*>(this)->as<M>();
    }
    // The child registered under `name`; throws std::invalid_argument if there is none.
    std::shared_ptr<Module> child(const std::string& name) const;
    // This module (named "") and every descendant, depth first in registration order, each once
    // even when shared ("layer1.0.conv1"), as PyTorch's named_modules().
    std::vector<std::pair<std::string, Module*>> named_modules();
    // Calls fn on every descendant, then on this module (PyTorch's apply; a child registered under
    // two names runs once), e.g. to re-initialise
    // layers: model.apply([&](nn::Module& m) { if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) ... }).
    Module& apply(const std::function<void(Module&)>& fn);
    // Converts every floating-point parameter and buffer to `dtype` in place (PyTorch's
    // model.double() / model.to(torch.float64)); integer buffers (num_batches_tracked) keep their
    // dtype. The layers' own handles see the new tensors, and accumulated gradients are dropped.
    // Build an optimizer after converting.
    Module& to(DType dtype);
    // Stores every 4-D parameter and buffer, and its accumulated gradient, in `format`, in place
    // (PyTorch's model.to(memory_format=torch.channels_last)). With channels-last weights,
    // conv2d's outputs are channels-last too, whatever the input's layout.
    Module& to(MemoryFormat format);
    // libtorch's model->to(device) (nn/device.hpp): tapegrad runs on the CPU, so the CPU device
    // changes nothing and another throws std::invalid_argument.
    Module& to(const Device& device);

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
    // This module alone, one line, as libtorch's pretty_print: the built-in layers print
    // "tg::nn::Conv2d(1, 10, kernel_size=[5, 5], stride=[1, 1])"; a module of your own prints its
    // type name (the one given to Module's constructor, or else its C++ class name). Override it
    // to show your module's options. `stream << module` prints the whole tree (nn/pretty_print.cpp).
    virtual void pretty_print(std::ostream& stream) const;

protected:
    // forward for an input nobody else can read (module(std::move(x)) without hooks): the default
    // runs forward_inputs({x}); a layer whose op fuses with the op that made x overrides it (ReLU).
    virtual Tensor forward_owned(Tensor&& x);

private:
    void add_child(const std::string& name, std::shared_ptr<Module> module);
    void check_new_name(const std::string& name, const char* what) const;
    void collect(const std::string& prefix, NamedTensors& out, bool params, bool bufs) const;
    void collect_values_when_missing(const std::string& prefix, std::map<std::string, Tensor>& out) const;
    void describe_into(std::string& out, const std::string& name, int depth) const;
    Tensor call(std::vector<Tensor> inputs, SourceLocation loc);

    std::string type_name_;
    bool training_ = true;
    NamedTensors parameters_;
    NamedTensors buffers_;
    NamedTensors buffer_values_when_missing_;  // (buffer name, value) for the buffers registered with one
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    std::shared_ptr<HookList<ForwardPreHookInputs>> forward_pre_hooks_ = std::make_shared<HookList<ForwardPreHookInputs>>();
    std::shared_ptr<HookList<ForwardHookInputs>> forward_hooks_ = std::make_shared<HookList<ForwardHookInputs>>();
};

template <class T>
inline constexpr bool is_module_shared_ptr = false;
template <class M>
inline constexpr bool is_module_shared_ptr<std::shared_ptr<M>> = std::is_base_of_v<Module, M>;

// A shared pointer to a module, or a ModuleHolder (nn/module_holder.hpp): what Sequential takes.
template <class T>
concept ModuleHandle = is_module_shared_ptr<T> || ModuleHolderType<T>;
template <ModuleHandle Handle>
std::shared_ptr<Module> as_module_ptr(const Handle& module) {
    if constexpr (is_module_shared_ptr<Handle>)
        return module;
    else
        return module.ptr();
}

// Runs its children in order; they are named "0", "1", ..., or given names as PyTorch's
// Sequential(OrderedDict(...)): Sequential({{"conv", conv}, {"bn", bn}, {"relu", relu}}).
// As libtorch's, it is built from the modules directly, Sequential(conv, bn, relu), each a shared
// pointer or a ModuleHolder.
// Each layer gets the previous one's output to consume (module(std::move(h))), so that ops fuse
// across layers as in functional code (BatchNorm2d then ReLU runs as batch_norm_relu); a layer
// with forward hooks runs as module(h).
class Sequential : public Module {
public:
    Sequential() : Module("Sequential") {}
    Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
    template <class... Modules>
        requires(sizeof...(Modules) > 0 && (ModuleHandle<std::remove_cvref_t<Modules>> && ...))
    explicit Sequential(const Modules&... modules) : Module("Sequential") {
        (push_back(as_module_ptr(modules)), ...);
    }
    explicit Sequential(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named);
    void push_back(std::shared_ptr<Module> module);
    void push_back(const std::string& name, std::shared_ptr<Module> module);
    template <ModuleHandle Handle>
    void push_back(const Handle& module) {
        push_back(as_module_ptr(module));
    }
    std::size_t size() const { return named_children().size(); }
    std::shared_ptr<Module> operator[](std::size_t i) const { return named_children().at(i).second; }
    // The i-th module as its own type, as libtorch's seq->at<LinearImpl>(i); throws
    // std::invalid_argument if i is out of range or the module is of another type.
    template <class M>
    M& at(std::size_t i) const {
        M* module = i < size() ? dynamic_cast<M*>(named_children()[i].second.get()) : nullptr;
        if (!module) throw_bad_at(i);
        return *module;
    }
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;

private:
    [[noreturn]] void throw_bad_at(std::size_t i) const;
};

// The module and its descendants, as libtorch's operator<<: each child on its own line as
// "(name): " and its pretty_print, indented two spaces per level, inside "(" and ")".
std::ostream& operator<<(std::ostream& stream, const Module& module);

}  // namespace tapegrad::nn

namespace tapegrad {
// to_dot with every leaf that is one of the module's parameters named after it ("features.0.weight").
std::string to_dot(const Tensor& output, const nn::Module& module);
}  // namespace tapegrad
