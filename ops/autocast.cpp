#include "ops/autocast.hpp"

#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>

#include "ops/detail/autocast.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/bfloat16.hpp"
#include "ops/kernels/cpu_isa.hpp"

namespace tapegrad {
namespace {

// Bit 0: enabled; bit 1: the reference path asked for.
constexpr uint8_t kEnabled = 1, kReference = 2;
thread_local uint8_t t_autocast = 0;

}  // namespace

AutocastGuard::AutocastGuard(DType dtype, bool enabled, AutocastPath path) : previous_(t_autocast) {
    if (dtype != kBFloat16)
        throw std::invalid_argument(std::string("AutocastGuard: CPU autocast computes in bfloat16 only, got ") + dtype_name(dtype) +
                                    "; pass tg::kBFloat16");
    t_autocast = static_cast<uint8_t>((enabled ? kEnabled : 0) | (path == AutocastPath::Reference ? kReference : 0));
}
AutocastGuard::~AutocastGuard() { t_autocast = previous_; }

bool is_autocast_enabled() { return (t_autocast & kEnabled) != 0; }
bool autocast_is_accelerated() { return kernels::onednn_has_bf16(); }

namespace detail {

Precision autocast_precision(DType dtype, Kernels kernels) {
    if (!(t_autocast & kEnabled) || dtype != kFloat32) return Precision::Float32;
    if ((t_autocast & kReference) || is_reference(kernels)) return Precision::BFloat16Reference;
    if (autocast_is_accelerated()) return Precision::BFloat16;
    static std::once_flag said;
    std::call_once(said, [] {
        std::fprintf(stderr,
                     "tapegrad: autocast is not accelerated on this processor (oneDNN runs %s, without bfloat16 instructions): "
                     "conv2d, conv_transpose2d, matmul and linear round to bfloat16 around their float32 kernels\n",
                     kernels::onednn_isa_name().c_str());
    });
    return Precision::BFloat16Reference;
}

PrecisionGuard::PrecisionGuard(Precision precision) : previous_(t_autocast) {
    t_autocast = precision == Precision::Float32 ? 0 : precision == Precision::BFloat16 ? kEnabled : kEnabled | kReference;
}
PrecisionGuard::~PrecisionGuard() { t_autocast = previous_; }

Tensor autocast_input(Precision precision, const Tensor& t) {
    if (precision != Precision::BFloat16Reference || !t.defined()) return t;
    return kernels::rounded_to_bfloat16(t);
}

Tensor bfloat16_values(Precision precision, const Tensor& t) {
    if (precision == Precision::Float32 || !t.defined()) return t;
    return kernels::rounded_to_bfloat16(t);
}

Tensor autocast_output(Precision precision, Tensor t) {
    if (precision != Precision::Float32) kernels::round_to_bfloat16_inplace(t);
    return t;
}

std::vector<SavedField> with_precision(std::vector<SavedField> fields, Precision precision) {
    if (precision != Precision::Float32)
        fields.push_back(saved("precision", precision == Precision::BFloat16 ? "bfloat16" : "bfloat16 (reference path)"));
    return fields;
}

}  // namespace detail
}  // namespace tapegrad
