#include "nn/libtorch_layers.hpp"

#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "ops/compare.hpp"
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

Tensor Softmax::forward(const Tensor& x) { return softmax(x, dim); }
Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x, dim); }

}  // namespace tapegrad::nn
