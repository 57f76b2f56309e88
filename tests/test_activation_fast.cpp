// The vectorised float32 activations (ops/kernels/activation_fast.cpp) against float64 std::
// references: the largest error in ulp over a wide sweep (subnormals, large |x|, the edges of
// exp's range), the special values, tails shorter than a vector, and strided inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/generator.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/kernels/activation_fast.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/reduce.hpp"

namespace tg = tapegrad;
namespace k = tapegrad::kernels;
using tg::Tensor;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The spacing of floats at |v|, and at 2^-120 below it: there, among tiny and subnormal results
// (e^-100, sigmoid(-100), silu(-100)), the error counts in units of 2^-143 (64 subnormal steps).
double ulp_at(double v) {
    const float f = std::max(std::fabs(static_cast<float>(v)), std::ldexp(1.0f, -120));
    if (std::isinf(f)) return std::numeric_limits<double>::infinity();
    return static_cast<double>(std::nextafter(f, kInf)) - static_cast<double>(f);
}

// Error of `got` against the exact value `want`, in ulp of want. Equal infinities, and NaN
// where NaN is wanted, count as 0; NaN anywhere else, or a wrong infinity, as infinite.
double ulp_error(float got, double want) {
    if (std::isnan(want)) return std::isnan(got) ? 0 : std::numeric_limits<double>::infinity();
    if (std::isnan(got)) return std::numeric_limits<double>::infinity();
    const float rounded = static_cast<float>(want);  // e^89 is finite in double, inf in float
    if (std::isinf(rounded) || std::isinf(got)) return got == rounded ? 0 : std::numeric_limits<double>::infinity();
    return std::fabs(static_cast<double>(got) - want) / ulp_at(want);
}

// Inputs for a sweep over [lo, hi]: a dense linear grid, every power of two and its neighbours
// inside the range, and values log-uniform in magnitude down to the smallest subnormal.
std::vector<float> sweep(float lo, float hi) {
    std::vector<float> v;
    const int steps = 400000;
    for (int i = 0; i <= steps; ++i) v.push_back(lo + (hi - lo) * static_cast<float>(i) / steps);
    for (int e = -149; e <= 127; ++e)
        for (float s : {1.0f, -1.0f})
            for (float m : {1.0f, 1.0000001f, 1.5f, 1.9999999f}) {
                const float x = s * m * std::ldexp(1.0f, e);
                if (x >= lo && x <= hi) v.push_back(x);
            }
    tg::Generator gen(7);
    for (int i = 0; i < 200000; ++i) {
        const float mag = std::exp(static_cast<float>(gen.uniform() * 190.0 - 103.0));  // e^-103 .. e^87
        const float x = gen.uniform() < 0.5 ? -mag : mag;
        if (x >= lo && x <= hi) v.push_back(x);
    }
    return v;
}

struct Measured {
    double max_ulp = 0;
    float at = 0;
};

// `slack`: an absolute error the float formula cannot avoid, subtracted before counting ulp.
Measured forward_error(k::ActivationKernel f, const std::vector<float>& x, const std::function<double(double)>& exact,
                       const std::function<double(double)>& slack) {
    std::vector<float> y(x.size());
    k::activation_forward_fast(f, x.data(), y.data(), static_cast<int64_t>(x.size()));
    Measured m;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double want = exact(x[i]);
        double e = ulp_error(y[i], want);
        if (std::isfinite(e) && !std::isnan(want))
            e = std::max(0.0, std::fabs(static_cast<double>(y[i]) - want) - slack(x[i])) / ulp_at(want);
        if (e > m.max_ulp) m = {e, x[i]};
    }
    return m;
}

