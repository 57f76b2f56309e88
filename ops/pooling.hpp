#pragma once
// Pooling over [N,C,H,W] (or one unbatched image [C,H,W], as PyTorch takes it): max (with the
// indices of the maxima, and their inverse max_unpool2d), average, and adaptive average (global
// average pooling is adaptive_avg_pool2d(x, 1)).
#include <optional>
#include <tuple>

#include "ops/conv.hpp"

namespace tapegrad {

// torch.nn.functional's max_pool2d and avg_pool2d arguments, with PyTorch's defaults.
struct Pool2dOptions {
    Pair kernel_size = 2;
    std::optional<Pair> stride = std::nullopt;  // defaults to kernel_size
    Pair padding = 0;                           // at most half the kernel size
    Pair dilation = 1;                          // max_pool2d only
    // Output size rounded up instead of down, but the last window must start inside the input
    // or its left padding: H' = ceil((H + 2p − d(k−1) − 1)/s) + 1, less one if (H'−1)s ≥ H + p.
    bool ceil_mode = false;
    bool count_include_pad = true;                   // avg_pool2d only: padding counts in the divisor
    std::optional<int64_t> divisor_override = std::nullopt;  // avg_pool2d only: divide by this instead (nonzero)
};

// Ties go to the first maximum in row-major window order, as in PyTorch; padding counts as -inf.
// A dilated window must hold at least one input element (PyTorch would return -inf there).
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options, SourceLocation loc = SourceLocation::current());
// libtorch's positional form, torch::max_pool2d(x, 2) or (x, 3, 2, 1): the same op. A braced pair
// ({2, 2}) is ambiguous with the options; write tg::Pair(2, 2).
Tensor max_pool2d(const Tensor& x, Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = 0, Pair dilation = 1,
                  bool ceil_mode = false, SourceLocation loc = SourceLocation::current());
// max_pool2d of a result the caller gives up: where it is relu's and nobody else can read it, it
// runs as relu of max_pool2d (the two commute exactly), so relu's backward and its saved result
// cover the pooled elements only (docs/architecture.md, "Fusion").
Tensor max_pool2d(Tensor&& x, const Pool2dOptions& options, SourceLocation loc = SourceLocation::current());
// PyTorch's return_indices=True: the output and, for each output element, the flat position
// h*W + w of its maximum inside its own input plane (int64, the output's shape and layout).
// The indices carry no gradient.
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const Pool2dOptions& options,
                                                   SourceLocation loc = SourceLocation::current());
// Padding counts as zeros; the divisor is the window clipped to the padded input
// (count_include_pad, the default), or to the input, or divisor_override.
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options, SourceLocation loc = SourceLocation::current());
// Output [N,C,OH,OW]; bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)).
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size, SourceLocation loc = SourceLocation::current());

struct MaxUnpool2dOptions {
    Pair kernel_size = 2;
    std::optional<Pair> stride = std::nullopt;  // defaults to kernel_size
    Pair padding = 0;
    // (H', W') of the output; by default ((H − 1)s − 2p + k, likewise W). Given, it must lie
    // strictly within the stride of the default, as in PyTorch (for max_pool2d's input size).
    std::optional<Pair> output_size = std::nullopt;
};

// The inverse of max_pool2d_with_indices: zeros of [N,C,H',W'] with out[n,c].flat[indices[n,c,i,j]]
// = x[n,c,i,j] (a repeated index keeps the last value, as PyTorch's CPU kernel). indices: int64,
// x's shape, each in [0, H'W').
Tensor max_unpool2d(const Tensor& x, const Tensor& indices, const MaxUnpool2dOptions& options,
                    SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
