// Module printing as libtorch's pretty_print, with tg:: names: the layer's arguments in
// PyTorch's order, the optional ones only where libtorch shows them.
#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <ostream>
#include <string>
#include <typeinfo>

#include "nn/activations.hpp"
#include "nn/layers.hpp"
#include "nn/losses.hpp"
#include "nn/normalization.hpp"

namespace tapegrad::nn {
namespace {
const char* bool_text(bool b) { return b ? "true" : "false"; }

struct PairText {
    Pair pair;
};
std::ostream& operator<<(std::ostream& stream, PairText p) { return stream << '[' << p.pair.h << ", " << p.pair.w << ']'; }
PairText text(Pair p) { return {p}; }
bool same(Pair a, Pair b) { return a.h == b.h && a.w == b.w; }

std::string demangled(const std::type_info& type) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
    return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

// The conv options that libtorch prints after the stride, each only when it is not the default.
void print_conv_tail(std::ostream& stream, const ConvPadding& padding, Pair dilation, Pair output_padding, int64_t groups,
                     bool has_bias) {
    if (padding.kind == PaddingKind::Same)
        stream << ", padding='same'";
    else if (padding.kind == PaddingKind::Valid)
        stream << ", padding='valid'";
    else if (!same(padding, 0))
        stream << ", padding=" << text(padding);
    if (!same(dilation, 1)) stream << ", dilation=" << text(dilation);
    if (!same(output_padding, 0)) stream << ", output_padding=" << text(output_padding);
    if (groups != 1) stream << ", groups=" << groups;
    if (!has_bias) stream << ", bias=false";
}

void print_recursive(std::ostream& stream, const Module& module, const std::string& indentation) {
    module.pretty_print(stream);
    if (module.named_children().empty()) return;
    stream << "(\n";
    const std::string next_indentation = indentation + "  ";
    for (const auto& [name, child] : module.named_children()) {
        stream << next_indentation << '(' << name << "): ";
        print_recursive(stream, *child, next_indentation);
        stream << '\n';
    }
    stream << indentation << ')';
}
}  // namespace

void Module::pretty_print(std::ostream& stream) const {
    stream << (type_name_ == "Module" ? demangled(typeid(*this)) : type_name_);
}

std::ostream& operator<<(std::ostream& stream, const Module& module) {
    print_recursive(stream, module, "");
    return stream;
}

void Sequential::pretty_print(std::ostream& stream) const { stream << "tg::nn::Sequential"; }

void Conv2d::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::Conv2d(" << weight.size(1) * options.groups << ", " << weight.size(0)
           << ", kernel_size=" << text({weight.size(2), weight.size(3)}) << ", stride=" << text(options.stride);
    print_conv_tail(stream, options.padding, options.dilation, 0, options.groups, bias.defined());
    if (padding_mode == PaddingMode::Reflect) stream << ", padding_mode=kReflect";
    if (padding_mode == PaddingMode::Replicate) stream << ", padding_mode=kReplicate";
    stream << ')';
}

void ConvTranspose2d::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::ConvTranspose2d(" << weight.size(0) << ", " << weight.size(1) * options.groups
           << ", kernel_size=" << text({weight.size(2), weight.size(3)}) << ", stride=" << text(options.stride);
    print_conv_tail(stream, options.padding, options.dilation, options.output_padding, options.groups, bias.defined());
    stream << ')';
}

void Linear::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::Linear(in_features=" << weight.size(1) << ", out_features=" << weight.size(0)
           << ", bias=" << bool_text(bias.defined()) << ')';
}

void BatchNorm::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::" << type_name() << '(' << num_features_ << ", eps=" << config.eps << ", momentum=";
    // momentum=None (a cumulative average) prints as libtorch prints it.
    if (config.momentum) stream << *config.momentum;
    else stream << "None";
    stream << ", affine=" << bool_text(config.affine) << ", track_running_stats=" << bool_text(config.track_running_stats)
           << ')';
}

void ReLU::pretty_print(std::ostream& stream) const { stream << "tg::nn::ReLU()"; }

void MaxPool2d::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::MaxPool2d(kernel_size=" << text(options.kernel_size)
           << ", stride=" << text(options.stride.value_or(options.kernel_size)) << ", padding=" << text(options.padding)
           << ", dilation=" << text(options.dilation) << ", ceil_mode=" << bool_text(options.ceil_mode) << ')';
}

void AvgPool2d::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::AvgPool2d(kernel_size=" << text(options.kernel_size)
           << ", stride=" << text(options.stride.value_or(options.kernel_size)) << ", padding=" << text(options.padding) << ')';
}

void MaxUnpool2d::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::MaxUnpool2d(kernel_size=" << text(kernel_size) << ", stride=" << text(stride.value_or(kernel_size))
           << ", padding=" << text(padding) << ')';
}

void AdaptiveAvgPool2d::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::AdaptiveAvgPool2d(output_size=" << text(output_size) << ')';
}

void Dropout::pretty_print(std::ostream& stream) const { stream << "tg::nn::Dropout(p=" << p << ')'; }

void Flatten::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::Flatten(start_dim=" << start_dim << ", end_dim=" << end_dim << ')';
}

void Upsample::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::Upsample(";
    if (options.scale_factor)
        stream << "scale_factor=[" << *options.scale_factor << ", " << *options.scale_factor << ']';
    else if (options.size)
        stream << "size=" << text(*options.size);
    const char* mode = options.mode == InterpolateMode::Nearest        ? "kNearest"
                       : options.mode == InterpolateMode::NearestExact ? "kNearestExact"
                                                                       : "kBilinear";
    stream << ", mode=" << mode << ')';
}

void LayerNorm::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::LayerNorm([";
    for (std::size_t i = 0; i < normalized_shape.size(); ++i) stream << (i ? ", " : "") << normalized_shape[i];
    stream << "], eps=" << eps << ", elementwise_affine=" << bool_text(weight.defined()) << ')';
}

void GroupNorm::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::GroupNorm(" << num_groups << ", " << num_channels << ", eps=" << eps
           << ", affine=" << bool_text(weight.defined()) << ')';
}

void Loss::pretty_print(std::ostream& stream) const { stream << "tg::nn::" << type_name() << "()"; }

void ReLU6::pretty_print(std::ostream& stream) const { stream << "tg::nn::ReLU6()"; }
void SiLU::pretty_print(std::ostream& stream) const { stream << "tg::nn::SiLU()"; }
void Hardswish::pretty_print(std::ostream& stream) const { stream << "tg::nn::Hardswish()"; }
void Hardsigmoid::pretty_print(std::ostream& stream) const { stream << "tg::nn::Hardsigmoid()"; }
void Softplus::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::Softplus(beta=" << beta << ", threshold=" << threshold << ')';
}
void Sigmoid::pretty_print(std::ostream& stream) const { stream << "tg::nn::Sigmoid()"; }
void Tanh::pretty_print(std::ostream& stream) const { stream << "tg::nn::Tanh()"; }
void Hardtanh::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::Hardtanh(min_val=" << min_val << ", max_val=" << max_val << ')';
}
void LeakyReLU::pretty_print(std::ostream& stream) const { stream << "tg::nn::LeakyReLU(negative_slope=" << negative_slope << ')'; }
void ELU::pretty_print(std::ostream& stream) const { stream << "tg::nn::ELU(alpha=" << alpha << ')'; }
void GELU::pretty_print(std::ostream& stream) const {
    stream << (approximate == GeluApproximate::Tanh ? "tg::nn::GELU(approximate='tanh')" : "tg::nn::GELU()");
}

}  // namespace tapegrad::nn
