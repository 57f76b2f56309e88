#pragma once
// Hooks on gradients, as in PyTorch: Tensor::register_hook runs on a tensor's gradient during
// backward and may replace it; Tensor::register_post_accumulate_grad_hook runs on a leaf once its
// .grad() holds this pass's final gradient. Every registration returns a HookHandle whose
// remove() takes the hook out again (PyTorch's RemovableHandle; dropping the handle keeps the hook).
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace tapegrad {

class Tensor;

// Gets the gradient; returns an undefined Tensor to keep it, or a replacement of the same shape
// and dtype.
using GradHook = std::function<Tensor(const Tensor& grad)>;
// Gets the leaf, whose .grad() is final for this backward pass.
using PostAccumulateGradHook = std::function<void(const Tensor& leaf)>;

// Thrown when a hook throws during backward; the message names the hook's tensor and carries the
// hook's own message.
struct HookError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class HookHandle {
public:
    HookHandle() = default;
    explicit HookHandle(std::function<void()> remover) : remover_(std::move(remover)) {}
    // Takes the hook out; calling it again, or after its tensor or module is gone, does nothing.
    void remove() {
        if (!remover_) return;
        auto remover = std::move(remover_);
        remover_ = nullptr;
        remover();
    }
    bool removable() const { return remover_ != nullptr; }

private:
    std::function<void()> remover_;
};

// An ordered list of hooks that handles can remove. Thread-safe: backward takes a snapshot, so a
// hook may be added or removed on another thread, or from inside a hook, while backward runs.
template <class Fn>
class HookList {
public:
    // The handle holds only a weak reference to the list.
    static HookHandle add(const std::shared_ptr<HookList>& list, Fn fn) {
        uint64_t id;
        {
            std::lock_guard<std::mutex> lock(list->mutex_);
            id = list->next_id_++;
            list->hooks_.emplace_back(id, std::move(fn));
        }
        return HookHandle([weak = std::weak_ptr<HookList>(list), id] {
            if (auto l = weak.lock()) l->erase(id);
        });
    }
    std::vector<Fn> snapshot() const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<Fn> out;
        out.reserve(hooks_.size());
        for (const auto& [_, fn] : hooks_) out.push_back(fn);
        return out;
    }
    bool empty() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return hooks_.empty();
    }

private:
    void erase(uint64_t id) {
        std::lock_guard<std::mutex> lock(mutex_);
        std::erase_if(hooks_, [id](const auto& entry) { return entry.first == id; });
    }
    mutable std::mutex mutex_;
    uint64_t next_id_ = 0;
    std::vector<std::pair<uint64_t, Fn>> hooks_;
};

// The gradient hooks of one tensor: kept on the leaf's TensorImpl, or on the Node of a non-leaf.
struct GradHooks {
    std::shared_ptr<HookList<GradHook>> grad = std::make_shared<HookList<GradHook>>();
    std::shared_ptr<HookList<PostAccumulateGradHook>> post_accumulate = std::make_shared<HookList<PostAccumulateGradHook>>();
};

}  // namespace tapegrad
