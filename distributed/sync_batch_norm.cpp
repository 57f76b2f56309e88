#include "distributed/sync_batch_norm.hpp"

#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "ops/activation.hpp"

namespace tapegrad::distributed {

Tensor all_reduce_sum(const Tensor& x, const ProcessGroup& group, Channel channel) {
    Tensor out = x.detach().clone();
    group.all_reduce_sum(out, channel);
    return record("all_reduce_sum", out, {x}, [&group, channel](const Tensor& grad_output, const GradMask&) {
        Tensor g = grad_output.clone();
        group.all_reduce_sum(g, channel);
        return std::vector<Tensor>{g};
    });
}

SyncBatchNorm::SyncBatchNorm(int64_t num_features, nn::BatchNormConfig config, const ProcessGroup& group)
    : BatchNorm("SyncBatchNorm", 4, num_features, config), group_(group) {}

Tensor SyncBatchNorm::forward(const Tensor& x) {
    if (!is_training() || group_.size() == 1) return BatchNorm::forward(x);
    if (x.dim() != 4)
        throw std::invalid_argument("SyncBatchNorm: expected a 4-D input [N,C,H,W], got " + describe(x));
    const int64_t channels = x.shape()[1];
    std::vector<double> count{static_cast<double>(x.numel() / channels)};
    group_.all_reduce_sum(count, Channel::BatchNorm);
    const double total = count[0];
    if (total < 2)
        throw std::invalid_argument("SyncBatchNorm: expected more than 1 value per channel over all ranks, got " +
                                    describe(x) + " on " + describe_rank(group_));
    // Two passes, as the single-process kernel: the mean first, then the squared deviations from
    // it, which stays accurate where sum(x^2)/n - mean^2 would cancel.
    const std::vector<int64_t> axes{0, 2, 3};
    const Tensor mean = all_reduce_sum(x.sum(axes, true), group_, Channel::BatchNorm) / total;  // [1,C,1,1]
    const Tensor centred = x - mean;
    const Tensor var = all_reduce_sum((centred * centred).sum(axes, true), group_, Channel::BatchNorm) / total;  // biased
    Tensor y = centred * pow(var + config.eps, -0.5);
    if (config.affine) y = y * weight.view({1, channels, 1, 1}) + bias.view({1, channels, 1, 1});
    if (config.track_running_stats) {
        NoGradGuard no_grad;
        const double m = next_batch_momentum();
        // PyTorch's update: the unbiased variance of all ranks' values together.
        copy_into(running_mean, running_mean * (1 - m) + mean.detach().view({channels}) * m);
        copy_into(running_var, running_var * (1 - m) + var.detach().view({channels}) * (m * total / (total - 1)));
        count_batch();
    }
    return y;
}

}  // namespace tapegrad::distributed
