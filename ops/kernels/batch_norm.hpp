#pragma once
// Batch-norm kernels. Per-channel statistics and coefficients are kept in double for both dtypes.
//
// Reference (any dtype, any strides, 2-D [N,C] or 4-D [N,C,H,W]): loops over n,c,h,w written
// straight from the derivation. Fast (float32, dense): two passes each way, over one of two
// layouts: "planes" (row-major [N,C,H,W]: H*W contiguous per channel) or "channels inner"
// (channels-last, and [N,C]: C contiguous per row, vectorised over C).
#include <optional>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad::kernels {

struct ChannelStats {
    std::vector<double> mean;
    std::vector<double> var;  // biased (divided by the count)
};

// ---- reference
template <class T>
ChannelStats batch_norm_stats_reference(const Tensor& x);
// y = (x - mean) * invstd * w + b; weight and bias may be undefined. y is row-major.
template <class T>
Tensor batch_norm_forward_reference(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& invstd,
                                    const Tensor& weight, const Tensor& bias);
// Training: dx = w invstd / M (M dxhat - sum dxhat - xhat sum(dxhat xhat)) with dxhat = g w;
// eval (the statistics are constants): dx = g w invstd. dweight = sum g xhat, dbias = sum g.
// Returns {dx, dweight, dbias}; dweight and dbias are [C] (computed even without a weight).
template <class T>
std::vector<Tensor> batch_norm_backward_reference(const Tensor& g, const Tensor& x, const std::vector<double>& mean,
                                                  const std::vector<double>& invstd, const Tensor& weight, bool training);

// ---- fast, float32
ChannelStats batch_norm_stats_fast(const Tensor& x);
// With `relu`, the output is relu(y), in the same pass.
Tensor batch_norm_forward_fast(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& invstd,
                               const Tensor& weight, const Tensor& bias, bool relu = false);
// With `relu_bias` (the forward's bias, possibly undefined), the gradient of relu(batch_norm(x)):
// g is masked where the forward's output, recomputed from x, was not positive, inside both passes.
std::vector<Tensor> batch_norm_backward_fast(const Tensor& g, const Tensor& x, const std::vector<double>& mean,
                                             const std::vector<double>& invstd, const Tensor& weight, bool training,
                                             const std::optional<Tensor>& relu_bias = std::nullopt);

}  // namespace tapegrad::kernels
