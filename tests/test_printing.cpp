// Printing: every tensor in tests/printing_reference.txt (written by tests/printing_reference.py
// with PyTorch 1.13) prints as PyTorch's repr printed it.
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;

namespace {

struct PrintCase {
    std::string name;
    tg::DType dtype = tg::kFloat32;
    tg::Shape shape;
    bool requires_grad = false;
    bool times_two = false;
    std::vector<std::string> values;
    std::string repr;
};

std::vector<std::string> words_after(const std::string& line, const std::string& key) {
    REQUIRE_MESSAGE(line.rfind(key, 0) == 0, "expected '" << key << "', read '" << line << "'");
    std::istringstream in(line.substr(key.size()));
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    return words;
}

tg::DType dtype_named(const std::string& name) {
    for (tg::DType t : {tg::kFloat32, tg::kFloat64, tg::kInt32, tg::kInt64, tg::kBFloat16})
        if (name == tg::dtype_name(t)) return t;
    FAIL("unknown dtype " << name);
    return tg::kFloat32;
}

std::vector<PrintCase> read_cases() {
    std::istringstream in(tg::testing::slurp(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/printing_reference.txt"));
    std::vector<PrintCase> cases;
    for (std::string line; std::getline(in, line);) {
        PrintCase c;
        c.name = words_after(line, "case").at(0);
        std::getline(in, line);
        c.dtype = dtype_named(words_after(line, "dtype").at(0));
        std::getline(in, line);
        for (const auto& w : words_after(line, "shape")) c.shape.push_back(std::stoll(w));
        std::getline(in, line);
        c.requires_grad = words_after(line, "requires_grad").at(0) == "1";
        std::getline(in, line);
        c.times_two = words_after(line, "times_two").at(0) == "1";
        std::getline(in, line);
        c.values = words_after(line, "values");
        std::getline(in, line);
        REQUIRE(line == "repr");
        std::string repr;
        while (std::getline(in, line) && line != "end") repr += (repr.empty() ? "" : "\n") + line;
        c.repr = repr;
        cases.push_back(c);
    }
    return cases;
}

tg::Tensor build(const PrintCase& c) {
    tg::Tensor t;
    if (tg::is_floating_point(c.dtype)) {
        std::vector<double> v;
        for (const auto& w : c.values) v.push_back(std::strtod(w.c_str(), nullptr));  // float.hex: exact
        t = tg::from_vector(v, c.shape, {.dtype = c.dtype});
    } else {
        std::vector<int64_t> v;
        for (const auto& w : c.values) v.push_back(std::stoll(w));
        t = tg::from_vector(v, c.shape, {.dtype = c.dtype});
    }
    if (c.requires_grad) t.requires_grad_();
    return c.times_two ? t * 2.0 : t;
}

}  // namespace

TEST_CASE("printing: every reference tensor prints as PyTorch 1.13's repr") {
    const auto cases = read_cases();
    REQUIRE(cases.size() >= 30);
    for (const PrintCase& c : cases) {
        INFO(c.name);
        const tg::Tensor t = build(c);
        CHECK(tg::to_string(t) == c.repr);
    }
}

TEST_CASE("printing: operator<< writes what to_string returns and leaves the stream's flags alone") {
    const tg::Tensor t = tg::tensor({1e-6, 1.0});
    std::ostringstream os;
    os << 0.5 << ' ' << t << ' ' << 0.25;
    CHECK(os.str() == "0.5 tensor([1.0000e-06, 1.0000e+00]) 0.25");
}

TEST_CASE("printing: a non-contiguous view prints its own elements in order") {
    const tg::Tensor t = tg::tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}).t();
    CHECK(tg::to_string(t) == "tensor([[1., 4.],\n        [2., 5.],\n        [3., 6.]])");
}

TEST_CASE("printing: an undefined tensor") { CHECK(tg::to_string(tg::Tensor()) == "tensor(undefined)"); }
