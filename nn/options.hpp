#pragma once
// The layers' options as libtorch writes them: a constructor for the required arguments and one
// chainable setter per optional one, e.g. nn::Conv2d(nn::Conv2dOptions(1, 64, 4).stride(2).bias(false)).
// Each setter returns the options, and the same name without an argument reads the value back
// (options.stride()), as libtorch's TORCH_ARG.
//
// These are separate types from the functional ops' aggregates (tapegrad::Conv2dOptions,
// tapegrad::ConvTranspose2dOptions, tapegrad::Pool2dOptions), which keep their designated
// initialisers (Conv2dOptions{.stride = 2}): a struct cannot have both a field `stride` and a
// method `stride()`, and a constructor Conv2dOptions(1, 64, 4) would stop it being an aggregate.
// The module options name the layer's whole configuration (channels, kernel, bias) as libtorch's
// do; the op aggregates name only what the op takes.
#include <optional>

#include "engine/shape.hpp"
#include "nn/arg.hpp"
#include "ops/conv.hpp"
#include "ops/conv_transpose.hpp"
#include "ops/pooling.hpp"

namespace tapegrad::nn {

// PyTorch's padding_mode: what the padding holds (zeros, a mirror of the input, or its edge).
enum class PaddingMode { Zeros, Reflect, Replicate };

// nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
// bias=True, padding_mode='zeros').
class Conv2dOptions {
public:
    Conv2dOptions(int64_t in_channels, int64_t out_channels, Pair kernel_size)
        : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
    // The functional op's options: conv2d(x, weight, bias, options.conv()).
    tapegrad::Conv2dOptions conv() const { return {.stride = stride_, .padding = padding_, .dilation = dilation_, .groups = groups_}; }
    TAPEGRAD_ARG(int64_t, in_channels);
    TAPEGRAD_ARG(int64_t, out_channels);
    TAPEGRAD_ARG(Pair, kernel_size);
    TAPEGRAD_ARG(Pair, stride) = 1;
    TAPEGRAD_ARG(ConvPadding, padding) = 0;
    TAPEGRAD_ARG(Pair, dilation) = 1;
    TAPEGRAD_ARG(int64_t, groups) = 1;
    TAPEGRAD_ARG(bool, bias) = true;
    TAPEGRAD_ARG(PaddingMode, padding_mode) = PaddingMode::Zeros;
};

// nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
// output_padding=0, groups=1, bias=True, dilation=1).
class ConvTranspose2dOptions {
public:
    ConvTranspose2dOptions(int64_t in_channels, int64_t out_channels, Pair kernel_size)
        : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
    tapegrad::ConvTranspose2dOptions conv() const {
        return {.stride = stride_, .padding = padding_, .output_padding = output_padding_, .groups = groups_, .dilation = dilation_};
    }
    TAPEGRAD_ARG(int64_t, in_channels);
    TAPEGRAD_ARG(int64_t, out_channels);
    TAPEGRAD_ARG(Pair, kernel_size);
    TAPEGRAD_ARG(Pair, stride) = 1;
    TAPEGRAD_ARG(Pair, padding) = 0;
    TAPEGRAD_ARG(Pair, output_padding) = 0;
    TAPEGRAD_ARG(int64_t, groups) = 1;
    TAPEGRAD_ARG(bool, bias) = true;
    TAPEGRAD_ARG(Pair, dilation) = 1;
};

// nn.Linear(in_features, out_features, bias=True).
class LinearOptions {
public:
    LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
    TAPEGRAD_ARG(int64_t, in_features);
    TAPEGRAD_ARG(int64_t, out_features);
    TAPEGRAD_ARG(bool, bias) = true;
};

// nn.BatchNorm1d/2d(num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True).
class BatchNormOptions {
public:
    explicit BatchNormOptions(int64_t num_features) : num_features_(num_features) {}
    TAPEGRAD_ARG(int64_t, num_features);
    TAPEGRAD_ARG(double, eps) = 1e-5;
    TAPEGRAD_ARG(double, momentum) = 0.1;
    TAPEGRAD_ARG(bool, affine) = true;
    TAPEGRAD_ARG(bool, track_running_stats) = true;
};
using BatchNorm1dOptions = BatchNormOptions;
using BatchNorm2dOptions = BatchNormOptions;

// nn.MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False): without a
// stride, the stride is the kernel size.
class MaxPool2dOptions {
public:
    explicit MaxPool2dOptions(Pair kernel_size) : kernel_size_(kernel_size) {}
    Pool2dOptions pool() const {
        return {.kernel_size = kernel_size_, .stride = stride_, .padding = padding_, .dilation = dilation_, .ceil_mode = ceil_mode_};
    }
    TAPEGRAD_ARG(Pair, kernel_size);
    TAPEGRAD_ARG(std::optional<Pair>, stride);
    TAPEGRAD_ARG(Pair, padding) = 0;
    TAPEGRAD_ARG(Pair, dilation) = 1;
    TAPEGRAD_ARG(bool, ceil_mode) = false;
};

// nn.AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
// divisor_override=None).
class AvgPool2dOptions {
public:
    explicit AvgPool2dOptions(Pair kernel_size) : kernel_size_(kernel_size) {}
    Pool2dOptions pool() const {
        return {.kernel_size = kernel_size_,
                .stride = stride_,
                .padding = padding_,
                .ceil_mode = ceil_mode_,
                .count_include_pad = count_include_pad_,
                .divisor_override = divisor_override_};
    }
    TAPEGRAD_ARG(Pair, kernel_size);
    TAPEGRAD_ARG(std::optional<Pair>, stride);
    TAPEGRAD_ARG(Pair, padding) = 0;
    TAPEGRAD_ARG(bool, ceil_mode) = false;
    TAPEGRAD_ARG(bool, count_include_pad) = true;
    TAPEGRAD_ARG(std::optional<int64_t>, divisor_override);
};

// nn.Dropout(p=0.5), nn.Dropout2d(p=0.5). (libtorch's inplace has no counterpart: tapegrad's
// dropout always returns a new tensor.)
class DropoutOptions {
public:
    explicit DropoutOptions(double p = 0.5) : p_(p) {}
    TAPEGRAD_ARG(double, p);
};
using Dropout2dOptions = DropoutOptions;

// nn.MaxUnpool2d(kernel_size, stride=None, padding=0).
class MaxUnpool2dOptions {
public:
    explicit MaxUnpool2dOptions(Pair kernel_size) : kernel_size_(kernel_size) {}
    TAPEGRAD_ARG(Pair, kernel_size);
    TAPEGRAD_ARG(std::optional<Pair>, stride);
    TAPEGRAD_ARG(Pair, padding) = 0;
};

// nn.AdaptiveAvgPool2d(output_size).
class AdaptiveAvgPool2dOptions {
public:
    explicit AdaptiveAvgPool2dOptions(Pair output_size) : output_size_(output_size) {}
    TAPEGRAD_ARG(Pair, output_size);
};

// nn.Flatten(start_dim=1, end_dim=-1).
class FlattenOptions {
public:
    TAPEGRAD_ARG(int64_t, start_dim) = 1;
    TAPEGRAD_ARG(int64_t, end_dim) = -1;
};

// nn.LeakyReLU(negative_slope=0.01). (No inplace, as DropoutOptions.)
class LeakyReLUOptions {
public:
    TAPEGRAD_ARG(double, negative_slope) = 0.01;
};

// nn.ELU(alpha=1.0).
class ELUOptions {
public:
    TAPEGRAD_ARG(double, alpha) = 1.0;
};

// nn.Softplus(beta=1.0, threshold=20.0); F::softplus's options too.
class SoftplusOptions {
public:
    TAPEGRAD_ARG(double, beta) = 1.0;
    TAPEGRAD_ARG(double, threshold) = 20.0;
};

// nn.Hardtanh(min_val=-1.0, max_val=1.0).
class HardtanhOptions {
public:
    TAPEGRAD_ARG(double, min_val) = -1.0;
    TAPEGRAD_ARG(double, max_val) = 1.0;
};

// nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True).
class LayerNormOptions {
public:
    explicit LayerNormOptions(Shape normalized_shape) : normalized_shape_(normalized_shape) {}
    TAPEGRAD_ARG(Shape, normalized_shape);
    TAPEGRAD_ARG(double, eps) = 1e-5;
    TAPEGRAD_ARG(bool, elementwise_affine) = true;
};

// nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True).
class GroupNormOptions {
public:
    GroupNormOptions(int64_t num_groups, int64_t num_channels) : num_groups_(num_groups), num_channels_(num_channels) {}
    TAPEGRAD_ARG(int64_t, num_groups);
    TAPEGRAD_ARG(int64_t, num_channels);
    TAPEGRAD_ARG(double, eps) = 1e-5;
    TAPEGRAD_ARG(bool, affine) = true;
};

}  // namespace tapegrad::nn
