#pragma once
// Weight initialisation as in torch.nn.init, drawing from an explicit Generator or, without one,
// from the default generator (torch.nn.init's generator=None; seed it with manual_seed). The
// tensors are filled in place, outside autograd.
#include <utility>

#include "engine/generator.hpp"
#include "engine/tensor.hpp"

namespace tapegrad::nn::init {

enum class FanMode { FanIn, FanOut };
enum class Nonlinearity { Linear, Sigmoid, Tanh, ReLU, LeakyReLU };

// PyTorch's _calculate_fan_in_and_fan_out: fan_in = size(1) * receptive field, fan_out =
// size(0) * receptive field, for tensors of 2 or more dimensions.
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t);
// calculate_gain: 1 (linear, sigmoid), 5/3 (tanh), sqrt(2) (relu), sqrt(2 / (1 + a^2)) (leaky relu).
double calculate_gain(Nonlinearity nonlinearity, double a = 0.0);

void uniform_(Tensor& t, double low, double high, Generator& gen);
void uniform_(Tensor& t, double low = 0.0, double high = 1.0);
void normal_(Tensor& t, double mean, double std, Generator& gen);
void normal_(Tensor& t, double mean = 0.0, double std = 1.0);
void zeros_(Tensor& t);
void ones_(Tensor& t);
// bound = gain * sqrt(3 / fan)
void kaiming_uniform_(Tensor& t, Generator& gen, double a = 0.0, FanMode mode = FanMode::FanIn,
                      Nonlinearity nonlinearity = Nonlinearity::LeakyReLU);
void kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn, Nonlinearity nonlinearity = Nonlinearity::LeakyReLU);
// std = gain / sqrt(fan)
void kaiming_normal_(Tensor& t, Generator& gen, double a = 0.0, FanMode mode = FanMode::FanIn,
                      Nonlinearity nonlinearity = Nonlinearity::LeakyReLU);
void kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn, Nonlinearity nonlinearity = Nonlinearity::LeakyReLU);
// bound = gain * sqrt(6 / (fan_in + fan_out))
void xavier_uniform_(Tensor& t, Generator& gen, double gain = 1.0);
void xavier_uniform_(Tensor& t, double gain = 1.0);
// std = gain * sqrt(2 / (fan_in + fan_out))
void xavier_normal_(Tensor& t, Generator& gen, double gain = 1.0);
void xavier_normal_(Tensor& t, double gain = 1.0);
// PyTorch's reset_parameters of its Linear and Conv layers: kaiming_uniform(a = sqrt(5)) gives
// bound = 1/sqrt(fan_in) for the weight; the bias (when defined) uses the same bound.
void reset_like_pytorch(Tensor& weight, Tensor& bias, Generator& gen);

}  // namespace tapegrad::nn::init
