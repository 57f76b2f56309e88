#pragma once
// Reading tests/optim/optim_reference.tgck (written by tests/optim/make_reference.py, which
// describes every entry) and comparing against it.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "nn/serialize.hpp"

namespace tapegrad::testing {

inline const std::map<std::string, tapegrad::Tensor>& reference() {
    static const std::map<std::string, tapegrad::Tensor> ref = [] {
        std::map<std::string, tapegrad::Tensor> out;
        for (auto& [name, t] : tapegrad::nn::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/optim/optim_reference.tgck"))
            out[name] = t;
        return out;
    }();
    return ref;
}

inline tapegrad::Tensor expected(const std::string& name) {
    const auto it = reference().find(name);
    REQUIRE_MESSAGE(it != reference().end(), "no reference entry ", name);
    return it->second;
}

// Row `i` of a reference tensor whose first dimension counts steps.
inline std::vector<double> row(const tapegrad::Tensor& t, int64_t i) {
    const std::vector<double> all = t.to_vector<double>();
    const int64_t n = t.numel() / t.shape()[0];
    return {all.begin() + i * n, all.begin() + (i + 1) * n};
}

inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol) {
    REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < got.size(); ++k)
        CHECK_MESSAGE(std::abs(got[k] - want[k]) <= atol + rtol * std::abs(want[k]), "element ", k, ": ", got[k],
                      " vs PyTorch's ", want[k]);
}

}  // namespace tapegrad::testing
