#pragma once
// The standard layers, thin modules over the functional ops. Weights start as PyTorch's do
// (kaiming_uniform with a = sqrt(5), bias uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))), drawn from
// the Generator passed to the constructor, or without one from the default generator (as
// PyTorch's layers draw from the global one; seed it with manual_seed).
//
// Each layer is built from its libtorch-style options (nn/options.hpp),
// nn::Conv2d(nn::Conv2dOptions(1, 64, 4).stride(2)), or positionally in PyTorch's order with the
// functional op's options as the designated-initialiser form,
// nn::Conv2d(1, 64, 4, gen, {.stride = 2}). Printed (std::cout << layer), a layer shows its
// options as libtorch's pretty_print does, with tg:: names.
#include <optional>

#include "engine/generator.hpp"
#include "nn/module.hpp"
#include "nn/options.hpp"
#include "ops/interpolate.hpp"

namespace tapegrad::nn {

class Conv2d : public Module {
public:
    explicit Conv2d(const Conv2dOptions& options, Generator& gen = default_generator());
    Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen, tapegrad::Conv2dOptions options = {},
           bool bias = true, PaddingMode padding_mode = PaddingMode::Zeros);
    Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, tapegrad::Conv2dOptions options = {}, bool bias = true,
           PaddingMode padding_mode = PaddingMode::Zeros);
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    Tensor weight;  // [out, in/groups, kh, kw]
    Tensor bias;    // [out] or undefined
    tapegrad::Conv2dOptions options;
    PaddingMode padding_mode;
};

// PyTorch's nn.ConvTranspose2d: weight [in, out/groups, kh, kw], initialised as Conv2d's (fan_in
// from the weight's second dimension, as PyTorch computes it).
class ConvTranspose2d : public Module {
public:
    explicit ConvTranspose2d(const ConvTranspose2dOptions& options, Generator& gen = default_generator());
    ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen,
                    tapegrad::ConvTranspose2dOptions options = {}, bool bias = true);
    ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, tapegrad::ConvTranspose2dOptions options = {},
                    bool bias = true);
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    Tensor weight;  // [in, out/groups, kh, kw]
    Tensor bias;    // [out] or undefined
    tapegrad::ConvTranspose2dOptions options;
};

class Linear : public Module {
public:
    explicit Linear(const LinearOptions& options, Generator& gen = default_generator());
    Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true);
    Linear(int64_t in_features, int64_t out_features, bool bias = true);
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    Tensor weight;  // [out, in]
    Tensor bias;    // [out] or undefined
};

struct BatchNormConfig {
    double eps = 1e-5;
    // The weight of each training batch in the running statistics; nullopt: their cumulative
    // average, weight 1 / num_batches_tracked (PyTorch's momentum=None).
    std::optional<double> momentum = 0.1;
    bool affine = true;               // learnable weight (gamma, ones) and bias (beta, zeros)
    bool track_running_stats = true;  // running_mean and running_var buffers, used in eval mode
};

// Shared by BatchNorm1d ([N,C] or [N,C,L]) and BatchNorm2d ([N,C,H,W]); `ndim` is the input rank
// it takes (2 for BatchNorm1d, which also takes 3).
class BatchNorm : public Module {
public:
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    Tensor weight, bias;                // parameters, [C]
    Tensor running_mean, running_var;  // buffers, [C]
    // Buffer, an int64 scalar: the training-mode forwards so far, as PyTorch's. A state dict
    // without it (saved before it existed) loads and sets it to 0, as PyTorch does.
    Tensor num_batches_tracked;
    BatchNormConfig config;

protected:
    BatchNorm(const char* type, std::size_t ndim, int64_t num_features, BatchNormConfig config);
    static BatchNormConfig config_of(const BatchNormOptions& options) {
        return {.eps = options.eps(), .momentum = options.momentum(), .affine = options.affine(), .track_running_stats = options.track_running_stats()};
    }
    // The weight of the coming training batch in the running statistics.
    double next_batch_momentum() const;
    // Counts a training batch; called once it has gone through, so that a refused input changes nothing.
    void count_batch();

private:
    std::size_t ndim_;
    int64_t num_features_;
};

class BatchNorm1d : public BatchNorm {
public:
    explicit BatchNorm1d(int64_t num_features, BatchNormConfig config = {})
        : BatchNorm("BatchNorm1d", 2, num_features, config) {}
    explicit BatchNorm1d(const BatchNorm1dOptions& options) : BatchNorm1d(options.num_features(), config_of(options)) {}
};

class BatchNorm2d : public BatchNorm {
public:
    explicit BatchNorm2d(int64_t num_features, BatchNormConfig config = {})
        : BatchNorm("BatchNorm2d", 4, num_features, config) {}
    explicit BatchNorm2d(const BatchNorm2dOptions& options) : BatchNorm2d(options.num_features(), config_of(options)) {}
};

class ReLU : public Module {
public:
    ReLU() : Module("ReLU") {}
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;

protected:
    // relu(std::move(x)), which may fuse with the op that made x (batch_norm: batch_norm_relu).
    Tensor forward_owned(Tensor&& x) override;
};

