#pragma once
// The tape. Each differentiable op that runs with grad mode on records a Node: the edges to its
// inputs and a backward closure that owns what the op saved. backward() walks the nodes that lead
// from the outputs to the leaves in dependency order, iteratively, summing the gradients of
// every tensor reached along several edges.
#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

// Which inputs of a node need a gradient; a backward closure may skip the others (conv2d skips
// dW for a frozen layer, dX for the first layer).
class GradMask {
public:
    explicit GradMask(std::size_t n = 0);
    void set(std::size_t i);
    bool operator[](std::size_t i) const;
    std::size_t size() const { return n_; }
    bool any() const;

private:
    std::size_t n_ = 0;
    uint64_t small_ = 0;
    std::vector<uint64_t> large_;
};

// Where a gradient goes: the node that made an input, or the input itself when it is a leaf.
// It remembers the input's shape, so that broadcast gradients are reduced in one place.
struct Edge {
    std::shared_ptr<Node> node;
    std::shared_ptr<TensorImpl> leaf;
    Shape shape;
    DType dtype = kFloat32;
    bool valid() const { return node != nullptr || leaf != nullptr; }
};

// What a node saved for its backward: shape, dtype and the bytes of the storage it keeps alive.
struct SavedTensorInfo {
    Shape shape;
    DType dtype = kFloat32;
    std::size_t bytes = 0;
};

// A tensor an op keeps for its backward, with the version its storage had when it was saved.
// unpack() refuses it once an in-place write has changed it, so a backward never computes with
// values the forward did not see. `tracked` is the tensor whose writes matter, when the op saved a
// private copy of it (a layout change): PyTorch would have saved the tensor itself, and refuses
// the same programs.
//
// For second-order gradients (create_graph), unpack() with grad mode on returns the tensor with
// its history: a saved input comes back attached to the node that made it (or as the leaf
// itself), a saved output (SavedTensor::output) attached to the node whose backward is running.
// Only weak references are kept: an input's node is owned by the consumer's edges anyway, and a
// node must never own itself through its output. With grad mode off unpack() returns the
// detached value, as before, at no extra cost.
class SavedTensor {
public:
    SavedTensor() = default;
    SavedTensor(const Tensor& value) : SavedTensor(value, value) {}  // NOLINT: saving is the common case
    SavedTensor(const Tensor& value, const Tensor& tracked);
    // Keeps nothing but the version of `t`: for ops that need none of t's values but whose
    // gradient assumes t unchanged (a view's backward assumes its base was not written since).
    static SavedTensor version_of(const Tensor& t) { return SavedTensor(Tensor(), t); }
    // The output of the op being recorded: its history is the op's own node, known only when
    // that node's backward runs.
    static SavedTensor output(const Tensor& out);

    bool defined() const { return value_.defined(); }
    // Shape, dtype and bytes of what it keeps; nullopt when it keeps only a version (version_of).
    std::optional<SavedTensorInfo> info() const;
    // The saved tensor (with its history when grad mode is on); throws SavedTensorModified when
    // it was written in place since.
    Tensor unpack() const;
    // Only the version check, for version_of().
    void check() const;

private:
    Tensor value_;  // detached
    std::weak_ptr<Storage> tracked_;
    uint64_t version_ = 0;
    std::weak_ptr<Node> grad_fn_;       // the node that made the saved input
    std::weak_ptr<TensorImpl> leaf_;    // or the saved input itself, a leaf that requires grad
    bool is_output_ = false;
};

// What unpack() throws; the engine adds the name of the node whose backward it was.
struct SavedTensorModified : std::invalid_argument {
    SavedTensorModified(const std::string& what, uint64_t saved, uint64_t now);
    uint64_t saved_version, current_version;
};

// Given the gradient of the node's output, returns one gradient per input (undefined when not
// needed or zero). Gradients may have a broadcast shape: the engine sums them down.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output, const GradMask& needs)>;

// Where the forward op ran: the scope (tg::NameScope) always; the call site (the user's file:line,
// through ops that take a SourceLocation and Module calls) in anomaly mode only.
struct NodeOrigin {
    std::string scope;
    const char* file = nullptr;
    uint32_t line = 0;
    // " (forward op 'conv2d' in scope 'block3', created at train.cpp:42)"; "" when nothing is known.
    std::string describe(const std::string& op) const;
};

// One member of what an op definition saved for its backward, by name: a tensor (max_pool2d's
// "argmax") or any other value (its "kernel_size", batch_norm's "eps").
struct SavedField {
    std::string name;
    std::string value;                      // a value that is not a tensor, as text: "{2,2}", "1e-05"
    std::optional<SavedTensorInfo> tensor;  // a saved tensor's shape, dtype and bytes
};

// The saved state of a node recorded from an op definition (ops/detail/op.hpp), listed on demand.
struct SavedState {
    virtual ~SavedState() = default;
    virtual std::vector<SavedField> fields() const = 0;
};

// What record() notes about the op besides its closure, for to_dot, anomaly errors and the profiler.
struct NodeInfo {
    Shape output_shape;
    DType output_dtype = kFloat32;
    std::vector<SavedTensorInfo> saved;
    // The op definition's saved state by name (run_op sets it; empty for ops recorded with a
    // closure); expires when backward frees the node's saved state.
    std::weak_ptr<const SavedState> saved_state;
    NodeOrigin origin;
    double forward_flops = 0;  // while profiling
};

