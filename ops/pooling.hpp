#pragma once
// Pooling over [N,C,H,W]: max, average, and adaptive average (global average pooling is
// adaptive_avg_pool2d(x, 1)).
#include <optional>

#include "ops/conv.hpp"

namespace tapegrad {

struct Pool2dOptions {
    Pair kernel_size = 2;
    std::optional<Pair> stride = std::nullopt;  // defaults to kernel_size
    Pair padding = 0;
};

// Ties go to the first maximum in row-major window order, as in PyTorch; padding counts as -inf.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options, SourceLocation loc = SourceLocation::current());
// Padding counts as zeros in the average (PyTorch's count_include_pad=true).
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options);
// Output [N,C,OH,OW]; bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)).
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size);

}  // namespace tapegrad