double sigmoid64(double v) { return 1.0 / (1.0 + std::exp(-v)); }
// gelu's tanh form as x sigmoid(2u): 0.5 x (1 + tanh u) cancels for x << 0, even in double.
double two_u(double v) { return 2 * 0.79788456080286535588 * (v + 0.044715 * v * v * v); }
double gelu_tanh64(double v) { return v * sigmoid64(two_u(v)); }
// Rounding 2u = 2c (x + k x^3) to float moves it by a few ulp of 2u, and gelu by d gelu / d(2u)
// = x s (1 - s) times that: a conditioning of up to ~200 ulp for x near -10, in every float
// evaluation of the formula (the reference kernel's included).
double gelu_slack(double v) {
    const double s = sigmoid64(two_u(v));
    return std::fabs(v * s * (1 - s)) * 4 * ulp_at(two_u(v));
}
// The exact gelu, x erfc(-z) / 2 with z = x / sqrt 2 rounded to float: d gelu / dz = x e^(-z^2) / sqrt(pi),
// a conditioning of up to ~100 ulp near x = -9. Below x = -12.7, erfc(-z) is under FLT_MIN, where
// xsimd's erfc has no subnormals: there the error is up to FLT_MIN itself (the reference kernel's
// 1 + erf(z) gives 0 from x = -6 on).
double gelu_erf_slack(double v) {
    const double z = v / std::sqrt(2.0);
    return std::fabs(v) * std::exp(-z * z) / std::sqrt(M_PI) * 4 * ulp_at(z) + std::numeric_limits<float>::min();
}
double no_slack(double) { return 0; }

}  // namespace

TEST_CASE("vectorised exp, log, sigmoid, tanh: a few ulp from float64 over the whole float range") {
    struct Case {
        const char* name;
        k::ActivationKernel f;
        float lo, hi;
        std::function<double(double)> exact;
        double tolerance;  // ulp
        std::function<double(double)> slack = no_slack;
    };
    const std::vector<Case> cases = {
        {"exp", {k::Activation::Exp}, -110.0f, 90.0f, [](double v) { return std::exp(v); }, 2},
        {"log", {k::Activation::Log}, -1.0f, 3.4e38f, [](double v) { return std::log(v); }, 2},
        {"sigmoid", {k::Activation::Sigmoid}, -110.0f, 110.0f, sigmoid64, 3},
        {"tanh", {k::Activation::Tanh}, -100.0f, 100.0f, [](double v) { return std::tanh(v); }, 3},
        {"silu", {k::Activation::Silu}, -110.0f, 110.0f, [](double v) { return v * sigmoid64(v); }, 4},
        {"elu", {k::Activation::Elu, 1.5f}, -110.0f, 110.0f, [](double v) { return v > 0 ? v : 1.5 * std::expm1(v); }, 3},
        {"gelu tanh", {k::Activation::GeluTanh}, -110.0f, 110.0f, gelu_tanh64, 4, gelu_slack},
        {"gelu", {k::Activation::Gelu}, -110.0f, 110.0f, [](double v) { return 0.5 * v * std::erfc(-v / std::sqrt(2.0)); }, 6,
         gelu_erf_slack},
    };
    for (const Case& c : cases) {
        const Measured m = forward_error(c.f, sweep(c.lo, c.hi), c.exact, c.slack);
        MESSAGE(std::string(c.name), ": max error ", m.max_ulp, " ulp at x = ", m.at);
        CHECK_MESSAGE(m.max_ulp <= c.tolerance, std::string(c.name), ": ", m.max_ulp, " ulp at x = ", m.at);
    }
}

