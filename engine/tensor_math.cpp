#include "engine/tensor_math.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "engine/convert.hpp"
#include "engine/strided.hpp"

namespace tapegrad {

Strides broadcast_strides(const Shape& from, const Strides& from_strides, const Shape& to) {
    Strides out;
    out.resize(to.size());
    const std::size_t lead = to.size() - from.size();
    for (std::size_t i = 0; i < to.size(); ++i) {
        if (i < lead) out[i] = 0;
        else out[i] = from[i - lead] == 1 ? 0 : from_strides[i - lead];
    }
    return out;
}

Tensor as_strided(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = base.impl()->storage;
    // An empty view reads nothing, and its offset may lead past the storage (or off the null data
    // of an empty one): it keeps the base's pointer.
    const int64_t at = numel_of(shape) == 0 ? 0 : offset;
    impl->data = static_cast<char*>(base.data_ptr()) + at * static_cast<int64_t>(element_size(base.dtype()));
    impl->shape = shape;
    impl->strides = strides;
    impl->dtype = base.dtype();
    return Tensor(std::move(impl));
}

namespace {

// Refuses, before copy_into writes anything, the first element (in row-major order) of src that D
// cannot hold.
template <class D, class S>
void check_fits(const Tensor& src, const char* op) {
    const S* s = src.data<S>();
    int64_t index = 0;
    for_each_run<1>(src.shape(), {src.strides()}, [&](auto off, int64_t n, auto st) {
        const S* sp = s + off[0];
        for (int64_t i = 0; i < n; ++i, ++index) {
            const S v = sp[i * st[0]];
            if (fits<D>(v)) continue;
            throw std::invalid_argument(std::string(op) + ": element " + std::to_string(index) + " (row-major) of the " +
                                        describe(src) + " tensor: " + overflow_message(widened(v), dtype_of<D>()) +
                                        "; replace NaN, infinite and out-of-range values first, or keep a floating-point dtype");
        }
    });
}

}  // namespace

Tensor as_contiguous(const Tensor& t, MemoryFormat format) {
    if (t.is_contiguous(format)) return t;
    Tensor out = empty(t.shape(), format, {.dtype = t.dtype()});
    copy_into(out, t);
    return out;
}

void copy_into(const Tensor& dst, const Tensor& src, const char* op) {
    dispatch_storage(dst.dtype(), [&]<class D>() {
        dispatch_storage(src.dtype(), [&]<class S>() {
            if constexpr (can_overflow<D, S>) check_fits<D, S>(src, op);
            D* d = dst.data<D>();
            const S* s = src.data<S>();
            for_each_run_unordered<2>(dst.shape(), {dst.strides(), src.strides()}, [&](auto off, int64_t n, auto st) {
                D* dp = d + off[0];
                const S* sp = s + off[1];
                if (st[0] == 1 && st[1] == 1) {
                    for (int64_t i = 0; i < n; ++i) dp[i] = static_cast<D>(sp[i]);
                } else if (st[0] == 1 && st[1] == 0) {  // densifying an expanded gradient
                    std::fill(dp, dp + n, static_cast<D>(*sp));
                } else {
                    for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = static_cast<D>(sp[i * st[1]]);
                }
            });
        });
    });
}

void fill_tensor(const Tensor& t, double value, const char* op) {
    dispatch_storage(t.dtype(), [&]<class T>() {
        T* p = t.data<T>();
        const T v = checked_cast<T>(value, op);
        for_each_run_unordered<1>(t.shape(), {t.strides()}, [&](auto off, int64_t n, auto st) {
            T* q = p + off[0];
            for (int64_t i = 0; i < n; ++i) q[i * st[0]] = v;
        });
    });
}

void add_into(const Tensor& acc, const Tensor& g) {
    if (acc.shape() != g.shape() || acc.dtype() != g.dtype())
        throw std::logic_error("add_into: accumulating " + describe(g) + " into " + describe(acc));
    dispatch(acc.dtype(), [&]<class T>() {
        T* a = acc.data<T>();
        const T* b = g.data<T>();
        for_each_run_unordered<2>(acc.shape(), {acc.strides(), g.strides()}, [&](auto off, int64_t n, auto st) {
            T* ap = a + off[0];
            const T* bp = b + off[1];
            if (st[0] == 1 && st[1] == 1) {
                for (int64_t i = 0; i < n; ++i) ap[i] += bp[i];
            } else {
                for (int64_t i = 0; i < n; ++i) ap[i * st[0]] += bp[i * st[1]];
            }
        });
    });
}

namespace {

// The sum of n contiguous values in double. Sixteen lanes of partial sums, so that the additions
// are not one chain waiting on each other's latency (a single accumulator ran at one element per
// cycle, half PyTorch's float sum); lane j holds the elements i = j mod 16, so the result depends
// only on n, not on threads or alignment.
template <class T>
double contiguous_sum_doubles(const T* src, int64_t n) {
    constexpr int64_t kLanes = 16;
    double lane[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
        for (int64_t j = 0; j < kLanes; ++j) lane[j] += static_cast<double>(src[i + j]);
    }
    double s = 0;
    for (; i < n; ++i) s += static_cast<double>(src[i]);
    for (int64_t j = 0; j < kLanes; ++j) s += lane[j];
    return s;
}

template <class T>
double contiguous_sum(const T* src, int64_t n) {
    return contiguous_sum_doubles(src, n);
}

// float: blocks of 256 summed in 32 float lanes (lane j takes the block's elements j mod 32, 8 of
// them), each block's lanes then added to 32 double lanes; what is left after the last whole block
// goes through the double loop above. Converting every element to double made the loop
// conversion-bound, 1.3-1.45x PyTorch's float sum of 1M floats at one thread; eight float additions
// per lane before each double one keep the error within 8 float roundings per block, and the
// result still depends only on n.
template <>
double contiguous_sum<float>(const float* src, int64_t n) {
    using Floats = float __attribute__((vector_size(8 * sizeof(float))));
    using Doubles = double __attribute__((vector_size(4 * sizeof(double))));
    constexpr int64_t kBlock = 256, kLanes = 32;
    auto load = [](const float* p) {
        Floats v;
        std::memcpy(&v, p, sizeof v);
        return v;
    };
    Doubles wide[kLanes / 4] = {};
    int64_t i = 0;
    for (; i + kBlock <= n; i += kBlock) {
        Floats f[kLanes / 8] = {load(src + i), load(src + i + 8), load(src + i + 16), load(src + i + 24)};
        for (int64_t k = kLanes; k < kBlock; k += kLanes)
            for (int v = 0; v < kLanes / 8; ++v) f[v] += load(src + i + k + 8 * v);
        for (int v = 0; v < kLanes / 8; ++v) {
            wide[2 * v] += Doubles{f[v][0], f[v][1], f[v][2], f[v][3]};
            wide[2 * v + 1] += Doubles{f[v][4], f[v][5], f[v][6], f[v][7]};
        }
    }
    double s = contiguous_sum_doubles(src + i, n - i);
    for (const Doubles& lanes : wide)
        for (int j = 0; j < 4; ++j) s += lanes[j];
    return s;
}

}  // namespace

Tensor sum_kernel(const Tensor& x, const std::vector<bool>& reduce, bool keepdim) {
    const Shape& xs = x.shape();
    Shape kept;  // keepdim shape
    for (std::size_t d = 0; d < xs.size(); ++d) kept.push_back(reduce[d] ? 1 : xs[d]);
    Tensor out = empty(kept, {.dtype = x.dtype()});
    const int64_t out_numel = out.numel();
    // The output read with stride 0 along reduced axes, so each input element adds into its slot.
    Strides out_strides = contiguous_strides(kept);
    for (std::size_t d = 0; d < xs.size(); ++d)
        if (reduce[d]) out_strides[d] = 0;
    // Walk the input in its memory order (largest stride outermost), so loads are unit-stride.
    std::vector<std::size_t> order(xs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return x.strides()[a] > x.strides()[b]; });
    Shape ps;
    Strides pos, pxs;
    for (std::size_t d : order) {
        if (xs[d] == 1) continue;
        ps.push_back(xs[d]);
        pos.push_back(out_strides[d]);
        pxs.push_back(x.strides()[d]);
    }
    if (ps.empty()) {
        ps.push_back(1);
        pos.push_back(0);
        pxs.push_back(0);
    }
    // The outermost dimension is cut into a fixed number of blocks (not one per thread), each
    // summing into its own double accumulator when that dimension is reduced; the blocks are added
    // in order. The result is the same for any thread count, and accurate for long float sums.
    const int64_t outer = ps[0];
    const bool outer_reduced = pos[0] == 0;
    constexpr int64_t kMaxBlocks = 64;
    int64_t blocks = x.numel() > kParallelThreshold ? std::min(outer, kMaxBlocks) : 1;
    if (outer_reduced && blocks * out_numel > (int64_t{1} << 22)) blocks = 1;  // partials would not pay
    const int64_t buffers = outer_reduced ? blocks : 1;
    std::vector<double> acc(static_cast<std::size_t>(buffers * out_numel), 0.0);
    dispatch(x.dtype(), [&]<class T>() {
        const T* xp = x.data<T>();
#pragma omp parallel for if (blocks > 1) schedule(static)
        for (int64_t b = 0; b < blocks; ++b) {
            const int64_t lo = outer * b / blocks, hi = outer * (b + 1) / blocks;
            double* a = acc.data() + (outer_reduced ? b * out_numel : 0) + lo * pos[0];
            const T* in = xp + lo * pxs[0];
            Shape sub = ps;
            sub[0] = hi - lo;
            for_each_run<2>(sub, {pos, pxs}, [&](auto off, int64_t n, auto st) {
                double* o = a + off[0];
                const T* src = in + off[1];
                if (st[0] == 0 && st[1] == 1) {
                    *o += contiguous_sum(src, n);
                } else if (st[0] == 1 && st[1] == 1) {
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i) o[i] += static_cast<double>(src[i]);
                } else {
                    for (int64_t i = 0; i < n; ++i) o[i * st[0]] += static_cast<double>(src[i * st[1]]);
                }
            });
        }
        T* op = out.data<T>();
        for (int64_t j = 0; j < out_numel; ++j) {
            double total = 0;
            for (int64_t b = 0; b < buffers; ++b) total += acc[static_cast<std::size_t>(b * out_numel + j)];
            op[j] = static_cast<T>(total);
        }
    });
    if (keepdim) return out;
    Shape squeezed;
    for (std::size_t d = 0; d < xs.size(); ++d)
        if (!reduce[d]) squeezed.push_back(xs[d]);
    return as_strided(out, squeezed, contiguous_strides(squeezed));
}

bool is_dense(const Tensor& t) {
    // Dense means: sorting dims by stride gives exactly the contiguous strides of that order.
    const Shape& s = t.shape();
    std::vector<std::size_t> order(s.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return t.strides()[a] < t.strides()[b]; });
    int64_t expected = 1;
    for (std::size_t d : order) {
        if (s[d] == 1) continue;
        if (t.strides()[d] != expected) return false;
        expected *= s[d];
    }
    return true;
}

}  // namespace tapegrad
