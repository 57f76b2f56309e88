#pragma once
// Automatic mixed precision, as PyTorch's torch.autocast("cpu", dtype=torch.bfloat16):
//
//   { tg::AutocastGuard autocast(tg::kBFloat16);  auto loss = loss_fn(model.forward(x), y); }
//   loss.backward();  optimizer.step();
//
// Under the guard (thread-local, like torch.autocast), conv2d, conv_transpose2d, matmul, mm and
// linear take float32 tensors and compute in bfloat16: their inputs are rounded to bfloat16, the
// products accumulate in float32, and the result is rounded to bfloat16. It comes back as a
// float32 tensor holding those bfloat16 values: exactly the values PyTorch's bfloat16 output
// holds, so that ops after it see what they would see in PyTorch, while they run in float32
// (PyTorch runs elementwise ops after an autocast op in bfloat16; batch norm, softmax, the losses
// and the reductions it runs in float32, as here). Their backward, recorded with the forward's
// precision, computes in bfloat16 too whether or not the guard is still open (as PyTorch's does):
// the incoming gradient and the saved inputs are rounded to bfloat16 and every gradient is rounded
// to bfloat16, then handed on as float32; a float32 weight gets a float32 gradient. Weights,
// gradients and optimizer state stay float32. float64 tensors are left in float64.
//
// On a processor whose oneDNN runs bfloat16 instructions (AVX-512 BF16, AMX) the ops run oneDNN's
// bf16 primitives. Elsewhere (AVX2, or DNNL_MAX_CPU_ISA below AVX512_CORE_BF16) they run the
// float32 kernels on inputs rounded to bfloat16 and round their results: the same values within
// float32 accumulation order, not faster than float32; the first such op says so once on stderr.
#include <cstdint>

#include "engine/dtype.hpp"

namespace tapegrad {

enum class AutocastPath : uint8_t {
    Best,       // oneDNN's bf16 primitives where the processor runs them, else the reference path
    Reference,  // the float32 kernels on rounded inputs, on any processor (tests compare the two)
};

class AutocastGuard {
public:
    // dtype must be kBFloat16 (PyTorch 1.13's CPU autocast computes in bfloat16 only);
    // enabled = false turns autocast off inside an enclosing guard.
    explicit AutocastGuard(DType dtype, bool enabled = true, AutocastPath path = AutocastPath::Best);
    ~AutocastGuard();
    AutocastGuard(const AutocastGuard&) = delete;
    AutocastGuard& operator=(const AutocastGuard&) = delete;

private:
    uint8_t previous_;
};

// Whether this thread is inside an enabled AutocastGuard (torch.is_autocast_cpu_enabled()).
bool is_autocast_enabled();
// Whether autocast runs bfloat16 kernels on this processor (oneDNN's AVX-512 BF16 or AMX ones).
bool autocast_is_accelerated();

}  // namespace tapegrad
