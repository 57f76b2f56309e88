#pragma once
// libtorch's spellings, opt-in: a libtorch program ports by changing its include and naming the
// namespace `torch`:
//
//     #include "libtorch.hpp"                   // for #include <torch/torch.h>
//     namespace torch = tapegrad::libtorch;
//
// Then torch::nn::Linear is a module holder as in libtorch (a shared pointer with value syntax:
// `torch::nn::Linear fc{nullptr};`, `fc = register_module("fc", torch::nn::Linear(784, 64));`,
// `fc->forward(x)`, `fc(x)`) and torch::nn::LinearImpl is the module; every other name is
// tapegrad's: torch::Tensor is tg::Tensor, torch::relu tg::relu, torch::optim::Adam
// tg::optim::Adam, torch::nn::Module tg::nn::Module, torch::Device tg::Device (the CPU only,
// nn/device.hpp). tapegrad's own tg::nn::Linear stays the module itself, so code written against
// tg::nn is unchanged. torch::data is libtorch's data API over tapegrad's DataLoader
// (nn/libtorch_data.hpp), torch::save/torch::load write tapegrad's checkpoint files
// (nn/libtorch_serialize.hpp), and Embedding, ModuleList, Softmax, LogSoftmax and Conv1d are in
// nn/libtorch_layers.hpp.
//
// How the names resolve: qualified lookup of torch::nn::Linear finds the alias declared in
// libtorch::nn and looks through the namespace's using-directive (tapegrad::nn) only for names
// not declared there, so the holders hide the modules of the same name. One consequence: after
// `using namespace torch;` an unqualified `nn` is ambiguous (tapegrad::nn is visible too, through
// the using-directive), so write `namespace nn = torch::nn;` instead of `using namespace torch;`
// where a program then says `nn::`. docs/pytorch.md lists every name that still differs.
#include <sstream>
#include <stdexcept>
#include <string>

#include "nn/libtorch_data.hpp"
#include "nn/libtorch_layers.hpp"
#include "nn/libtorch_serialize.hpp"
#include "tapegrad.hpp"

