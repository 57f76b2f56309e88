// The one driver over the op registry (see tests/registry/op_registry.hpp).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "engine/autograd.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "engine/gradcheck.hpp"
#include "engine/tensor_math.hpp"
#include "ops/arithmetic.hpp"
#include "ops/detail/op.hpp"
#include "ops/view.hpp"
#include "tests/registry/op_registry.hpp"

namespace tg = tapegrad;
using tg::Tensor;
using tg::testing::OpCase;

namespace {

// Output and input gradients for a fixed random grad_output.
struct Run {
    Tensor out;
    std::vector<Tensor> grads;
};

Run run(const OpCase& c, const std::vector<Tensor>& in, const Tensor& grad_output_seed) {
    Run r;
    r.out = c.fn(in);
    std::vector<Tensor> wrt;
    for (const auto& t : in)
        if (t.requires_grad()) wrt.push_back(t);
    if (wrt.empty()) return r;
    Tensor g = grad_output_seed.defined() ? grad_output_seed : tg::ones_like(r.out);
    r.grads = tg::grad({r.out}, wrt, {g}, false, /*create_graph=*/false, /*allow_unused=*/true);
    return r;
}

Tensor random_like(const Tensor& t, uint64_t seed) {
    tg::Generator gen(seed);
    return tg::randn(t.shape(), gen, {.dtype = t.dtype()});
}

void compare(const OpCase& c, const Run& fast, const Run& ref, const char* layout) {
    INFO(c.name, " (", layout, ")");
    REQUIRE(fast.out.shape() == ref.out.shape());
    CHECK_MESSAGE(tg::allclose(fast.out, ref.out, c.rtol, c.atol),
                  "forward differs by " << tg::max_abs_diff(fast.out, ref.out));
    REQUIRE(fast.grads.size() == ref.grads.size());
    for (std::size_t i = 0; i < fast.grads.size(); ++i) {
        if (!ref.grads[i].defined()) continue;
        REQUIRE(fast.grads[i].defined());
        CHECK_MESSAGE(tg::allclose(fast.grads[i], ref.grads[i], c.rtol, c.atol),
                      "gradient " << i << " differs by " << tg::max_abs_diff(fast.grads[i], ref.grads[i]));
    }
}

}  // namespace

TEST_CASE("registry: every op passes gradcheck in float64") {
    REQUIRE(!tg::testing::op_registry().empty());
    for (const OpCase& c : tg::testing::op_registry()) {
        if (c.zero_size) continue;  // nothing to differentiate; the zero-size test runs these
        INFO(c.name);
        auto in = tg::testing::make_case_inputs(c, tg::kFloat64, 1);
        auto r = tg::gradcheck(c.fn, in, {.fast_mode = c.gradcheck_fast_mode});
        CHECK_MESSAGE(r.passed, c.name << ": " << r.message);
    }
    MESSAGE(tg::testing::op_registry().size() << " op cases checked");
}

TEST_CASE("registry: every op passes gradgradcheck in float64") {
    int checked = 0;
    for (const OpCase& c : tg::testing::op_registry()) {
        if (c.zero_size) continue;
        INFO(c.name);
        auto in = tg::testing::make_case_inputs(c, tg::kFloat64, 1);
        auto r = tg::gradgradcheck(c.fn, in, Tensor(), {.fast_mode = c.gradcheck_fast_mode});
        CHECK_MESSAGE(r.passed, c.name << ": " << r.message);
        ++checked;
    }
    MESSAGE(checked << " op cases checked to second order");
}

TEST_CASE("registry: fast float32 kernels equal the reference kernels, in every layout") {
    for (const OpCase& c : tg::testing::op_registry()) {
        auto in = tg::testing::make_case_inputs(c, tg::kFloat32, 2);
        Tensor probe;
        {
            tg::NoGradGuard no_grad;
            probe = c.fn(in);
        }
        const Tensor g = random_like(probe, 3);
        Run ref;
        {
            tg::ReferenceKernelsGuard reference;
            ref = run(c, in, g);
        }
        compare(c, run(c, in, g), ref, "row-major");
        // The same values, with every 4-D input stored channels-last.
        bool any_4d = false;
        std::vector<Tensor> cl;
        for (const auto& t : in) {
            if (t.defined() && t.dim() == 4) {
                any_4d = true;
                Tensor v = t.detach().contiguous(tg::MemoryFormat::ChannelsLast);
                v.requires_grad_(t.requires_grad());
                cl.push_back(v);
            } else {
                cl.push_back(t);
            }
        }
        if (any_4d) compare(c, run(c, cl, g), ref, "channels-last");
    }
}

