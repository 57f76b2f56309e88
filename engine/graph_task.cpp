#include "engine/graph_task.hpp"

#include <cmath>
#include <optional>

#include "engine/profiler.hpp"
#include "engine/tensor_math.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad::detail {

namespace {

bool has_non_finite(const Tensor& t) {
    return dispatch(t.dtype(), [&]<class T>() {
        for (T v : t.to_vector<T>())
            if (!std::isfinite(v)) return true;
        return false;
    });
}

// g summed over the dimensions along which `shape` was broadcast to g's shape, as PyTorch's
// at::sum_to: the sum and view ops, so that the reduction is recorded when grad mode is on.
Tensor sum_to(const Tensor& g, const Shape& shape) {
    const std::size_t lead = g.dim() - shape.size();
    std::vector<int64_t> axes;
    for (std::size_t d = 0; d < g.dim(); ++d)
        if (d < lead || (shape[d - lead] == 1 && g.shape()[d] != 1)) axes.push_back(static_cast<int64_t>(d));
    const Tensor kept = sum(g, axes, /*keepdim=*/true);
    return kept.shape() == shape ? kept : reshape(kept, shape);
}

// Runs a tensor's gradient hooks in order (PyTorch's tensor pre-hooks); a hook that throws is
// reported with the tensor.
Tensor call_tensor_hooks(const std::shared_ptr<GradHooks>& hooks, Tensor g, const std::function<std::string()>& whose) {
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

void call_post_accumulate_hooks(const std::shared_ptr<TensorImpl>& impl) {
    const std::shared_ptr<GradHooks> hooks = leaf_hooks(*impl);
    if (!hooks) return;
    const Tensor leaf(impl);
    for (const PostAccumulateGradHook& hook : hooks->post_accumulate->snapshot()) {
        try {
            hook(leaf);
        } catch (const std::exception& e) {
            throw HookError("backward: a post-accumulate-grad hook registered on the leaf tensor " + describe(leaf) +
                            " threw: " + e.what());
        }
    }
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

}  // namespace

std::size_t GraphTask::capture(const Tensor& input, std::size_t index) {
    if (input.grad_fn()) return node_targets_.emplace(input.grad_fn().get(), index).first->second;
    return leaf_targets_.emplace(input.impl(), index).first->second;
}

std::vector<Tensor> GraphTask::execute(const std::vector<Root>& roots, std::size_t n_captured) {
    captured_.assign(n_captured, Tensor());
    // Closures run with grad mode off (plain kernels), or on when the backward is recorded.
    const GradModeGuard grad_mode(options_.create_graph);
    try {
        mark_needed(roots);
        compute_dependencies(roots);
        for (const Root& root : roots)
            if (wanted(root.edge)) route(root.edge, root.grad);
        while (!ready_.empty()) {
            Node* node = ready_.top();
            ready_.pop();
            evaluate_function(*node);
        }
    } catch (...) {
        journal_.undo();
        throw;
    }
    return std::move(captured_);
}

bool GraphTask::wanted(const Edge& edge) const {
    if (edge.node) {
        const auto it = needed_.find(edge.node.get());
        return it != needed_.end() && it->second;
    }
    if (!edge.leaf) return false;
    return options_.accumulate_leaves ? edge.leaf->requires_grad : leaf_targets_.count(edge.leaf.get()) > 0;
}

// Which nodes lead to a wanted gradient: an iterative post-order walk (PyTorch's init_to_execute).
// One root at a time: a node already in `needed_` is then either finished or an ancestor on the
// stack, which in an acyclic graph cannot be reached again. Pushing every root first would let a
// later root finish early, reading an unfinished earlier root as not needed.
void GraphTask::mark_needed(const std::vector<Root>& roots) {
    std::vector<std::pair<Node*, std::size_t>> stack;  // a node and its next edge to visit
    for (const Root& root : roots) {
        if (!root.edge.node || needed_.count(root.edge.node.get())) continue;
        needed_[root.edge.node.get()] = false;
        stack.emplace_back(root.edge.node.get(), 0);
        while (!stack.empty()) {
            auto& [node, next] = stack.back();
            if (next < node->edges().size()) {
                const Edge& e = node->edges()[next++];
                if (e.node && needed_.emplace(e.node.get(), false).second) stack.emplace_back(e.node.get(), 0);
                continue;
            }
            bool needed = node_targets_.count(node) > 0;
            for (const Edge& e : node->edges()) needed = needed || wanted(e);
            needed_[node] = needed;
            stack.pop_back();
        }
    }
}

// How many gradients each needed node, and each wanted leaf, is still to receive: one per edge
// into it from a needed node or from the roots (which act as PyTorch's GraphRoot node).
void GraphTask::compute_dependencies(const std::vector<Root>& roots) {
    auto count = [&](const Edge& e) {
        if (!wanted(e)) return;
        if (e.node) {
            ++dependencies_[e.node.get()];
            return;
        }
        LeafBuffer& leaf = leaves_[e.leaf.get()];
        if (!leaf.impl) leaf.impl = e.leaf;
        ++leaf.pending;
    };
    for (const auto& [node, needed] : needed_)
        if (needed)
            for (const Edge& e : node->edges()) count(e);
    for (const Root& root : roots) count(root.edge);
}

void GraphTask::route(const Edge& edge, Tensor grad) {
    if (edge.leaf) add_to_leaf(edge, std::move(grad));
    else add_to_node(*edge.node, std::move(grad));
}

void GraphTask::add_to_node(Node& node, Tensor grad) {
    if (grad.defined()) accumulate(input_buffers_[&node], std::move(grad));
    if (--dependencies_[&node] == 0) ready_.push(&node);
}

void GraphTask::add_to_leaf(const Edge& edge, Tensor grad) {
    LeafBuffer& leaf = leaves_.at(edge.leaf.get());
    if (grad.defined()) accumulate(leaf.grad, std::move(grad));
    if (--leaf.pending == 0) leaf_done(leaf);
}

// A leaf's gradient is final: its hooks run, then it is committed to .grad() (backward(), whose
// post-accumulate hooks then run) or captured (grad()).
void GraphTask::leaf_done(LeafBuffer& leaf) {
    if (!leaf.grad.defined()) return;
    Tensor g = call_tensor_hooks(leaf_hooks(*leaf.impl), std::move(leaf.grad),
                                 [&] { return "the leaf tensor " + describe(Tensor(leaf.impl)); });
    if (!options_.accumulate_leaves) {
        captured_[leaf_targets_.at(leaf.impl.get())] = std::move(g);
        return;
    }
    journal_.commit(leaf.impl, std::move(g));
    call_post_accumulate_hooks(leaf.impl);
}

void GraphTask::evaluate_function(Node& node) {
    Tensor grad_output;
    if (auto it = input_buffers_.find(&node); it != input_buffers_.end()) {
        grad_output = std::move(it->second);
        input_buffers_.erase(it);
    }
    if (grad_output.defined()) {
        // Backward closures may rely on a dense grad_output (row-major or channels-last).
        if (!is_dense(grad_output)) grad_output = contiguous(grad_output);
        grad_output = call_tensor_hooks(node.hooks(), std::move(grad_output), [&] {
            return "the output of '" + node.name() + "' " + to_string(node.info().output_shape) + " " +
                   dtype_name(node.info().output_dtype) + node.info().origin.describe(node.name());
        });
    }
    if (auto it = node_targets_.find(&node); it != node_targets_.end()) captured_[it->second] = grad_output;

    const GradMask mask = needed_inputs(node);
    std::vector<Tensor> grads;
    if (mask.any() && grad_output.defined()) grads = call_function(node, grad_output, mask);
    if (!options_.keep_graph) node.release();
    if (is_anomaly_enabled()) check_anomaly(node, grads, mask);

    const auto& edges = node.edges();
    for (std::size_t i = 0; i < edges.size(); ++i)
        if (mask[i]) route(edges[i], i < grads.size() ? std::move(grads[i]) : Tensor());
}

GradMask GraphTask::needed_inputs(const Node& node) const {
    GradMask mask(node.edges().size());
    for (std::size_t i = 0; i < node.edges().size(); ++i)
        if (wanted(node.edges()[i])) mask.set(i);
    return mask;
}

std::vector<Tensor> GraphTask::call_function(Node& node, const Tensor& grad_output, const GradMask& mask) {
    std::vector<Tensor> grads;
    try {
        std::optional<BackwardSpan> span;
        if (profiling()) span.emplace(node);
        grads = node.apply(grad_output, mask);
    } catch (...) {
        rethrow_with_origin(node);
    }
    validate_outputs(node, grads, mask);
    return grads;
}

// One gradient per input, each of its input's dtype, and of its shape once summed down from a
// broadcast (PyTorch's validate_outputs).
void GraphTask::validate_outputs(const Node& node, std::vector<Tensor>& grads, const GradMask& mask) const {
    const auto& edges = node.edges();
    if (grads.size() != edges.size())
        throw std::logic_error("backward: '" + node.name() + "' returned " + std::to_string(grads.size()) +
                               " gradients for " + std::to_string(edges.size()) + " inputs");
    for (std::size_t i = 0; i < edges.size(); ++i) {
        Tensor& g = grads[i];
        const Edge& edge = edges[i];
        if (!mask[i] || !g.defined()) continue;
        if (g.dtype() != edge.dtype)
            throw std::logic_error("backward: '" + node.name() + "' returned a " + dtype_name(g.dtype()) +
                                   " gradient for a " + dtype_name(edge.dtype) + " input " + std::to_string(i) +
                                   node.info().origin.describe(node.name()));
        if (g.shape() == edge.shape) continue;
        if (!is_expandable_to(edge.shape, g.shape()))
            throw std::logic_error("backward: '" + node.name() + "' returned a gradient of shape " + to_string(g.shape()) +
                                   " for input " + std::to_string(i) + " of shape " + to_string(edge.shape) +
                                   node.info().origin.describe(node.name()));
        g = sum_to(g, edge.shape);
    }
}

// Anomaly mode, as PyTorch's detect_anomaly: every gradient a node returns must be finite.
void GraphTask::check_anomaly(const Node& node, const std::vector<Tensor>& grads, const GradMask& mask) const {
    for (std::size_t i = 0; i < grads.size(); ++i)
        if (mask[i] && grads[i].defined() && has_non_finite(grads[i]))
            throw AnomalyError("anomaly: the backward of '" + node.name() + "' produced NaN or Inf in the gradient of input " +
                               std::to_string(i) + " " + describe(grads[i]) + node.info().origin.describe(node.name()));
}

}  // namespace tapegrad::detail