namespace tapegrad::libtorch {
using namespace ::tapegrad;

namespace detail {
// TORCH_CHECK's failure: std::runtime_error with the message parts written one after another, or
// libtorch's "Expected <condition> to be true, but got false." without any.
template <class... Parts>
[[noreturn]] void check_failed(const char* condition, const char* file, int line, const Parts&... parts) {
    std::ostringstream message;
    if constexpr (sizeof...(Parts) == 0)
        message << "Expected " << condition << " to be true, but got false.";
    else
        (message << ... << parts);
    message << " (" << file << ':' << line << ')';
    throw std::runtime_error(message.str());
}
}  // namespace detail

// torch::str(parts...): the parts written one after another to a string, as libtorch's c10::str.
template <class... Parts>
std::string str(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}

namespace nn {
using namespace ::tapegrad::nn;

// Name is libtorch's holder of tapegrad's module tg::nn::Name, NameImpl the module itself.
#define TAPEGRAD_LIBTORCH_HOLDER(Name)     \
    using Name##Impl = ::tapegrad::nn::Name; \
    using Name = ::tapegrad::nn::ModuleHolder<Name##Impl>

// Containers and layers (nn/module.hpp, nn/layers.hpp, nn/normalization.hpp, nn/attention.hpp).
TAPEGRAD_LIBTORCH_HOLDER(Sequential);
TAPEGRAD_LIBTORCH_HOLDER(Linear);
TAPEGRAD_LIBTORCH_HOLDER(Conv1d);
TAPEGRAD_LIBTORCH_HOLDER(Conv2d);
TAPEGRAD_LIBTORCH_HOLDER(ConvTranspose2d);
TAPEGRAD_LIBTORCH_HOLDER(BatchNorm1d);
TAPEGRAD_LIBTORCH_HOLDER(BatchNorm2d);
TAPEGRAD_LIBTORCH_HOLDER(LayerNorm);
TAPEGRAD_LIBTORCH_HOLDER(GroupNorm);
TAPEGRAD_LIBTORCH_HOLDER(Dropout);
TAPEGRAD_LIBTORCH_HOLDER(Dropout2d);
TAPEGRAD_LIBTORCH_HOLDER(MaxPool2d);
TAPEGRAD_LIBTORCH_HOLDER(AvgPool2d);
TAPEGRAD_LIBTORCH_HOLDER(MaxUnpool2d);
TAPEGRAD_LIBTORCH_HOLDER(AdaptiveAvgPool2d);
TAPEGRAD_LIBTORCH_HOLDER(Flatten);
TAPEGRAD_LIBTORCH_HOLDER(Identity);
TAPEGRAD_LIBTORCH_HOLDER(Upsample);
TAPEGRAD_LIBTORCH_HOLDER(MultiheadAttention);
TAPEGRAD_LIBTORCH_HOLDER(Embedding);
TAPEGRAD_LIBTORCH_HOLDER(ModuleList);
// Activations (nn/layers.hpp, nn/activations.hpp).
TAPEGRAD_LIBTORCH_HOLDER(ReLU);
TAPEGRAD_LIBTORCH_HOLDER(ReLU6);
TAPEGRAD_LIBTORCH_HOLDER(LeakyReLU);
TAPEGRAD_LIBTORCH_HOLDER(ELU);
TAPEGRAD_LIBTORCH_HOLDER(GELU);
TAPEGRAD_LIBTORCH_HOLDER(SiLU);
TAPEGRAD_LIBTORCH_HOLDER(Hardswish);
TAPEGRAD_LIBTORCH_HOLDER(Hardsigmoid);
TAPEGRAD_LIBTORCH_HOLDER(Softplus);
TAPEGRAD_LIBTORCH_HOLDER(Hardtanh);
TAPEGRAD_LIBTORCH_HOLDER(Sigmoid);
TAPEGRAD_LIBTORCH_HOLDER(Tanh);
TAPEGRAD_LIBTORCH_HOLDER(Softmax);
TAPEGRAD_LIBTORCH_HOLDER(LogSoftmax);
// Losses (nn/losses.hpp).
TAPEGRAD_LIBTORCH_HOLDER(BCELoss);
TAPEGRAD_LIBTORCH_HOLDER(BCEWithLogitsLoss);
TAPEGRAD_LIBTORCH_HOLDER(CrossEntropyLoss);
TAPEGRAD_LIBTORCH_HOLDER(NLLLoss);
TAPEGRAD_LIBTORCH_HOLDER(KLDivLoss);
TAPEGRAD_LIBTORCH_HOLDER(MSELoss);
TAPEGRAD_LIBTORCH_HOLDER(L1Loss);
TAPEGRAD_LIBTORCH_HOLDER(SmoothL1Loss);
TAPEGRAD_LIBTORCH_HOLDER(HuberLoss);

#undef TAPEGRAD_LIBTORCH_HOLDER

// torch::nn::functional (`namespace F = torch::nn::functional;`): tapegrad's functional ops, and
// libtorch's option objects for those whose libtorch form takes one.
namespace functional {
using namespace ::tapegrad;

// F::dropout(x, F::DropoutFuncOptions().p(0.5).training(is_training())), F::dropout2d likewise.
class DropoutFuncOptions {
public:
    TAPEGRAD_ARG(double, p) = 0.5;
    TAPEGRAD_ARG(bool, training) = true;
};
using Dropout2dFuncOptions = DropoutFuncOptions;
using ::tapegrad::dropout;
using ::tapegrad::dropout2d;
inline Tensor dropout(const Tensor& x, const DropoutFuncOptions& options) {
    return ::tapegrad::dropout(x, options.p(), options.training());
}
inline Tensor dropout2d(const Tensor& x, const Dropout2dFuncOptions& options) {
    return ::tapegrad::dropout2d(x, options.p(), options.training());
}

// F::conv2d(x, w, F::Conv2dFuncOptions().bias(b).stride(2).padding(1)).
class Conv2dFuncOptions {
public:
    TAPEGRAD_ARG(Tensor, bias);
    TAPEGRAD_ARG(Pair, stride) = 1;
    TAPEGRAD_ARG(ConvPadding, padding) = 0;
    TAPEGRAD_ARG(Pair, dilation) = 1;
    TAPEGRAD_ARG(int64_t, groups) = 1;
};
using ::tapegrad::conv2d;
inline Tensor conv2d(const Tensor& x, const Tensor& weight, const Conv2dFuncOptions& options) {
    return ::tapegrad::conv2d(x, weight, options.bias(),
                              {.stride = options.stride(), .padding = options.padding(), .dilation = options.dilation(), .groups = options.groups()});
}

// F::max_pool2d(x, F::MaxPool2dFuncOptions(2).stride(2)), F::avg_pool2d likewise: libtorch's
// functional pool options are its module options.
using MaxPool2dFuncOptions = ::tapegrad::nn::MaxPool2dOptions;
using AvgPool2dFuncOptions = ::tapegrad::nn::AvgPool2dOptions;
using ::tapegrad::avg_pool2d;
using ::tapegrad::max_pool2d;
inline Tensor max_pool2d(const Tensor& x, const MaxPool2dFuncOptions& options) { return ::tapegrad::max_pool2d(x, options.pool()); }
inline Tensor avg_pool2d(const Tensor& x, const AvgPool2dFuncOptions& options) { return ::tapegrad::avg_pool2d(x, options.pool()); }

// F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(0.2)).
using LeakyReLUFuncOptions = ::tapegrad::nn::LeakyReLUOptions;
using ::tapegrad::leaky_relu;
inline Tensor leaky_relu(const Tensor& x, const LeakyReLUFuncOptions& options) {
    return ::tapegrad::leaky_relu(x, options.negative_slope());
}

// F::softplus(x, F::SoftplusFuncOptions().beta(2).threshold(10)).
using SoftplusFuncOptions = ::tapegrad::nn::SoftplusOptions;
using ::tapegrad::softplus;
inline Tensor softplus(const Tensor& x, const SoftplusFuncOptions& options) {
    return ::tapegrad::softplus(x, options.beta(), options.threshold());
}
}  // namespace functional
}  // namespace nn
}  // namespace tapegrad::libtorch

// libtorch's macros: TORCH_MODULE(Net) declares Net as the holder of NetImpl (tapegrad's
// TG_MODULE); TORCH_ARG(T, name) one chained option of an options class (TAPEGRAD_ARG);
// TORCH_CHECK(condition, message parts...) and AT_ASSERT(condition) throw std::runtime_error
// (libtorch's c10::Error) when the condition is false.
#ifndef TORCH_MODULE
#define TORCH_MODULE(Name) TG_MODULE(Name)
#endif
#ifndef TORCH_ARG
#define TORCH_ARG(T, name) TAPEGRAD_ARG(T, name)
#endif
#ifndef TORCH_CHECK
#define TORCH_CHECK(condition, ...) \
    ((condition) ? void(0) : ::tapegrad::libtorch::detail::check_failed(#condition, __FILE__, __LINE__ __VA_OPT__(, ) __VA_ARGS__))
#endif
#ifndef AT_ASSERT
#define AT_ASSERT(condition) TORCH_CHECK(condition)
#endif
