#include "ops/interpolate.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "ops/kernels/resample.hpp"

namespace tapegrad {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

// Input coordinate per output pixel, for pixel centres (PyTorch's area_pixel_compute_scale).
double scale_of(int64_t in, int64_t out, const InterpolateOptions& o) {
    if (o.align_corners) return out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
    return o.scale_factor ? 1.0 / *o.scale_factor : static_cast<double>(in) / static_cast<double>(out);
}

std::vector<int64_t> nearest_map(int64_t in, int64_t out, double scale) {
    std::vector<int64_t> map(static_cast<std::size_t>(out));
    for (int64_t o = 0; o < out; ++o) map[o] = std::min(static_cast<int64_t>(std::floor(static_cast<double>(o) * scale)), in - 1);
    return map;
}

std::vector<kernels::LinearTap> linear_taps(int64_t in, int64_t out, double scale, bool align_corners) {
    std::vector<kernels::LinearTap> taps(static_cast<std::size_t>(out));
    for (int64_t o = 0; o < out; ++o) {
        double src = align_corners ? o * scale : (o + 0.5) * scale - 0.5;
        if (src < 0) src = 0;
        const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
        const int64_t i1 = std::min(i0 + 1, in - 1);
        const double w1 = src - static_cast<double>(i0);
        taps[o] = {i0, i1, 1.0 - w1, w1};
    }
    return taps;
}

}  // namespace

// Both modes are linear in x: y = A x per plane; dx = A^T g (a scatter-add).
Tensor interpolate(const Tensor& x, const InterpolateOptions& o) {
    if (!x.defined()) throw std::invalid_argument("interpolate: the input is undefined");
    const std::string where = " (input " + to_string(x.shape()) + ")";
    if (x.dim() != 4) throw std::invalid_argument("interpolate: expects a 4-D input [N,C,H,W]" + where);
    if (o.size.has_value() == o.scale_factor.has_value())
        throw std::invalid_argument("interpolate: give exactly one of size and scale_factor" + where);
    if (o.align_corners && o.mode == InterpolateMode::Nearest)
        throw std::invalid_argument("interpolate: align_corners applies to bilinear mode only" + where);
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
    const double sh = scale_of(H, OH, o), sw = scale_of(W, OW, o);
    Tensor out = empty(out_shape, {.dtype = x.dtype()});
    const Shape x_shape = x.shape();
    if (o.mode == InterpolateMode::Nearest) {
        kernels::IndexMaps maps(4);
        for (int64_t d = 0; d < 2; ++d) {
            maps[d].resize(static_cast<std::size_t>(x_shape[d]));
            for (int64_t i = 0; i < x_shape[d]; ++i) maps[d][i] = i;
        }
        maps[2] = nearest_map(H, OH, sh);
        maps[3] = nearest_map(W, OW, sw);
        dispatch(x.dtype(), [&]<class T>() { kernels::gather_mapped<T>(x.data<T>(), x.strides(), out.data<T>(), maps, T(0)); });
        return record("interpolate", out, {x}, [maps, x_shape, o](const Tensor& g_in, const GradMask&) {
            const Tensor g = g_in.contiguous();
            Tensor dx = zeros(x_shape, {.dtype = g.dtype()});
            dispatch(g.dtype(), [&]<class T>() { kernels::scatter_add_mapped<T>(g.data<T>(), dx.data<T>(), x_shape, maps); });
            return std::vector<Tensor>{linear_backward("interpolate", dx, g_in, [o](const Tensor& h) { return interpolate(h, o); })};
        });
    }
    // Planes n,c are read through x's strides; they are evenly spaced only when N or C is 1 or
    // the layout is row-major in N and C, so go through a row-major copy otherwise.
    const Tensor xs = (x.strides()[0] == C * x.strides()[1] || N == 1) ? x : x.contiguous();
    const auto taps_h = linear_taps(H, OH, sh, o.align_corners), taps_w = linear_taps(W, OW, sw, o.align_corners);
    dispatch(x.dtype(), [&]<class T>() {
        kernels::bilinear_forward<T>(xs.data<T>(), N * C, xs.strides()[1], xs.strides()[2], xs.strides()[3], out.data<T>(), taps_h, taps_w);
    });
    return record("interpolate", out, {x}, [taps_h, taps_w, x_shape, o](const Tensor& g_in, const GradMask&) {
        const Tensor g = g_in.contiguous();
        Tensor dx = zeros(x_shape, {.dtype = g.dtype()});
        dispatch(g.dtype(), [&]<class T>() {
            kernels::bilinear_backward<T>(g.data<T>(), x_shape[0] * x_shape[1], dx.data<T>(), x_shape[2], x_shape[3], taps_h, taps_w);
        });
        return std::vector<Tensor>{linear_backward("interpolate", dx, g_in, [o](const Tensor& h) { return interpolate(h, o); })};
    });
}

}  // namespace tapegrad
