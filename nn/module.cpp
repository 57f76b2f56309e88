#include "nn/module.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/graph.hpp"
#include "engine/profiler.hpp"
#include "engine/tensor_math.hpp"
#include "nn/device.hpp"

namespace tapegrad::nn {

Tensor Module::forward(const Tensor&) {
    throw std::logic_error(type_name_ + ": this module has no single-input forward(); call its own methods");
}

Tensor Module::forward_inputs(const std::vector<Tensor>& inputs) {
    if (inputs.size() != 1)
        throw std::invalid_argument(type_name_ + ": forward takes one input but was called with " +
                                    std::to_string(inputs.size()) +
                                    "; a module with several inputs overrides forward_inputs(const std::vector<Tensor>&)");
    return forward(inputs[0]);
}

Tensor Module::operator()(const Tensor& x, SourceLocation loc) { return call({x}, loc); }
Tensor Module::operator()(const Tensor& a, const Tensor& b, SourceLocation loc) { return call({a, b}, loc); }
Tensor Module::operator()(const Tensor& a, const Tensor& b, const Tensor& c, SourceLocation loc) { return call({a, b, c}, loc); }
Tensor Module::operator()(std::vector<Tensor> inputs, SourceLocation loc) { return call(std::move(inputs), loc); }
Tensor Module::operator()(Tensor&& x, SourceLocation loc) {
    if (has_forward_hooks()) return call({x}, loc);
    detail::CallSiteScope site(loc);
    return forward_owned(std::move(x));
}

Tensor Module::forward_owned(Tensor&& x) { return forward_inputs({std::move(x)}); }

Tensor Module::call(std::vector<Tensor> inputs, SourceLocation loc) {
    detail::CallSiteScope site(loc);
    if (forward_pre_hooks_->empty() && forward_hooks_->empty()) return forward_inputs(inputs);
    for (const ForwardPreHookInputs& hook : forward_pre_hooks_->snapshot())
        if (std::vector<Tensor> replaced = hook(*this, inputs); !replaced.empty()) inputs = std::move(replaced);
    Tensor output = forward_inputs(inputs);
    for (const ForwardHookInputs& hook : forward_hooks_->snapshot())
        if (Tensor replaced = hook(*this, inputs, output); replaced.defined()) output = replaced;
    return output;
}

bool Module::has_forward_hooks() const { return !forward_pre_hooks_->empty() || !forward_hooks_->empty(); }

namespace {
// A hook written for one input, as most modules have; several inputs are a caller's mistake.
const Tensor& single_input(Module& module, const std::vector<Tensor>& inputs, const char* hook) {
    if (inputs.size() != 1)
        throw std::invalid_argument(module.type_name() + ": a " + hook + " taking one Tensor was called with " +
                                    std::to_string(inputs.size()) +
                                    " inputs; register one taking (Module&, const std::vector<Tensor>&, ...)");
    return inputs[0];
}
}  // namespace

HookHandle Module::register_forward_pre_hook(ForwardPreHook hook) {
    if (!hook) throw std::invalid_argument(type_name_ + ": register_forward_pre_hook got an empty hook");
    return register_forward_pre_hook([hook = std::move(hook)](Module& m, const std::vector<Tensor>& inputs) {
        Tensor replaced = hook(m, single_input(m, inputs, "forward pre-hook"));
        return replaced.defined() ? std::vector<Tensor>{replaced} : std::vector<Tensor>{};
    });
}

HookHandle Module::register_forward_pre_hook(ForwardPreHookInputs hook) {
    if (!hook) throw std::invalid_argument(type_name_ + ": register_forward_pre_hook got an empty hook");
    return HookList<ForwardPreHookInputs>::add(forward_pre_hooks_, std::move(hook));
}

HookHandle Module::register_forward_hook(ForwardHook hook) {
    if (!hook) throw std::invalid_argument(type_name_ + ": register_forward_hook got an empty hook");
    return register_forward_hook([hook = std::move(hook)](Module& m, const std::vector<Tensor>& inputs, const Tensor& output) {
        return hook(m, single_input(m, inputs, "forward hook"), output);
    });
}

HookHandle Module::register_forward_hook(ForwardHookInputs hook) {
    if (!hook) throw std::invalid_argument(type_name_ + ": register_forward_hook got an empty hook");
    return HookList<ForwardHookInputs>::add(forward_hooks_, std::move(hook));
}

void Module::check_new_name(const std::string& name, const char* what) const {
    if (name.empty() || name.find('.') != std::string::npos)
        throw std::invalid_argument(type_name_ + ": " + what + " name '" + name + "' must be non-empty and contain no '.'");
    auto taken = [&](const auto& entries) {
        for (const auto& [n, _] : entries)
            if (n == name) return true;
        return false;
    };
    if (taken(parameters_) || taken(buffers_) || taken(children_))
        throw std::invalid_argument(type_name_ + ": the name '" + name + "' is already registered");
}

Tensor& Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
    check_new_name(name, "parameter");
    if (!tensor.defined()) throw std::invalid_argument(type_name_ + ": parameter '" + name + "' is undefined");
    if (!tensor.is_leaf())
        throw std::invalid_argument(type_name_ + ": parameter '" + name +
                                    "' was computed by an op; register a leaf (call .detach() first)");
    tensor.requires_grad_(requires_grad);
    parameters_.emplace_back(name, std::move(tensor));
    return parameters_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor tensor) {
    check_new_name(name, "buffer");
    if (!tensor.defined()) throw std::invalid_argument(type_name_ + ": buffer '" + name + "' is undefined");
    buffers_.emplace_back(name, tensor.detach());
    return buffers_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor tensor, Tensor value_when_missing) {
    if (!value_when_missing.defined() || value_when_missing.shape() != tensor.shape())
        throw std::invalid_argument(type_name_ + ": buffer '" + name + "' needs a value when missing of its own shape " +
                                    tapegrad::to_string(tensor.shape()) + ", got " + describe(value_when_missing));
    Tensor& registered = register_buffer(name, std::move(tensor));
    buffer_values_when_missing_.emplace_back(name, value_when_missing.detach());
    return registered;
}

