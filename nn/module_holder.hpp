#pragma once
// libtorch's module holder: a shared pointer to a module with value syntax, so that
//
//     struct BlockImpl : nn::Module { explicit BlockImpl(int64_t c); Tensor forward(const Tensor& x) override; };
//     TG_MODULE(Block);                       // as TORCH_MODULE(Block)
//     Block block{nullptr};                   // empty, assigned later
//     block = register_module("block", Block(64));
//     block->forward(x); block(x);            // the module's members; a call
//
// work as in libtorch. Copies share the module. tapegrad's own layers are the modules themselves
// (nn::Linear is libtorch's LinearImpl): hold them as std::shared_ptr<nn::Linear>, or as
// nn::ModuleHolder<nn::Linear> for the holder syntax.
#include <cstddef>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "nn/module.hpp"

namespace tapegrad::nn {

// Whether module(x) (Module's call) reaches Impl's forward: Impl overrides Module's virtual
// forward(const Tensor&) or forward_inputs. A module written for libtorch declares a forward of its
// own instead (forward(torch::Tensor x), by value, or with several arguments), which hides the
// virtual one.
template <class Impl>
concept ModuleCallReachesForward =
    requires { static_cast<Tensor (Impl::*)(const Tensor&)>(&Impl::forward); } ||
    !std::is_same_v<decltype(&Impl::forward_inputs), Tensor (Module::*)(const std::vector<Tensor>&)>;

template <class Impl>
class ModuleHolder {
public:
    using ContainedType = Impl;

    // An empty holder, as libtorch's Linear fc{nullptr}.
    ModuleHolder(std::nullptr_t) {}  // NOLINT: implicit, as libtorch's
    // Constructs the module from the arguments (none: its default constructor).
    template <class... Args>
        requires std::constructible_from<Impl, Args...> &&
                 (sizeof...(Args) != 1 || !(std::is_base_of_v<ModuleHolder, std::remove_cvref_t<Args>> || ...))
    explicit ModuleHolder(Args&&... args) : impl_(std::make_shared<Impl>(std::forward<Args>(args)...)) {}
    ModuleHolder(std::shared_ptr<Impl> module) : impl_(std::move(module)) {}  // NOLINT: implicit, as libtorch's

    Impl* operator->() const { return get(); }
    Impl& operator*() const { return *get(); }
    Impl* get() const {
        if (!impl_)
            throw std::invalid_argument("ModuleHolder: the holder is empty (made from nullptr); assign it a module first, "
                                   "e.g. holder = register_module(name, Holder(args...))");
        return impl_.get();
    }
    const std::shared_ptr<Impl>& ptr() const { return impl_; }
    bool is_empty() const noexcept { return impl_ == nullptr; }
    explicit operator bool() const noexcept { return !is_empty(); }
    operator std::shared_ptr<Module>() const { return impl_; }  // NOLINT: as a shared pointer to the module

    // module(x), module(x, skip): the module's call, with its hooks, where that call reaches the
    // module's forward; else (a module written for libtorch) its own forward, called directly, as
    // libtorch's holder calls impl->forward(args...).
    template <class... Args>
    decltype(auto) operator()(Args&&... args) const {
        if constexpr (ModuleCallReachesForward<Impl>)
            return (*get())(std::forward<Args>(args)...);
        else
            return get()->forward(std::forward<Args>(args)...);
    }
    // seq[0] on a holder of a Sequential: the module's own operator[], as libtorch's holder.
    template <class Index>
    decltype(auto) operator[](Index&& index) const {
        return (*get())[std::forward<Index>(index)];
    }

private:
    std::shared_ptr<Impl> impl_;
};

template <class Impl>
std::ostream& operator<<(std::ostream& stream, const ModuleHolder<Impl>& holder) {
    return stream << static_cast<const Module&>(*holder);
}

}  // namespace tapegrad::nn

// Declares Name as the holder of NameImpl, as libtorch's TORCH_MODULE(Name).
#define TG_MODULE(Name)                                                       \
    class Name : public ::tapegrad::nn::ModuleHolder<Name##Impl> {            \
    public:                                                                   \
        using ::tapegrad::nn::ModuleHolder<Name##Impl>::ModuleHolder;         \
    }
