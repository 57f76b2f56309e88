#include "nn/libtorch_serialize.hpp"

#include <stdexcept>
#include <utility>

#include "nn/optimizer.hpp"
#include "nn/serialize.hpp"

namespace tapegrad::libtorch {
namespace {

// The entry that says what a torch::save file holds, and the prefix of the entries it holds.
const std::string kKindKey = "torch::save";
enum class Kind : int64_t { Module = 1, Optimizer = 2, Tensor = 3, Tensors = 4 };

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::Module: return "a module";
        case Kind::Optimizer: return "an optimizer";
        case Kind::Tensor: return "a tensor";
        case Kind::Tensors: return "a list of tensors";
    }
    return "something unknown";
}

std::string prefix_of(Kind kind) {
    switch (kind) {
        case Kind::Module: return "module.";
        case Kind::Optimizer: return "optimizer.";
        case Kind::Tensor: return "tensor";
        case Kind::Tensors: return "tensors.";
    }
    return "";
}

void save_as(Kind kind, const nn::NamedTensors& entries, const std::string& path) {
    nn::NamedTensors all;
    all.reserve(entries.size() + 1);
    all.emplace_back(kKindKey, scalar_tensor(static_cast<double>(kind), {.dtype = kInt64}));
    for (const auto& [name, tensor] : entries) {
        if (!tensor.defined())
            throw std::invalid_argument("torch::save: " + std::string(kind_name(kind)) + "'s entry '" + name + "' for " + path +
                                        " is an undefined tensor; save defined tensors only");
        all.emplace_back(prefix_of(kind) + name, tensor.detach());
    }
    nn::save(all, path);
}

// The entries of a torch::save file of `kind`, their prefix taken off; anything else is refused,
// naming the file.
nn::NamedTensors load_as(Kind kind, const std::string& path) {
    const nn::NamedTensors all = nn::load(path);
    const std::string context = "torch::load: " + path;
    if (all.empty() || all.front().first != kKindKey || all.front().second.numel() != 1 ||
        all.front().second.dtype() != kInt64)
        throw std::runtime_error(context +
                                 " was not written by torch::save (it has no kind entry); a training checkpoint "
                                 "(tg::nn::save_checkpoint) loads with tg::nn::load_checkpoint, named tensors "
                                 "(tg::nn::save) with tg::nn::load");
    const auto stored = static_cast<Kind>(static_cast<int64_t>(all.front().second.item()));
    if (stored != kind)
        throw std::runtime_error(context + " holds " + kind_name(stored) + ", not " + kind_name(kind) +
                                 "; load it into what saved it");
    const std::string prefix = prefix_of(kind);
    nn::NamedTensors entries;
    for (std::size_t i = 1; i < all.size(); ++i) {
        const auto& [name, tensor] = all[i];
        if (name.rfind(prefix, 0) != 0)
            throw std::runtime_error(context + ": unexpected entry '" + name + "' in a file of " + kind_name(kind));
        entries.emplace_back(name.substr(prefix.size()), tensor);
    }
    return entries;
}

}  // namespace

void save(const nn::Module& module, const std::string& path) { save_as(Kind::Module, module.state_dict(), path); }

void load(nn::Module& module, const std::string& path) {
    const nn::NamedTensors state = load_as(Kind::Module, path);
    try {
        module.load_state_dict(state, /*strict=*/true);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("torch::load: " + path + ": " + e.what());
    }
}

void save(const nn::Optimizer& optimizer, const std::string& path) { save_as(Kind::Optimizer, optimizer.state_dict(), path); }

void load(nn::Optimizer& optimizer, const std::string& path) {
    const nn::NamedTensors state = load_as(Kind::Optimizer, path);
    try {
        optimizer.load_state_dict(state);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("torch::load: " + path + ": " + e.what());
    }
}

void save(const Tensor& tensor, const std::string& path) { save_as(Kind::Tensor, {{"", tensor}}, path); }

void load(Tensor& tensor, const std::string& path) {
    nn::NamedTensors entries = load_as(Kind::Tensor, path);
    if (entries.size() != 1 || !entries.front().first.empty())
        throw std::runtime_error("torch::load: " + path + " holds " + std::to_string(entries.size()) +
                                 " entries where a tensor file holds one");
    tensor = std::move(entries.front().second);
}

void save(const std::vector<Tensor>& tensors, const std::string& path) {
    nn::NamedTensors entries;
    entries.reserve(tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) entries.emplace_back(std::to_string(i), tensors[i]);
    save_as(Kind::Tensors, entries, path);
}

void load(std::vector<Tensor>& tensors, const std::string& path) {
    nn::NamedTensors entries = load_as(Kind::Tensors, path);
    std::vector<Tensor> loaded;
    loaded.reserve(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].first != std::to_string(i))
            throw std::runtime_error("torch::load: " + path + ": entry '" + entries[i].first + "' where entry '" +
                                     std::to_string(i) + "' of the list belongs");
        loaded.push_back(std::move(entries[i].second));
    }
    tensors = std::move(loaded);
}

}  // namespace tapegrad::libtorch
