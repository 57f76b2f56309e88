// libFuzzer target for op geometry: the bytes choose an op, a small real input (which may still
// have a dimension of 2^31 or 2^40 when another is 0) and the op's sizes, kernels, strides,
// paddings and dilations, drawn mostly from the values where int64 arithmetic breaks (2^31, 2^40,
// 2^62, INT64_MAX and their neighbours, negatives). The harness works out, in 128-bit arithmetic,
// the shape PyTorch's rules give, and then:
//   - an output of more than 2^40 elements (or past int64), or larger than any machine's memory,
//     must be refused, cheaply;
//   - one of at most kRun elements is computed, and when the op succeeds its shape must be that;
//   - anything between is skipped: it would be a real, large allocation.
// "Refused" means std::invalid_argument or std::length_error. Any other exception, a crash, a
// sanitizer report, a hang (libFuzzer's -timeout) or a large allocation (-malloc_limit_mb) is a
// finding. Half the successful calls also run the backward.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <vector>

#include "engine/autograd.hpp"
#include "ops/conv.hpp"
#include "ops/conv_transpose.hpp"
#include "ops/interpolate.hpp"
#include "ops/pad.hpp"
#include "ops/pooling.hpp"
#include "ops/reduce.hpp"
#include "ops/shape_ops.hpp"
#include "ops/view.hpp"

namespace tg = tapegrad;
using tg::Pair;
using tg::Shape;
using tg::Tensor;

