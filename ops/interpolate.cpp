#include "ops/interpolate.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "ops/detail/index_maps.hpp"
#include "ops/detail/linear_op.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/resample.hpp"

namespace tapegrad {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

// Input coordinate per output coordinate, computed in T (PyTorch's compute_scales_value<T>).
// scale_factor is the one to sample with, or 0 for in/out (a given size or a recomputed scale).
template <class T>
T pixel_scale(int64_t in, int64_t out, double scale_factor) {
    return scale_factor > 0 ? static_cast<T>(1.0 / scale_factor) : static_cast<T>(in) / static_cast<T>(out);
}

// PyTorch's nearest_idx, which its backward and its channels-last forward use. (Its row-major CPU
// forward skips the two special cases and, for float64, rounds the scale to double, so there its
// gradient is not quite its forward's transpose; here one map serves both directions.) The float
// product matters: in double, 11 * (30/22) is 14.999999999999998 and floors to 14; PyTorch reads 15.
int64_t nearest_source(int64_t o, int64_t in, int64_t out, double scale_factor) {
    if (out == in) return o;
    if (out == 2 * in) return o / 2;
    const float s = pixel_scale<float>(in, out, scale_factor);
    return std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * s)), in - 1);
}

// PyTorch's nearest_exact_idx: (o + 1/2) times the float scale in double, rounded to float, floored.
int64_t nearest_exact_source(int64_t o, int64_t in, int64_t out, double scale_factor) {
    const float s = pixel_scale<float>(in, out, scale_factor);
    const float src = static_cast<float>((static_cast<double>(o) + 0.5) * static_cast<double>(s));
    return std::min(static_cast<int64_t>(std::floor(src)), in - 1);
}

std::vector<int64_t> nearest_map(int64_t in, int64_t out, InterpolateMode mode, double scale_factor) {
    std::vector<int64_t> map(static_cast<std::size_t>(out));
    for (int64_t o = 0; o < out; ++o)
        map[o] = mode == InterpolateMode::NearestExact ? nearest_exact_source(o, in, out, scale_factor)
                                                        : nearest_source(o, in, out, scale_factor);
    return map;
}

// PyTorch's compute_source_index_and_lambda: the scale in T (x's dtype), the source coordinate in
// double from it, the weights rounded to T.
template <class T>
std::vector<kernels::LinearTap> linear_taps(int64_t in, int64_t out, double scale_factor, bool align_corners) {
    std::vector<kernels::LinearTap> taps(static_cast<std::size_t>(out));
    if (out == in) {
        for (int64_t o = 0; o < out; ++o) taps[o] = {o, o, 1.0, 0.0};
        return taps;
    }
    const T scale_t = !align_corners ? pixel_scale<T>(in, out, scale_factor)
                      : out > 1      ? static_cast<T>(in - 1) / static_cast<T>(out - 1)
                                     : T(0);
    const double scale = scale_t;
    for (int64_t o = 0; o < out; ++o) {
        const double src = align_corners ? scale * static_cast<double>(o) : std::max(scale * (static_cast<double>(o) + 0.5) - 0.5, 0.0);
        const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
        const int64_t i1 = std::min(i0 + 1, in - 1);
        const T w1 = static_cast<T>(src - static_cast<double>(i0));
        taps[o] = {i0, i1, static_cast<T>(1.0 - w1), w1};
    }
    return taps;
}