namespace {
// The dotted path from `root` down to `target` ("block.0"), or "" when `target` is not below
// `root`. Each module is visited once, also when shared.
std::string path_to(const Module& root, const Module* target) {
    std::set<const Module*> seen;
    std::vector<std::pair<std::string, const Module*>> stack{{"", &root}};
    while (!stack.empty()) {
        const auto [path, m] = stack.back();
        stack.pop_back();
        if (!seen.insert(m).second) continue;
        for (const auto& [n, child] : m->named_children()) {
            const std::string child_path = path.empty() ? n : path + "." + n;
            if (child.get() == target) return child_path;
            stack.emplace_back(child_path, child.get());
        }
    }
    return "";
}
}  // namespace

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
    check_new_name(name, "module");
    if (!module) throw std::invalid_argument(type_name_ + ": module '" + name + "' is null");
    // A module inside itself would make every recursive walk (parameters(), state_dict(), train())
    // endless, as PyTorch's state_dict() is on such a module: refused here, where it starts.
    if (module.get() == this)
        throw std::invalid_argument(type_name_ + ": cannot register a module inside itself (as '" + name +
                                    "'); a module cannot be its own child");
    if (const std::string path = path_to(*module, this); !path.empty())
        throw std::invalid_argument(type_name_ + ": cannot register " + module->type_name() + " as '" + name +
                                    "': this " + type_name_ + " is already inside it (as '" + path +
                                    "'), so the two would contain each other; a module cannot be its own descendant");
    children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, NamedTensors& out, bool params, bool bufs) const {
    if (params)
        for (const auto& [n, t] : parameters_) out.emplace_back(prefix + n, t);
    if (bufs)
        for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
    for (const auto& [n, c] : children_) c->collect(prefix + n + ".", out, params, bufs);
}

void Module::collect_values_when_missing(const std::string& prefix, std::map<std::string, Tensor>& out) const {
    for (const auto& [n, t] : buffer_values_when_missing_) out.emplace(prefix + n, t);
    for (const auto& [n, c] : children_) c->collect_values_when_missing(prefix + n + ".", out);
}

namespace {
// Keeps the first entry of each tensor (by identity), as PyTorch's named_parameters(remove_duplicate=True).
NamedTensors without_repeats(NamedTensors entries) {
    std::set<const TensorImpl*> seen;
    NamedTensors out;
    for (auto& entry : entries)
        if (seen.insert(entry.second.impl()).second) out.push_back(std::move(entry));
    return out;
}

}  // namespace

NamedTensors Module::named_parameters() const {
    NamedTensors out;
    collect("", out, true, false);
    return without_repeats(std::move(out));
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [_, t] : named_parameters()) out.push_back(t);
    return out;
}

NamedTensors Module::named_buffers() const {
    NamedTensors out;
    collect("", out, false, true);
    return without_repeats(std::move(out));
}

std::vector<Tensor> Module::buffers() const {
    std::vector<Tensor> out;
    for (auto& [_, t] : named_buffers()) out.push_back(t);
    return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
    std::vector<std::shared_ptr<Module>> out;
    for (const auto& [_, c] : children_) out.push_back(c);
    return out;
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
    for (const auto& [n, c] : children_)
        if (n == name) return c;
    throw std::invalid_argument(type_name_ + ": no child module named '" + name + "'");
}

void Module::train(bool on) {
    training_ = on;
    for (const auto& [_, c] : children_) c->train(on);
}

void Module::zero_grad() {
    for (Tensor& p : parameters()) p.zero_grad();
}