namespace {

using Wide = __int128;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
constexpr Wide kRun = Wide{1} << 14;        // outputs up to this many elements are computed
constexpr Wide kLimit = Wide{1} << 40;      // tg::kMaxElements: past it every op must refuse
constexpr Wide kNoMachine = Wide{1} << 38;  // 1 TiB of float32: no machine this runs on has the memory
constexpr int64_t kInputElements = 1 << 12;  // a real input holds at most this many
constexpr int64_t kWeightElements = 1 << 10;

const int64_t kBoundary[] = {0,
                             1,
                             2,
                             3,
                             4,
                             7,
                             int64_t{1} << 20,
                             (int64_t{1} << 31) - 1,
                             int64_t{1} << 31,
                             (int64_t{1} << 32) + 1,
                             (int64_t{1} << 40) - 1,
                             int64_t{1} << 40,
                             (int64_t{1} << 40) + 1,
                             int64_t{1} << 62,
                             kMax - 1,
                             kMax,
                             -1,
                             -2,
                             -(int64_t{1} << 31),
                             -(int64_t{1} << 40),
                             kMin + 1,
                             kMin};

// The input, read front to back one byte at a time (zeros once it runs out), so that
// tests/fuzz/make_corpus.py can write seeds that mean something.
class Bytes {
public:
    Bytes(const uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool flag() { return (byte() & 1) != 0; }
    int pick(int n) { return byte() % n; }
    // A size or a geometry value: mostly small, often a boundary value or next to one, sometimes
    // any int64 (8 bytes, big-endian).
    int64_t value() {
        switch (pick(8)) {
            case 0: return kBoundary[pick(static_cast<int>(std::size(kBoundary)))];
            case 1: {  // wrapping: INT64_MAX + 1 is INT64_MIN
                const auto near = static_cast<uint64_t>(kBoundary[pick(static_cast<int>(std::size(kBoundary)))]);
                return static_cast<int64_t>(near + static_cast<uint64_t>(pick(5)) - 2);
            }
            case 2: {
                uint64_t v = 0;
                for (int i = 0; i < 8; ++i) v = v << 8 | byte();
                return static_cast<int64_t>(v);
            }
            default: return pick(9);
        }
    }
    Pair pair() { return flag() ? Pair(value()) : Pair{value(), value()}; }  // braces: left to right
    // A dimension of a real input: small, except that an empty tensor may have a huge one.
    int64_t dim() { return pick(4) == 0 ? value() : pick(7); }

private:
    uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    const uint8_t* data_;
    std::size_t size_, pos_ = 0;
};

// What PyTorch's rules make of a geometry: the output shape, exact in 128 bits.
struct Expected {
    std::vector<Wide> shape;
    bool valid = true;      // false: the rules refuse it, or the harness cannot tell
    bool allocates = true;  // false for a view (expand): no memory limit applies
};

enum class Verdict { Run, Skip, Refuse };

Verdict verdict(const Expected& e) {
    if (!e.valid) return Verdict::Run;
    Wide count = 1, span = 1;
    for (Wide d : e.shape) {
        if (d < 0) return Verdict::Run;  // the op must refuse; whether it does is checked on success
        if (d > kMax) return Verdict::Refuse;
        span *= d > 1 ? d : 1;
        if (span > kLimit) return Verdict::Refuse;
        count *= d;
    }
    if (e.allocates && count > kNoMachine) return Verdict::Refuse;
    return count > kRun ? Verdict::Skip : Verdict::Run;
}

bool same_shape(const Shape& got, const Expected& e) {
    if (!e.valid) return true;
    if (got.size() != e.shape.size()) return false;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (Wide{got[i]} != e.shape[i]) return false;
    return true;
}

// Calls op unless the output would be large; checks the outcome against e.
template <class Op>
void check(Bytes& in, const Expected& e, Op&& op) {
    const Verdict v = verdict(e);
    if (v == Verdict::Skip) return;
    Tensor y;
    try {
        y = op();
    } catch (const std::invalid_argument&) {
        return;
    } catch (const std::length_error&) {
        return;
    }
    if (v == Verdict::Refuse || !same_shape(y.shape(), e)) std::abort();
    if (y.requires_grad() && in.flag()) {
        try {
            y.sum().backward();
        } catch (const std::invalid_argument&) {
        }
    }
}

Tensor real_input(Bytes& in, std::size_t rank, bool requires_grad) {
    Shape shape;
    Wide count = 1, span = 1;
    for (std::size_t i = 0; i < rank; ++i) {
        const int64_t d = in.dim();
        if (d < 0) return Tensor();
        shape.push_back(d);
        count *= d;
        span *= d > 1 ? d : 1;
        if (span > kLimit) return Tensor();
    }
    if (count > kInputElements) return Tensor();
    const tg::DType dtype = in.flag() ? tg::kFloat32 : tg::kFloat64;
    std::vector<double> ramp(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<double>((i * 7919) % 61) - 30;
    Tensor x = tg::from_vector(ramp, shape, {.dtype = dtype});
    if (rank == 4 && in.flag()) x = x.contiguous(tg::MemoryFormat::ChannelsLast);
    return requires_grad ? x.requires_grad_() : x;
}

Wide window_out(Wide in, Wide k, Wide s, Wide p, Wide d, bool ceil_mode) {
    const Wide span = in + 2 * p - d * (k - 1) - 1;
    if (span < 0 || s <= 0) return -1;
    Wide out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p) --out;
    return out;
}

void fuzz_conv2d(Bytes& in) {
    const Tensor x = real_input(in, 4, in.flag());
    if (!x.defined()) return;
    const Tensor w = real_input(in, 4, in.flag());
    if (!w.defined() || w.numel() > kWeightElements) return;
    tg::Conv2dOptions o{.stride = in.pair(), .dilation = in.pair(), .groups = in.flag() ? 1 : in.value()};
    const int kind = in.pick(4);
    const Pair p = in.pair();
    o.padding = kind == 0 ? tg::ConvPadding(tg::kSame) : kind == 1 ? tg::ConvPadding(tg::kValid) : tg::ConvPadding(p);
    // A bias of the filters' size (w may be [2^30,0,0,0]: not a real bias then), or a wrong one.
    const bool fits = in.flag() && w.size(0) <= kWeightElements;
    const Tensor bias = in.flag() ? Tensor() : tg::zeros({fits ? w.size(0) : in.pick(7)}, {.dtype = x.dtype()});
    const Pair pad = kind == 1 ? Pair(0) : p;
    Expected e{{x.size(0), w.size(0), window_out(x.size(2), w.size(2), o.stride.h, pad.h, o.dilation.h, false),
                window_out(x.size(3), w.size(3), o.stride.w, pad.w, o.dilation.w, false)}};
    e.valid = kind != 0;  // 'same' pads by the dilated kernel: the output keeps the input's size, when it is allowed
    check(in, e, [&] { return tg::conv2d(x, w, bias, o); });
}

void fuzz_conv_transpose2d(Bytes& in) {
    const Tensor x = real_input(in, 4, in.flag());
    if (!x.defined()) return;
    const Tensor w = real_input(in, 4, in.flag());
    if (!w.defined() || w.numel() > kWeightElements) return;
    const tg::ConvTranspose2dOptions o{
        .stride = in.pair(), .padding = in.pair(), .output_padding = in.pair(), .groups = in.flag() ? 1 : in.value(), .dilation = in.pair()};
    auto out = [&](int64_t n, int64_t s, int64_t p, int64_t d, int64_t k, int64_t op) {
        return (Wide{n} - 1) * s - 2 * Wide{p} + Wide{d} * (k - 1) + op + 1;
    };
    const Expected e{{x.size(0), Wide{w.size(1)} * o.groups, out(x.size(2), o.stride.h, o.padding.h, o.dilation.h, w.size(2), o.output_padding.h),
                      out(x.size(3), o.stride.w, o.padding.w, o.dilation.w, w.size(3), o.output_padding.w)}};
    check(in, e, [&] { return tg::conv_transpose2d(x, w, Tensor(), o); });
}

void fuzz_pool(Bytes& in) {
    const bool batched = in.flag();
    const Tensor x = real_input(in, batched ? 4 : 3, in.flag());
    if (!x.defined()) return;
    const int kind = in.pick(3);  // max, max with indices, average
    tg::Pool2dOptions o{.kernel_size = in.pair(), .padding = in.pair(), .ceil_mode = in.flag()};
    if (in.flag()) o.stride = in.pair();
    if (kind < 2) {
        o.dilation = in.pair();
    } else {
        o.count_include_pad = in.flag();
        if (in.flag()) o.divisor_override = in.value();
    }
    const Pair s = o.stride.value_or(o.kernel_size);
    const std::size_t h = batched ? 2 : 1;
    Expected e{{}};
    for (std::size_t i = 0; i < h; ++i) e.shape.push_back(x.size(static_cast<int64_t>(i)));
    e.shape.push_back(window_out(x.size(h), o.kernel_size.h, s.h, o.padding.h, o.dilation.h, o.ceil_mode));
    e.shape.push_back(window_out(x.size(h + 1), o.kernel_size.w, s.w, o.padding.w, o.dilation.w, o.ceil_mode));
    if (kind == 0) check(in, e, [&] { return tg::max_pool2d(x, o); });
    if (kind == 2) check(in, e, [&] { return tg::avg_pool2d(x, o); });
    if (kind == 1) {
        Tensor indices;
        check(in, e, [&] {
            auto [y, i] = tg::max_pool2d_with_indices(x, o);
            indices = i;
            return y;
        });
        if (!indices.defined() || !batched) return;
        const tg::MaxUnpool2dOptions u{.kernel_size = o.kernel_size, .stride = o.stride, .padding = o.padding,
                                       .output_size = in.flag() ? std::optional<Pair>() : std::optional<Pair>(in.pair())};
        Expected unpooled{{x.size(0), x.size(1), x.size(2), x.size(3)}};
        unpooled.valid = false;  // the default size need not be the pool's input size
        check(in, unpooled, [&] { return tg::max_unpool2d(tg::max_pool2d(x, o).detach(), indices, u); });
    }
}

void fuzz_resize(Bytes& in) {
    const bool adaptive = in.flag();
    // interpolate gets non-empty inputs only: ops/interpolate.cpp builds a table entry per output
    // row and column before it looks at the batch, so an empty [0,C,H,W] asked for {2^40, 1}
    // rows never finishes (adaptive_avg_pool2d had the same defect).
    Tensor x = real_input(in, 4, in.flag());
    if (!x.defined() || (!adaptive && x.numel() == 0)) return;
    const Pair size = in.pair();
    const Expected e{{x.size(0), x.size(1), size.h, size.w}};
    if (adaptive) return check(in, e, [&] { return tg::adaptive_avg_pool2d(x, size); });
    const tg::InterpolateOptions o{.size = size, .mode = in.flag() ? tg::InterpolateMode::Nearest : tg::InterpolateMode::Bilinear};
    check(in, e, [&] { return tg::interpolate(x, o); });
}

void fuzz_pad(Bytes& in) {
    const std::size_t rank = 1 + static_cast<std::size_t>(in.pick(4));
    const Tensor x = real_input(in, rank, in.flag());
    if (!x.defined()) return;
    std::vector<int64_t> pads(2 * (1 + static_cast<std::size_t>(in.pick(static_cast<int>(rank)))));
    for (int64_t& p : pads) p = in.value();
    const tg::PadMode mode = static_cast<tg::PadMode>(in.pick(3));
    Expected e{{}};
    for (std::size_t d = 0; d < rank; ++d) e.shape.push_back(x.shape()[d]);
    for (std::size_t pair = 0; pair < pads.size() / 2; ++pair) e.shape[rank - 1 - pair] += Wide{pads[2 * pair]} + pads[2 * pair + 1];
    check(in, e, [&] { return tg::pad(x, pads, mode); });
}

// PyTorch's slice: start and end wrap once if negative, then clamp to [0, size], end >= start.
Wide sliced(int64_t size, int64_t start, int64_t end, int64_t step) {
    auto clamp = [&](Wide i) {
        if (i < 0) i += size;
        return i < 0 ? Wide{0} : (i > size ? Wide{size} : i);
    };
    const Wide b = clamp(start), f = clamp(end) < b ? b : clamp(end);
    return step <= 0 ? -1 : (f - b + step - 1) / step;
}

void fuzz_cut(Bytes& in) {
    const std::size_t rank = 1 + static_cast<std::size_t>(in.pick(4));
    const Tensor x = real_input(in, rank, in.flag());
    if (!x.defined()) return;
    const int64_t dim = in.flag() ? in.pick(static_cast<int>(rank)) : in.value();
    const bool dim_ok = dim >= -static_cast<int64_t>(rank) && dim < static_cast<int64_t>(rank);
    const std::size_t d = dim_ok ? static_cast<std::size_t>(dim < 0 ? dim + static_cast<int64_t>(rank) : dim) : 0;
    const int64_t size = x.shape()[d];
    Expected e{{}};
    for (int64_t s : x.shape()) e.shape.push_back(s);
    e.valid = dim_ok;
    const int64_t a = in.value(), b = in.value();
    switch (in.pick(4)) {
        case 0: {
            const int64_t step = in.flag() ? 1 : in.value();
            e.shape[d] = sliced(size, a, b, step);
            return check(in, e, [&] { return tg::slice(x, dim, a, b, step); });
        }
        case 1:
            e.shape[d] = b;
            return check(in, e, [&] { return tg::narrow(x, dim, a, b); });
        default: {
            // split and chunk, checked as one call: the parts must cover the dimension, and their
            // number is the "output": more than kRun is large, more than any memory holds must
            // be refused.
            const bool chunk = in.flag();
            Expected count{{}};
            count.valid = dim_ok && a > 0 && size > 0;
            const int64_t split_size = chunk && count.valid ? (size - 1) / a + 1 : a;  // chunk: ceil(size / chunks) each
            if (count.valid) count.shape.push_back((size - 1) / split_size + 1);
            check(in, count, [&] {
                const std::vector<Tensor> parts = chunk ? tg::chunk(x, a, dim) : tg::split(x, a, dim);
                int64_t total = 0;
                for (const Tensor& p : parts) total += p.shape()[d];
                if (total != size) std::abort();
                return tg::zeros({static_cast<int64_t>(parts.size())});
            });
            Expected none{{}};
            none.valid = false;
            const std::vector<int64_t> sizes{a, b, in.value()};
            check(in, none, [&] { return tg::split(x, sizes, dim).front(); });
        }
    }
}

void fuzz_shape(Bytes& in) {
    const auto rank_in = static_cast<std::size_t>(in.pick(9));
    const Tensor x = real_input(in, rank_in, in.flag());
    if (!x.defined()) return;
    const std::size_t rank = static_cast<std::size_t>(in.pick(9));
    Shape target;
    Expected e{{}};
    Wide known = 1;
    int unknown = 0;
    for (std::size_t i = 0; i < rank; ++i) {
        target.push_back(in.flag() ? -1 : in.value());
        e.shape.push_back(target.back());
        if (target.back() == -1) ++unknown;
        else if (known >= kMin && known <= kMax) known *= target.back();  // stays within 128 bits
    }
    e.valid = unknown == 0 && known == x.numel();
    switch (in.pick(4)) {
        case 0: return check(in, e, [&] { return tg::reshape(x, target); });
        case 1: return check(in, e, [&] { return tg::view(x, target); });
        case 2: {
            Expected z{{}};
            for (int64_t s : target) z.shape.push_back(s);
            return check(in, z, [&] { return tg::zeros(target); });
        }
        default: {
            Expected u{{}};
            u.valid = false;
            check(in, u, [&] { return tg::unsqueeze(x, in.value()); });
            // A view, but its backward sums every element it shows: it must be small too. A -1
            // keeps the size of the dimension it stands over, and is refused over a new leading one.
            Expected expanded{{}};
            expanded.allocates = false;
            const std::size_t leading = target.size() >= x.dim() ? target.size() - x.dim() : 0;
            for (std::size_t i = 0; i < target.size(); ++i)
                expanded.shape.push_back(target[i] == -1 && i >= leading ? x.shape()[i - leading] : target[i]);
            check(in, expanded, [&] { return tg::expand(x, target); });
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    Bytes in(data, size);
    switch (in.pick(7)) {
        case 0: fuzz_conv2d(in); break;
        case 1: fuzz_conv_transpose2d(in); break;
        case 2: fuzz_pool(in); break;
        case 3: fuzz_resize(in); break;
        case 4: fuzz_pad(in); break;
        case 5: fuzz_cut(in); break;
        default: fuzz_shape(in); break;
    }
    return 0;
}
