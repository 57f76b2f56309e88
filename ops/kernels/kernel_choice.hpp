#pragma once
// Which kernels an op runs: the reference kernels, written straight from the derivation, or the
// fast float32 ones. The forward decides once (choose_kernels) and its backward closure carries
// that decision, so the two halves of a node never disagree whatever the flags are by the time
// backward runs.
#include <cstdint>

#include "engine/dtype.hpp"

namespace tapegrad {

// Thread-local: ops run their reference kernels instead of the fast ones. Tests compare the two;
// float64 always uses the reference kernels.
bool use_reference_kernels();
class ReferenceKernelsGuard {
public:
    explicit ReferenceKernelsGuard(bool enabled = true);
    ~ReferenceKernelsGuard();
    ReferenceKernelsGuard(const ReferenceKernelsGuard&) = delete;
    ReferenceKernelsGuard& operator=(const ReferenceKernelsGuard&) = delete;

private:
    bool previous_;
};

enum class Kernels : uint8_t { Reference, Fast };

// What an autocast op (ops/autocast.hpp) computes in; the op decides from the guard and hands the
// choice to its kernels, as it does the kernel choice.
enum class Precision : uint8_t {
    Float32,            // the tensors' own dtype
    BFloat16,           // inputs converted to bfloat16, float32 accumulation: oneDNN's bf16 primitives
    BFloat16Reference,  // the same values from the float32 kernels on inputs rounded to bfloat16
};

// Reference for float64 or under ReferenceKernelsGuard; Fast otherwise.
Kernels choose_kernels(DType dtype);
inline bool is_reference(Kernels k) { return k == Kernels::Reference; }

}  // namespace tapegrad
