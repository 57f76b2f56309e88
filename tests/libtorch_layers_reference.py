#!/usr/bin/env python3
"""Writes tests/libtorch_layers_reference.txt: what PyTorch 1.13 computes for the layers that
tests/test_libtorch_data.cpp checks (nn.Embedding with padding_idx, nn.Softmax, nn.LogSoftmax,
nn.Conv1d). One line per value, as tests/reference_values.hpp reads them:
  <name> <shape, as d0xd1x... or "scalar"> <values, row-major>
Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/libtorch_layers_reference.py
"""
import os

import torch

from tensor_members_reference import HERE, line  # the same line format, next to this script


def main():
    torch.set_default_dtype(torch.float64)
    out = []

    # Embedding(5, 3, padding_idx=2) with weight 0.1 k - 0.7 (k = 0..14, row-major), indices
    # [[0, 2, 4], [2, 2, 1]]; loss = sum(out * c) with c = 0.05 k + 0.1 (k = 0..17).
    emb = torch.nn.Embedding(5, 3, padding_idx=2)
    with torch.no_grad():
        emb.weight.copy_(torch.arange(15.0).reshape(5, 3) * 0.1 - 0.7)
    out_emb = emb(torch.tensor([[0, 2, 4], [2, 2, 1]]))
    (out_emb * (torch.arange(18.0).reshape(2, 3, 3) * 0.05 + 0.1)).sum().backward()
    out += [line("embedding.out", out_emb), line("embedding.grad_weight", emb.weight.grad)]

    # Softmax(1) and LogSoftmax(0) of x = 0.3 k - 1 (k = 0..7) as [2, 4].
    x = torch.arange(8.0).reshape(2, 4) * 0.3 - 1
    out += [line("softmax.dim1", torch.nn.Softmax(dim=1)(x)), line("log_softmax.dim0", torch.nn.LogSoftmax(dim=0)(x))]

    # Conv1d(4, 6, 3, stride=2, padding=1, groups=2) with weight 0.02 k - 0.3 (k = 0..35), bias
    # 0.1 k - 0.2 (k = 0..5), x = sin(k) (k = 0..55) as [2, 4, 7]; loss = sum(out * cos(k)).
    conv = torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2)
    with torch.no_grad():
        conv.weight.copy_((torch.arange(36.0) * 0.02 - 0.3).reshape(6, 2, 3))
        conv.bias.copy_(torch.arange(6.0) * 0.1 - 0.2)
    x = torch.sin(torch.arange(56.0)).reshape(2, 4, 7).requires_grad_()
    y = conv(x)
    c = torch.cos(torch.arange(float(y.numel()))).reshape(y.shape)
    (y * c).sum().backward()
    out += [line("conv1d.input", x), line("conv1d.c", c), line("conv1d.out", y), line("conv1d.grad_weight", conv.weight.grad), line("conv1d.grad_bias", conv.bias.grad),
            line("conv1d.grad_input", x.grad)]

    with open(os.path.join(HERE, "libtorch_layers_reference.txt"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
