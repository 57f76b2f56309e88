#pragma once
// The sizes and settings of one 2-D convolution, resolved and checked once by the op
// (ops/conv.cpp) and shared by the reference and the oneDNN kernels.
#include <cstdint>

#include "engine/tensor.hpp"

namespace tapegrad::kernels {

struct ConvGeometry {
    int64_t N, C, H, W;  // input [N,C,H,W]
    int64_t F, KH, KW;   // weight [F, C/groups, KH, KW]
    int64_t OH, OW;      // output [N,F,OH,OW]
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dilation_h, dilation_w;
    int64_t groups;

    int64_t channels_per_group() const { return C / groups; }
    int64_t filters_per_group() const { return F / groups; }
    Shape input_shape() const { return {N, C, H, W}; }
    Shape weight_shape() const { return {F, C / groups, KH, KW}; }
    Shape output_shape() const { return {N, F, OH, OW}; }
};

// A convolution's weight gradient, and its bias gradient when asked for.
struct ConvWeightGrads {
    Tensor weight;  // [F,C/groups,KH,KW], row-major
    Tensor bias;    // [F], only when asked for
};

}  // namespace tapegrad::kernels
