#pragma once
// Values PyTorch computed, read from a reference file its script wrote (one line per tensor):
//   <name> <shape, as d0xd1x... or "scalar"> <values, row-major; nan and inf as Python writes them>
// check() asserts that a tapegrad tensor has the shape and, within float tolerance, the values.
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "engine/tensor.hpp"
#include "tests/text_files.hpp"

namespace tapegrad::testing {

class ReferenceValues {
public:
    // `file` relative to the repository root ("tests/tensor_members_reference.txt").
    explicit ReferenceValues(const std::string& file) {
        std::istringstream in(slurp(std::string(TAPEGRAD_SOURCE_DIR) + "/" + file));
        for (std::string line; std::getline(in, line);) {
            std::istringstream words(line);
            std::string name, shape, word;
            words >> name >> shape;
            Entry e;
            if (shape != "scalar") {
                std::istringstream dims(shape);
                for (std::string d; std::getline(dims, d, 'x');) e.shape.push_back(std::stoll(d));
            }
            while (words >> word) e.values.push_back(std::strtod(word.c_str(), nullptr));  // reads nan and inf
            entries_[name] = e;
        }
    }

    // The reference as a float64 tensor (inputs and weights the script drew).
    Tensor tensor(const std::string& name) const {
        const Entry& e = entry(name);
        return from_vector(e.values, e.shape, {.dtype = kFloat64});
    }

    // t has PyTorch's shape and values (NaN where PyTorch has NaN), within rtol.
    void check(const Tensor& t, const std::string& name, double rtol = 1e-6) const {
        INFO(name);
        const Entry& e = entry(name);
        REQUIRE(t.defined());
        CHECK(t.shape() == e.shape);
        const auto got = t.to_vector<double>();
        REQUIRE(got.size() == e.values.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            INFO("element " << i << ": " << got[i] << " against " << e.values[i]);
            if (std::isnan(e.values[i])) CHECK(std::isnan(got[i]));
            else CHECK(std::abs(got[i] - e.values[i]) <= 1e-12 + rtol * std::abs(e.values[i]));
        }
    }

private:
    struct Entry {
        Shape shape;
        std::vector<double> values;
    };
    const Entry& entry(const std::string& name) const {
        INFO(name);
        REQUIRE(entries_.count(name) == 1);
        return entries_.at(name);
    }
    std::map<std::string, Entry> entries_;
};

}  // namespace tapegrad::testing
