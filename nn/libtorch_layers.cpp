#include "nn/libtorch_layers.hpp"

#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "nn/init.hpp"
#include "ops/compare.hpp"
#include "ops/conv.hpp"
#include "ops/gather.hpp"
#include "ops/softmax.hpp"

namespace tapegrad::nn {

Embedding::Embedding(const EmbeddingOptions& options, Generator& gen) : Module("Embedding") {
    const int64_t num = options.num_embeddings(), dim = options.embedding_dim();
    if (num <= 0 || dim <= 0)
        throw std::invalid_argument("Embedding: num_embeddings and embedding_dim must be positive, got " +
                                    std::to_string(num) + " and " + std::to_string(dim));
    if (options.padding_idx()) {
        const int64_t idx = *options.padding_idx();
        if (idx < -num || idx >= num)
            throw std::invalid_argument("Embedding: padding_idx " + std::to_string(idx) + " is outside [-" + std::to_string(num) +
                                        ", " + std::to_string(num) + ") for " + std::to_string(num) + " embeddings");
        padding_idx = idx < 0 ? idx + num : idx;
    }
    weight = register_parameter("weight", randn({num, dim}, gen));
    if (padding_idx) {
        NoGradGuard no_grad;
        weight.select(0, *padding_idx).fill_(0.0);
    }
}

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator& gen)
    : Embedding(EmbeddingOptions(num_embeddings, embedding_dim), gen) {}

Tensor Embedding::forward(const Tensor& indices) {
    if (indices.dtype() != kInt64 && indices.dtype() != kInt32)
        throw std::invalid_argument("Embedding: the indices must be int64 or int32, got " + describe(indices) +
                                    "; convert them with .to(tg::kInt64)");
    const Tensor flat = indices.reshape({-1});
    Tensor rows = index_select(weight, 0, flat);
    // The padding row's lookups are taken from the detached weight: the same values, no gradient.
    if (padding_idx) rows = where(eq(flat, static_cast<double>(*padding_idx)).unsqueeze(1), rows.detach(), rows);
    Shape shape = indices.shape();
    shape.push_back(weight.size(1));
    return rows.view(shape);
}

void Embedding::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::Embedding(num_embeddings=" << weight.size(0) << ", embedding_dim=" << weight.size(1);
    if (padding_idx) stream << ", padding_idx=" << *padding_idx;
    stream << ")";
}

void ModuleList::push_back(std::shared_ptr<Module> module) {
    if (!module) throw std::invalid_argument("ModuleList::push_back: the module is empty (a null pointer or holder)");
    register_module(std::to_string(modules_.size()), module);
    modules_.push_back(std::move(module));
}

std::shared_ptr<Module> ModuleList::ptr(std::size_t i) const {
    if (i >= modules_.size())
        throw std::out_of_range("ModuleList: index " + std::to_string(i) + " is out of range for a list of " +
                                std::to_string(modules_.size()) + " modules");
    return modules_[i];
}

void ModuleList::throw_bad_at(std::size_t i) const {
    throw std::invalid_argument("ModuleList::at: module " + std::to_string(i) + " is of another type");
}

Tensor ModuleList::forward(const Tensor&) {
    throw std::logic_error("ModuleList has no forward: call its modules (for (const auto& m : *list) x = (*m)(x);)");
}

Conv1d::Conv1d(const Conv1dOptions& options, Generator& gen)
    : Module("Conv1d"), stride(options.stride()), padding(options.padding()), dilation(options.dilation()), groups(options.groups()) {
    const int64_t in = options.in_channels(), out = options.out_channels(), k = options.kernel_size();
    if (in <= 0 || out <= 0 || k <= 0 || groups <= 0 || stride <= 0 || dilation <= 0 || padding < 0)
        throw std::invalid_argument("Conv1d: in_channels, out_channels, kernel_size, groups, stride and dilation must be "
                                    "positive and padding non-negative, got " + std::to_string(in) + ", " + std::to_string(out) +
                                    ", " + std::to_string(k) + ", " + std::to_string(groups) + ", " + std::to_string(stride) +
                                    ", " + std::to_string(dilation) + " and " + std::to_string(padding));
    if (in % groups || out % groups)
        throw std::invalid_argument("Conv1d: in_channels (" + std::to_string(in) + ") and out_channels (" + std::to_string(out) +
                                    ") must be divisible by groups (" + std::to_string(groups) + ")");
    weight = register_parameter("weight", empty({out, in / groups, k}));
    if (options.bias()) bias = register_parameter("bias", empty({out}));
    init::reset_like_pytorch(weight, bias, gen);
}

Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Generator& gen)
    : Conv1d(Conv1dOptions(in_channels, out_channels, kernel_size), gen) {}

Tensor Conv1d::forward(const Tensor& x) {
    const int64_t channels = weight.size(1) * groups;
    if ((x.dim() != 2 && x.dim() != 3) || x.size(-2) != channels)
        throw std::invalid_argument("Conv1d: expected an input [N, " + std::to_string(channels) + ", L] or [" +
                                    std::to_string(channels) + ", L] for weight " + describe(weight) + ", got " + describe(x));
    const bool batched = x.dim() == 3;
    const Tensor rows = (batched ? x : x.unsqueeze(0)).unsqueeze(2);  // [N, C, 1, L]
    const Tensor y = conv2d(rows, weight.unsqueeze(2), bias,
                            {.stride = Pair(1, stride), .padding = Pair(0, padding), .dilation = Pair(1, dilation), .groups = groups})
                         .squeeze(2);
    return batched ? y : y.squeeze(0);
}

void Conv1d::pretty_print(std::ostream& stream) const {
    stream << "tg::nn::Conv1d(" << weight.size(1) * groups << ", " << weight.size(0) << ", kernel_size=[" << weight.size(2)
           << "], stride=[" << stride << "]";
    if (padding != 0) stream << ", padding=[" << padding << "]";
    if (dilation != 1) stream << ", dilation=[" << dilation << "]";
    if (groups != 1) stream << ", groups=" << groups;
    if (!bias.defined()) stream << ", bias=false";
    stream << ')';
}

Tensor Softmax::forward(const Tensor& x) { return softmax(x, dim); }
Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x, dim); }

}  // namespace tapegrad::nn
