#pragma once
// 2-D convolution (cross-correlation, as in PyTorch).
#include <array>

#include "engine/tensor.hpp"

namespace tapegrad {

// Per-axis settings, {height, width}. A single number sets both: {.stride = 2, .padding = 1}.
struct Pair {
    int64_t h, w;
    Pair(int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose, as in PyTorch
    Pair(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

struct Conv2dOptions {
    Pair stride = 1;
    Pair padding = 0;
    Pair dilation = 1;
    int64_t groups = 1;
};

// x [N,C,H,W], weight [F,C/groups,KH,KW], bias [F] or undefined. Output [N,F,OH,OW] with
// OH = floor((H + 2p - d(KH-1) - 1)/s) + 1. float32 runs on oneDNN (the output is channels-last in
// memory); float64, or ReferenceKernelsGuard, runs the naive reference kernel.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dOptions& options = {},
              std::source_location loc = std::source_location::current());

}  // namespace tapegrad
