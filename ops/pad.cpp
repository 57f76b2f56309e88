#include "ops/pad.hpp"

#include <memory>
#include <stdexcept>
#include <string>

#include "engine/checked_size.hpp"
#include "engine/convert.hpp"
#include "ops/detail/index_maps.hpp"
#include "ops/detail/linear_op.hpp"
#include "ops/kernels/resample.hpp"

namespace tapegrad {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

const char* mode_name(PadMode m) {
    return m == PadMode::Constant ? "constant" : (m == PadMode::Reflect ? "reflect" : "replicate");
}

// The input index each output index reads along one dimension of size n padded to `out` with
// `before` in front (negative: cropped).
std::vector<int64_t> pad_map(int64_t n, int64_t before, int64_t out, PadMode mode) {
    std::vector<int64_t> map(static_cast<std::size_t>(out));
    for (int64_t o = 0; o < out; ++o) {
        if (mode == PadMode::Constant) {
            // o - before, formed only when it is an index of the input: a crop of 2^63 - 1 overflows it.
            map[o] = o >= before && o < n + before ? o - before : -1;
            continue;
        }
        int64_t i = o - before;  // before >= 0 here
        if (mode == PadMode::Reflect) {
            if (i < 0) i = -i;
            if (i >= n) i = 2 * (n - 1) - i;
        } else {
            i = i < 0 ? 0 : (i >= n ? n - 1 : i);
        }
        map[o] = i;
    }
    return map;
}

// y = x read through the index maps (`value` where a map reads nothing); dx[i] = Σ of g over the
// outputs that read i. Linear but for the value: its linear part pads with 0.
struct Pad {
    static constexpr const char* name = "pad";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Padding and resampling",
        .op = "pad",
        .forward = "y[o] = x[map(o)] or value; map: o − before (constant; outside → value), mirrored without the edge "
                   "(reflect), clamped to the edge (replicate)",
        .gradient = "dx[i] = Σ_{o: map(o) = i} g[o] (the value gets no gradient)",
        .shapes = "each padded dim grows by before + after"};
    static constexpr const char* adjoint_name = "pad_backward";
    static constexpr detail::DTypes dtypes = detail::DTypes::KeepIntegers;  // constant mode pads integers (checked before)
    std::shared_ptr<const kernels::IndexMaps> maps;  // shared with the linear part and the adjoint
    Shape input_shape, output_shape;
    double value = 0;

    Tensor apply(Kernels, const Tensor& x) const {
        Tensor out = empty(output_shape, {.dtype = x.dtype()});
        dispatch_all(x.dtype(), [&]<class T>() {
            kernels::gather_mapped<T>(x.data<T>(), x.strides(), out.data<T>(), *maps, checked_cast<T>(value, "pad"));
        });
        return out;
    }
    Tensor adjoint(Kernels, const Tensor& g) const { return detail::scatter_add_through_maps(g, input_shape, *maps); }
    Pad linear_part() const { return {maps, input_shape, output_shape, 0.0}; }
    std::vector<SavedField> saved_state() const {
        return {detail::saved("index_maps", std::to_string(maps->size()) + " dimensions"), detail::saved("input_shape", to_string(input_shape)),
                detail::saved("output_shape", to_string(output_shape)), detail::saved("value", value)};
    }
};

}  // namespace

// y = x read through the index maps; dx[i] = Σ of g over the outputs that read i.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value, SourceLocation loc) {
    if (!x.defined()) throw std::invalid_argument("pad: the input is undefined");
    const std::string where = " (input " + to_string(x.shape()) + ", mode " + mode_name(mode) + ")";
    if (pads.size() % 2 != 0 || pads.empty())
        throw std::invalid_argument("pad: pads must be pairs {left, right, top, bottom, ...}, got " + str(int64_t(pads.size())) +
                                    " values" + where);
    if (mode != PadMode::Constant && !is_floating_point(x.dtype()))
        throw std::invalid_argument(std::string("pad: ") + mode_name(mode) + " mode takes float32 or float64 tensors, got " +
                                    dtype_name(x.dtype()) + " (as PyTorch); convert with .to(tg::kFloat32), or use constant mode" +
                                    where);
    const std::size_t k = pads.size() / 2;
    // PyTorch's reflection and replication pads take k dims of a (k+1)-D input or a (k+2)-D batch, k <= 3
    if (mode != PadMode::Constant && (k > 3 || x.dim() < k + 1 || x.dim() > k + 2))
        throw std::invalid_argument(std::string("pad: ") + mode_name(mode) + " mode pads the last " + str(int64_t(k)) +
                                    " dimensions of a " + str(int64_t(k + 1)) + "-D or " + str(int64_t(k + 2)) +
                                    "-D (batched) input, at most 3 of them, as PyTorch" + where);
    if (k > x.dim())
        throw std::invalid_argument("pad: " + str(int64_t(k)) + " dimensions to pad but the input has " + str(int64_t(x.dim())) + where);
    std::vector<int64_t> before(x.dim(), 0);
    Shape out_shape = x.shape();
    for (std::size_t d = x.dim() - k; d < x.dim(); ++d) {
        const int64_t n = x.shape()[d];
        const std::size_t pair = x.dim() - 1 - d;  // 0 for the last dimension
        const int64_t b = pads[2 * pair], a = pads[2 * pair + 1];
        if (mode != PadMode::Constant && (b < 0 || a < 0))
            throw std::invalid_argument("pad: negative pads crop only in constant mode, got {" + str(b) + "," + str(a) + "} for dimension " +
                                        str(int64_t(d)) + where);
        if (mode == PadMode::Reflect && (b >= n || a >= n))
            throw std::invalid_argument("pad: reflect padding must be smaller than the dimension it pads, got {" + str(b) + "," + str(a) +
                                        "} for dimension " + str(int64_t(d)) + " of size " + str(n) + where);
        if (mode == PadMode::Replicate && n == 0 && (b > 0 || a > 0))
            throw std::invalid_argument("pad: replicate cannot pad the empty dimension " + str(int64_t(d)) + where);
        out_shape[d] = checked_add(checked_add(n, b, "pad", "the padded size", where), a, "pad", "the padded size", where);
        if (out_shape[d] < 0)
            throw std::invalid_argument("pad: the pads {" + str(b) + "," + str(a) + "} crop more than dimension " + str(int64_t(d)) +
                                        " of size " + str(n) + " holds" + where);
        before[d] = b;
    }
    // An empty output reads nothing, and its other dimensions may be 2^40 long: no maps for it.
    const bool empty_output = checked_allocation(out_shape, x.dtype(), "pad", where) == 0;
    auto maps = std::make_shared<kernels::IndexMaps>(x.dim());
    for (std::size_t d = 0; d < x.dim() && !empty_output; ++d) (*maps)[d] = pad_map(x.shape()[d], before[d], out_shape[d], mode);
    return detail::run_linear_op(Pad{.maps = std::move(maps), .input_shape = x.shape(), .output_shape = out_shape, .value = value}, loc, x);
}

}  // namespace tapegrad
