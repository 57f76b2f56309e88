// docs/derivatives.md against the ops and their definitions: every op declared in ops/ has a
// registry row and a document row, and the rows of ops with a definition are the definitions' own
// (generated from them: TAPEGRAD_WRITE_DOCS=1 rewrites the file).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "engine/autograd.hpp"
#include "ops/detail/op.hpp"
#include "tests/registry/op_registry.hpp"

namespace tg = tapegrad;
using tg::Tensor;
using tg::testing::OpCase;

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

// docs/derivatives.md generated from the definitions. Every op definition declares its row next
// to its spec (`static constexpr DerivativeDoc doc`, declared by the op entry the first time the
// definition runs: ops/detail/op.hpp). The test runs every registry row forward, in both dtypes,
// and backward with create_graph, so that every definition taking part declares itself, then
// requires:
//   - the document to be what writing each declared row over the row with its op cell (or at the
//     end of its section's table, for an op that has none yet) gives: the document's rows are the
//     definitions' own, character for character;
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

// A table row's text for a declared row; a "|" inside a cell is written "\\|".
std::string row_text(const tg::detail::DerivativeDoc& doc) {
    std::string line = "|";
    for (const char* cell : {doc.op, doc.forward, doc.gradient, doc.shapes}) {
        line += ' ';
        for (const char* c = cell; *c; ++c) line += *c == '|' ? std::string("\\|") : std::string(1, *c);
        line += " |";
    }
    return line;
}

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

// The document with every declared row written over the row that has its op cell, or appended to
// its section's first table; `problems` gets a sentence for each row that cannot be placed.
std::string with_declared_rows(const std::string& doc, const std::map<std::string, tg::detail::DerivativeDoc>& declared,
                               std::vector<std::string>& problems) {
    std::vector<std::string> lines;
    std::istringstream in(doc);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::set<std::string> placed;
    for (std::string& line : lines) {
        if (line.rfind("| ", 0) != 0) continue;
        const std::vector<std::string> c = cells(line);
        if (c.size() != 4) continue;
        if (const auto it = declared.find(c[0]); it != declared.end()) {
            line = row_text(it->second);
            placed.insert(c[0]);
        }
    }
    for (const auto& [op_cell, row] : declared) {
        if (placed.count(op_cell)) continue;
        const auto heading = std::find(lines.begin(), lines.end(), std::string("## ") + row.section);
        if (heading == lines.end()) {
            problems.push_back("the row for " + op_cell + " names the section \"" + row.section + "\", which has no heading");
            continue;
        }
        auto at = std::find_if(heading, lines.end(), [](const std::string& l) { return l.rfind("| ", 0) == 0; });
        while (at != lines.end() && at->rfind("|", 0) == 0) ++at;
        lines.insert(at, row_text(row));
    }
    std::string out;
    for (const std::string& line : lines) out += line + "\n";
    return out;
}

// The first line where two texts differ, for the failure message.
std::string first_difference(const std::string& a, const std::string& b) {
    std::istringstream la(a), lb(b);
    std::string x, y;
    for (int n = 1;; ++n) {
        const bool more_a = static_cast<bool>(std::getline(la, x)), more_b = static_cast<bool>(std::getline(lb, y));
        if (!more_a && !more_b) return "";
        if (!more_a || !more_b || x != y) return "line " + std::to_string(n) + ": \"" + x + "\" should be \"" + y + "\"";
    }
}

}  // namespace

TEST_CASE("registry: docs/derivatives.md's rows are the definitions' own, and every formula in it has a definition") {
    if (!tg::testing::selected_op().empty()) return;  // TAPEGRAD_OP keeps one op's rows: not every definition runs
    run_every_row();
    std::map<std::string, tg::detail::DerivativeDoc> by_cell;  // op cell -> the row its definitions declare
    std::map<std::string, std::set<std::string>> declared;      // op -> the gradients its definitions declare
    for (const auto& [op, doc] : tg::detail::declared_derivatives()) {
        declared[op].insert(doc.gradient);
        const auto [it, inserted] = by_cell.emplace(doc.op, doc);
        CHECK_MESSAGE((inserted || row_text(it->second) == row_text(doc)), "two definitions declare different rows for " << doc.op);
        const std::vector<Row> parsed = document_rows(row_text(doc) + "\n");
        CHECK_MESSAGE((parsed.size() == 1 && parsed.front().ops.count(op)),
                      op << "'s definition declares a row whose op cell \"" << doc.op << "\" does not name it");
    }
    REQUIRE(declared.size() > 30);

    const std::filesystem::path path = std::filesystem::path(TAPEGRAD_SOURCE_DIR) / "docs" / "derivatives.md";
    const std::string document = read_file(path);
    std::vector<std::string> problems;
    const std::string generated = with_declared_rows(document, by_cell, problems);
    for (const std::string& p : problems) FAIL_CHECK(p);
    if (generated != document && std::getenv("TAPEGRAD_WRITE_DOCS")) {
        std::ofstream(path) << generated;
        MESSAGE("wrote " << path);
    } else {
        CHECK_MESSAGE(generated == document, "docs/derivatives.md is not the definitions' rows, " << first_difference(document, generated)
                                                 << ": run TAPEGRAD_WRITE_DOCS=1 build/tests/test_op_registry_docs to write them");
    }

    for (const Row& row : document_rows(generated)) {
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

// Runs after the test above, so that a run writing the document checks the written one.
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