// An op's derivative is written once in differentiable ops (the spec, which create_graph
// records); a fused kernel backward, where an op has one, must give the same gradients.
TEST_CASE("registry: the fused backward equals the spec the op records under create_graph") {
    for (const OpCase& c : tg::testing::op_registry()) {
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
            INFO(c.name, " ", tg::dtype_name(dtype));
            const auto in = tg::testing::make_case_inputs(c, dtype, 11);
            std::vector<Tensor> wrt;
            for (const auto& t : in)
                if (t.defined() && t.requires_grad()) wrt.push_back(t);
            if (wrt.empty()) continue;
            const Tensor out = c.fn(in);
            const Tensor g = random_like(out, 12);
            const auto fused = tg::grad({out}, wrt, {g}, true, /*create_graph=*/false, /*allow_unused=*/true);
            const auto spec = tg::grad({out}, wrt, {g}, false, /*create_graph=*/true, /*allow_unused=*/true);
            REQUIRE(fused.size() == spec.size());
            const double tol = dtype == tg::kFloat64 ? 1e-10 : c.rtol;
            for (std::size_t i = 0; i < fused.size(); ++i) {
                REQUIRE(fused[i].defined() == spec[i].defined());
                if (!fused[i].defined()) continue;
                CHECK_MESSAGE(tg::allclose(fused[i], spec[i].detach(), tol, dtype == tg::kFloat64 ? 1e-10 : c.atol),
                              "gradient " << i << " differs by " << tg::max_abs_diff(fused[i], spec[i].detach()));
            }
        }
    }
}

TEST_CASE("registry: backward is linear in grad_output") {
    for (const OpCase& c : tg::testing::op_registry()) {
        INFO(c.name);
        auto in = tg::testing::make_case_inputs(c, tg::kFloat64, 4);
        Tensor probe;
        {
            tg::NoGradGuard no_grad;
            probe = c.fn(in);
        }
        const Tensor g1 = random_like(probe, 5), g2 = random_like(probe, 6);
        const double a = 0.7, b = -1.3;
        Run r1 = run(c, in, g1), r2 = run(c, in, g2), r12 = run(c, in, g1 * a + g2 * b);
        for (std::size_t i = 0; i < r1.grads.size(); ++i) {
            if (!r1.grads[i].defined()) continue;
            Tensor combined = r1.grads[i] * a + r2.grads[i] * b;
            CHECK_MESSAGE(tg::allclose(r12.grads[i], combined, 1e-9, 1e-9),
                          c.name << ": gradient " << i << " is not linear in grad_output");
        }
    }
}

namespace {

// The inputs of a row with requires_grad only on the ones in `subset` (bit i: input i).
std::vector<Tensor> with_grad_subset(const OpCase& c, tg::DType dtype, uint64_t seed, unsigned subset) {
    std::vector<Tensor> in = tg::testing::make_case_inputs(c, dtype, seed);
    for (std::size_t i = 0; i < in.size(); ++i)
        if (in[i].defined()) in[i] = in[i].detach().requires_grad_(in[i].requires_grad() && ((subset >> i) & 1));
    return in;
}

std::vector<std::size_t> differentiable_inputs(const OpCase& c, const std::vector<Tensor>& in) {
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < in.size(); ++i)
        if (in[i].requires_grad()) idx.push_back(i);
    return idx;
}

bool has_nan(const Tensor& t) {
    for (double v : t.to_vector<double>())
        if (v != v) return true;
    return false;
}

}  // namespace

