#include "nn/layers.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <typeinfo>

#include "nn/init.hpp"
#include "ops/activation.hpp"
#include "ops/batch_norm.hpp"
#include "ops/dropout.hpp"
#include "ops/linear.hpp"
#include "ops/pad.hpp"

namespace tapegrad::nn {
namespace {
void check_positive(const char* layer, const char* what, int64_t v) {
    if (v <= 0) throw std::invalid_argument(std::string(layer) + ": " + what + " must be positive, got " + std::to_string(v));
}

// The sizes Conv2d and ConvTranspose2d share: positive, and channels divisible by groups.
void check_conv_layer(const char* layer, int64_t in_channels, int64_t out_channels, Pair kernel_size, int64_t groups) {
    check_positive(layer, "in_channels", in_channels);
    check_positive(layer, "out_channels", out_channels);
    check_positive(layer, "kernel height", kernel_size.h);
    check_positive(layer, "kernel width", kernel_size.w);
    check_positive(layer, "groups", groups);
    if (in_channels % groups || out_channels % groups)
        throw std::invalid_argument(std::string(layer) + ": in_channels (" + std::to_string(in_channels) + ") and out_channels (" +
                                    std::to_string(out_channels) + ") must be divisible by groups (" + std::to_string(groups) + ")");
}
}  // namespace

Conv2d::Conv2d(const Conv2dOptions& module_options, Generator& gen)
    : Module("Conv2d"), options(module_options.conv()), padding_mode(module_options.padding_mode()) {
    const int64_t in_channels = module_options.in_channels(), out_channels = module_options.out_channels();
    const Pair kernel_size = module_options.kernel_size();
    check_conv_layer("Conv2d", in_channels, out_channels, kernel_size, options.groups);
    weight = register_parameter("weight", empty({out_channels, in_channels / options.groups, kernel_size.h, kernel_size.w}));
    if (module_options.bias()) bias = register_parameter("bias", empty({out_channels}));
    init::reset_like_pytorch(weight, bias, gen);
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen, tapegrad::Conv2dOptions options,
               bool with_bias, PaddingMode padding_mode)
    : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size)
                 .stride(options.stride)
                 .padding(options.padding)
                 .dilation(options.dilation)
                 .groups(options.groups)
                 .bias(with_bias)
                 .padding_mode(padding_mode),
             gen) {}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, tapegrad::Conv2dOptions options, bool with_bias,
               PaddingMode padding_mode)
    : Conv2d(in_channels, out_channels, kernel_size, default_generator(), options, with_bias, padding_mode) {}

// Reflect and replicate pad the input first, then convolve without padding (as PyTorch).
Tensor Conv2d::forward(const Tensor& x) {
    if (padding_mode == PaddingMode::Zeros) return conv2d(x, weight, bias, options);
    int64_t top = options.padding.h, bottom = top, left = options.padding.w, right = left;
    if (options.padding.kind == PaddingKind::Valid) top = bottom = left = right = 0;
    if (options.padding.kind == PaddingKind::Same) {
        const int64_t total_h = options.dilation.h * (weight.size(2) - 1), total_w = options.dilation.w * (weight.size(3) - 1);
        top = total_h / 2, bottom = total_h - top, left = total_w / 2, right = total_w - left;
    }
    tapegrad::Conv2dOptions unpadded = options;
    unpadded.padding = 0;
    const PadMode mode = padding_mode == PaddingMode::Reflect ? PadMode::Reflect : PadMode::Replicate;
    return conv2d(pad(x, {left, right, top, bottom}, mode), weight, bias, unpadded);
}

ConvTranspose2d::ConvTranspose2d(const ConvTranspose2dOptions& module_options, Generator& gen)
    : Module("ConvTranspose2d"), options(module_options.conv()) {
    const int64_t in_channels = module_options.in_channels(), out_channels = module_options.out_channels();
    const Pair kernel_size = module_options.kernel_size();
    check_conv_layer("ConvTranspose2d", in_channels, out_channels, kernel_size, options.groups);
    weight = register_parameter("weight", empty({in_channels, out_channels / options.groups, kernel_size.h, kernel_size.w}));
    if (module_options.bias()) bias = register_parameter("bias", empty({out_channels}));
    init::reset_like_pytorch(weight, bias, gen);
}

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Generator& gen,
                                 tapegrad::ConvTranspose2dOptions options, bool with_bias)
    : ConvTranspose2d(ConvTranspose2dOptions(in_channels, out_channels, kernel_size)
                          .stride(options.stride)
                          .padding(options.padding)
                          .output_padding(options.output_padding)
                          .groups(options.groups)
                          .dilation(options.dilation)
                          .bias(with_bias),
                      gen) {}

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size,
                                 tapegrad::ConvTranspose2dOptions options, bool with_bias)
    : ConvTranspose2d(in_channels, out_channels, kernel_size, default_generator(), options, with_bias) {}

Tensor ConvTranspose2d::forward(const Tensor& x) { return conv_transpose2d(x, weight, bias, options); }

Linear::Linear(const LinearOptions& options, Generator& gen) : Module("Linear") {
    check_positive("Linear", "in_features", options.in_features());
    check_positive("Linear", "out_features", options.out_features());
    weight = register_parameter("weight", empty({options.out_features(), options.in_features()}));
    if (options.bias()) bias = register_parameter("bias", empty({options.out_features()}));
    init::reset_like_pytorch(weight, bias, gen);
}

