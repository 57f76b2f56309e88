// A module's state: state_dict, and load_state_dict checked whole before any tensor is written
// (keys, shapes, dtypes), so that a refused load leaves the module as it was.
#include "nn/module.hpp"

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad::nn {
namespace {
bool shares_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage == b.impl()->storage; }
}  // namespace

NamedTensors Module::state_dict() const {
    NamedTensors out;
    collect("", out, true, true);
    for (auto& [_, t] : out) t = t.detach();
    return out;
}

LoadResult Module::load_state_dict(const NamedTensors& dict, bool strict) {
    PreparedLoad prepared = prepare_load(dict, strict);
    commit_load(prepared);
    return std::move(prepared.result);
}

Module::PreparedLoad Module::prepare_load(const NamedTensors& dict, bool strict) const {
    std::map<std::string, const Tensor*> given;
    for (const auto& [n, t] : dict) {
        if (!given.emplace(n, &t).second)
            throw std::invalid_argument("load_state_dict: the dictionary has '" + n + "' twice");
    }
    PreparedLoad prepared;
    LoadResult& result = prepared.result;
    NamedTensors own;
    collect("", own, true, true);
    std::map<std::string, Tensor> values_when_missing;
    collect_values_when_missing("", values_when_missing);
    std::vector<std::string> size_mismatches;
    for (const auto& [n, t] : own) {
        auto it = given.find(n);
        if (it == given.end()) {
            if (auto fallback = values_when_missing.find(n); fallback != values_when_missing.end())
                prepared.copies.emplace_back(t, fallback->second);
            else
                result.missing_keys.push_back(n);
            continue;
        }
        const Tensor& src = *it->second;
        if (!src.defined())
            throw std::invalid_argument("load_state_dict: '" + n + "' is an undefined tensor in the dictionary; give it a value " +
                                        tapegrad::to_string(t.shape()) + ", as state_dict() does, or leave it out with strict=false");
        if (src.shape() != t.shape()) {
            size_mismatches.push_back("size mismatch for '" + n + "': the checkpoint has " + tapegrad::to_string(src.shape()) +
                                      ", the model has " + tapegrad::to_string(t.shape()));
            given.erase(it);
            continue;
        }
        if (is_floating_point(t.dtype()) || src.dtype() == t.dtype()) {
            prepared.copies.emplace_back(t, src);
        } else {
            // Converted now rather than in commit_load, so that a value the integer tensor cannot
            // hold (NaN, 1e30) is refused before anything is written.
            try {
                prepared.copies.emplace_back(t, src.detach().to(t.dtype()));
            } catch (const std::invalid_argument& e) {
                throw std::invalid_argument("load_state_dict: '" + n + "': " + e.what());
            }
        }
        given.erase(it);
    }
    for (const auto& [n, _] : given) result.unexpected_keys.push_back(n);
    // Every problem in one message, as PyTorch's: a size mismatch is refused strict or not.
    auto join = [](const std::vector<std::string>& items, const char* separator) {
        std::string s;
        for (const auto& item : items) s += (s.empty() ? "" : separator) + item;
        return s.empty() ? std::string("none") : s;
    };
    const bool keys_differ = strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty());
    std::string problems;
    if (keys_differ)
        problems = "keys do not match (missing: " + join(result.missing_keys, ", ") + "; unexpected: " +
                   join(result.unexpected_keys, ", ") + "); pass strict=false to load the matching ones";
    if (!size_mismatches.empty())
        problems += (problems.empty() ? "" : "; ") + join(size_mismatches, "; ");
    if (!problems.empty()) throw std::invalid_argument("load_state_dict: " + problems);
    // A value that shares memory with any of the module's tensors (the module's own state_dict,
    // entries swapped between names) is copied first, so that no copy reads what another wrote.
    NoGradGuard no_grad;
    for (auto& [_, src] : prepared.copies)
        for (const auto& [n, t] : own)
            if (shares_storage(src, t)) {
                src = src.detach().clone();
                break;
            }
    return prepared;
}

void Module::commit_load(const PreparedLoad& prepared) {
    NoGradGuard no_grad;
    for (const auto& [dst, src] : prepared.copies) {
        copy_into(dst, src);
        dst.bump_version();
    }
}

}  // namespace tapegrad::nn