TEST_CASE("vectorised backward: dx = g f'(saved) within a few ulp plus a rounding floor") {
    struct Case {
        const char* name;
        k::ActivationKernel f;
        float lo, hi;
        std::function<double(double)> derivative;  // of the saved value
        // Where the derivative is a difference near 0 (1 - y^2 for y near 1; silu' and gelu' at
        // their zeros), the rounding of its float terms costs an absolute error of about this
        // times |g|; only what lies beyond it counts.
        double floor = 0;
    };
    const std::vector<Case> cases = {
        {"exp", {k::Activation::Exp}, 0.0f, 3e38f, [](double y) { return y; }},
        {"log", {k::Activation::Log}, 1e-30f, 3e38f, [](double x) { return 1.0 / x; }},
        {"sigmoid", {k::Activation::Sigmoid}, 0.0f, 1.0f, [](double y) { return y * (1.0 - y); }},
        {"tanh", {k::Activation::Tanh}, -1.0f, 1.0f, [](double y) { return 1.0 - y * y; }, 6e-8},
        {"silu", {k::Activation::Silu}, -110.0f, 100.0f,
         [](double x) { return sigmoid64(x) * (1.0 + x * (1.0 - sigmoid64(x))); }, 6e-8},
        {"elu", {k::Activation::Elu, 1.5f}, -110.0f, 100.0f, [](double x) { return x > 0 ? 1.0 : 1.5 * std::exp(x); }},
        {"gelu tanh", {k::Activation::GeluTanh}, -110.0f, 100.0f,
         [](double x) {
             const double s = sigmoid64(two_u(x));
             return s + 2 * x * s * (1 - s) * 0.79788456080286535588 * (1 + 3 * 0.044715 * x * x);
         },
         6e-8},
        {"gelu", {k::Activation::Gelu}, -110.0f, 100.0f,
         // Phi(x) + x phi(x) cancels near its zero x = -0.75: terms of 0.2 with a few ulp each.
         [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); }, 1.2e-7},
    };
    for (const Case& c : cases) {
        const std::vector<float> s = sweep(c.lo, c.hi);
        std::vector<float> g(s.size()), dx(s.size());
        tg::Generator gen(3);
        for (float& v : g) v = static_cast<float>(gen.uniform() * 4.0 - 2.0);
        k::activation_backward_fast(c.f, g.data(), s.data(), dx.data(), static_cast<int64_t>(s.size()));
        double worst = 0;
        float at = 0;
        for (std::size_t i = 0; i < s.size(); ++i) {
            const double want = static_cast<double>(g[i]) * c.derivative(s[i]);
            const double floor = c.floor * std::fabs(g[i]);
            const double err = std::isinf(static_cast<float>(want)) ? ulp_error(dx[i], want)
                                                : std::max(0.0, std::fabs(dx[i] - want) - floor) / ulp_at(want);
            if (err > worst) worst = err, at = s[i];
        }
        MESSAGE(std::string(c.name), " backward: max error beyond the floor ", worst, " ulp at saved = ", at);
        CHECK_MESSAGE(worst <= 4, std::string(c.name), " backward: ", worst, " ulp at saved = ", at);
    }
}

TEST_CASE("vectorised activations: special values as std:: gives them") {
    auto run = [](auto op, std::vector<float> x) { return op(tg::from_vector(x, {static_cast<int64_t>(x.size())})).template to_vector<float>(); };
    const float tiny = std::numeric_limits<float>::denorm_min();
    const auto e = run([](const Tensor& t) { return tg::exp(t); }, {100.0f, -kInf, kInf, kNaN, -100.0f, tiny, 0.0f});
    CHECK(e[0] == kInf);
    CHECK(e[1] == 0.0f);
    CHECK(e[2] == kInf);
    CHECK(std::isnan(e[3]));
    CHECK(e[4] == std::exp(-100.0f));  // a subnormal, not 0
    CHECK(e[4] > 0.0f);
    CHECK(e[5] == 1.0f);
    CHECK(e[6] == 1.0f);
    const auto l = run([](const Tensor& t) { return tg::log(t); }, {0.0f, -0.0f, -1.0f, kInf, kNaN, tiny, 1.0f});
    CHECK(l[0] == -kInf);
    CHECK(l[1] == -kInf);
    CHECK(std::isnan(l[2]));
    CHECK(l[3] == kInf);
    CHECK(std::isnan(l[4]));
    CHECK(l[5] == std::log(tiny));
    CHECK(l[6] == 0.0f);
    const auto s = run([](const Tensor& t) { return tg::sigmoid(t); }, {-100.0f, 100.0f, -kInf, kInf, kNaN, 0.0f, -tiny});
    CHECK(s[0] >= 0.0f);
    CHECK(s[0] < 1e-40f);
    CHECK(s[1] == 1.0f);
    CHECK(s[2] == 0.0f);
    CHECK(s[3] == 1.0f);
    CHECK(std::isnan(s[4]));
    CHECK(s[5] == 0.5f);
    CHECK(s[6] == 0.5f);
    const auto t = run([](const Tensor& v) { return tg::tanh(v); }, {kInf, -kInf, kNaN, 0.0f, -0.0f, tiny, 20.0f, -20.0f});
    CHECK(t[0] == 1.0f);
    CHECK(t[1] == -1.0f);
    CHECK(std::isnan(t[2]));
    CHECK(t[3] == 0.0f);
    CHECK(std::signbit(t[4]));
    CHECK(t[5] == tiny);
    CHECK(t[6] == 1.0f);
    CHECK(t[7] == -1.0f);
    const auto si = run([](const Tensor& v) { return tg::silu(v); }, {-100.0f, 100.0f, kInf, kNaN});
    CHECK(si[0] < 0.0f);  // -100 e^-100, a subnormal (the float formula x / (1 + e^-x) gives -0)
    CHECK(si[0] > -1e-40f);
    CHECK(si[1] == 100.0f);
    CHECK(si[2] == kInf);
    CHECK(std::isnan(si[3]));
    const auto el = run([](const Tensor& v) { return tg::elu(v); }, {-kInf, kInf, kNaN, -100.0f});
    CHECK(el[0] == -1.0f);
    CHECK(el[1] == kInf);
    CHECK(std::isnan(el[2]));
    CHECK(el[3] == -1.0f);
}