TEST_CASE("registry: every subset of the inputs requiring grad gives the same gradients") {
    int checked = 0;
    for (const OpCase& c : tg::testing::op_registry()) {
        INFO(c.name);
        const std::vector<Tensor> all = tg::testing::make_case_inputs(c, tg::kFloat64, 7);
        const std::vector<std::size_t> diff = differentiable_inputs(c, all);
        if (diff.size() < 2) continue;
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
            const std::vector<Tensor> full_in = tg::testing::make_case_inputs(c, dtype, 7);
            Tensor probe;
            {
                tg::NoGradGuard no_grad;
                probe = c.fn(full_in);
            }
            const Tensor g = random_like(probe, 8);
            const Run full = run(c, full_in, g);
            for (unsigned subset = 1; subset + 1 < (1u << all.size()); ++subset) {
                const std::vector<Tensor> in = with_grad_subset(c, dtype, 7, subset);
                if (differentiable_inputs(c, in).empty()) continue;
                INFO("subset mask ", subset, ", ", tg::dtype_name(dtype));
                Run part;
                CHECK_NOTHROW(part = run(c, in, g));
                // run() returns gradients for the inputs that require grad, in order.
                std::size_t k = 0;
                for (std::size_t j = 0; j < diff.size(); ++j) {
                    if (!in[diff[j]].requires_grad()) continue;
                    REQUIRE(k < part.grads.size());
                    const Tensor& got = part.grads[k++];
                    const Tensor& want = full.grads[j];
                    if (!want.defined()) continue;
                    REQUIRE(got.defined());
                    CHECK_MESSAGE(tg::allclose(got, want, c.rtol, c.atol),
                                  "input " << diff[j] << " differs by " << tg::max_abs_diff(got, want));
                }
                ++checked;
            }
        }
    }
    MESSAGE(checked << " partial requires_grad runs checked");
    CHECK((checked > 0 || !tg::testing::selected_op().empty()));  // one op may have no such row
}

TEST_CASE("registry: a NaN in the first input reaches the output, in both kernels and dtypes") {
    for (const OpCase& c : tg::testing::op_registry()) {
        if (!c.nan_propagates || c.zero_size) continue;
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
            for (bool reference : {false, true}) {
                INFO(c.name, ", ", tg::dtype_name(dtype), reference ? ", reference" : ", fast");
                std::vector<Tensor> in = tg::testing::make_case_inputs(c, dtype, 9);
                REQUIRE(!in.empty());
                Tensor poisoned = in[0].detach().clone();
                {
                    tg::NoGradGuard no_grad;
                    tg::as_strided(poisoned, {1}, {1}).fill_(std::numeric_limits<double>::quiet_NaN());
                }
                poisoned.requires_grad_(in[0].requires_grad());
                in[0] = poisoned;
                tg::ReferenceKernelsGuard guard(reference);
                CHECK(has_nan(c.fn(in)));
            }
        }
    }
}

TEST_CASE("registry: zero-size rows run forward and backward, in both kernels") {
    int rows = 0;
    for (const OpCase& c : tg::testing::op_registry()) {
        if (!c.zero_size) continue;
        ++rows;
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
            for (bool reference : {false, true}) {
                INFO(c.name, ", ", tg::dtype_name(dtype), reference ? ", reference" : ", fast");
                tg::ReferenceKernelsGuard guard(reference);
                const std::vector<Tensor> in = tg::testing::make_case_inputs(c, dtype, 10);
                Run r;
                REQUIRE_NOTHROW(r = run(c, in, Tensor()));
                std::size_t k = 0;
                for (const Tensor& t : in) {
                    if (!t.requires_grad()) continue;
                    REQUIRE(k < r.grads.size());
                    if (r.grads[k].defined()) CHECK(r.grads[k].shape() == t.shape());
                    ++k;
                }
            }
        }
    }
    MESSAGE(rows << " zero-size rows");
    CHECK((rows > 0 || !tg::testing::selected_op().empty()));  // one op may have no such row
}