void Module::describe_into(std::string& out, const std::string& name, int depth) const {
    out += std::string(2 * depth, ' ') + (name.empty() ? "" : name + " ") + "(" + type_name_ + ")";
    for (const auto& [n, t] : parameters_) out += " " + n + tapegrad::to_string(t.shape());
    out += "\n";
    for (const auto& [n, c] : children_) c->describe_into(out, n, depth + 1);
}

std::string Module::to_string() const {
    std::string out;
    describe_into(out, "", 0);
    return out;
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) : Module("Sequential") {
    for (const auto& m : modules) push_back(m);
}

Sequential::Sequential(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named) : Module("Sequential") {
    for (const auto& [name, m] : named) push_back(name, m);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
    register_module(std::to_string(size()), std::move(module));
}

void Sequential::push_back(const std::string& name, std::shared_ptr<Module> module) { register_module(name, std::move(module)); }

void Sequential::throw_bad_at(std::size_t i) const {
    if (i >= size())
        throw std::invalid_argument("Sequential::at: index " + std::to_string(i) + " is out of range for a Sequential of " +
                                    std::to_string(size()) + " modules");
    throw std::invalid_argument("Sequential::at: module " + std::to_string(i) + " is a " + named_children()[i].second->type_name() +
                                ", not the type asked for; use operator[] for a Module pointer");
}

Tensor Sequential::forward(const Tensor& x) {
    // Each layer consumes h; the first one's is a copy of the caller's x, which the ops' own
    // checks (detail::rewritable) leave alone.
    Tensor h = x;
    for (const auto& [_, m] : named_children()) h = (*m)(std::move(h));
    return h;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
    std::vector<std::pair<std::string, Module*>> out;
    std::vector<const Module*> seen;
    // Explicit stack of (prefix, module), children pushed in reverse to keep registration order.
    std::vector<std::pair<std::string, Module*>> stack{{"", this}};
    while (!stack.empty()) {
        auto [name, m] = stack.back();
        stack.pop_back();
        if (std::find(seen.begin(), seen.end(), m) != seen.end()) continue;
        seen.push_back(m);
        out.emplace_back(name, m);
        for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
            stack.emplace_back(name.empty() ? it->first : name + "." + it->first, it->second.get());
    }
    return out;
}

namespace {
// Points `t` at `converted`'s elements in place, so that every holder of this tensor (the layer's
// `weight` member, the module's list, a tied layer) sees the converted one.
void replace_elements(const Tensor& t, const Tensor& converted) {
    TensorImpl& impl = *t.impl();
    impl.storage = converted.impl()->storage;
    impl.data = converted.impl()->data;
    impl.strides = converted.strides();
    impl.dtype = converted.dtype();
}
}  // namespace

Module& Module::apply(const std::function<void(Module&)>& fn) {
    std::vector<const Module*> done;  // a child registered under two names runs once, as PyTorch's children()
    for (auto& [name, child] : children_) {
        if (std::find(done.begin(), done.end(), child.get()) != done.end()) continue;
        done.push_back(child.get());
        child->apply(fn);
    }
    fn(*this);
    return *this;
}

Module& Module::to(DType dtype) {
    if (!is_floating_point(dtype))
        throw std::invalid_argument(type_name_ + ": to(" + dtype_name(dtype) +
                                    "): parameters must stay floating point (float32 or float64)");
    if (dtype == kBFloat16)
        throw std::invalid_argument(type_name_ + ": to(bfloat16): parameters must stay float32 or float64 (to train in "
                                    "bfloat16, keep them float32 and run the forward under tg::AutocastGuard)");
    NoGradGuard no_grad;
    NamedTensors all = named_parameters();
    for (auto& entry : named_buffers()) all.push_back(entry);
    for (auto& [name, t] : all) {
        // The same dtype: also a parameter shared by two layers, met twice.
        if (t.dtype() == dtype || !is_floating_point(t.dtype())) continue;
        Tensor converted = empty(t.shape(), t.suggest_memory_format(), {.dtype = dtype});
        copy_into(converted, t);
        replace_elements(t, converted);
        t.impl()->grad.reset();
    }
    return *this;
}

Module& Module::to(MemoryFormat format) {
    NoGradGuard no_grad;
    NamedTensors all = named_parameters();
    for (auto& entry : named_buffers()) all.push_back(entry);
    for (auto& [name, t] : all) {
        if (t.dim() != 4 || t.is_contiguous(format)) continue;  // also a parameter shared by two layers, met twice
        replace_elements(t, t.contiguous(format));
        Tensor grad = t.grad();
        if (grad.defined() && grad.dim() == 4) replace_elements(grad, grad.contiguous(format));
    }
    return *this;
}

Module& Module::to(const Device& device) {
    device.check_cpu((type_name_ + ".to").c_str());
    return *this;
}

}  // namespace tapegrad::nn

namespace tapegrad {

std::string to_dot(const Tensor& output, const nn::Module& module) { return to_dot(output, module.named_parameters()); }

}  // namespace tapegrad
