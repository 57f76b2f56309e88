#pragma once
// The standard layers, thin modules over the functional ops. Weights start as PyTorch's do
// (kaiming_uniform with a = sqrt(5), bias uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))), drawn from
// the Generator passed to the constructor.
#include "engine/generator.hpp"
#include "nn/module.hpp"
#include "ops/conv.hpp"
#include "ops/conv_transpose.hpp"
#include "ops/interpolate.hpp"
#include "ops/pooling.hpp"

namespace tapegrad::nn {

// PyTorch's padding_mode: what the padding holds (zeros, a mirror of the input, or its edge).
enum class PaddingMode { Zeros, Reflect, Replicate };

class Conv2d : public Module {
public:
    Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen, Conv2dOptions options = {},
           bool bias = true, PaddingMode padding_mode = PaddingMode::Zeros);
    Tensor forward(const Tensor& x) override;
    Tensor weight;  // [out, in/groups, kh, kw]
    Tensor bias;    // [out] or undefined
    Conv2dOptions options;
    PaddingMode padding_mode;
};

// PyTorch's nn.ConvTranspose2d: weight [in, out/groups, kh, kw], initialised as Conv2d's (fan_in
// from the weight's second dimension, as PyTorch computes it).
class ConvTranspose2d : public Module {
public:
    ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen,
                    ConvTranspose2dOptions options = {}, bool bias = true);
    Tensor forward(const Tensor& x) override;
    Tensor weight;  // [in, out/groups, kh, kw]
    Tensor bias;    // [out] or undefined
    ConvTranspose2dOptions options;
};

class Linear : public Module {
public:
    Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true);
    Tensor forward(const Tensor& x) override;
    Tensor weight;  // [out, in]
    Tensor bias;    // [out] or undefined
};

struct BatchNormConfig {
    double eps = 1e-5;
    double momentum = 0.1;
    bool affine = true;               // learnable weight (gamma, ones) and bias (beta, zeros)
    bool track_running_stats = true;  // running_mean and running_var buffers, used in eval mode
};

// Shared by BatchNorm1d ([N,C] or [N,C,L]) and BatchNorm2d ([N,C,H,W]); `ndim` is the input rank
// it takes (2 for BatchNorm1d, which also takes 3).
class BatchNorm : public Module {
public:
    Tensor forward(const Tensor& x) override;
    // BatchNorm1d/2d then ReLU runs as batch_norm_relu.
    Tensor forward_fused(Module& next, const Tensor& x) override;
    Tensor weight, bias;                // parameters, [C]
    Tensor running_mean, running_var;  // buffers, [C]
    BatchNormConfig config;

protected:
    BatchNorm(const char* type, std::size_t ndim, int64_t num_features, BatchNormConfig config);

private:
    Tensor normalize(const Tensor& x, bool then_relu);
    std::size_t ndim_;
};

class BatchNorm1d : public BatchNorm {
public:
    explicit BatchNorm1d(int64_t num_features, BatchNormConfig config = {})
        : BatchNorm("BatchNorm1d", 2, num_features, config) {}
};

class BatchNorm2d : public BatchNorm {
public:
    explicit BatchNorm2d(int64_t num_features, BatchNormConfig config = {})
        : BatchNorm("BatchNorm2d", 4, num_features, config) {}
};

class ReLU : public Module {
public:
    ReLU() : Module("ReLU") {}
    Tensor forward(const Tensor& x) override;
    // ReLU then MaxPool2d runs as MaxPool2d then ReLU (see nn/layers.cpp).
    Tensor forward_fused(Module& next, const Tensor& x) override;
};

class MaxPool2d : public Module {
public:
    explicit MaxPool2d(Pool2dOptions options) : Module("MaxPool2d"), options(options) {}
    Tensor forward(const Tensor& x) override;
    Pool2dOptions options;
};

class AvgPool2d : public Module {
public:
    explicit AvgPool2d(Pool2dOptions options) : Module("AvgPool2d"), options(options) {}
    Tensor forward(const Tensor& x) override;
    Pool2dOptions options;
};

// Global average pooling is AdaptiveAvgPool2d(1).
class AdaptiveAvgPool2d : public Module {
public:
    explicit AdaptiveAvgPool2d(Pair output_size) : Module("AdaptiveAvgPool2d"), output_size(output_size) {}
    Tensor forward(const Tensor& x) override;
    Pair output_size;
};

// Zeroes activations with probability p (0 <= p <= 1; p = 1 zeroes everything) in training mode
// and scales the rest by 1/(1-p). Each Dropout draws its masks from its own generator, so two
// dropouts never share masks unless given the same seed. The generator is seeded explicitly, or
// forked from the Generator passed in (one draw at construction, as the other layers take theirs),
// or, with neither, forked from a process-wide sequence: unseeded dropouts get independent streams,
// the same ones for the same order of construction.
class Dropout : public Module {
public:
    explicit Dropout(double p = 0.5);
    Dropout(double p, uint64_t seed);
    Dropout(double p, Generator& gen);
    Tensor forward(const Tensor& x) override;
    double p;
    Generator generator;
};

// Flattens dimensions start_dim..end_dim (by default all but the batch dimension).
class Flatten : public Module {
public:
    explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
        : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
    Tensor forward(const Tensor& x) override;
    int64_t start_dim, end_dim;
};

// Returns its input (a placeholder where a model has an optional layer).
class Identity : public Module {
public:
    Identity() : Module("Identity") {}
    Tensor forward(const Tensor& x) override { return x; }
};

// interpolate() as a layer: Upsample({.scale_factor = 2.0, .mode = InterpolateMode::Bilinear}).
class Upsample : public Module {
public:
    explicit Upsample(InterpolateOptions options) : Module("Upsample"), options(options) {}
    Tensor forward(const Tensor& x) override;
    InterpolateOptions options;
};

}  // namespace tapegrad::nn