TEST_CASE("vectorised activations: tails, strided views and layouts match the reference kernels") {
    using Op = std::function<Tensor(const Tensor&)>;
    const std::vector<std::pair<const char*, Op>> ops = {
        {"exp", [](const Tensor& x) { return tg::exp(x); }},
        {"log", [](const Tensor& x) { return tg::log(tg::abs(x) + 0.1); }},
        {"sigmoid", [](const Tensor& x) { return tg::sigmoid(x); }},
        {"tanh", [](const Tensor& x) { return tg::tanh(x); }},
        {"silu", [](const Tensor& x) { return tg::silu(x); }},
        {"elu", [](const Tensor& x) { return tg::elu(x, 0.7); }},
        {"gelu tanh", [](const Tensor& x) { return tg::gelu(x, tg::GeluApproximate::Tanh); }},
        {"gelu", [](const Tensor& x) { return tg::gelu(x); }},
    };
    tg::Generator gen(11);
    // Sizes around the vector widths (8 for AVX2, 16 for AVX-512), and above the parallel threshold.
    std::vector<Tensor> inputs;
    for (int64_t n : {1, 3, 7, 8, 9, 15, 16, 17, 33, 70000}) inputs.push_back(tg::randn({n}, gen) * 3.0);
    const Tensor base = tg::randn({2, 5, 6, 7}, gen) * 3.0;
    inputs.push_back(base.transpose(1, 3));                              // dense, not a standard layout
    inputs.push_back(base.slice(3, 1, 7, 2));                            // strided
    inputs.push_back(base.contiguous(tg::MemoryFormat::ChannelsLast));  // channels-last
    for (const auto& [name, op] : ops)
        for (const Tensor& x0 : inputs) {
            CAPTURE(name);
            CAPTURE(x0.shape());
            Tensor xf = x0.detach();
            xf.requires_grad_(true);
            Tensor xr = x0.detach();
            xr.requires_grad_(true);
            const Tensor yf = op(xf);
            Tensor yr;
            {
                tg::ReferenceKernelsGuard reference;
                yr = op(xr);
            }
            CHECK(yf.shape() == x0.shape());
            CHECK(tg::allclose(yf, yr, 1e-5, 1e-6));
            if (x0.is_contiguous(tg::MemoryFormat::ChannelsLast) && !x0.is_contiguous())
                CHECK(yf.is_contiguous(tg::MemoryFormat::ChannelsLast));
            // A gradient whose layout differs from the saved tensor's, for the strided cases.
            const Tensor g = tg::randn(x0.shape(), gen);
            (yf * g).sum().backward();
            {
                tg::ReferenceKernelsGuard reference;
                (yr * g).sum().backward();
            }
            CHECK(tg::allclose(xf.grad(), xr.grad(), 1e-4, 1e-5));
        }
}