// nn.MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
// ceil_mode=False): the positional constructor follows PyTorch's order without return_indices;
// forward_with_indices is return_indices=True (a Module's forward returns one tensor).
class MaxPool2d : public Module {
public:
    explicit MaxPool2d(Pool2dOptions options) : Module("MaxPool2d"), options(options) {}
    explicit MaxPool2d(const MaxPool2dOptions& options) : MaxPool2d(options.pool()) {}
    explicit MaxPool2d(Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = 0, Pair dilation = 1,
                       bool ceil_mode = false)
        : MaxPool2d(Pool2dOptions{
              .kernel_size = kernel_size, .stride = stride, .padding = padding, .dilation = dilation, .ceil_mode = ceil_mode}) {}
    Tensor forward(const Tensor& x) override;
    // The output and the int64 indices that MaxUnpool2d takes.
    std::tuple<Tensor, Tensor> forward_with_indices(const Tensor& x);
    void pretty_print(std::ostream& stream) const override;
    Pool2dOptions options;

protected:
    // max_pool2d(std::move(x)), which runs relu's result as relu of the pool (see max_pool2d).
    Tensor forward_owned(Tensor&& x) override;
};

// nn.AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
// divisor_override=None), in PyTorch's order.
class AvgPool2d : public Module {
public:
    explicit AvgPool2d(Pool2dOptions options) : Module("AvgPool2d"), options(options) {}
    explicit AvgPool2d(const AvgPool2dOptions& options) : AvgPool2d(options.pool()) {}
    explicit AvgPool2d(Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = 0, bool ceil_mode = false,
                       bool count_include_pad = true, std::optional<int64_t> divisor_override = std::nullopt)
        : AvgPool2d(Pool2dOptions{.kernel_size = kernel_size,
                                  .stride = stride,
                                  .padding = padding,
                                  .ceil_mode = ceil_mode,
                                  .count_include_pad = count_include_pad,
                                  .divisor_override = divisor_override}) {}
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    Pool2dOptions options;
};

// nn.MaxUnpool2d(kernel_size, stride=None, padding=0): unpool(x, indices), or
// forward(x, indices, output_size) as in PyTorch (output_size (H, W), e.g. the pooled input's size).
class MaxUnpool2d : public Module {
public:
    explicit MaxUnpool2d(Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = 0)
        : Module("MaxUnpool2d"), kernel_size(kernel_size), stride(stride), padding(padding) {}
    explicit MaxUnpool2d(const MaxUnpool2dOptions& options)
        : MaxUnpool2d(options.kernel_size(), options.stride(), options.padding()) {}
    using Module::forward;
    Tensor forward(const Tensor& x, const Tensor& indices, std::optional<Pair> output_size = std::nullopt);
    // module(x, indices): forward(x, indices) with the default output size.
    Tensor forward_inputs(const std::vector<Tensor>& inputs) override;
    void pretty_print(std::ostream& stream) const override;
    Pair kernel_size;
    std::optional<Pair> stride;
    Pair padding;
};

// Global average pooling is AdaptiveAvgPool2d(1).
class AdaptiveAvgPool2d : public Module {
public:
    explicit AdaptiveAvgPool2d(Pair output_size) : Module("AdaptiveAvgPool2d"), output_size(output_size) {}
    explicit AdaptiveAvgPool2d(const AdaptiveAvgPool2dOptions& options) : AdaptiveAvgPool2d(options.output_size()) {}
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    Pair output_size;
};

// Zeroes activations with probability p (0 <= p <= 1; p = 1 zeroes everything) in training mode
// and scales the rest by 1/(1-p). Each Dropout draws its masks from its own generator, so two
// dropouts never share masks unless given the same seed. The generator is seeded explicitly, or
// forked from the Generator passed in, or without one from the default generator (one draw at
// construction, as the other layers take their weights): after manual_seed(s), the same layers
// built in the same order drop the same elements.
class Dropout : public Module {
public:
    explicit Dropout(double p = 0.5, Generator& gen = default_generator());
    explicit Dropout(const DropoutOptions& options, Generator& gen = default_generator()) : Dropout(options.p(), gen) {}
    Dropout(double p, uint64_t seed);
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    double p;
    Generator generator;

protected:
    Dropout(const char* name, double p, uint64_t seed);
};

// PyTorch's Dropout2d: zeroes whole channels (x[n, c] of [N,C,H,W] or [N,C,L]) with probability p
// in training mode and scales the rest by 1/(1-p); its generator is seeded as Dropout's.
class Dropout2d : public Dropout {
public:
    explicit Dropout2d(double p = 0.5, Generator& gen = default_generator());
    explicit Dropout2d(const Dropout2dOptions& options, Generator& gen = default_generator()) : Dropout2d(options.p(), gen) {}
    Dropout2d(double p, uint64_t seed);
    Tensor forward(const Tensor& x) override;
};

// Flattens dimensions start_dim..end_dim (by default all but the batch dimension).
class Flatten : public Module {
public:
    explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
        : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
    explicit Flatten(const FlattenOptions& options) : Flatten(options.start_dim(), options.end_dim()) {}
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    int64_t start_dim, end_dim;
};

// Returns its input (a placeholder where a model has an optional layer).
class Identity : public Module {
public:
    Identity() : Module("Identity") {}
    Tensor forward(const Tensor& x) override { return x; }
    void pretty_print(std::ostream& stream) const override { stream << "tg::nn::Identity()"; }
};

// interpolate() as a layer: Upsample({.scale_factor = 2.0, .mode = InterpolateMode::Bilinear}).
class Upsample : public Module {
public:
    explicit Upsample(InterpolateOptions options) : Module("Upsample"), options(options) {}
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    InterpolateOptions options;
};

}  // namespace tapegrad::nn
