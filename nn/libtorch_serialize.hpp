#pragma once
// libtorch's torch::save and torch::load (through libtorch.hpp) in tapegrad's checkpoint format
// (nn/serialize.hpp): a module's state_dict, an optimizer's state, one tensor or a list of them,
// each in a file of its own that records which of the four it holds. torch::load refuses a file
// of another kind, one not written by torch::save, or one that does not fit what it loads into
// (a missing, unexpected or mis-shaped parameter, an optimizer of another size) with a
// std::runtime_error or std::invalid_argument naming the file, and then changes nothing.
// (libtorch writes TorchScript archives; these files are tapegrad's, and safetensors
// (nn/safetensors.hpp) is the format to move weights to and from PyTorch.)
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.hpp"
#include "nn/module.hpp"
#include "nn/module_holder.hpp"

namespace tapegrad::nn {
class Optimizer;
}

namespace tapegrad::libtorch {

void save(const ::tapegrad::nn::Module& module, const std::string& path);
void load(::tapegrad::nn::Module& module, const std::string& path);
void save(const ::tapegrad::nn::Optimizer& optimizer, const std::string& path);
void load(::tapegrad::nn::Optimizer& optimizer, const std::string& path);
void save(const Tensor& tensor, const std::string& path);
void load(Tensor& tensor, const std::string& path);
void save(const std::vector<Tensor>& tensors, const std::string& path);
void load(std::vector<Tensor>& tensors, const std::string& path);

// A module holder (torch::nn::Linear, a TORCH_MODULE) or a shared pointer to a module.
template <class Impl>
void save(const ::tapegrad::nn::ModuleHolder<Impl>& module, const std::string& path) {
    save(static_cast<const ::tapegrad::nn::Module&>(*module), path);
}
template <class Impl>
void load(::tapegrad::nn::ModuleHolder<Impl>& module, const std::string& path) {
    load(static_cast<::tapegrad::nn::Module&>(*module), path);
}
template <std::derived_from<::tapegrad::nn::Module> Impl>
void save(const std::shared_ptr<Impl>& module, const std::string& path) {
    save(static_cast<const ::tapegrad::nn::Module&>(*module), path);
}
template <std::derived_from<::tapegrad::nn::Module> Impl>
void load(const std::shared_ptr<Impl>& module, const std::string& path) {
    load(static_cast<::tapegrad::nn::Module&>(*module), path);
}

}  // namespace tapegrad::libtorch
