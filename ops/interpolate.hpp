#pragma once
// Resizing images, as PyTorch's F.interpolate over [N,C,H,W].
#include <optional>

#include "ops/conv.hpp"

namespace tapegrad {

enum class InterpolateMode { Nearest, Bilinear };

struct InterpolateOptions {
    std::optional<Pair> size = std::nullopt;           // the output's {H, W}; or
    std::optional<double> scale_factor = std::nullopt;  // output = floor(input * scale_factor)
    InterpolateMode mode = InterpolateMode::Nearest;
    // Bilinear only: corners of input and output are aligned (sample at o (in-1)/(out-1)) instead
    // of pixel centres (sample at (o + 1/2) in/out - 1/2).
    bool align_corners = false;
};

// Nearest reads input floor(o * scale); bilinear mixes the two nearest rows and columns. scale is
// in/out for a given size and 1/scale_factor for a given scale_factor, as in PyTorch.
Tensor interpolate(const Tensor& x, const InterpolateOptions& options);

}  // namespace tapegrad
