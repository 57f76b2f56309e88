// conv2d on five shapes (a first layer, the SmallCNN's second, a ResNet-like 56x56, one input
// channel, stride 2), without bias. The counter is GFLOP/s: 2*N*F*OH*OW*C*KH*KW
// for the forward, three times that for forward+backward (dX and dW each cost one forward).
#include <string>

#include "bench/bench_common.hpp"
#include "ops/conv.hpp"

namespace tapegrad::bench {
namespace {

std::string dims(const Shape& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
    return out;
}

void register_conv(const Shape& x, const Shape& w, int64_t stride, int64_t padding) {
    // A network's first layer gets its input row-major from the data; every later layer gets the
    // channels-last output of the previous conv (through bn, relu, pool).
    const bool first_layer = x[1] <= 3;
    const MemoryFormat format = first_layer ? MemoryFormat::Contiguous : MemoryFormat::ChannelsLast;
    const int64_t oh = (x[2] + 2 * padding - w[2]) / stride + 1, ow = (x[3] + 2 * padding - w[3]) / stride + 1;
    const double flops = 2.0 * x[0] * w[0] * oh * ow * w[1] * w[2] * w[3];
    const std::string name = "conv2d x[" + dims(x) + "] w[" + dims(w) + "]" +
                             (stride != 1 ? " s" + std::to_string(stride) : "") + " p" + std::to_string(padding);
    register_op({.name = name,
                 .layout = first_layer ? "x row-major" : "x channels-last",
                 .inputs = {input(x, format), input(w)},
                 .op = [stride, padding](const std::vector<Tensor>& in) {
                     return conv2d(in[0], in[1], Tensor(), {.stride = stride, .padding = padding});
                 },
                 .flops_fwd = flops,
                 .flops_fwd_bwd = 3 * flops});
}

void register_convs() {
    register_conv({32, 3, 32, 32}, {32, 3, 3, 3}, 1, 1);
    register_conv({32, 32, 16, 16}, {64, 32, 3, 3}, 1, 1);
    register_conv({8, 64, 56, 56}, {64, 64, 3, 3}, 1, 1);
    register_conv({64, 1, 28, 28}, {16, 1, 5, 5}, 1, 0);
    register_conv({32, 64, 16, 16}, {128, 64, 3, 3}, 2, 1);
}

}  // namespace
TAPEGRAD_BENCHMARKS(register_convs);
}  // namespace tapegrad::bench
