// Hyper-parameter checks, and the tensors state_dict() stores hyper-parameters as.
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "nn/optimizer.hpp"

namespace tapegrad::nn {
namespace {

void require_count(const Tensor& t, int64_t count, const std::string& what) {
    if (t.numel() != count)
        throw std::invalid_argument(what + " must hold " + std::to_string(count) + " value" + (count == 1 ? "" : "s") +
                                    ", got " + describe(t));
}

}  // namespace

void OptionChecker::require(bool ok, const std::string& what, double value) const {
    if (!ok || !std::isfinite(value)) fail("invalid " + what + ": " + detail::format_number(value));
}

void OptionChecker::fail(const std::string& problem) const { throw std::invalid_argument(who_ + ": " + problem); }

namespace detail {

std::string format_number(double value) {
    std::ostringstream s;
    s << value;
    return s.str();
}

Tensor encode_hyper_parameter(double value) { return scalar_tensor(value, {.dtype = kFloat64}); }
Tensor encode_hyper_parameter(bool value) { return scalar_tensor(value ? 1.0 : 0.0, {.dtype = kFloat64}); }
Tensor encode_hyper_parameter(int64_t value) { return scalar_tensor(static_cast<double>(value), {.dtype = kFloat64}); }
Tensor encode_hyper_parameter(const std::array<double, 2>& value) {
    return from_vector(std::vector<double>{value[0], value[1]}, {2}, {.dtype = kFloat64});
}
Tensor encode_hyper_parameter(const std::optional<int64_t>& value) {
    return value ? encode_hyper_parameter(*value) : empty({0}, {.dtype = kFloat64});
}
Tensor encode_hyper_parameter(const std::optional<std::string>& value) {
    std::vector<double> codes;
    if (value)
        for (unsigned char c : *value) codes.push_back(c);
    return from_vector(codes, {static_cast<int64_t>(codes.size())}, {.dtype = kFloat64});
}

void decode_hyper_parameter(const Tensor& t, double& value, const std::string& what) {
    require_count(t, 1, what);
    value = t.item();
}

void decode_hyper_parameter(const Tensor& t, bool& value, const std::string& what) {
    require_count(t, 1, what);
    const double v = t.item();
    if (v != 0.0 && v != 1.0) throw std::invalid_argument(what + " is " + format_number(v) + "; a flag is 0 or 1");
    value = v == 1.0;
}

void decode_hyper_parameter(const Tensor& t, int64_t& value, const std::string& what) {
    require_count(t, 1, what);
    const double v = t.item();
    if (!(std::abs(v) < 9e15 && std::floor(v) == v))
        throw std::invalid_argument(what + " is " + format_number(v) + ", not a whole number");
    value = static_cast<int64_t>(v);
}

void decode_hyper_parameter(const Tensor& t, std::array<double, 2>& value, const std::string& what) {
    require_count(t, 2, what);
    const std::vector<double> v = t.to_vector<double>();
    value = {v[0], v[1]};
}

void decode_hyper_parameter(const Tensor& t, std::optional<int64_t>& value, const std::string& what) {
    if (t.numel() == 0) {
        value.reset();
        return;
    }
    int64_t v = 0;
    decode_hyper_parameter(t, v, what);
    value = v;
}

void decode_hyper_parameter(const Tensor& t, std::optional<std::string>& value, const std::string& what) {
    if (t.dim() != 1) throw std::invalid_argument(what + " must be a string's character codes [n], got " + describe(t));
    if (t.numel() == 0) {
        value.reset();
        return;
    }
    std::string text;
    for (double c : t.to_vector<double>()) {
        if (!(c >= 1 && c <= 255 && std::floor(c) == c))
            throw std::invalid_argument(what + " holds " + format_number(c) + ", not a character code (1 to 255)");
        text.push_back(static_cast<char>(static_cast<unsigned char>(c)));
    }
    value = std::move(text);
}

}  // namespace detail

}  // namespace tapegrad::nn
