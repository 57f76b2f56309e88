#!/usr/bin/env python3
"""Prints PyTorch 1.13's answers for the memory-format cases that tests/test_memory_format.cpp pins.

The inputs are small integers, so every value below is exact in float32 and float64. Run with
Debian's PyTorch, from the repository root:
  /usr/bin/python3 tests/memory_format_pytorch.py
"""
import torch
import torch.nn.functional as F

CL = torch.channels_last


def layout(t):
    """How PyTorch allocated t, a dense 4-D op output: 'contiguous' or 'channels_last'."""
    return "contiguous" if t.is_contiguous() else "channels_last"


def ints(shape, mod, shift):
    n = 1
    for s in shape:
        n *= s
    return (torch.arange(n) % mod - shift).reshape(shape).float()


x = ints((2, 3, 4, 4), 7, 3)
w = ints((4, 3, 3, 3), 5, 2)
b = torch.tensor([1.0, -2.0, 0.0, 3.0])

# conv2d(NCHW x, w).view(-1, 16): PyTorch allows it because the output is row-major.
y = F.conv2d(x, w, b, padding=1)
print("conv2d layout:", layout(y))
print("conv2d(x, w, b, padding=1).view(-1, 16)[:, :4]:", y.view(-1, 16)[:, :4].flatten().int().tolist())
print("row sums:", y.view(-1, 16).sum(1).int().tolist())

# Which input decides: the input or the weight, either one channels-last.
for xf in ("contiguous", "channels_last"):
    for wf in ("contiguous", "channels_last"):
        xx = x.contiguous(memory_format=CL) if xf == "channels_last" else x
        ww = w.contiguous(memory_format=CL) if wf == "channels_last" else w
        print(f"conv2d x {xf} w {wf}: {layout(F.conv2d(xx, ww, b, padding=1))}")
        yy = y.contiguous(memory_format=CL) if xf == "channels_last" else y
        print(f"conv_transpose2d x {xf} w {wf}: {layout(F.conv_transpose2d(yy, ww))}")

# channel_shuffle after a convolution: view, transpose, contiguous, view.
g = 2
s = y.view(2, g, 2, 4, 4).transpose(1, 2).contiguous().view(2, 4, 4, 4)
print("channel_shuffle(y, 2) channel order check:", [int(s[0, c].sum()) for c in range(4)])

# suggest_memory_format on strides, seen through conv2d's output layout (1x1 weight).
cases = [
    ((2, 3, 1, 1), (3, 1, 3, 3)),    # channels-last strides of an N,C,1,1 tensor
    ((2, 3, 1, 1), (3, 1, 1, 1)),    # row-major strides of the same
    ((2, 1, 4, 4), (16, 1, 4, 1)),   # N,1,H,W: the channel stride alone differs
    ((2, 3, 4, 4), (96, 1, 24, 3)),  # a slice of channels-last memory (not dense)
    ((2, 3, 4, 4), (48, 0, 12, 3)),  # a broadcast channel
    ((1, 3, 1, 4), (12, 1, 12, 3)),  # 1,C,1,W channels-last
    ((2, 1, 1, 1), (1, 1, 1, 1)),    # N,1,1,1: ambiguous, row-major
]
for shape, strides in cases:
    base = torch.arange(200.0)
    t = base.as_strided(shape, strides)
    out = F.conv2d(t, torch.ones(2, shape[1], 1, 1))
    cl_strides = list(torch.empty(out.shape).contiguous(memory_format=CL).stride())
    rm_strides = list(torch.empty(out.shape).stride())
    which = "channels_last" if list(out.stride()) == cl_strides and cl_strides != rm_strides else (
        "contiguous" if list(out.stride()) == rm_strides else "channels_last")
    print(f"suggest {shape} {strides}: {which}")
