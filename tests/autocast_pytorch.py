#!/usr/bin/env python3
"""Writes tests/autocast_reference.txt: a convolution and a linear layer run forward and backward
under PyTorch 1.13's torch.autocast("cpu", dtype=torch.bfloat16), with their float32 inputs, the
bfloat16 output and the float32 gradients the float32 leaves get. tests/test_autocast.cpp runs the
same under tg::AutocastGuard and compares. The incoming gradient is handed to PyTorch in bfloat16,
the dtype of the output it belongs to (in a network it comes from the bf16 ops after it); tapegrad
gets it in float32 and rounds it the same way.

Each line is `<case>.<tensor> <ndim> <dims...> : <values as float.hex>`. Run with Debian's PyTorch
(python3-torch), from the repository root:
  /usr/bin/python3 tests/autocast_pytorch.py > tests/autocast_reference.txt
"""
import torch
import torch.nn.functional as F

torch.manual_seed(23)


def emit(name, t):
    t = t.detach().float()
    values = " ".join(float(v).hex() for v in t.reshape(-1).tolist())
    print(f"{name} {t.dim()} {' '.join(str(d) for d in t.shape)} : {values}")


def run(case, fn, shapes):
    leaves = [torch.randn(*s, requires_grad=True) for s in shapes]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fn(*leaves)
    assert y.dtype == torch.bfloat16
    gy = torch.randn(y.shape)
    y.backward(gy.to(torch.bfloat16))
    for name, t in zip("xwb", leaves):
        emit(f"{case}.{name}", t)
    emit(f"{case}.gy", gy)
    emit(f"{case}.y", y)
    for name, t in zip("xwb", leaves):
        assert t.grad.dtype == torch.float32
        emit(f"{case}.d{name}", t.grad)


run("conv", lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1), [(2, 6, 7, 7), (8, 6, 3, 3), (8,)])
run("linear", lambda x, w, b: F.linear(x, w, b), [(6, 40), (12, 40), (12,)])
# Outputs of 1 and 2x2 pixels an image, where the backward passes on AVX-512 run the float32
# kernels on operands rounded to bfloat16 (ops/kernels/conv_gemm.cpp).
run("conv_1px", lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1), [(4, 32, 1, 1), (16, 32, 3, 3), (16,)])
run("conv_2x2px", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [(4, 32, 4, 4), (16, 32, 3, 3), (16,)])
# Three input channels and 32 filters, the SmallCNN's first layer: a few-channel convolution.
run("conv_few_channels", lambda x, w, b: F.conv2d(x, w, b, padding=1), [(8, 3, 8, 8), (32, 3, 3, 3), (32,)])
