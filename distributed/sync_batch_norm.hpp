#pragma once
// SyncBatchNorm: batch normalisation whose training-mode statistics cover the batches of every
// rank, as PyTorch's torch.nn.SyncBatchNorm. With it, N ranks of batch B normalise exactly as one
// process with batch N*B would; the default BatchNorm2d normalises each rank's batch on its own
// (PyTorch's default under DistributedDataParallel).
//
// It has BatchNorm2d's parameters and buffers under the same names, so checkpoints move freely
// between the two. Cost: in forward, two blocking all-reduces of C values per layer (the sum,
// then the sum of squared deviations) plus one of the element count; in backward, the same two
// all-reduces of C values for their gradients. In eval mode, or in a world of one, it is
// BatchNorm2d. Its collectives travel on Channel::BatchNorm, apart from the wrapper's gradient
// buckets: backward interleaves the two, in an order that may differ between ranks.
#include "distributed/process_group.hpp"
#include "nn/layers.hpp"

namespace tapegrad::distributed {

class SyncBatchNorm : public nn::BatchNorm {
public:
    explicit SyncBatchNorm(int64_t num_features, nn::BatchNormConfig config = {},
                           const ProcessGroup& group = ProcessGroup::world());
    // x: [N,C,H,W] (any layout). Every rank must call it in the same order (it is a collective).
    Tensor forward(const Tensor& x) override;

private:
    const ProcessGroup& group_;
};

// The sum of x over the ranks, differentiable: the gradient of each rank's x is the sum of the
// ranks' output gradients. Collective: every rank must call it, and its backward, in step.
// SyncBatchNorm uses it on Channel::BatchNorm.
Tensor all_reduce_sum(const Tensor& x, const ProcessGroup& group, Channel channel = Channel::User);

}  // namespace tapegrad::distributed
