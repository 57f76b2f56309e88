#pragma once
// Fusion as a rewrite of recorded ops (docs/architecture.md, "Fusion").
//
// An op that takes its input by rvalue (relu(batch_norm(x)), or nn::Sequential handing each
// layer's output to the next) may find that nobody else can ever read that input: the caller gave
// up its reference, no other tensor, view, saved tensor, consumer node or hook reaches it. The op
// may then overwrite the input's elements and replace the node that made it with a fused one on
// the same inputs, so that functional code gets the fused kernels with the values and gradients
// of the fused op. An input the caller still holds (`auto y = batch_norm(...); relu(y)`) is never
// rewritten: the ops run separately.
//
// The rewrites, each at its consumer's entry:
//   relu of batch_norm's result       -> batch_norm_relu's node   (relu_of_batch_norm, ops/batch_norm.cpp)
//   max_pool2d of relu's result       -> relu of max_pool2d       (max_pool2d(Tensor&&), ops/pooling.cpp)
#include <memory>

#include "engine/profiler.hpp"
#include "ops/detail/op.hpp"

namespace tapegrad::detail {

// Whether x, handed to an op by rvalue, can be rewritten: it has a node of its own (grad mode on),
// this reference is the only one to its TensorImpl, it is not a view and its storage has no other
// owner (no view, detach() or saved tensor of it), its node feeds no other op and has no hook,
// and anomaly mode is off (whose errors name the op that the user wrote). `node_owners`: how many
// owners of x's storage x's own node holds (1 for an op that saves its result, as relu does),
// which go with the node.
bool rewritable(const Tensor& x, long node_owners = 0);

// The definition that recorded x's node, when it is a Def; null otherwise. Valid while x's node is.
template <class Def>
const Def* producer(const Tensor& x) {
    if (!x.defined() || !x.grad_fn()) return nullptr;
    const std::shared_ptr<const SavedState> state = x.grad_fn()->info().saved_state.lock();
    const auto* found = dynamic_cast<const DefinitionState<Def>*>(state.get());
    return found ? &found->def : nullptr;
}

// x, whose elements the caller has already rewritten into def's result, recorded as def's result
// on the inputs of x's node, which is dropped. The fused definition has its own spec (backward),
// so create_graph and second derivatives go through it as through the op called directly.
template <class Def>
Tensor rerecord(Tensor&& x, Def def, Kernels kernels) {
    static_assert(differentiable<Def>, "a rewrite records a differentiable definition: its spec runs under create_graph");
    const std::shared_ptr<Node> old = x.grad_fn();
    auto state = std::make_shared<DefinitionState<Def>>(std::move(def));
    auto node = std::make_shared<Node>(Def::name, old->edges(),
                                       OpBackward<Def>{std::shared_ptr<const Def>(state, &state->def), kernels});
    node->info() = old->info();  // the output's shape and dtype, its scope, what was saved
    node->info().saved_state = state;
    note_recorded(Def::name);
    Tensor out = std::move(x);
    out.impl()->grad_fn = std::move(node);
    return out;
}

// relu(x) for x made by batch_norm on the fast float32 kernels and rewritable: relu in place on
// x's elements, as batch_norm_relu's forward clamps, and x recorded as batch_norm_relu's result.
// Undefined (and x untouched) where that does not apply.
Tensor relu_of_batch_norm(Tensor& x, const SourceLocation& loc);

// Whether x's node is relu's (which saves its result: one more owner of x's storage).
bool made_by_relu(const Tensor& x);

}  // namespace tapegrad::detail