// The nearest modes: y = x read through one index map per dimension; dx = A^T g, a scatter-add.
struct NearestInterpolate {
    static constexpr const char* name = "interpolate";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Padding and resampling",
        .op = "interpolate (nearest)",
        .forward = "y[.., i, j] = x[.., r_h(i), r_w(j)], r(o) = min(⌊o s⌋, in − 1) in float arithmetic, s = "
                   "float(1/scale_factor) (or float(in)/float(out) for a size or recompute_scale_factor); r(o) = o "
                   "where out = in and ⌊o/2⌋ where out = 2 in (PyTorch's nearest_idx)",
        .gradient = "dx = Σ of g over the outputs that read each pixel (the same r)",
        .shapes = "x [N,C,H,W] → [N,C,H',W']"};
    static constexpr const char* adjoint_name = "interpolate_backward";
    static constexpr detail::DTypes dtypes = detail::DTypes::Floating;
    std::shared_ptr<const kernels::IndexMaps> maps;
    Shape input_shape, output_shape;

    Tensor apply(Kernels, const Tensor& x) const {
        Tensor out = empty(output_shape, {.dtype = x.dtype()});
        dispatch(x.dtype(), [&]<class T>() { kernels::gather_mapped<T>(x.data<T>(), x.strides(), out.data<T>(), *maps, T(0)); });
        return out;
    }
    Tensor adjoint(Kernels, const Tensor& g) const { return detail::scatter_add_through_maps(g, input_shape, *maps); }
    std::vector<SavedField> saved_state() const {
        return {detail::saved("index_maps", "rows " + std::to_string((*maps)[2].size()) + ", cols " + std::to_string((*maps)[3].size())),
                detail::saved("input_shape", to_string(input_shape)), detail::saved("output_shape", to_string(output_shape))};
    }
};

// Bilinear: each output reads two taps per axis with their weights; dx = A^T g.
struct BilinearInterpolate {
    static constexpr const char* name = "interpolate";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Padding and resampling",
        .op = "interpolate (bilinear)",
        .forward = "src = (i + ½) s − ½ clamped at 0 (align_corners: i (H−1)/(H'−1), scale_factor ignored), s in x's "
                   "dtype, src in double; a dimension that keeps its size is copied; y = Σ of the 2×2 neighbours "
                   "weighted (1 − λ, λ) per axis",
        .gradient = "dx = the same weights applied to g, scattered back",
        .shapes = "as nearest"};
    static constexpr const char* adjoint_name = "interpolate_backward";
    static constexpr detail::DTypes dtypes = detail::DTypes::Floating;
    std::shared_ptr<const std::vector<kernels::LinearTap>> taps_h, taps_w;
    Shape input_shape, output_shape;

    Tensor apply(Kernels, const Tensor& x) const {
        const int64_t N = input_shape[0], C = input_shape[1];
        // Planes n,c are read through x's strides; they are evenly spaced only when N or C is 1 or
        // the layout is row-major in N and C, so go through a row-major copy otherwise.
        const Tensor xs = (x.strides()[0] == C * x.strides()[1] || N == 1) ? x : x.contiguous();
        Tensor out = empty(output_shape, {.dtype = x.dtype()});
        dispatch(x.dtype(), [&]<class T>() {
            kernels::bilinear_forward<T>(xs.data<T>(), N * C, xs.strides()[1], xs.strides()[2], xs.strides()[3], out.data<T>(), *taps_h,
                                         *taps_w);
        });
        return out;
    }
    Tensor adjoint(Kernels, const Tensor& g_in) const {
        const Tensor g = g_in.contiguous();
        Tensor dx = zeros(input_shape, {.dtype = g.dtype()});
        dispatch(g.dtype(), [&]<class T>() {
            kernels::bilinear_backward<T>(g.data<T>(), input_shape[0] * input_shape[1], dx.data<T>(), input_shape[2], input_shape[3],
                                          *taps_h, *taps_w);
        });
        return dx;
    }
    std::vector<SavedField> saved_state() const {
        return {detail::saved("taps", "rows " + std::to_string(taps_h->size()) + ", cols " + std::to_string(taps_w->size())),
                detail::saved("input_shape", to_string(input_shape)), detail::saved("output_shape", to_string(output_shape))};
    }
};

}  // namespace