Linear::Linear(int64_t in_features, int64_t out_features, Generator& gen, bool with_bias)
    : Linear(LinearOptions(in_features, out_features).bias(with_bias), gen) {}

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias)
    : Linear(LinearOptions(in_features, out_features).bias(with_bias), default_generator()) {}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

BatchNorm::BatchNorm(const char* type, std::size_t ndim, int64_t num_features, BatchNormConfig config)
    : Module(type), config(config), ndim_(ndim), num_features_(num_features) {
    check_positive(type, "num_features", num_features);
    if (config.affine) {
        weight = register_parameter("weight", ones({num_features}));
        bias = register_parameter("bias", zeros({num_features}));
    }
    if (config.track_running_stats) {
        running_mean = register_buffer("running_mean", zeros({num_features}));
        running_var = register_buffer("running_var", ones({num_features}));
        num_batches_tracked = register_buffer("num_batches_tracked", scalar_tensor(0, {.dtype = kInt64}),
                                              scalar_tensor(0, {.dtype = kInt64}));
    }
}

double BatchNorm::next_batch_momentum() const {
    if (config.momentum) return *config.momentum;
    return 1.0 / (static_cast<double>(num_batches_tracked.item<int64_t>()) + 1.0);
}

void BatchNorm::count_batch() {
    // Saturates rather than overflow on a count loaded from a file.
    int64_t& count = *num_batches_tracked.data<int64_t>();
    if (count < std::numeric_limits<int64_t>::max()) ++count;
    num_batches_tracked.bump_version();
}

Tensor BatchNorm::forward(const Tensor& x) {
    if (x.dim() != ndim_ && !(ndim_ == 2 && x.dim() == 3))
        throw std::invalid_argument(type_name() + ": expected a " + (ndim_ == 2 ? std::string("2-D [N,C] or 3-D [N,C,L]") : std::to_string(ndim_) + "-D") +
                                    " input, got " + describe(x));
    // Without running statistics, eval mode has nothing else to normalise with: use the batch's.
    const bool use_batch_stats = is_training() || !config.track_running_stats;
    const bool counts = is_training() && config.track_running_stats;
    const tapegrad::BatchNormOptions options{.training = use_batch_stats, .momentum = counts ? next_batch_momentum() : 0.0, .eps = config.eps};
    Tensor y = batch_norm(x, running_mean, running_var, weight, bias, options);
    if (counts) count_batch();
    return y;
}

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
// The consuming forms only for ReLU and MaxPool2d themselves: a subclass that overrides forward()
// may have changed what it computes.
Tensor ReLU::forward_owned(Tensor&& x) { return typeid(*this) == typeid(ReLU) ? relu(std::move(x)) : forward(x); }
Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, options); }
Tensor MaxPool2d::forward_owned(Tensor&& x) {
    return typeid(*this) == typeid(MaxPool2d) ? max_pool2d(std::move(x), options) : forward(x);
}
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, options); }
std::tuple<Tensor, Tensor> MaxPool2d::forward_with_indices(const Tensor& x) { return max_pool2d_with_indices(x, options); }
Tensor MaxUnpool2d::forward(const Tensor& x, const Tensor& indices, std::optional<Pair> output_size) {
    return max_unpool2d(x, indices, {.kernel_size = kernel_size, .stride = stride, .padding = padding, .output_size = output_size});
}
Tensor MaxUnpool2d::forward_inputs(const std::vector<Tensor>& inputs) {
    if (inputs.size() != 2)
        throw std::invalid_argument("MaxUnpool2d: takes two inputs, (x, indices), got " + std::to_string(inputs.size()) +
                                    "; call forward(x, indices, output_size) for another output size");
    return forward(inputs[0], inputs[1]);
}
Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size); }

namespace {
double checked_dropout_probability(const char* name, double p) {
    if (!(p >= 0.0 && p <= 1.0))
        throw std::invalid_argument(std::string(name) + ": p must be in [0, 1] (the probability of zeroing an element), got " +
                                    std::to_string(p));
    return p;
}

// A bad p throws before the draw, so that it leaves the generator as it was.
uint64_t seed_for_dropout(const char* name, double p, Generator& gen) {
    checked_dropout_probability(name, p);
    const auto guard = gen.lock();
    return gen.next_u64();
}
}  // namespace

Dropout::Dropout(double p, Generator& gen) : Dropout(p, seed_for_dropout("Dropout", p, gen)) {}

Dropout::Dropout(double p, uint64_t seed) : Dropout("Dropout", p, seed) {}

Dropout::Dropout(const char* name, double p, uint64_t seed) : Module(name), p(checked_dropout_probability(name, p)), generator(seed) {}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training(), generator); }

Dropout2d::Dropout2d(double p, uint64_t seed) : Dropout("Dropout2d", p, seed) {}

Dropout2d::Dropout2d(double p, Generator& gen) : Dropout2d(p, seed_for_dropout("Dropout2d", p, gen)) {}

Tensor Dropout2d::forward(const Tensor& x) { return dropout2d(x, p, is_training(), generator); }

Tensor Flatten::forward(const Tensor& x) { return x.flatten(start_dim, end_dim); }

Tensor Upsample::forward(const Tensor& x) { return interpolate(x, options); }

}  // namespace tapegrad::nn
