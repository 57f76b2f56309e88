// What the forward leaves for the backward: the Node each recorded op makes, the tensors it saves
// (SavedTensor), the hooks registered on its output, and record(), which ties them together.
#include <cctype>
#include <filesystem>
#include <mutex>

#include "engine/autograd.hpp"
#include "engine/graph_task.hpp"
#include "engine/profiler.hpp"
#include "engine/storage.hpp"

namespace tapegrad {

// ---------------------------------------------------------------- GradMask

GradMask::GradMask(std::size_t n) : n_(n) {
    if (n > 64) large_.assign((n + 63) / 64, 0);
}
void GradMask::set(std::size_t i) {
    if (n_ > 64) large_[i / 64] |= uint64_t{1} << (i % 64);
    else small_ |= uint64_t{1} << i;
}
bool GradMask::operator[](std::size_t i) const {
    if (i >= n_) return false;
    if (n_ > 64) return (large_[i / 64] >> (i % 64)) & 1;
    return (small_ >> i) & 1;
}
bool GradMask::any() const {
    if (n_ > 64) {
        for (uint64_t w : large_)
            if (w) return true;
        return false;
    }
    return small_ != 0;
}

// ---------------------------------------------------------------- Node and its iterative destruction

namespace {
thread_local Node* t_current_node = nullptr;
std::atomic<int64_t> g_live_nodes{0};
std::atomic<uint64_t> g_next_sequence_nr{0};

// What the SavedTensors made on this thread since the last record() hold: record() hands the list
// to the node it makes (to_dot shows it). Bounded, in case SavedTensors are made where no record()
// follows.
thread_local std::vector<SavedTensorInfo> t_saved_since_record;

// Destroying a long chain recursively (node -> edge -> node -> ...) overflows the stack. Instead,
// a dying node hands its edges to this per-thread list, and only the outermost destructor drains
// it, one node at a time.
// A tensor with history that outlives the thread's queue (a static destroyed at exit) is
// destroyed the plain recursive way, since the queue is gone by then.
thread_local bool t_deletion_queue_gone = false;
struct DeletionQueue {
    std::vector<std::shared_ptr<Node>> pending;
    bool draining = false;
    ~DeletionQueue() { t_deletion_queue_gone = true; }
};
thread_local DeletionQueue t_deletion;
}  // namespace

Node::Node(std::string name, std::vector<Edge> edges, BackwardFn fn)
    : name_(std::move(name)), edges_(std::move(edges)), fn_(std::move(fn)), sequence_nr_(g_next_sequence_nr++) {
    ++g_live_nodes;
}

Node::~Node() {
    --g_live_nodes;
    if (t_deletion_queue_gone) return;
    DeletionQueue& q = t_deletion;
    const bool outermost = !q.draining;
    q.draining = true;
    fn_ = nullptr;  // saved tensors die here; their nodes are queued, not destroyed recursively
    for (Edge& e : edges_)
        if (e.node) q.pending.push_back(std::move(e.node));
    edges_.clear();
    if (!outermost) return;
    while (!q.pending.empty()) {
        std::shared_ptr<Node> next = std::move(q.pending.back());
        q.pending.pop_back();
        next.reset();
    }
    q.draining = false;
}

int64_t Node::live_count() { return g_live_nodes.load(); }
Node* Node::current() { return t_current_node; }

std::string Node::type_name() const {
    std::string camel;
    bool upper = true;
    for (char c : name_) {
        if (c == '_') {
            upper = true;
            continue;
        }
        camel += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
        upper = false;
    }
    return camel + "Backward0";
}

void Node::release() { fn_ = nullptr; }

std::vector<Tensor> Node::apply(const Tensor& grad_output, const GradMask& needs) {
    if (!fn_)
        throw std::invalid_argument("backward: tried to run backward through '" + name_ +
                                    "' a second time, but its saved tensors were freed after the first backward. "
                                    "Pass retain_graph=true to the first backward() if you need to backward twice");
    // Saved outputs unpack attached to this node while its closure runs (create_graph). The
    // SavedTensors the closure makes belong to no node.
    struct RunningClosure {
        Node* previous = t_current_node;
        explicit RunningClosure(Node* n) { t_current_node = n; }
        ~RunningClosure() {
            t_current_node = previous;
            t_saved_since_record.clear();
        }
    } running(this);
    try {
        return fn_(grad_output, needs);
    } catch (const SavedTensorModified& e) {
        throw std::invalid_argument(
            "backward: a tensor that '" + name_ + "' saved for its backward, " + e.what() +
            ", was modified by an in-place operation after the forward: it is at version " +
            std::to_string(e.current_version) + ", but '" + name_ + "' saved it at version " +
            std::to_string(e.saved_version) +
            ". Use the out-of-place op (relu instead of relu_), write into a clone(), or call backward() before the "
            "in-place write (an optimizer step between two backward passes of one retained graph does this)");
    }
}

std::string NodeOrigin::describe(const std::string& op) const {
    if (scope.empty() && !file) return "";
    std::string s = " (forward op '" + op + "'";
    if (!scope.empty()) s += " in scope '" + scope + "'";
    if (file) s += std::string(", created at ") + std::filesystem::path(file).filename().string() + ":" + std::to_string(line);
    return s + ")";
}

// ---------------------------------------------------------------- hooks

namespace {
// Hook lists are created lazily, and read by backward on any thread: one mutex guards the
// pointers, and backward skips it until the first hook of the process is registered.
std::mutex g_hooks_mutex;
std::atomic<bool> g_any_hooks{false};

std::shared_ptr<GradHooks> lazy_hooks(std::shared_ptr<GradHooks>& slot) {
    std::lock_guard<std::mutex> lock(g_hooks_mutex);
    if (!slot) slot = std::make_shared<GradHooks>();
    g_any_hooks.store(true, std::memory_order_relaxed);
    return slot;
}
std::shared_ptr<GradHooks> read_hooks(const std::shared_ptr<GradHooks>& slot) {
    if (!g_any_hooks.load(std::memory_order_relaxed)) return nullptr;
    std::lock_guard<std::mutex> lock(g_hooks_mutex);
    return slot;
}
}  // namespace

std::shared_ptr<GradHooks> Node::hooks() const { return read_hooks(hooks_); }
std::shared_ptr<GradHooks> Node::hooks_for_registration() { return lazy_hooks(hooks_); }
std::shared_ptr<GradHooks> detail::leaf_hooks(const TensorImpl& leaf) { return read_hooks(leaf.hooks); }

HookHandle Tensor::register_hook(GradHook hook) const {
    if (!requires_grad())
        throw std::invalid_argument("register_hook: the tensor " + describe(*this) +
                                    " does not require grad, so no gradient will reach the hook; call requires_grad_() on the leaf first");
    if (!hook) throw std::invalid_argument("register_hook: the hook is empty");
    auto hooks = grad_fn() ? grad_fn()->hooks_for_registration() : lazy_hooks(impl()->hooks);
    return HookList<GradHook>::add(hooks->grad, std::move(hook));
}

HookHandle Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const {
    if (!requires_grad() || !is_leaf())
        throw std::invalid_argument("register_post_accumulate_grad_hook: only leaf tensors that require grad accumulate a "
                                    "gradient, but this one " + describe(*this) +
                                    (grad_fn() ? " was made by '" + grad_fn()->name() + "'; use register_hook for non-leaves"
                                               : std::string(" does not require grad")));
    if (!hook) throw std::invalid_argument("register_post_accumulate_grad_hook: the hook is empty");
    return HookList<PostAccumulateGradHook>::add(lazy_hooks(impl()->hooks)->post_accumulate, std::move(hook));
}

// ---------------------------------------------------------------- saved tensors

SavedTensorModified::SavedTensorModified(const std::string& what, uint64_t saved, uint64_t now)
    : std::invalid_argument(what), saved_version(saved), current_version(now) {}

namespace {
SavedTensorInfo saved_info(const Tensor& value) {
    const std::size_t bytes = value.impl()->storage ? value.impl()->storage->count() * element_size(value.dtype()) : 0;
    return {value.shape(), value.dtype(), bytes};
}

void note_saved(const Tensor& value) {
    if (!value.defined() || t_saved_since_record.size() >= 16) return;
    t_saved_since_record.push_back(saved_info(value));
}

// A new tensor over value's elements whose history is `node`: what a saved tensor unpacks to
// when a backward is being recorded.
Tensor with_history(const Tensor& value, std::shared_ptr<Node> node) {
    auto impl = std::make_shared<TensorImpl>(*value.impl());
    impl->grad = nullptr;
    impl->grad_fn = std::move(node);
    impl->requires_grad = true;
    return Tensor(std::move(impl));
}
}  // namespace

std::optional<SavedTensorInfo> SavedTensor::info() const {
    if (!value_.defined()) return std::nullopt;
    return saved_info(value_);
}

SavedTensor::SavedTensor(const Tensor& value, const Tensor& tracked) {
    note_saved(value);
    if (!tracked.defined()) return;
    tracked_ = tracked.impl()->storage;
    version_ = tracked.version();
    if (!value.defined()) return;
    value_ = value.requires_grad() ? value.detach() : value;
    // The history the value stands for: `tracked`'s (value is tracked itself, or a copy of it).
    if (tracked.grad_fn()) grad_fn_ = tracked.grad_fn();
    else if (tracked.requires_grad()) leaf_ = tracked.impl_ptr();
}

SavedTensor SavedTensor::output(const Tensor& out) {
    SavedTensor s(out.detach());
    s.is_output_ = true;
    return s;
}

void SavedTensor::check() const {
    // A tracked storage that no longer exists cannot have been written since.
    if (const std::shared_ptr<Storage> s = tracked_.lock()) {
        const uint64_t now = s->version.load(std::memory_order_relaxed);
        if (now != version_)
            throw SavedTensorModified(value_.defined() ? describe(value_) : "the tensor it is a view of", version_, now);
    }
}

Tensor SavedTensor::unpack() const {
    check();
    if (!is_grad_enabled() || !value_.defined()) return value_;
    if (is_output_) {
        Node* running = Node::current();
        return running ? with_history(value_, running->shared_from_this()) : value_;
    }
    if (std::shared_ptr<Node> node = grad_fn_.lock()) return with_history(value_, std::move(node));
    if (std::shared_ptr<TensorImpl> leaf = leaf_.lock()) return Tensor(std::move(leaf));
    return value_;
}

// ---------------------------------------------------------------- recording

bool needs_grad(std::initializer_list<Tensor> inputs) {
    if (!is_grad_enabled()) return false;
    for (const Tensor& t : inputs)
        if (t.requires_grad()) return true;
    return false;
}
bool needs_grad(const std::vector<Tensor>& inputs) {
    if (!is_grad_enabled()) return false;
    for (const Tensor& t : inputs)
        if (t.requires_grad()) return true;
    return false;
}

namespace {
NodeInfo describe_recorded(const std::string& op, const Tensor& out) {
    NodeInfo info;
    info.output_shape = out.shape();
    info.output_dtype = out.dtype();
    info.origin.scope = NameScope::current();  // usually empty or short: no allocation
    if (is_anomaly_enabled()) {
        const detail::CallSite site = detail::current_call_site();
        info.origin.file = site.file;
        info.origin.line = site.line;
    }
    if (detail::profiling()) {
        info.forward_flops = detail::current_op_flops();
        detail::note_recorded(op);
    }
    return info;
}

Edge edge_to(const Tensor& input) {
    Edge e;
    if (!input.defined() || !input.requires_grad()) return e;
    if (input.grad_fn()) e.node = input.grad_fn();
    else e.leaf = input.impl_ptr();
    e.shape = input.shape();
    e.dtype = input.dtype();
    return e;
}

template <class Inputs>
Tensor record_impl(std::string op, Tensor out, const Inputs& inputs, BackwardFn fn) {
    std::vector<SavedTensorInfo> saved;
    saved.swap(t_saved_since_record);  // what this op saved, whether or not it is recorded
    if (!needs_grad(inputs)) return out;
    if (out.grad_fn() || out.requires_grad())
        throw std::logic_error("record: '" + op + "' returned a tensor that already has autograd history");
    NodeInfo info = describe_recorded(op, out);
    info.saved = std::move(saved);
    std::vector<Edge> edges;
    edges.reserve(inputs.size());
    for (const Tensor& t : inputs) edges.push_back(edge_to(t));
    auto node = std::make_shared<Node>(std::move(op), std::move(edges), std::move(fn));
    node->info() = std::move(info);
    out.impl()->grad_fn = std::move(node);
    out.impl()->requires_grad = true;
    return out;
}
}  // namespace

Tensor record(std::string op, Tensor out, std::initializer_list<Tensor> inputs, BackwardFn fn) {
    return record_impl(std::move(op), std::move(out), inputs, std::move(fn));
}
Tensor record(std::string op, Tensor out, const std::vector<Tensor>& inputs, BackwardFn fn) {
    return record_impl(std::move(op), std::move(out), inputs, std::move(fn));
}

}  // namespace tapegrad
