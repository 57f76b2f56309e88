#!/usr/bin/env python3
"""Writes tests/models/pool_reference.tgck, PyTorch's answers for the pooling options that
tests/test_pool_pytorch.cpp checks tapegrad against (ceil_mode with a window hanging over the
edge, count_include_pad=False, dilation, divisor_override, return_indices, max_unpool2d with
output_size and with repeated indices).

For each case, in tapegrad's checkpoint format (nn/serialize.hpp), all float64:
  <case>.in0      the input
  <case>.indices  max_unpool2d's indices (its input); for max_indices, the indices max_pool2d returned
  <case>.out      the output
  <case>.cot      a random cotangent c
  <case>.grad0    d sum(out * c) / d in0
Run with Debian's PyTorch (python3-torch, python3-torchvision), from the repository root:
  /usr/bin/python3 tests/models/make_pool_reference.py
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_reference import write_checkpoint  # noqa: E402


def main():
    gen = torch.Generator().manual_seed(13)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

    def pooled_indices(shape, **pool):
        """Indices (and values) from a real max-pool, as a SegNet decoder gets them."""
        values, indices = F.max_pool2d(torch.randn(*shape, generator=gen, dtype=torch.float64), return_indices=True, **pool)
        return values.detach().requires_grad_(), indices

    entries = []

    def add(name, x, fn, indices=None):
        out = fn(x)
        cot = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        (grad,) = torch.autograd.grad((out * cot).sum(), [x])
        entries.extend([(f"{name}.in0", x), (f"{name}.out", out), (f"{name}.cot", cot), (f"{name}.grad0", grad)])
        if indices is not None:
            entries.append((f"{name}.indices", indices.double()))

    # 5 rows, k3 s2 p1 ceil: the last window starts on row 3 and reaches past the padding.
    add("max_ceil_overhang", r(2, 2, 5, 7), lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True))
    add("max_dilation2", r(1, 2, 8, 7), lambda x: F.max_pool2d(x, 3, stride=1, padding=1, dilation=2))
    add("max_dilation_ceil_nonsquare", r(1, 2, 7, 9),
        lambda x: F.max_pool2d(x, (2, 3), stride=(2, 1), padding=1, dilation=(2, 1), ceil_mode=True))
    # 6 rows, k3 s2 p1 ceil: the last window's divisor is 2 rows (clipped to the padded input), not 3.
    add("avg_ceil_overhang", r(1, 2, 6, 6), lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True))
    add("avg_ceil_k2_odd", r(1, 2, 5, 5), lambda x: F.avg_pool2d(x, 2, ceil_mode=True))
    add("avg_exclude_pad", r(2, 2, 7, 6),
        lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False))
    add("avg_divisor_override", r(1, 2, 5, 6),
        lambda x: F.avg_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 0), divisor_override=5))
    x = r(1, 3, 6, 7)
    _, indices = F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, return_indices=True)
    add("max_indices", x, lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), indices)
    values, indices = pooled_indices((1, 2, 7, 8), kernel_size=2, ceil_mode=True)
    add("unpool_output_size", values, lambda x: F.max_unpool2d(x, indices, 2, output_size=(7, 8)), indices)
    # Overlapping windows: neighbouring windows may pick the same maximum, a repeated index.
    values, indices = pooled_indices((2, 1, 7, 7), kernel_size=3, stride=2, padding=1)
    assert any(len(set(p.tolist())) < p.numel() for p in indices.reshape(2, -1)), "wanted a repeated index"
    add("unpool_overlapping", values, lambda x: F.max_unpool2d(x, indices, 3, stride=2, padding=1, output_size=(7, 7)), indices)
    write_checkpoint(os.path.join(HERE, "pool_reference.tgck"), entries)


if __name__ == "__main__":
    main()