class Node : public std::enable_shared_from_this<Node> {
public:
    Node(std::string name, std::vector<Edge> edges, BackwardFn fn);
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    // The forward op's name, as errors say it: "conv2d".
    const std::string& name() const { return name_; }
    // The node's name as PyTorch's grad_fn names it: "Conv2dBackward0" (to_dot, stack traces).
    std::string type_name() const;
    const std::vector<Edge>& edges() const { return edges_; }
    // Creation order, process-wide: among the nodes ready to run, backward runs the latest first,
    // as PyTorch does (a gradient reaching one tensor along several edges is summed in that order).
    uint64_t sequence_nr() const { return sequence_nr_; }
    bool released() const { return !fn_; }

    // Runs the closure; throws when the saved tensors were freed by an earlier backward.
    std::vector<Tensor> apply(const Tensor& grad_output, const GradMask& needs);
    // Frees the closure and everything it saved.
    void release();

    // Nodes alive in this process: zero once every graph has been dropped.
    static int64_t live_count();
    // The node whose closure this thread is running (null outside backward).
    static Node* current();

    const NodeInfo& info() const { return info_; }
    NodeInfo& info() { return info_; }
    // The hooks registered on the tensor this node made; null until one is.
    std::shared_ptr<GradHooks> hooks() const;
    std::shared_ptr<GradHooks> hooks_for_registration();

private:
    std::string name_;
    std::vector<Edge> edges_;
    BackwardFn fn_;
    uint64_t sequence_nr_;
    NodeInfo info_;
    std::shared_ptr<GradHooks> hooks_;
};

// ---- grad mode (thread-local)
bool is_grad_enabled();
void set_grad_enabled(bool enabled);

class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// Sets grad mode for a scope (PyTorch's torch.set_grad_enabled / AutoGradMode).
class GradModeGuard {
public:
    explicit GradModeGuard(bool enabled);
    ~GradModeGuard();
    GradModeGuard(const GradModeGuard&) = delete;
    GradModeGuard& operator=(const GradModeGuard&) = delete;

private:
    bool previous_;
};

// ---- anomaly mode (thread-local, off by default): as PyTorch's detect_anomaly, every gradient a
// node returns during backward is checked for NaN and Inf, and the error names the op and, for ops
// recorded in anomaly mode, the user's line that ran it. Forward outputs are not checked: they may
// hold Inf legitimately (the -inf of an attention mask before softmax).
struct AnomalyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
bool is_anomaly_enabled();
void set_anomaly_enabled(bool enabled);
class AnomalyModeGuard {
public:
    explicit AnomalyModeGuard(bool enabled = true);
    ~AnomalyModeGuard();
    AnomalyModeGuard(const AnomalyModeGuard&) = delete;
    AnomalyModeGuard& operator=(const AnomalyModeGuard&) = delete;

private:
    bool previous_;
};

// ---- recording ops
// True when grad mode is on and any input requires grad: only then is it worth saving tensors.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node to `out` when needs_grad(inputs); otherwise returns `out` untouched and drops
// `fn` with everything it saved. The closure must never capture `out` itself (that would be a
// cycle): capture SavedTensor::output(out) when the backward needs the output. The node lists the
// SavedTensors made on this thread since the last record() (shapes and bytes, for to_dot).
Tensor record(std::string op, Tensor out, std::initializer_list<Tensor> inputs, BackwardFn fn);
Tensor record(std::string op, Tensor out, const std::vector<Tensor>& inputs, BackwardFn fn);

// ---- running the tape
// Accumulates into the .grad() of every leaf that requires grad. Each output needs a grad_output
// unless it is a scalar. Without retain_graph, saved tensors are freed node by node as it goes.
// A leaf's .grad() is updated as soon as no pending node can add to it (its post-accumulate hooks
// run right then); if the pass then fails, every .grad() it updated loses this pass's contribution
// again, and keeps what passes in other threads added meanwhile (hooks that already ran are not
// undone). .grad() may be a new tensor after a backward that added into an existing gradient:
// read it after backward, do not keep it across.
// With create_graph, the backward pass is itself recorded (closures run with grad mode on, and
// gradients are summed out of place), so the gradients it produces, .grad() included, have
// history and can be differentiated again. As in PyTorch, retain_graph defaults to create_graph,
// and a .grad() recorded this way makes a reference cycle: it holds the graph that made it, which
// holds the leaf, which holds the .grad(). The graph lives (and LeakSanitizer reports it) until
// the .grad() is reset with zero_grad(); backward() warns about it on stderr, once per process.
// grad() with create_graph returns the gradients instead and makes no cycle: prefer it.
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false);

// Returns d(outputs)/d(inputs) without touching any .grad(). Inputs may be leaves or
// intermediate tensors. An input the outputs do not depend on gets an undefined tensor when
// allow_unused, else an error. With create_graph the returned gradients have history. PyTorch's
// argument order (torch.autograd.grad without only_inputs).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, std::optional<bool> retain_graph = std::nullopt,
                         bool create_graph = false, bool allow_unused = false);

// libtorch's torch::autograd::grad and torch::autograd::backward, with its argument order:
// tg::autograd::grad({out}, {x}, {g}, /*retain_graph=*/true, /*create_graph=*/true, /*allow_unused=*/false).
// engine/function.hpp adds Function and AutogradContext, so that `using namespace tg::autograd;` reads as in libtorch.
namespace autograd {
using tapegrad::backward;
using tapegrad::grad;
}  // namespace autograd

}  // namespace tapegrad
