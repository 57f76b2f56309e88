#include "ops/detail/fusion.hpp"

namespace tapegrad::detail {

bool rewritable(const Tensor& x, long node_owners) {
    if (!x.defined() || !is_grad_enabled() || is_anomaly_enabled()) return false;
    const std::shared_ptr<TensorImpl>& impl = x.impl_ptr();
    const std::shared_ptr<Node>& node = impl->grad_fn;
    return node && !node->released() && impl.use_count() == 1 && !impl->is_view && impl->storage &&
           impl->storage.use_count() == 1 + node_owners && node.use_count() == 1 && !node->hooks();
}

}  // namespace tapegrad::detail
