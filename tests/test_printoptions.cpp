// tg::set_printoptions against PyTorch 1.13's torch.set_printoptions: tests/libtorch_spellings_reference.py
// writes tests/printoptions_reference.txt, PyTorch's repr of each tensor after the same calls.
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "tapegrad.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;

namespace {

// PyTorch's repr of each case in tests/printoptions_reference.txt.
std::string printed_by_pytorch(const std::string& name) {
    std::istringstream in(tg::testing::slurp(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/printoptions_reference.txt"));
    std::string line, text;
    bool inside = false;
    while (std::getline(in, line)) {
        if (line == "case " + name) inside = true;
        else if (inside && line == "end") return text;
        else if (inside) text += (text.empty() ? "" : "\n") + line;
    }
    FAIL("no case " << name);
    return "";
}

struct DefaultPrintOptions {
    ~DefaultPrintOptions() { tg::set_printoptions({.profile = "default"}); }
};

}  // namespace

TEST_CASE("libtorch spellings: set_printoptions changes what std::cout << x prints as PyTorch's does") {
    DefaultPrintOptions restore;
    tg::set_printoptions({.precision = 2});
    CHECK(tg::to_string(tg::tensor({1.23456, 2.5, -0.001, 10.0})) == printed_by_pytorch("precision_2"));
    tg::set_printoptions({.sci_mode = false});  // the precision stays 2
    CHECK(tg::to_string(tg::tensor({1e-6, 1.0, 2.0})) == printed_by_pytorch("precision_2_sci_off"));
    tg::set_printoptions({.profile = "default", .sci_mode = true});
    CHECK(tg::to_string(tg::tensor({{1.5, 2.0}, {-3.25, 4.0}})) == printed_by_pytorch("default_sci_on"));
    tg::set_printoptions({.profile = "short"});
    CHECK(tg::to_string(tg::arange(2000).reshape({40, 50})) == printed_by_pytorch("short_summarised"));
    tg::set_printoptions({.threshold = 5, .edgeitems = 1, .linewidth = 30, .profile = "default"});
    CHECK(tg::to_string(tg::arange(10) / 3.0) == printed_by_pytorch("threshold_edgeitems_linewidth"));
    tg::set_printoptions({.profile = "full"});
    CHECK(tg::to_string(tg::arange(1002, tg::kLong)) == printed_by_pytorch("full"));
    CHECK_THROWS_WITH_AS(tg::set_printoptions({.profile = "long"}), doctest::Contains("profile must be"), std::invalid_argument);
    CHECK_THROWS_AS(tg::set_printoptions({.precision = -1}), std::invalid_argument);
    tg::set_printoptions({.profile = "default"});
    CHECK(tg::to_string(tg::tensor({1.5})) == "tensor([1.5000])");
}
