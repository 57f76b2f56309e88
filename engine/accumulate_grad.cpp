// How gradients are summed: into the buffer of a tensor reached along several edges, and into a
// leaf's .grad() (with the journal that takes a failed pass's contribution back out).
#include <mutex>

#include "engine/graph_task.hpp"
#include "engine/tensor_math.hpp"
#include "ops/arithmetic.hpp"
#include "ops/view.hpp"

namespace tapegrad::detail {

namespace {

// Every .grad() is read and updated under this lock, by commits and undos alike, so that passes
// in several threads lose none of each other's updates.
std::mutex g_leaf_grad_mutex;

// Whether a gradient buffer may be reused as it is (added into, or kept as a .grad()): only when
// grad mode is off, since a write in place cannot be recorded, and nothing else can see its
// memory. Gradients are often shared (add's backward hands one tensor to both inputs) or alias
// saved tensors.
bool can_reuse(const Tensor& buffer) {
    return !is_grad_enabled() && buffer.impl_ptr().use_count() == 1 && buffer.impl()->storage.use_count() == 1 &&
           is_dense(buffer);
}

// The layout a leaf's .grad() gets: the leaf's memory format where the leaf is dense in it,
// row-major otherwise.
MemoryFormat leaf_layout(const Tensor& leaf) {
    const MemoryFormat format = leaf.suggest_memory_format();
    return leaf.is_contiguous(format) ? format : MemoryFormat::Contiguous;
}

}  // namespace

void accumulate(Tensor& sum, Tensor g) {
    if (!sum.defined()) {
        sum = std::move(g);
        return;
    }
    if (can_reuse(sum)) add_into(sum, g);
    else sum = add(sum, g);
}

void LeafJournal::commit(const std::shared_ptr<TensorImpl>& leaf, Tensor g) {
    const std::lock_guard<std::mutex> lock(g_leaf_grad_mutex);
    std::shared_ptr<TensorImpl> before = leaf->grad;
    // g becomes the leaf's own buffer: reused only when nothing else holds it (PyTorch's
    // AccumulateGrad steals it then), else a copy, recorded under create_graph so that .grad() is
    // a differentiable function of the parameters. A first gradient takes the leaf's layout
    // (PyTorch's layout contract): a channels-last parameter gets a channels-last .grad().
    const MemoryFormat layout = leaf_layout(Tensor(leaf));
    if (before) accumulate(g, Tensor(before));
    else if (!g.is_contiguous(layout)) g = contiguous(g, layout);
    else if (!can_reuse(g)) g = clone(g);
    commits_.push_back({leaf, std::move(before), g.impl_ptr()});
    leaf->grad = g.impl_ptr();
}

void LeafJournal::undo() {
    const std::lock_guard<std::mutex> lock(g_leaf_grad_mutex);
    for (auto c = commits_.rbegin(); c != commits_.rend(); ++c) {
        std::shared_ptr<TensorImpl>& grad = c->leaf->grad;
        if (grad == c->committed) {
            grad = c->before;  // nothing was committed since: back to the exact previous value
        } else if (grad) {
            // Other passes committed since, out of place, on top of ours: `committed` still holds
            // before + this pass's gradient, so this pass's share is committed - before. (A .grad()
            // reset meanwhile, by zero_grad(), dropped this pass's share already.)
            Tensor without = sub(Tensor(grad), Tensor(c->committed));
            if (c->before) without = add(without, Tensor(c->before));
            grad = without.impl_ptr();
        }
    }
    commits_.clear();
}

}  // namespace tapegrad::detail
