#include "tests/registry/op_registry.hpp"

#include <cstdlib>

namespace tapegrad::testing {

std::vector<OpCase>& op_registry() {
    static std::vector<OpCase> cases;
    return cases;
}

const std::string& selected_op() {
    static const std::string op = [] {
        const char* env = std::getenv("TAPEGRAD_OP");
        return std::string(env ? env : "");
    }();
    return op;
}

std::string op_of(const OpCase& c) { return c.name.substr(0, c.name.find('/')); }

RegisterOps::RegisterOps(std::vector<OpCase> cases) {
    for (auto& c : cases)
        if (selected_op().empty() || op_of(c) == selected_op()) op_registry().push_back(std::move(c));
}

OpCase with_bench(OpCase c, std::vector<BenchShape> bench) {
    c.bench = std::move(bench);
    return c;
}

double float_bytes(const Shape& shape) { return static_cast<double>(numel_of(shape)) * sizeof(float); }

std::vector<Tensor> make_case_inputs(const OpCase& c, DType dtype, uint64_t seed) {
    Generator gen(seed);
    std::vector<Tensor> in;
    if (c.make_inputs) in = c.make_inputs(gen, dtype);
    else
        for (const auto& s : c.input_shapes) in.push_back(randn(s, gen, {.dtype = dtype}));
    for (std::size_t i = 0; i < in.size(); ++i)
        if (in[i].defined() && (c.differentiable.empty() || c.differentiable[i])) in[i].requires_grad_(true);
    return in;
}

}  // namespace tapegrad::testing