// Every mode is linear in x: y = A x per plane; dx = A^T g (a scatter-add).
Tensor interpolate(const Tensor& x, const InterpolateOptions& o, SourceLocation loc) {
    if (!x.defined()) throw std::invalid_argument("interpolate: the input is undefined");
    detail::check_op_inputs("interpolate", detail::DTypes::Floating, {&x});
    const std::string where = " (input " + to_string(x.shape()) + ")";
    if (x.dim() != 4) throw std::invalid_argument("interpolate: expects a 4-D input [N,C,H,W]" + where);
    if (o.size.has_value() == o.scale_factor.has_value())
        throw std::invalid_argument("interpolate: give exactly one of size and scale_factor" + where);
    if (o.recompute_scale_factor && o.size)
        throw std::invalid_argument("interpolate: recompute_scale_factor applies to a scale_factor, not to an explicit size" + where);
    if (o.align_corners && o.mode != InterpolateMode::Bilinear)
        throw std::invalid_argument("interpolate: align_corners applies to bilinear mode only, not to the nearest modes" + where);
    const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    if (H == 0 || W == 0) throw std::invalid_argument("interpolate: the input has an empty spatial dimension" + where);
    int64_t OH = 0, OW = 0;
    if (o.size) {
        OH = o.size->h, OW = o.size->w;
    } else {
        const double s = *o.scale_factor;
        if (!(s > 0) || !(H * s < double(kMaxElements)) || !(W * s < double(kMaxElements)))
            throw std::invalid_argument("interpolate: scale_factor must be positive and finite, got " + std::to_string(s) + where);
        OH = static_cast<int64_t>(std::floor(static_cast<double>(H) * s));
        OW = static_cast<int64_t>(std::floor(static_cast<double>(W) * s));
    }
    if (OH <= 0 || OW <= 0 || OH > kMaxElements || OW > kMaxElements)
        throw std::invalid_argument("interpolate: the output size {" + str(OH) + "," + str(OW) + "} must be positive" + where);
    const Shape out_shape{N, C, OH, OW};
    checked_numel(out_shape, "interpolate");
    // An empty batch (N or C = 0) gives an empty output, as in PyTorch, without building index
    // maps as long as the output's sides (up to 2^40 entries each).
    if (x.numel() == 0) return x.sum().expand(out_shape);
    // Each output side gets an index map (8 bytes an entry) before the output is allocated: a side
    // past 2^27 rows or columns is refused here, so that a huge request fails before any table.
    constexpr int64_t kMaxSide = int64_t{1} << 27;
    if (OH > kMaxSide || OW > kMaxSide)
        throw std::length_error("interpolate: the output size {" + str(OH) + "," + str(OW) + "} has a side over 2^27" + where);
    const double sample_scale_factor = o.scale_factor && !o.recompute_scale_factor ? *o.scale_factor : 0.0;
    const Shape x_shape = x.shape();
    if (o.mode != InterpolateMode::Bilinear) {
        auto maps = std::make_shared<kernels::IndexMaps>(4);
        for (int64_t d = 0; d < 2; ++d) {
            (*maps)[d].resize(static_cast<std::size_t>(x_shape[d]));
            for (int64_t i = 0; i < x_shape[d]; ++i) (*maps)[d][i] = i;
        }
        (*maps)[2] = nearest_map(H, OH, o.mode, sample_scale_factor);
        (*maps)[3] = nearest_map(W, OW, o.mode, sample_scale_factor);
        return detail::run_linear_op(NearestInterpolate{std::move(maps), x_shape, out_shape}, loc, x);
    }
    auto taps_h = std::make_shared<std::vector<kernels::LinearTap>>(), taps_w = std::make_shared<std::vector<kernels::LinearTap>>();
    dispatch(x.dtype(), [&]<class T>() {
        *taps_h = linear_taps<T>(H, OH, sample_scale_factor, o.align_corners);
        *taps_w = linear_taps<T>(W, OW, sample_scale_factor, o.align_corners);
    });
    return detail::run_linear_op(BilinearInterpolate{std::move(taps_h), std::move(taps_w), x_shape, out_shape}, loc, x);
}

}  // namespace tapegrad
