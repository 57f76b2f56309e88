#include "ops/kernels/conv_reference.hpp"

#include "engine/tensor_math.hpp"

namespace tapegrad::kernels {
namespace {

// Row-major [A,B,C,D] indexing.
struct Index4 {
    int64_t b, c, d;
    int64_t operator()(int64_t i, int64_t j, int64_t k, int64_t l) const { return ((i * b + j) * c + k) * d + l; }
};

// The input position that kernel tap k of output position o reads, along one axis.
int64_t input_pos(int64_t o, int64_t k, int64_t stride, int64_t pad, int64_t dilation) { return o * stride - pad + k * dilation; }

}  // namespace

template <class T>
Tensor conv2d_forward_reference(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, const ConvGeometry& g) {
    const Tensor x = as_contiguous(x_in), w = as_contiguous(w_in);
    const Tensor bias = bias_in.defined() ? as_contiguous(bias_in) : Tensor();
    Tensor out = empty(g.output_shape(), {.dtype = x.dtype()});
    const T* xp = x.data<T>();
    const T* wp = w.data<T>();
    const T* bp = bias.defined() ? bias.data<T>() : nullptr;
    T* op = out.data<T>();
    const int64_t Cg = g.channels_per_group(), Fg = g.filters_per_group();
    const Index4 xi{g.C, g.H, g.W}, wi{Cg, g.KH, g.KW}, oi{g.F, g.OH, g.OW};
    for (int64_t n = 0; n < g.N; ++n)
        for (int64_t f = 0; f < g.F; ++f) {
            const int64_t c0 = (f / Fg) * Cg;
            for (int64_t oh = 0; oh < g.OH; ++oh)
                for (int64_t ow = 0; ow < g.OW; ++ow) {
                    double acc = bp ? bp[f] : 0.0;
                    for (int64_t c = 0; c < Cg; ++c)
                        for (int64_t kh = 0; kh < g.KH; ++kh) {
                            const int64_t ih = input_pos(oh, kh, g.stride_h, g.pad_h, g.dilation_h);
                            if (ih < 0 || ih >= g.H) continue;
                            for (int64_t kw = 0; kw < g.KW; ++kw) {
                                const int64_t iw = input_pos(ow, kw, g.stride_w, g.pad_w, g.dilation_w);
                                if (iw < 0 || iw >= g.W) continue;
                                acc += static_cast<double>(xp[xi(n, c0 + c, ih, iw)]) * wp[wi(f, c, kh, kw)];
                            }
                        }
                    op[oi(n, f, oh, ow)] = static_cast<T>(acc);
                }
        }
    return out;
}

template <class T>
Tensor conv2d_backward_data_reference(const Tensor& dout_in, const Tensor& w_in, const ConvGeometry& g) {
    const Tensor dout = as_contiguous(dout_in), w = as_contiguous(w_in);
    Tensor dx = empty(g.input_shape(), {.dtype = dout.dtype()});
    const T* dp = dout.data<T>();
    const T* wp = w.data<T>();
    T* xp = dx.data<T>();
    const int64_t Cg = g.channels_per_group(), Fg = g.filters_per_group();
    const Index4 xi{g.C, g.H, g.W}, wi{Cg, g.KH, g.KW}, oi{g.F, g.OH, g.OW};
    // The output position along one axis whose tap k reads input position i, or -1 if none.
    auto output_pos = [](int64_t i, int64_t k, int64_t stride, int64_t pad, int64_t dilation, int64_t size) -> int64_t {
        const int64_t t = i + pad - k * dilation;
        if (t < 0 || t % stride != 0 || t / stride >= size) return -1;
        return t / stride;
    };
    for (int64_t n = 0; n < g.N; ++n)
        for (int64_t c = 0; c < g.C; ++c) {
            const int64_t group = c / Cg, cw = c % Cg;
            for (int64_t ih = 0; ih < g.H; ++ih)
                for (int64_t iw = 0; iw < g.W; ++iw) {
                    double acc = 0.0;
                    for (int64_t f = group * Fg; f < (group + 1) * Fg; ++f)
                        for (int64_t kh = 0; kh < g.KH; ++kh) {
                            const int64_t oh = output_pos(ih, kh, g.stride_h, g.pad_h, g.dilation_h, g.OH);
                            if (oh < 0) continue;
                            for (int64_t kw = 0; kw < g.KW; ++kw) {
                                const int64_t ow = output_pos(iw, kw, g.stride_w, g.pad_w, g.dilation_w, g.OW);
                                if (ow < 0) continue;
                                acc += static_cast<double>(dp[oi(n, f, oh, ow)]) * wp[wi(f, cw, kh, kw)];
                            }
                        }
                    xp[xi(n, c, ih, iw)] = static_cast<T>(acc);
                }
        }
    return dx;
}

template <class T>
Tensor conv2d_backward_weights_reference(const Tensor& x_in, const Tensor& dout_in, const ConvGeometry& g) {
    const Tensor x = as_contiguous(x_in), dout = as_contiguous(dout_in);
    Tensor dw = empty(g.weight_shape(), {.dtype = x.dtype()});
    const T* xp = x.data<T>();
    const T* dp = dout.data<T>();
    T* wp = dw.data<T>();
    const int64_t Cg = g.channels_per_group(), Fg = g.filters_per_group();
    const Index4 xi{g.C, g.H, g.W}, wi{Cg, g.KH, g.KW}, oi{g.F, g.OH, g.OW};
    for (int64_t f = 0; f < g.F; ++f) {
        const int64_t c0 = (f / Fg) * Cg;
        for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh)
                for (int64_t kw = 0; kw < g.KW; ++kw) {
                    double acc = 0.0;
                    for (int64_t n = 0; n < g.N; ++n)
                        for (int64_t oh = 0; oh < g.OH; ++oh) {
                            const int64_t ih = input_pos(oh, kh, g.stride_h, g.pad_h, g.dilation_h);
                            if (ih < 0 || ih >= g.H) continue;
                            for (int64_t ow = 0; ow < g.OW; ++ow) {
                                const int64_t iw = input_pos(ow, kw, g.stride_w, g.pad_w, g.dilation_w);
                                if (iw < 0 || iw >= g.W) continue;
                                acc += static_cast<double>(dp[oi(n, f, oh, ow)]) * xp[xi(n, c0 + c, ih, iw)];
                            }
                        }
                    wp[wi(f, c, kh, kw)] = static_cast<T>(acc);
                }
    }
    return dw;
}

