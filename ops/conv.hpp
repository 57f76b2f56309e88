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

// PyTorch's padding='same' (the output keeps the input's size; stride 1 only; an odd total puts
// the extra row and column at the bottom and right) and padding='valid' (no padding).
enum class PaddingKind : uint8_t { Explicit, Same, Valid };
inline constexpr PaddingKind kSame = PaddingKind::Same;
inline constexpr PaddingKind kValid = PaddingKind::Valid;

// A padding Pair, or 'same'/'valid': {.padding = 1}, {.padding = {1, 2}}, {.padding = tg::kSame}.
struct ConvPadding : Pair {
    PaddingKind kind = PaddingKind::Explicit;
    ConvPadding(int64_t both) : Pair(both) {}                 // NOLINT: implicit, as Pair
    ConvPadding(int64_t h_, int64_t w_) : Pair(h_, w_) {}
    ConvPadding(Pair p) : Pair(p) {}                          // NOLINT
    ConvPadding(PaddingKind k) : Pair(0), kind(k) {}          // NOLINT
};

struct Conv2dOptions {
    Pair stride = 1;
    ConvPadding padding = 0;
    Pair dilation = 1;
    int64_t groups = 1;
};

// x [N,C,H,W], weight [F,C/groups,KH,KW], bias [F] or undefined. Output [N,F,OH,OW] with
// OH = floor((H + 2p - d(KH-1) - 1)/s) + 1. float32 runs on oneDNN (the output is channels-last in
// memory); float64, or ReferenceKernelsGuard, runs the naive reference kernel.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dOptions& options = {},
              SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
