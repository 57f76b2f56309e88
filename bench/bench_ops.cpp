// The op benchmarks come from the op registry: every row's bench shapes (tests/registry/
// cases_<family>.cpp), timed as "<name>/fwd" and "<name>/fwd+bwd" on the row's own fn, with inputs
// of those shapes in those layouts. `tapegrad_bench --list-ops` prints them for
// bench/pytorch_reference.py, which times PyTorch's expression of each under the same name.
// TAPEGRAD_OP=<op> keeps one op's rows, here as in the registry's tests.
#include <iostream>

#include "bench/bench_common.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::bench {
namespace {

MemoryFormat format_of(const testing::BenchShape& b, std::size_t input) {
    return input < b.formats.size() ? b.formats[input] : MemoryFormat::Contiguous;
}

void register_registry_ops() {
    for (const testing::OpCase& c : testing::op_registry()) {
        for (const testing::BenchShape& b : c.bench) {
            std::vector<Tensor> inputs;
            for (std::size_t i = 0; i < b.shapes.size(); ++i) inputs.push_back(input(b.shapes[i], format_of(b, i)));
            register_op({.name = b.name,
                         .layout = b.layout,
                         .inputs = std::move(inputs),
                         .op = c.fn,
                         .flops_fwd = b.flops_fwd,
                         .flops_fwd_bwd = b.flops_fwd_bwd,
                         .bytes_fwd = b.bytes_fwd,
                         .bytes_fwd_bwd = b.bytes_fwd_bwd});
        }
    }
}

}  // namespace
TAPEGRAD_OP_BENCHMARKS(register_registry_ops);

void list_op_benchmarks() {
    for (const testing::OpCase& c : testing::op_registry()) {
        for (const testing::BenchShape& b : c.bench) {
            std::string shapes, channels_last = "false";
            for (std::size_t i = 0; i < b.shapes.size(); ++i) {
                shapes += std::string(i ? ", " : "") + "[";
                for (std::size_t d = 0; d < b.shapes[i].size(); ++d) shapes += (d ? ", " : "") + std::to_string(b.shapes[i][d]);
                shapes += "]";
                if (format_of(b, i) == MemoryFormat::ChannelsLast) channels_last = "true";
            }
            std::cout << "{\"name\": " << json_string(b.name) << ", \"op\": " << json_string(testing::op_of(c))
                      << ", \"shapes\": [" << shapes << "], \"torch\": " << json_string(b.torch)
                      << ", \"channels_last\": " << channels_last
                      << ", \"torch_in_our_layout\": " << (b.torch_in_our_layout ? "true" : "false") << "}\n";
        }
    }
}

}  // namespace tapegrad::bench
