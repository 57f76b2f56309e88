#include "ops/kernels/batch_norm.hpp"

#include <cmath>

namespace tapegrad::kernels {
namespace {

// x viewed as [N, C, H, W] (H = W = 1 for a 2-D input), addressed through its strides.
struct Index4 {
    int64_t N, C, H, W;
    int64_t sn, sc, sh, sw;
    Index4(const Tensor& t) {
        const Shape& s = t.shape();
        const Strides& st = t.strides();
        N = s[0], C = s[1], sn = st[0], sc = st[1];
        H = t.dim() == 4 ? s[2] : 1, W = t.dim() == 4 ? s[3] : 1;
        sh = t.dim() == 4 ? st[2] : 0, sw = t.dim() == 4 ? st[3] : 0;
    }
    int64_t at(int64_t n, int64_t c, int64_t h, int64_t w) const { return n * sn + c * sc + h * sh + w * sw; }
    int64_t count() const { return N * H * W; }
};

template <class T>
double param(const Tensor& p, int64_t c, double absent) {
    return p.defined() ? static_cast<double>(p.data<T>()[c * p.strides()[0]]) : absent;
}

// Calls f(offset) for every element of channel c.
template <class F>
void for_channel(const Index4& ix, int64_t c, F f) {
    for (int64_t n = 0; n < ix.N; ++n)
        for (int64_t h = 0; h < ix.H; ++h)
            for (int64_t w = 0; w < ix.W; ++w) f(ix.at(n, c, h, w));
}

}  // namespace

template <class T>
ChannelStats batch_norm_stats_reference(const Tensor& x) {
    const Index4 ix(x);
    const T* xp = x.data<T>();
    ChannelStats s{std::vector<double>(ix.C), std::vector<double>(ix.C)};
    const double m = static_cast<double>(ix.count());
    for (int64_t c = 0; c < ix.C; ++c) {
        double sum = 0, sq = 0;
        for_channel(ix, c, [&](int64_t o) { sum += xp[o]; });
        const double mean = sum / m;
        for_channel(ix, c, [&](int64_t o) { sq += (xp[o] - mean) * (xp[o] - mean); });
        s.mean[c] = mean;
        s.var[c] = sq / m;
    }
    return s;
}

template <class T>
Tensor batch_norm_forward_reference(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& invstd,
                                    const Tensor& weight, const Tensor& bias) {
    Tensor y = empty(x.shape(), {.dtype = x.dtype()});
    const Index4 ix(x), iy(y);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (int64_t c = 0; c < ix.C; ++c) {
        const double w = param<T>(weight, c, 1.0), b = param<T>(bias, c, 0.0);
        for (int64_t n = 0; n < ix.N; ++n)
            for (int64_t h = 0; h < ix.H; ++h)
                for (int64_t v = 0; v < ix.W; ++v) {
                    const double xhat = (xp[ix.at(n, c, h, v)] - mean[c]) * invstd[c];
                    yp[iy.at(n, c, h, v)] = static_cast<T>(xhat * w + b);
                }
    }
    return y;
}

template <class T>
std::vector<Tensor> batch_norm_backward_reference(const Tensor& g, const Tensor& x, const std::vector<double>& mean,
                                                  const std::vector<double>& invstd, const Tensor& weight, bool training) {
    const Index4 ix(x), ig(g);
    Tensor dx = empty(x.shape(), {.dtype = x.dtype()});
    Tensor dw = empty({ix.C}, {.dtype = x.dtype()});
    Tensor db = empty({ix.C}, {.dtype = x.dtype()});
    const Index4 id(dx);
    const T *xp = x.data<T>(), *gp = g.data<T>();
    T* dxp = dx.data<T>();
    const double m = static_cast<double>(ix.count());
    for (int64_t c = 0; c < ix.C; ++c) {
        const double w = param<T>(weight, c, 1.0);
        double sum_dxhat = 0, sum_dxhat_xhat = 0, sum_g = 0, sum_g_xhat = 0;
        for (int64_t n = 0; n < ix.N; ++n)
            for (int64_t h = 0; h < ix.H; ++h)
                for (int64_t v = 0; v < ix.W; ++v) {
                    const double xhat = (xp[ix.at(n, c, h, v)] - mean[c]) * invstd[c];
                    const double gv = gp[ig.at(n, c, h, v)];
                    sum_g += gv;
                    sum_g_xhat += gv * xhat;
                    sum_dxhat += gv * w;
                    sum_dxhat_xhat += gv * w * xhat;
                }
        for (int64_t n = 0; n < ix.N; ++n)
            for (int64_t h = 0; h < ix.H; ++h)
                for (int64_t v = 0; v < ix.W; ++v) {
                    const double xhat = (xp[ix.at(n, c, h, v)] - mean[c]) * invstd[c];
                    const double dxhat = gp[ig.at(n, c, h, v)] * w;
                    const double d = training ? invstd[c] / m * (m * dxhat - sum_dxhat - xhat * sum_dxhat_xhat)
                                              : dxhat * invstd[c];
                    dxp[id.at(n, c, h, v)] = static_cast<T>(d);
                }
        dw.data<T>()[c] = static_cast<T>(sum_g_xhat);
        db.data<T>()[c] = static_cast<T>(sum_g);
    }
    return {dx, dw, db};
}

#define TAPEGRAD_INSTANTIATE(T)                                                                                         \
    template ChannelStats batch_norm_stats_reference<T>(const Tensor&);                                                 \
    template Tensor batch_norm_forward_reference<T>(const Tensor&, const std::vector<double>&,                          \
                                                    const std::vector<double>&, const Tensor&, const Tensor&);          \
    template std::vector<Tensor> batch_norm_backward_reference<T>(const Tensor&, const Tensor&,                         \
                                                                  const std::vector<double>&,                           \
                                                                  const std::vector<double>&, const Tensor&, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::kernels
