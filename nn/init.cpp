#include "nn/init.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/tensor_math.hpp"

namespace tapegrad::nn::init {
namespace {
template <class Draw>
void fill_with(Tensor& t, Draw&& draw) {
    // Draws in row-major order whatever the layout, so a seed gives the same values everywhere.
    Tensor values = empty(t.shape(), {.dtype = t.dtype()});
    dispatch(t.dtype(), [&]<class T>() {
        T* p = values.data<T>();
        for (int64_t i = 0, n = values.numel(); i < n; ++i) p[i] = static_cast<T>(draw());
    });
    copy_into(t, values);
    t.bump_version();
}

double fan(const Tensor& t, FanMode mode) {
    auto [in, out] = fan_in_and_fan_out(t);
    const int64_t f = mode == FanMode::FanIn ? in : out;
    if (f == 0) throw std::invalid_argument("init: cannot initialise a tensor with zero fan (" + describe(t) + ")");
    return static_cast<double>(f);
}
}  // namespace

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t) {
    if (t.dim() < 2)
        throw std::invalid_argument("init: fan in and fan out need a tensor of at least 2 dimensions, got " + describe(t));
    int64_t receptive = 1;
    for (std::size_t d = 2; d < t.dim(); ++d) receptive *= t.size(static_cast<int64_t>(d));
    return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(Nonlinearity nonlinearity, double a) {
    switch (nonlinearity) {
        case Nonlinearity::Linear:
        case Nonlinearity::Sigmoid: return 1.0;
        case Nonlinearity::Tanh: return 5.0 / 3.0;
        case Nonlinearity::ReLU: return std::sqrt(2.0);
        case Nonlinearity::LeakyReLU: return std::sqrt(2.0 / (1.0 + a * a));
    }
    throw std::invalid_argument("calculate_gain: unknown nonlinearity");
}

void uniform_(Tensor& t, double low, double high, Generator& gen) {
    if (!(low <= high)) throw std::invalid_argument("init::uniform_: low must not exceed high");
    const auto guard = gen.lock();
    fill_with(t, [&] { return low + (high - low) * gen.uniform(); });
}

void normal_(Tensor& t, double mean, double std, Generator& gen) {
    if (!(std >= 0)) throw std::invalid_argument("init::normal_: std must be non-negative");
    const auto guard = gen.lock();
    fill_with(t, [&] { return mean + std * gen.normal(); });
}

void uniform_(Tensor& t, double low, double high) { uniform_(t, low, high, default_generator()); }
void normal_(Tensor& t, double mean, double std) { normal_(t, mean, std, default_generator()); }

void zeros_(Tensor& t) {
    fill_tensor(t, 0.0);
    t.bump_version();
}
void ones_(Tensor& t) {
    fill_tensor(t, 1.0);
    t.bump_version();
}

void kaiming_uniform_(Tensor& t, Generator& gen, double a, FanMode mode, Nonlinearity nonlinearity) {
    const double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / fan(t, mode));
    uniform_(t, -bound, bound, gen);
}

void reset_like_pytorch(Tensor& weight, Tensor& bias, Generator& gen) {
    kaiming_uniform_(weight, gen, std::sqrt(5.0));
    if (bias.defined()) {
        const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in_and_fan_out(weight).first));
        uniform_(bias, -bound, bound, gen);
    }
}

void kaiming_normal_(Tensor& t, Generator& gen, double a, FanMode mode, Nonlinearity nonlinearity) {
    normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(fan(t, mode)), gen);
}

void xavier_uniform_(Tensor& t, Generator& gen, double gain) {
    auto [in, out] = fan_in_and_fan_out(t);
    const double bound = gain * std::sqrt(6.0 / static_cast<double>(in + out));
    uniform_(t, -bound, bound, gen);
}

void xavier_normal_(Tensor& t, Generator& gen, double gain) {
    auto [in, out] = fan_in_and_fan_out(t);
    normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(in + out)), gen);
}

void kaiming_uniform_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
    kaiming_uniform_(t, default_generator(), a, mode, nonlinearity);
}
void kaiming_normal_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
    kaiming_normal_(t, default_generator(), a, mode, nonlinearity);
}
void xavier_uniform_(Tensor& t, double gain) { xavier_uniform_(t, default_generator(), gain); }
void xavier_normal_(Tensor& t, double gain) { xavier_normal_(t, default_generator(), gain); }

}  // namespace tapegrad::nn::init