namespace {

std::string read_file(const std::filesystem::path& p) {
    std::ifstream f(p);
    REQUIRE_MESSAGE(f.good(), "cannot read " << p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::set<std::string> matches(const std::string& text, const std::regex& re) {
    std::set<std::string> out;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
        out.insert((*it)[1].str());
    return out;
}

std::string joined(const std::set<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

}  // namespace

TEST_CASE("registry: every op in ops/ has a registry row and a derivatives.md row, and the reverse") {
    if (!tg::testing::selected_op().empty()) return;  // TAPEGRAD_OP keeps one op's rows
    const std::filesystem::path root = TAPEGRAD_SOURCE_DIR;
    // The ops: functions returning a tensor (or indices, or pieces, or a tensor and its indices, or values and indices) declared at namespace level in ops/*.hpp,
    // and Tensor's in-place members.
    std::set<std::string> ops;
    for (const auto& entry : std::filesystem::directory_iterator(root / "ops")) {
        if (entry.path().extension() != ".hpp") continue;
        for (const auto& n : matches(read_file(entry.path()), std::regex(R"((?:^|\n)(?:Tensor|std::vector<int64_t>|std::vector<Tensor>|std::tuple<Tensor, Tensor>|ValuesIndices) (\w+)\()")))
            ops.insert(n);
    }
    for (const auto& n : matches(read_file(root / "engine" / "tensor.hpp"), std::regex(R"(\n    Tensor& (\w+_)\()")))
        if (n != "requires_grad_") ops.insert(n);  // a flag, not an op
    REQUIRE(ops.size() > 30);

    std::set<std::string> rows;
    for (const OpCase& c : tg::testing::op_registry()) rows.insert(c.name.substr(0, c.name.find('/')));

    // docs/derivatives.md: the first cell of each table row, "reshape / view / flatten" naming three.
    std::set<std::string> documented;
    const std::string doc = read_file(root / "docs" / "derivatives.md");
    for (const auto& cell : matches(doc, std::regex(R"(\n\| ([^|]+?) \|)"))) {
        std::stringstream parts(cell);
        std::string part;
        while (std::getline(parts, part, '/')) {
            std::smatch m;
            if (std::regex_search(part, m, std::regex(R"(([a-z][a-z_0-9]*))"))) documented.insert(m[1].str());
        }
    }
    documented.erase("op");  // the header row

    // argmax and argmin return indices, the comparisons, logical and bitwise ops, any and all return
    // bool or integer tensors, and bernoulli draws: none has a gradient, so each is documented, but
    // has no registry row (tests/test_masks.cpp checks them against PyTorch).
    const std::set<std::string> no_row = {"argmax", "argmin", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                                          "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor",
                                          "bitwise_not", "any", "all", "bernoulli", "bernoulli_"};
    std::set<std::string> missing_row, missing_doc, unknown_row, unknown_doc;
    for (const auto& op : ops) {
        if (!rows.count(op) && !no_row.count(op)) missing_row.insert(op);
        if (!documented.count(op)) missing_doc.insert(op);
    }
    for (const auto& r : rows)
        if (!ops.count(r)) unknown_row.insert(r);
    for (const auto& d : documented)
        if (!ops.count(d)) unknown_doc.insert(d);
    CHECK_MESSAGE(missing_row.empty(), "ops without a registry row: " << joined(missing_row));
    CHECK_MESSAGE(missing_doc.empty(), "ops without a docs/derivatives.md row: " << joined(missing_doc));
    CHECK_MESSAGE(unknown_row.empty(), "registry rows for no op declared in ops/: " << joined(unknown_row));
    CHECK_MESSAGE(unknown_doc.empty(), "docs/derivatives.md rows for no op declared in ops/: " << joined(unknown_doc));
}

// docs/derivatives.md checked formula by formula. Every op definition writes its gradient as the
// document states it, next to its spec (`static constexpr const char* gradient`, declared by the
// op entry the first time the definition runs: ops/detail/op.hpp). The test runs every registry
// row forward, in both dtypes, and backward with create_graph, so that every definition taking
// part declares itself, then requires:
//   - each declared gradient to be, character for character, the gradient cell of a row of the
//     document that names the op;
//   - each row's gradient cell to be declared by a definition of an op the row names, except the
//     rows that state no formula of their own (no gradient, a composition, another row's again),
//     the in-place ops that run their out-of-place op's definition, and the rows whose op
//     goes by another name in its definition (kNotDeclaring).
namespace {

// The ops whose rows name an op that no definition is called: to_dtype's definition is `to`.
const std::set<std::string> kNotDeclaring = {"to_dtype"};

struct Row {
    int line;
    std::set<std::string> ops;  // "max (all elements) / min (all elements)" names max and min
    std::string gradient;       // the cell, "\|" read as "|"
};

std::string trimmed(const std::string& s) {
    const auto first = s.find_first_not_of(' ');
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(' ') - first + 1);
}

// A table line's cells; "\|" inside a cell is a literal bar.
std::vector<std::string> cells(const std::string& line) {
    std::vector<std::string> out;
    std::string cell;
    for (std::size_t i = 1; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
            cell += '|';
            ++i;
        } else if (line[i] == '|') {
            out.push_back(trimmed(cell));
            cell.clear();
        } else {
            cell += line[i];
        }
    }
    return out;
}

// The rows of the four-column tables (op | forward | gradient | shapes).
std::vector<Row> document_rows(const std::string& doc) {
    std::vector<Row> rows;
    std::istringstream lines(doc);
    std::string line;
    for (int n = 1; std::getline(lines, line); ++n) {
        if (line.rfind("| ", 0) != 0) continue;
        const std::vector<std::string> c = cells(line);
        if (c.size() != 4 || c[0] == "op") continue;
        Row row{n, {}, c[2]};
        std::stringstream parts(c[0]);
        std::string part;
        while (std::getline(parts, part, '/')) {
            std::smatch m;
            if (std::regex_search(part, m, std::regex(R"(([a-z][a-z_0-9]*))"))) row.ops.insert(m[1].str());
        }
        rows.push_back(row);
    }
    return rows;
}

// Rows that state no formula of their own: no gradient, a composition of other ops, or another
// row's gradient again ("as nearest", "values: as max (min)").
bool states_no_formula(const Row& row) {
    for (const char* prefix : {"none", "composed of", "as ", "values: as "})
        if (row.gradient.rfind(prefix, 0) == 0) return true;
    return false;
}

// The in-place ops that compute their out-of-place op (add_ is add's definition, written back):
// their rows restate its gradient.
bool runs_out_of_place_definition(const Row& row, const std::map<std::string, std::set<std::string>>& declared) {
    for (const std::string& op : row.ops)
        if (op.back() != '_' || declared.count(op)) return false;
    return true;
}

// Runs every row once forward in float32 and float64, and backward with create_graph in float64,
// so that the definitions each takes part in (its spec's ops included) declare their gradients.
void run_every_row() {
    for (const OpCase& c : tg::testing::op_registry()) {
        for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
            const auto in = tg::testing::make_case_inputs(c, dtype, 5);
            const Tensor out = c.fn(in);
            if (dtype != tg::kFloat64 || !out.requires_grad()) continue;
            std::vector<Tensor> wrt;
            for (const auto& t : in)
                if (t.defined() && t.requires_grad()) wrt.push_back(t);
            (void)tg::grad({out}, wrt, {tg::ones_like(out)}, false, /*create_graph=*/true, /*allow_unused=*/true);
        }
    }
}

}  // namespace

