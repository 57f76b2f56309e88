#pragma once
// Resizing images, as PyTorch's F.interpolate over [N,C,H,W].
#include <optional>

#include "ops/conv.hpp"

namespace tapegrad {

// Nearest: PyTorch's 'nearest' (reads floor(o s), OpenCV's INTER_NEAREST). NearestExact:
// 'nearest-exact' (reads floor((o + 1/2) s), the pixel whose centre is nearest, as Pillow and
// scipy.ndimage.zoom). Bilinear: mixes the two nearest rows and columns.
enum class InterpolateMode { Nearest, NearestExact, Bilinear };

struct InterpolateOptions {
    std::optional<Pair> size = std::nullopt;           // the output's {H, W}; or
    std::optional<double> scale_factor = std::nullopt;  // output = floor(input * scale_factor)
    InterpolateMode mode = InterpolateMode::Nearest;
    // Bilinear only: corners of input and output are aligned (sample at o (in-1)/(out-1)) instead
    // of pixel centres (sample at (o + 1/2) s - 1/2).
    bool align_corners = false;
    // With scale_factor: sample with s = in/out from the computed output size instead of
    // 1/scale_factor (PyTorch's recompute_scale_factor=True).
    bool recompute_scale_factor = false;
};

// The input coordinate per output pixel is s = 1/scale_factor when scale_factor is given, else
// in/out, rounded to float for the nearest modes and to x's dtype for bilinear, as in PyTorch.
// Nearest copies when a dimension keeps its size and reads o/2 when it doubles (PyTorch's
// nearest_idx); bilinear copies when a dimension keeps its size.
Tensor interpolate(const Tensor& x, const InterpolateOptions& options, SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
