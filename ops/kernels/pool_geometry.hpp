#pragma once
// What the pooling kernels share: the geometry of a windowed pool, the argmax a max-pool saves
// for its backward, and the bins of an average pool.
#include <algorithm>
#include <cstdint>
#include <memory>

#include "engine/allocator.hpp"
#include "engine/checked_size.hpp"
#include "engine/tensor.hpp"

namespace tapegrad::kernels {

// Input [N,C,H,W], output [N,C,OH,OW]; window (KH,KW), stride (SH,SW), padding (PH,PW),
// dilation (DH,DW): output row oh reads input rows oh*SH - PH + kh*DH for kh < KH (likewise
// columns), and the taps outside the input are padding.
struct PoolGeometry {
    int64_t N, C, H, W;
    int64_t OH, OW;
    int64_t KH, KW;
    int64_t SH, SW;
    int64_t PH, PW;
    int64_t DH = 1, DW = 1;
    Shape input_shape() const { return {N, C, H, W}; }
    Shape output_shape() const { return {N, C, OH, OW}; }
};

// The first tap start + k*dilation (k >= 0) that is not in the leading padding (>= 0). Whether it
// is inside the input and the window is for the caller to check.
inline int64_t first_tap_inside(int64_t start, int64_t dilation) {
    return start >= 0 ? start : start + (-start + dilation - 1) / dilation * dilation;
}
// One past the last input position a window of `kernel` taps from `start` can read, clipped to `in`.
inline int64_t window_end(int64_t start, int64_t kernel, int64_t dilation, int64_t in) {
    return std::min(start + (kernel - 1) * dilation + 1, in);
}

// For each max-pool output, the position ih*W + iw of its maximum inside its own input plane,
// stored in the output's memory layout. int32, not a float tensor: 4 bytes, exact, and cheap to
// scatter with.
struct Argmax {
    std::shared_ptr<int32_t[]> index;
    MemoryFormat format = MemoryFormat::Contiguous;

    static Argmax allocate(int64_t count, MemoryFormat format) {
        const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(int32_t);
        auto* p = static_cast<int32_t*>(allocator().allocate(bytes));
        return {std::shared_ptr<int32_t[]>(p, [bytes](int32_t* q) { allocator().deallocate(q, bytes); }), format};
    }
    // PyTorch's return_indices: the same positions as an int64 tensor of the output's shape, in
    // the argmax's layout (so element for element the same order).
    Tensor to_tensor(const Shape& output_shape) const {
        Tensor t = empty(output_shape, format, {.dtype = kInt64});
        int64_t* out = t.data<int64_t>();
        for (int64_t j = 0; j < t.numel(); ++j) out[j] = index[j];
        return t;
    }
};

struct MaxPoolResult {
    Tensor out;
    Argmax argmax;
};

// Average-pool bins along one axis: output i averages the inputs [begin(i), end(i)) and divides
// by count(i) (which counts padding too for avg_pool2d with count_include_pad, so it may exceed
// end - begin). Computed on demand rather than stored: an axis of an empty batch may have 2^40
// bins. Made by window_bins or adaptive_bins.
struct AxisBins {
    int64_t in = 0, out = 0;
    int64_t kernel = 0, stride = 1, pad = 0;  // sliding windows; kernel 0 marks adaptive bins
    bool count_include_pad = false;

    int64_t size() const { return out; }
    int64_t begin(int64_t i) const { return adaptive() ? mul_div_floor(i, in, out) : std::max<int64_t>(start(i), 0); }
    int64_t end(int64_t i) const { return adaptive() ? mul_div_ceil(i + 1, in, out) : std::min(start(i) + kernel, in); }
    int64_t count(int64_t i) const {
        // With count_include_pad the divisor counts the padding a window covers but, as in
        // PyTorch, not the part of a ceil_mode window that hangs past the right padding.
        return count_include_pad ? std::min(start(i) + kernel, in + pad) - start(i) : end(i) - begin(i);
    }

private:
    bool adaptive() const { return kernel == 0; }
    int64_t start(int64_t i) const { return i * stride - pad; }
};

// Sliding windows of `kernel` every `stride`, over an input padded by `pad` on both sides (a
// geometry check_pool resolved, so that i * stride - pad and start + kernel stay within int64).
inline AxisBins window_bins(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad, bool count_include_pad) {
    return {in, out, kernel, stride, pad, count_include_pad};
}

// Adaptive bins: bin i covers [floor(i*in/out), ceil((i+1)*in/out)), exact for any sizes.
inline AxisBins adaptive_bins(int64_t in, int64_t out) { return {in, out}; }

struct AvgPoolBins {
    int64_t N, C, H, W;
    AxisBins rows, cols;
    int64_t divisor_override = 0;  // when nonzero, every bin divides by it (avg_pool2d's divisor_override)
    Shape input_shape() const { return {N, C, H, W}; }
    Shape output_shape() const { return {N, C, rows.size(), cols.size()}; }
    // In double: two counts of up to 2^31 each multiply past what int64 holds.
    double divisor(int64_t i, int64_t j) const {
        return divisor_override != 0 ? static_cast<double>(divisor_override)
                                     : static_cast<double>(rows.count(i)) * static_cast<double>(cols.count(j));
    }
};

}  // namespace tapegrad::kernels