TEST_CASE("registry: every gradient in docs/derivatives.md is the one its op's definition declares, and the reverse") {
    if (!tg::testing::selected_op().empty()) return;  // TAPEGRAD_OP keeps one op's rows: not every definition runs
    run_every_row();
    std::map<std::string, std::set<std::string>> declared;  // op -> the gradients its definitions declare
    for (const auto& [op, gradient] : tg::detail::declared_gradients()) declared[op].insert(gradient);
    REQUIRE(declared.size() > 30);

    const std::vector<Row> rows = document_rows(read_file(std::filesystem::path(TAPEGRAD_SOURCE_DIR) / "docs" / "derivatives.md"));
    REQUIRE(rows.size() > 50);
    for (const auto& [op, gradients] : declared) {
        for (const std::string& gradient : gradients) {
            bool found = false;
            for (const Row& row : rows) found = found || (row.ops.count(op) && row.gradient == gradient);
            CHECK_MESSAGE(found, op << "'s definition declares the gradient \"" << gradient
                                    << "\", which no docs/derivatives.md row for " << op << " states");
        }
    }
    for (const Row& row : rows) {
        if (states_no_formula(row) || runs_out_of_place_definition(row, declared)) continue;
        bool found = false, excused = false;
        for (const std::string& op : row.ops) {
            found = found || (declared.count(op) && declared.at(op).count(row.gradient));
            excused = excused || kNotDeclaring.count(op);
        }
        CHECK_MESSAGE((found || excused), "docs/derivatives.md line " << row.line << ": no definition of "
                                                                     << *row.ops.begin() << " declares \"" << row.gradient << "\"");
    }
    for (const std::string& op : kNotDeclaring)
        CHECK_MESSAGE(!declared.count(op), op << " declares its gradient now: take it off kNotDeclaring");
}
