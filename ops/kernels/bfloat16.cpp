#include "ops/kernels/bfloat16.hpp"

#include <algorithm>
#include <stdexcept>

#include "engine/tensor_math.hpp"

namespace tapegrad::kernels {
namespace {

// Calls fn(start, length) over [0, n) in blocks, in parallel when n is large enough to pay for
// waking threads.
template <class Fn>
void for_blocks(int64_t n, Fn fn) {
    constexpr int64_t kBlock = 16384;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for if (blocks > 4) schedule(static)
    for (int64_t b = 0; b < blocks; ++b) fn(b * kBlock, std::min(kBlock, n - b * kBlock));
}

bool dense_in_either_layout(const Tensor& t) { return t.is_contiguous() || t.is_contiguous(MemoryFormat::ChannelsLast); }

}  // namespace

void round_to_bfloat16_inplace(const Tensor& t) {
    if (t.dtype() != kFloat32 || !dense_in_either_layout(t))
        throw std::logic_error("round_to_bfloat16_inplace: needs a dense float32 tensor, got " + describe(t));
    float* p = t.data<float>();
    for_blocks(t.numel(), [&](int64_t start, int64_t n) { round_to_bfloat16(p + start, n); });
}

Tensor rounded_to_bfloat16(const Tensor& t) {
    Tensor out = empty(t.shape(), t.suggest_memory_format());
    copy_into(out, t);
    round_to_bfloat16_inplace(out);
    return out;
}

void convert_to_bfloat16(const float* src, BFloat16* dst, int64_t n) {
    for_blocks(n, [&](int64_t start, int64_t len) { to_bfloat16(src + start, dst + start, len); });
}

}  // namespace tapegrad::kernels
