#include "ops/kernels/kernel_choice.hpp"

namespace tapegrad {
namespace {
thread_local bool t_reference_kernels = false;
}  // namespace

bool use_reference_kernels() { return t_reference_kernels; }
ReferenceKernelsGuard::ReferenceKernelsGuard(bool enabled) : previous_(t_reference_kernels) {
    t_reference_kernels = enabled;
}
ReferenceKernelsGuard::~ReferenceKernelsGuard() { t_reference_kernels = previous_; }

Kernels choose_kernels(DType dtype) {
    return dtype == kFloat64 || t_reference_kernels ? Kernels::Reference : Kernels::Fast;
}

}  // namespace tapegrad
