#include "engine/autograd.hpp"

#include <cmath>
#include <filesystem>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "engine/profiler.hpp"
#include "engine/storage.hpp"
#include "engine/strided.hpp"
#include "engine/tensor_math.hpp"

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

// ---------------------------------------------------------------- thread-local modes

namespace {
thread_local bool t_grad_enabled = true;
thread_local bool t_anomaly_enabled = false;
thread_local Node* t_current_node = nullptr;
std::atomic<int64_t> g_live_nodes{0};
std::atomic<uint64_t> g_next_sequence_nr{0};
}  // namespace

bool is_grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool enabled) { t_grad_enabled = enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
GradModeGuard::GradModeGuard(bool enabled) : previous_(t_grad_enabled) { t_grad_enabled = enabled; }
GradModeGuard::~GradModeGuard() { t_grad_enabled = previous_; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

bool is_anomaly_enabled() { return t_anomaly_enabled; }
void set_anomaly_enabled(bool enabled) { t_anomaly_enabled = enabled; }
AnomalyModeGuard::AnomalyModeGuard(bool enabled) : previous_(t_anomaly_enabled) { t_anomaly_enabled = enabled; }
AnomalyModeGuard::~AnomalyModeGuard() { t_anomaly_enabled = previous_; }

// ---------------------------------------------------------------- Node and its iterative destruction

namespace {
// Destroying a long chain recursively (node -> edge -> node -> ...) overflows the stack. Instead,
// a dying node hands its edges to this per-thread list, and only the outermost destructor drains
// it, one node at a time.
struct DeletionQueue {
    std::vector<std::shared_ptr<Node>> pending;
    bool draining = false;
};
thread_local DeletionQueue t_deletion;
}  // namespace

Node::Node(std::string name, std::vector<Edge> edges, BackwardFn fn)
    : name_(std::move(name)), edges_(std::move(edges)), fn_(std::move(fn)), sequence_nr_(g_next_sequence_nr++) {
    ++g_live_nodes;
}

Node::~Node() {
    --g_live_nodes;
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

void Node::release() { fn_ = nullptr; }

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

std::string NodeOrigin::describe(const std::string& op) const {
    if (scope.empty() && !file) return "";
    std::string s = " (forward op '" + op + "'";
    if (!scope.empty()) s += " in scope '" + scope + "'";
    if (file) s += std::string(", created at ") + std::filesystem::path(file).filename().string() + ":" + std::to_string(line);
    return s + ")";
}

std::vector<Tensor> Node::apply(const Tensor& grad_output, const GradMask& needs) {
    if (!fn_)
        throw std::invalid_argument("backward: tried to run backward through '" + name_ +
                                    "' a second time, but its saved tensors were freed after the first backward. "
                                    "Pass retain_graph=true to the first backward() if you need to backward twice");
    // Saved outputs unpack attached to this node while its closure runs (create_graph).
    struct CurrentNode {
        Node* previous = t_current_node;
        explicit CurrentNode(Node* n) { t_current_node = n; }
        ~CurrentNode() { t_current_node = previous; }
    } current(this);
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

// ---------------------------------------------------------------- saved tensors

SavedTensorModified::SavedTensorModified(const std::string& what, uint64_t saved, uint64_t now)
    : std::invalid_argument(what), saved_version(saved), current_version(now) {}

namespace {
// What the SavedTensors made on this thread since the last record() hold: record() hands the list
// to the node it makes (to_dot shows it). Bounded, in case SavedTensors are made where no record()
// follows.
thread_local std::vector<SavedTensorInfo> t_saved_since_record;

void note_saved(const Tensor& value) {
    if (!value.defined() || t_saved_since_record.size() >= 16) return;
    const std::size_t bytes = value.impl()->storage ? value.impl()->storage->count() * element_size(value.dtype()) : 0;
    t_saved_since_record.push_back({value.shape(), value.dtype(), bytes});
}
}  // namespace

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

namespace {
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

Tensor SavedTensor::unpack() const {
    check();
    if (!t_grad_enabled || !value_.defined()) return value_;
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
    if (!t_grad_enabled) return false;
    for (const Tensor& t : inputs)
        if (t.requires_grad()) return true;
    return false;
}
bool needs_grad(const std::vector<Tensor>& inputs) {
    if (!t_grad_enabled) return false;
    for (const Tensor& t : inputs)
        if (t.requires_grad()) return true;
    return false;
}

namespace {
bool has_non_finite(const Tensor& t) {
    return dispatch(t.dtype(), [&]<class T>() {
        for (T v : t.to_vector<T>())
            if (!std::isfinite(v)) return true;
        return false;
    });
}

template <class Inputs>
Tensor record_impl(std::string op, Tensor out, const Inputs& inputs, BackwardFn fn) {
    NodeInfo info;
    info.saved.swap(t_saved_since_record);  // what this op saved, whether or not it is recorded
    // Only recorded outputs are checked: ops that call record() on tensors without history (an op's
    // internal reshape, every op inside a backward closure) would otherwise take the blame ("the
    // forward of 'view'") for a NaN that the op around them, or the node whose backward runs, made.
    if (!needs_grad(inputs)) return out;
    const bool profiling = detail::profiling();
    info.origin.scope = NameScope::current();  // usually empty or short: no allocation
    if (t_anomaly_enabled) {
        const detail::CallSite site = detail::current_call_site();
        info.origin.file = site.file;
        info.origin.line = site.line;
    }
    if (profiling) {
        info.forward_flops = detail::current_op_flops();
        detail::note_recorded(op);
    }
    if (t_anomaly_enabled && has_non_finite(out))
        throw AnomalyError("anomaly: the forward of '" + op + "' produced NaN or Inf in its output " + describe(out) +
                           info.origin.describe(op));
    info.output_shape = out.shape();
    info.output_dtype = out.dtype();
    std::vector<Edge> edges;
    edges.reserve(inputs.size());
    for (const Tensor& t : inputs) {
        Edge e;
        if (t.defined() && t.requires_grad()) {
            if (t.grad_fn()) e.node = t.grad_fn();
            else e.leaf = t.impl_ptr();
            e.shape = t.shape();
            e.dtype = t.dtype();
        }
        edges.push_back(std::move(e));
    }
    if (out.grad_fn() || out.requires_grad())
        throw std::logic_error("record: '" + op + "' returned a tensor that already has autograd history");
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

Tensor linear_backward(const char* op, Tensor dx, const Tensor& g, std::function<Tensor(const Tensor&)> forward) {
    if (!t_grad_enabled || !g.requires_grad()) return dx;
    return record(std::string(op) + "_backward", std::move(dx), {g},
                  [forward = std::move(forward)](const Tensor& h, const GradMask&) { return std::vector<Tensor>{forward(h)}; });
}

// ---------------------------------------------------------------- the engine

namespace {

// A buffer may be added into only when nothing else can see its memory: gradients are often
// shared (add's backward hands the same tensor to both inputs) or alias saved tensors.
bool uniquely_owned(const Tensor& t) {
    return t.impl_ptr().use_count() == 1 && t.impl()->storage.use_count() == 1 && is_dense(t);
}

// ---- the engine's own differentiable steps, recorded only when a backward is being recorded
// (create_graph) and the gradient has history: a copy, a sum, and the broadcast reduction.

Tensor copy_recorded(const Tensor& src) {
    Tensor out = empty(src.shape(), {.dtype = src.dtype()});
    copy_into(out, src);
    return record("copy", out, {src}, [](const Tensor& g, const GradMask&) { return std::vector<Tensor>{g}; });
}

Tensor add_recorded(const Tensor& a, const Tensor& b) {
    Tensor out = empty(a.shape(), {.dtype = a.dtype()});
    copy_into(out, a);
    add_into(out, b);
    return record("add", out, {a, b}, [](const Tensor& g, const GradMask&) { return std::vector<Tensor>{g, g}; });
}

// g broadcast to `shape` (a stride-0 view); its backward sums back, through check_gradient.
Tensor expand_recorded(const Tensor& g, const Shape& shape) {
    Tensor out = as_strided(g, shape, broadcast_strides(g.shape(), g.strides(), shape));
    return record("expand", out, {g}, [](const Tensor& h, const GradMask&) { return std::vector<Tensor>{h}; });
}

Tensor sum_to_recorded(const Tensor& g, const Shape& shape) {
    const Shape from = g.shape();
    return record("sum_to", sum_to(g, shape), {g},
                  [from](const Tensor& h, const GradMask&) { return std::vector<Tensor>{expand_recorded(h, from)}; });
}

// Sums gradients that arrive along several edges into one buffer. When the backward is recorded
// the sum is out of place and on the tape: the buffer may be a gradient with history.
// Takes g by value: a gradient moved in that nothing else holds can later become a leaf's .grad()
// or be added into without a copy.
void accumulate(Tensor& slot, Tensor g, bool create_graph) {
    if (!slot.defined()) {
        slot = std::move(g);
        return;
    }
    if (create_graph) {
        slot = add_recorded(slot, g);
        return;
    }
    // The first gradient may be shared with another consumer, so sum out of place once; after
    // that the buffer is ours and can be added into.
    if (!uniquely_owned(slot)) {
        Tensor fresh = empty_like(slot);
        copy_into(fresh, slot);
        slot = fresh;
    }
    add_into(slot, g);
}

Tensor check_gradient(const Node& node, std::size_t i, Tensor g, const Edge& edge, bool create_graph) {
    if (g.dtype() != edge.dtype)
        throw std::logic_error("backward: '" + node.name() + "' returned a " + dtype_name(g.dtype()) +
                               " gradient for a " + dtype_name(edge.dtype) + " input " + std::to_string(i) +
                               node.info().origin.describe(node.name()));
    if (g.shape() != edge.shape) {
        try {
            if (broadcast_shapes(g.shape(), edge.shape, node.name().c_str()) != g.shape()) throw std::invalid_argument("");
        } catch (const std::invalid_argument&) {
            throw std::logic_error("backward: '" + node.name() + "' returned a gradient of shape " + to_string(g.shape()) +
                                   " for input " + std::to_string(i) + " of shape " + to_string(edge.shape) +
                                   node.info().origin.describe(node.name()));
        }
        g = create_graph ? sum_to_recorded(g, edge.shape) : sum_to(g, edge.shape);
    }
    if (t_anomaly_enabled && has_non_finite(g))
        throw AnomalyError("anomaly: the backward of '" + node.name() + "' produced NaN or Inf in the gradient of input " +
                                std::to_string(i) + " " + describe(g) + node.info().origin.describe(node.name()));
    return g;
}

struct GraphTask {
    bool accumulate_leaves = true;                            // backward() vs grad()
    bool retain_graph = false;
    bool create_graph = false;                                // record the backward pass itself
    std::unordered_map<const void*, std::size_t> leaf_targets;  // grad(): leaf (TensorImpl) -> input index
    std::unordered_map<const void*, std::size_t> node_targets;  // grad(): non-leaf (its Node) -> input index
};

// The gradient of one leaf while the pass runs. It is complete once `pending` (the edges of
// needed nodes that may still add to it) reaches zero.
struct LeafState {
    std::shared_ptr<TensorImpl> impl;
    Tensor grad;
    int64_t pending = 0;
};

// The .grad() of every leaf committed by a backward pass, as it was before: restored if the pass
// fails later.
using CommitJournal = std::vector<std::pair<std::shared_ptr<TensorImpl>, std::shared_ptr<TensorImpl>>>;

// Runs the tensor's gradient hooks in order; a hook that throws is reported with the tensor.
Tensor run_grad_hooks(const std::shared_ptr<GradHooks>& hooks, Tensor g, const std::function<std::string()>& whose) {
    if (!hooks) return g;
    for (const GradHook& hook : hooks->grad->snapshot()) {
        Tensor replaced;
        try {
            replaced = hook(g);
        } catch (const std::exception& e) {
            throw HookError("backward: a hook registered on " + whose() + " threw: " + e.what());
        }
        if (!replaced.defined()) continue;
        if (replaced.shape() != g.shape() || replaced.dtype() != g.dtype())
            throw std::invalid_argument("backward: a hook registered on " + whose() + " returned a gradient " +
                                        describe(replaced) + " in place of " + describe(g) +
                                        "; return one of the same shape and dtype, or an undefined tensor to keep it");
        g = replaced;
    }
    return g;
}

// Backward passes in several threads may share leaves (one model, several workers): each leaf's
// .grad() is read and updated under this lock, so no update is lost.
std::mutex g_leaf_grad_mutex;

// Adds this pass's gradient into the leaf's .grad() out of place, so that the journal can restore
// the previous one.
void commit_leaf(const std::shared_ptr<TensorImpl>& leaf, Tensor g, CommitJournal& journal, bool create_graph) {
    const std::lock_guard<std::mutex> lock(g_leaf_grad_mutex);
    std::shared_ptr<TensorImpl> before = leaf->grad;
    if (create_graph) {
        // On the tape (PyTorch's AccumulateGrad under create_graph): .grad() is then a
        // differentiable function of the parameters.
        g = before ? add_recorded(Tensor(before), g) : copy_recorded(g);
    } else {
        // The committed buffer is the leaf's alone, and never a .grad() with history: a graph
        // recorded by a create_graph backward may still read that one.
        if (!uniquely_owned(g)) {
            Tensor own = empty_like(g);
            copy_into(own, g);
            g = own;
        }
        if (before) add_into(g, Tensor(before));
    }
    journal.emplace_back(leaf, std::move(before));
    leaf->grad = g.impl_ptr();
}

// Appends the node's origin (anomaly mode) to an error escaping its backward, keeping the type.
[[noreturn]] void rethrow_with_origin(const Node& node) {
    const std::string where = node.info().origin.describe(node.name());
    if (where.empty()) throw;
    try {
        throw;
    } catch (const AnomalyError& e) {
        throw AnomalyError(e.what() + where);
    } catch (const HookError& e) {
        throw HookError(e.what() + where);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(e.what() + where);
    } catch (const std::logic_error& e) {
        throw std::logic_error(e.what() + where);
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(e.what() + where);
    }
}

// Runs the graph below `roots`. backward(): commits each leaf's gradient into its .grad() as soon
// as it is complete (journaling the old one). grad(): returns the gradient of every target.
std::vector<Tensor> run_graph(const std::vector<std::pair<Edge, Tensor>>& roots, const GraphTask& task,
                              std::size_t n_targets, CommitJournal& journal) {
    // Closures run with grad mode off (plain kernels), or on when the backward is recorded.
    const GradModeGuard grad_mode(task.create_graph);
    const bool create_graph = task.create_graph;
    std::vector<Tensor> targets(n_targets);

    auto leaf_wanted = [&](const Edge& e) {
        return task.accumulate_leaves ? e.leaf->requires_grad : task.leaf_targets.count(e.leaf.get()) > 0;
    };

    // 1. Iterative post-order walk: which nodes lead to a wanted gradient.
    // One root at a time: a node already in `needed` is then either finished or an ancestor on the
    // stack, which in an acyclic graph cannot be reached again. Pushing every root first would let
    // a later root finish early, reading an unfinished earlier root as not needed.
    std::unordered_map<Node*, bool> needed;
    std::vector<std::pair<Node*, std::size_t>> stack;
    for (const auto& [root, g] : roots) {
        if (!root.node || needed.count(root.node.get())) continue;
        needed[root.node.get()] = false;
        stack.emplace_back(root.node.get(), 0);
        while (!stack.empty()) {
            auto& [node, next] = stack.back();
            if (next < node->edges().size()) {
                const Edge& e = node->edges()[next++];
                if (e.node && !needed.count(e.node.get())) {
                    needed[e.node.get()] = false;
                    stack.emplace_back(e.node.get(), 0);
                }
                continue;
            }
            bool n = task.node_targets.count(node) > 0;
            for (const Edge& e : node->edges()) {
                if (e.node) n = n || needed[e.node.get()];
                else if (e.leaf) n = n || leaf_wanted(e);
            }
            needed[node] = n;
            stack.pop_back();
        }
    }

    // 2. Dependencies: how many needed nodes feed each needed node, and each wanted leaf.
    std::unordered_map<Node*, int64_t> deps;
    std::unordered_map<TensorImpl*, LeafState> leaves;
    auto leaf_state = [&](const Edge& e) -> LeafState& {
        LeafState& s = leaves[e.leaf.get()];
        if (!s.impl) s.impl = e.leaf;
        return s;
    };
    for (const auto& [node, is_needed] : needed) {
        if (!is_needed) continue;
        for (const Edge& e : node->edges()) {
            if (e.node && needed[e.node.get()]) ++deps[e.node.get()];
            else if (e.leaf && leaf_wanted(e)) ++leaf_state(e).pending;
        }
    }
    for (const auto& [edge, g] : roots)
        if (edge.leaf && leaf_wanted(edge)) ++leaf_state(edge).pending;

    // A leaf's gradient is final: its hooks run, then it is committed (backward) or returned (grad).
    auto leaf_done = [&](LeafState& s) {
        if (!s.grad.defined()) return;
        Tensor g = run_grad_hooks(read_hooks(s.impl->hooks), std::move(s.grad),
                                  [&] { return "the leaf tensor " + describe(Tensor(s.impl)); });
        if (!task.accumulate_leaves) {
            targets[task.leaf_targets.at(s.impl.get())] = g;
            return;
        }
        commit_leaf(s.impl, std::move(g), journal, create_graph);
        if (auto hooks = read_hooks(s.impl->hooks)) {
            const Tensor leaf(s.impl);
            for (const PostAccumulateGradHook& hook : hooks->post_accumulate->snapshot()) {
                try {
                    hook(leaf);
                } catch (const std::exception& e) {
                    throw HookError("backward: a post-accumulate-grad hook registered on the leaf tensor " + describe(leaf) +
                                    " threw: " + e.what());
                }
            }
        }
    };
    auto add_to_leaf = [&](const Edge& e, Tensor g) {
        LeafState& s = leaves.at(e.leaf.get());
        if (g.defined()) accumulate(s.grad, std::move(g), create_graph);
        if (--s.pending == 0) leaf_done(s);
    };

    // 3. Seed the roots and run nodes as they become ready.
    std::unordered_map<Node*, Tensor> buffers;
    std::vector<Node*> ready;
    for (const auto& [edge, g] : roots) {
        if (edge.leaf) {
            if (leaf_wanted(edge)) add_to_leaf(edge, g);
            continue;
        }
        if (!needed[edge.node.get()]) continue;
        accumulate(buffers[edge.node.get()], g, create_graph);
    }
    for (const auto& [edge, g] : roots)
        if (edge.node && needed[edge.node.get()] && deps[edge.node.get()] == 0 &&
            std::find(ready.begin(), ready.end(), edge.node.get()) == ready.end())
            ready.push_back(edge.node.get());

    const bool profiling = detail::profiling();
    while (!ready.empty()) {
        Node* node = ready.back();
        ready.pop_back();
        Tensor grad_out = std::move(buffers[node]);
        buffers.erase(node);
        // Backward closures may rely on a dense grad_output (row-major or channels-last).
        if (grad_out.defined() && !is_dense(grad_out) && create_graph) {
            grad_out = copy_recorded(grad_out);
        } else if (grad_out.defined() && !is_dense(grad_out)) {
            Tensor dense = empty(grad_out.shape(), {.dtype = grad_out.dtype()});
            copy_into(dense, grad_out);
            grad_out = dense;
        }
        if (grad_out.defined())
            if (auto hooks = node->hooks())
                grad_out = run_grad_hooks(hooks, std::move(grad_out), [&] {
                    return "the output of '" + node->name() + "' " + to_string(node->info().output_shape) + " " +
                           dtype_name(node->info().output_dtype) + node->info().origin.describe(node->name());
                });
        if (auto it = task.node_targets.find(node); it != task.node_targets.end()) targets[it->second] = grad_out;

        const auto& edges = node->edges();
        GradMask mask(edges.size());
        for (std::size_t i = 0; i < edges.size(); ++i) {
            const Edge& e = edges[i];
            if ((e.node && needed[e.node.get()]) || (e.leaf && leaf_wanted(e))) mask.set(i);
        }
        std::vector<Tensor> grads;
        if (mask.any() && grad_out.defined()) {
            try {
                std::optional<detail::BackwardSpan> span;
                if (profiling) span.emplace(*node);
                grads = node->apply(grad_out, mask);
                t_saved_since_record.clear();  // SavedTensors a closure made belong to no node
            } catch (...) {
                rethrow_with_origin(*node);
            }
            if (grads.size() != edges.size())
                throw std::logic_error("backward: '" + node->name() + "' returned " + std::to_string(grads.size()) +
                                       " gradients for " + std::to_string(edges.size()) + " inputs");
        }
        if (!task.retain_graph) node->release();

        for (std::size_t i = 0; i < edges.size(); ++i) {
            const Edge& e = edges[i];
            if (!mask[i]) continue;
            // Moved out of `grads`, so that a gradient no other input shares is uniquely owned and
            // becomes the leaf's .grad() (or an accumulation buffer) without a copy.
            Tensor g = i < grads.size() && grads[i].defined() ? check_gradient(*node, i, std::move(grads[i]), e, create_graph)
                                                              : Tensor();
            if (e.leaf) {
                add_to_leaf(e, std::move(g));
                continue;
            }
            if (g.defined()) accumulate(buffers[e.node.get()], std::move(g), create_graph);
            if (--deps[e.node.get()] == 0) ready.push_back(e.node.get());
        }
    }
    return targets;
}


std::vector<std::pair<Edge, Tensor>> make_roots(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                                                const char* api) {
    if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
        throw std::invalid_argument(std::string(api) + ": got " + std::to_string(grad_outputs.size()) +
                                    " grad_outputs for " + std::to_string(outputs.size()) + " outputs");
    std::vector<std::pair<Edge, Tensor>> roots;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
        const Tensor& out = outputs[i];
        if (!out.defined()) throw std::invalid_argument(std::string(api) + ": output " + std::to_string(i) + " is undefined");
        if (!out.requires_grad())
            throw std::invalid_argument(std::string(api) + ": output " + std::to_string(i) + " " + describe(out) +
                                        " does not require grad and has no grad_fn; make sure a parameter it depends "
                                        "on has requires_grad set and that it was not computed under NoGradGuard");
        Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
        if (!g.defined()) {
            if (out.numel() != 1)
                throw std::invalid_argument(std::string(api) + ": grad can be implicitly created only for scalar outputs, "
                                            "but output " + std::to_string(i) + " has shape " + to_string(out.shape()) +
                                            "; pass a grad_output of that shape");
            g = ones_like(out);
        } else if (g.shape() != out.shape() || g.dtype() != out.dtype()) {
            throw std::invalid_argument(std::string(api) + ": grad_output " + describe(g) + " does not match output " +
                                        std::to_string(i) + " " + describe(out));
        }
        Edge e;
        if (out.grad_fn()) e.node = out.grad_fn();
        else e.leaf = out.impl_ptr();
        e.shape = out.shape();
        e.dtype = out.dtype();
        roots.emplace_back(std::move(e), g);
    }
    return roots;
}

}  // namespace


void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, std::optional<bool> retain_graph,
              bool create_graph) {
    const auto roots = make_roots(outputs, grad_outputs, "backward");
    GraphTask task;
    task.retain_graph = retain_graph.value_or(create_graph);
    task.create_graph = create_graph;
    CommitJournal journal;
    try {
        run_graph(roots, task, 0, journal);
    } catch (...) {
        // An error midway leaves every .grad() as it was before this backward.
        const std::lock_guard<std::mutex> lock(g_leaf_grad_mutex);
        for (auto it = journal.rbegin(); it != journal.rend(); ++it) it->first->grad = std::move(it->second);
        throw;
    }
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, std::optional<bool> retain_graph, bool create_graph,
                         bool allow_unused) {
    const auto roots = make_roots(outputs, grad_outputs, "grad");
    GraphTask task;
    task.accumulate_leaves = false;
    task.retain_graph = retain_graph.value_or(create_graph);
    task.create_graph = create_graph;
    // An input named twice gets the same gradient twice: the pass computes it once, for the first.
    std::vector<std::size_t> first_of(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& in = inputs[i];
        if (!in.defined() || !in.requires_grad())
            throw std::invalid_argument("grad: input " + std::to_string(i) + " " + describe(in) +
                                        " does not require grad, so no gradient can be computed for it");
        auto& targets = in.grad_fn() ? task.node_targets : task.leaf_targets;
        const void* key = in.grad_fn() ? static_cast<const void*>(in.grad_fn().get()) : static_cast<const void*>(in.impl());
        first_of[i] = targets.emplace(key, i).first->second;
    }
    CommitJournal unused;
    std::vector<Tensor> targets = run_graph(roots, task, inputs.size(), unused);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (first_of[i] != i) {
            targets[i] = targets[first_of[i]];
            continue;
        }
        if (!targets[i].defined() && !allow_unused)
            throw std::invalid_argument("grad: input " + std::to_string(i) + " " + describe(inputs[i]) +
                                        " was not used to compute the outputs; pass allow_unused=true if that is expected");
        if (targets[i].defined() && targets[i].shape() != inputs[i].shape()) {
            const GradModeGuard grad_mode(create_graph);
            targets[i] = create_graph ? sum_to_recorded(targets[i], inputs[i].shape()) : sum_to(targets[i], inputs[i].shape());
        }
    }
    return targets;
}

}  // namespace tapegrad
