#pragma once
// Layers that libtorch programs reach for, as libtorch's (and PyTorch's) modules: Embedding,
// ModuleList, Softmax, LogSoftmax and Conv1d. tapegrad's own layers live in nn/layers.hpp; libtorch.hpp
// names these torch::nn::Embedding and so on (holders of the modules here).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <vector>

#include "engine/generator.hpp"
#include "engine/tensor.hpp"
#include "nn/arg.hpp"
#include "nn/module.hpp"

namespace tapegrad::nn {

// EmbeddingOptions(num_embeddings, embedding_dim).padding_idx(0), as libtorch's (max_norm,
// scale_grad_by_freq and sparse are not there).
class EmbeddingOptions {
public:
    EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
        : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
    TAPEGRAD_ARG(int64_t, num_embeddings);
    TAPEGRAD_ARG(int64_t, embedding_dim);
    TAPEGRAD_ARG(std::optional<int64_t>, padding_idx);
};

// A lookup table, as torch.nn.Embedding: integer indices of any shape [*] give rows of `weight`
// [num_embeddings, embedding_dim], out [*, embedding_dim]. The weight is drawn from N(0, 1) (the
// padding row, if any, set to zero), as PyTorch's. The lookup is index_select, so the gradient
// (rows summed where an index repeats) is differentiable again; the padding row's gradient is
// zero, as PyTorch's, whatever its value.
class Embedding : public Module {
public:
    explicit Embedding(const EmbeddingOptions& options, Generator& gen = default_generator());
    Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator& gen = default_generator());
    Tensor forward(const Tensor& indices) override;
    void pretty_print(std::ostream& stream) const override;
    Tensor weight;                      // [num_embeddings, embedding_dim]
    std::optional<int64_t> padding_idx;  // in [0, num_embeddings) when set (a negative one counts from the end)
};

// Modules held in a list, registered as children "0", "1", ...; as torch.nn.ModuleList, it has
// no forward of its own: a model calls its modules.
//     torch::nn::ModuleList blocks(torch::nn::Linear(4, 8), torch::nn::ReLU());
//     blocks->push_back(torch::nn::Linear(8, 2));
//     for (const auto& block : *blocks) x = (*block)(x);
class ModuleList : public Module {
public:
    ModuleList() : Module("ModuleList") {}
    template <class... Modules>
        requires(sizeof...(Modules) > 0 && (ModuleHandle<std::remove_cvref_t<Modules>> && ...))
    explicit ModuleList(const Modules&... modules) : Module("ModuleList") {
        (push_back(as_module_ptr(modules)), ...);
    }
    void push_back(std::shared_ptr<Module> module);
    template <ModuleHandle Handle>
    void push_back(const Handle& module) {
        push_back(as_module_ptr(module));
    }
    std::size_t size() const noexcept { return modules_.size(); }
    bool is_empty() const noexcept { return modules_.empty(); }
    // Module i; std::out_of_range past the end.
    std::shared_ptr<Module> operator[](std::size_t i) const { return ptr(i); }
    std::shared_ptr<Module> ptr(std::size_t i) const;
    // Module i as its own type, as libtorch's list->at<LinearImpl>(i); std::invalid_argument if it
    // is of another type.
    template <class M>
    M& at(std::size_t i) const {
        M* module = dynamic_cast<M*>(ptr(i).get());
        if (!module) throw_bad_at(i);
        return *module;
    }
    std::vector<std::shared_ptr<Module>>::const_iterator begin() const noexcept { return modules_.begin(); }
    std::vector<std::shared_ptr<Module>>::const_iterator end() const noexcept { return modules_.end(); }
    // Throws std::logic_error: a ModuleList is not called, its modules are.
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override { stream << "tg::nn::ModuleList"; }

private:
    [[noreturn]] void throw_bad_at(std::size_t i) const;
    std::vector<std::shared_ptr<Module>> modules_;
};

// SoftmaxOptions(dim), LogSoftmaxOptions(dim), as libtorch's.
class SoftmaxOptions {
public:
    SoftmaxOptions(int64_t dim) : dim_(dim) {}  // NOLINT: implicit, as libtorch's
    TAPEGRAD_ARG(int64_t, dim);
};
using LogSoftmaxOptions = SoftmaxOptions;

// softmax(x, dim) and log_softmax(x, dim) as layers, as torch.nn.Softmax(dim) and LogSoftmax(dim).
class Softmax : public Module {
public:
    explicit Softmax(const SoftmaxOptions& options) : Module("Softmax"), dim(options.dim()) {}
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override { stream << "tg::nn::Softmax(dim=" << dim << ")"; }
    int64_t dim;
};
class LogSoftmax : public Module {
public:
    explicit LogSoftmax(const LogSoftmaxOptions& options) : Module("LogSoftmax"), dim(options.dim()) {}
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override { stream << "tg::nn::LogSoftmax(dim=" << dim << ")"; }
    int64_t dim;
};

// Conv1dOptions(in_channels, out_channels, kernel_size).stride(2).padding(1).dilation(1).groups(1)
// .bias(false), as libtorch's (numeric padding, zeros).
class Conv1dOptions {
public:
    Conv1dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
        : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
    TAPEGRAD_ARG(int64_t, in_channels);
    TAPEGRAD_ARG(int64_t, out_channels);
    TAPEGRAD_ARG(int64_t, kernel_size);
    TAPEGRAD_ARG(int64_t, stride) = 1;
    TAPEGRAD_ARG(int64_t, padding) = 0;
    TAPEGRAD_ARG(int64_t, dilation) = 1;
    TAPEGRAD_ARG(int64_t, groups) = 1;
    TAPEGRAD_ARG(bool, bias) = true;
};

// A 1-d convolution, as torch.nn.Conv1d: x [N, C, L] (or [C, L]), weight [out, in / groups, k],
// bias [out]; PyTorch's initialisation. It runs as conv2d on the input and weight with a height
// of one, so its gradients (and theirs) are conv2d's.
class Conv1d : public Module {
public:
    explicit Conv1d(const Conv1dOptions& options, Generator& gen = default_generator());
    Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Generator& gen = default_generator());
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    Tensor weight;  // [out, in / groups, k]
    Tensor bias;    // [out] or undefined
    int64_t stride, padding, dilation, groups;
};

}  // namespace tapegrad::nn