template Tensor conv2d_forward_reference<float>(const Tensor&, const Tensor&, const Tensor&, const ConvGeometry&);
template Tensor conv2d_forward_reference<double>(const Tensor&, const Tensor&, const Tensor&, const ConvGeometry&);
template Tensor conv2d_backward_data_reference<float>(const Tensor&, const Tensor&, const ConvGeometry&);
template Tensor conv2d_backward_data_reference<double>(const Tensor&, const Tensor&, const ConvGeometry&);
template Tensor conv2d_backward_weights_reference<float>(const Tensor&, const Tensor&, const ConvGeometry&);
template Tensor conv2d_backward_weights_reference<double>(const Tensor&, const Tensor&, const ConvGeometry&);

}  // namespace tapegrad::kernels

namespace tapegrad::kernels {

void add_channel_bias(const Tensor& out, const Tensor& bias_in) {
    const Tensor bias = as_contiguous(bias_in);
    dispatch(out.dtype(), [&]<class T>() {
        T* op = out.data<T>();
        const T* bp = bias.data<T>();
        const Shape& s = out.shape();
        const Strides& st = out.strides();
#pragma omp parallel for collapse(2) if (out.numel() > (int64_t{1} << 15)) schedule(static)
        for (int64_t n = 0; n < s[0]; ++n)
            for (int64_t c = 0; c < s[1]; ++c)
                for (int64_t h = 0; h < s[2]; ++h)
                    for (int64_t w = 0; w < s[3]; ++w) op[n * st[0] + c * st[1] + h * st[2] + w * st[3]] += bp[c];
    });
}

}  // namespace tapegrad::kernels
