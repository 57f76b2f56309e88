#pragma once
// The engine's internals, shared by autograd.cpp (backward(), grad()), graph_task.cpp (one pass
// over the graph) and accumulate_grad.cpp (summing gradients, updating .grad()). Not an API.
//
// The pass follows PyTorch's engine (torch/csrc/autograd/engine.cpp): mark the nodes that lead to
// a wanted gradient, count each one's dependencies, then evaluate nodes from a ready queue (the
// highest sequence number first), validating the gradients each returns and summing them into
// the input buffers of the next nodes, or into the leaves.
#include <queue>
#include <unordered_map>
#include <vector>

#include "engine/autograd.hpp"

namespace tapegrad::detail {

// A gradient that starts a pass: one output of backward() or grad() and its grad_output.
struct Root {
    Edge edge;
    Tensor grad;
};

// The hooks registered on a leaf (kept with the other hook code, in node.cpp); null until one is.
std::shared_ptr<GradHooks> leaf_hooks(const TensorImpl& leaf);

// Adds g into `sum`, the gradient a tensor has received so far (PyTorch's InputBuffer): in place
// when grad mode is off and nothing else can see sum's memory; otherwise out of place through the
// add op, which records the sum when grad mode is on. Grad mode is on exactly when the backward is
// being recorded (create_graph): that, here, is the one place where create_graph changes how the
// engine computes. Takes g by value: a gradient moved in that nothing else holds can become the
// sum, or a leaf's .grad(), without a copy.
void accumulate(Tensor& sum, Tensor g);

// The .grad() updates of one backward pass, as PyTorch's AccumulateGrad makes them, and their
// undoing when the pass fails later. Passes in several threads may update the same leaves (one
// model, several workers): every update and every undo holds one process-wide lock, and an undo
// takes back this pass's own contribution only, keeping what other passes committed since.
class LeafJournal {
public:
    // .grad() += g, out of place: the previous .grad() stays intact, for the undo and for a graph
    // recorded by an earlier create_graph backward that may still read it.
    void commit(const std::shared_ptr<TensorImpl>& leaf, Tensor g);
    // Takes back every commit of this pass, newest first.
    void undo();

private:
    struct Commit {
        std::shared_ptr<TensorImpl> leaf;
        std::shared_ptr<TensorImpl> before;     // .grad() before this pass's commit
        std::shared_ptr<TensorImpl> committed;  // .grad() right after it
    };
    std::vector<Commit> commits_;
};

// One backward() or grad() call: the graph's traversal and everything it keeps while it runs.
class GraphTask {
public:
    struct Options {
        bool keep_graph = false;         // retain_graph: keep the saved tensors of every node run
        bool create_graph = false;       // record the backward pass itself
        bool accumulate_leaves = true;   // backward(): update .grad(); grad(): capture the targets
    };
    explicit GraphTask(Options options) : options_(options) {}

    // grad(): asks for the gradient of `input`, returned at `index` of execute()'s result. Returns
    // the index of an earlier request for the same tensor (one gradient computed for both), or
    // `index` itself.
    std::size_t capture(const Tensor& input, std::size_t index);

    // Runs the pass. backward(): if it fails, every .grad() it updated loses this pass's
    // contribution again, and the error propagates.
    std::vector<Tensor> execute(const std::vector<Root>& roots, std::size_t n_captured = 0);

private:
    // The gradient of one leaf while the pass runs; complete once `pending` (the gradients still to
    // arrive, from needed nodes or the roots) reaches zero.
    struct LeafBuffer {
        std::shared_ptr<TensorImpl> impl;
        Tensor grad;
        int64_t pending = 0;
    };
    struct LaterSequenceFirst {
        bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
    };

    // The phases, in order.
    void mark_needed(const std::vector<Root>& roots);
    void compute_dependencies(const std::vector<Root>& roots);
    void evaluate_function(Node& node);
    std::vector<Tensor> call_function(Node& node, const Tensor& grad_output, const GradMask& mask);
    void validate_outputs(const Node& node, std::vector<Tensor>& grads, const GradMask& mask) const;
    void check_anomaly(const Node& node, const std::vector<Tensor>& grads, const GradMask& mask) const;
    // Where a gradient goes: into the input buffer of the node at the other end of the edge, which
    // is ready once every gradient it waits for has arrived, or into a leaf's.
    void route(const Edge& edge, Tensor grad);
    void add_to_node(Node& node, Tensor grad);
    void add_to_leaf(const Edge& edge, Tensor grad);
    void leaf_done(LeafBuffer& leaf);

    // Whether the gradient along `edge` is wanted: its node is needed, or its leaf is one that
    // backward() updates or grad() returns.
    bool wanted(const Edge& edge) const;
    GradMask needed_inputs(const Node& node) const;

    Options options_;
    std::unordered_map<const TensorImpl*, std::size_t> leaf_targets_;  // grad(): a leaf -> its result index
    std::unordered_map<const Node*, std::size_t> node_targets_;        // grad(): a non-leaf's node -> its result index
    std::unordered_map<const Node*, bool> needed_;              // every node below the roots: does it lead to a wanted gradient
    std::unordered_map<const Node*, int64_t> dependencies_;     // needed nodes: gradients still to arrive
    std::unordered_map<const Node*, Tensor> input_buffers_;     // needed nodes: the gradient of their output so far
    std::unordered_map<const TensorImpl*, LeafBuffer> leaves_;  // wanted leaves
    std::priority_queue<Node*, std::vector<Node*>, LaterSequenceFirst> ready_;
    std::vector<Tensor> captured_;
    LeafJournal journal_;
};

}  // namespace tapegrad::detail
