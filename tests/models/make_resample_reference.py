#!/usr/bin/env python3
"""Writes tests/models/resample_reference.tgck, PyTorch's answers for F.interpolate that
tests/test_ops_pytorch.cpp checks tapegrad against: modes nearest, nearest-exact and bilinear
(with and without align_corners) at sizes and scale factors where the source index is a float
rounding away from an integer (output row 11 of 30 -> 22 reads 11 * 30/22, which is
14.999999999999998 in double; column 49 of 2 -> 98 and row 39 of a 1.3 scale likewise), at
2x, at a size that stays the same, at scale factors 1.3, 0.7, 1/3, 1.05 (same size, but a
scale other than 1) and with recompute_scale_factor.

For each case, in tapegrad's checkpoint format (nn/serialize.hpp):
  <case>.options  float64 [mode (0 nearest, 1 nearest-exact, 2 bilinear), size_h, size_w (-1 for
                  a scale factor), scale_factor (-1 for a size), align_corners, recompute_scale_factor]
  <case>.in       the input, float32
  <case>.cot      a random cotangent c, float32
  <case>.f64.out, <case>.f64.grad   PyTorch's output and d sum(out * c) / d in, in float64
  <case>.f32.out, <case>.f32.grad   the same in float32

PyTorch 1.13's CPU nearest kernels for a row-major input compute the source index in the
input's dtype without nearest_idx's special cases (same size: copy; 2x: o/2), while its
channels-last forward and its backward (either layout) use nearest_idx and nearest_exact_idx.
The two disagree in places (a 1.05 scale that keeps the size: the row-major forward reads rows
0,0,1,2,.. and the backward scatters to 0,1,2,..; float64 at some sizes), so PyTorch's own
gradient is not the transpose of its row-major forward there. tapegrad uses nearest_idx and
nearest_exact_idx both ways, so the nearest-mode forwards here come from a channels-last input;
the script prints the cases where the row-major forward differs.

Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/models/make_resample_reference.py
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tgck import write_checkpoint  # noqa: E402

MODES = {"nearest": 0, "nearest-exact": 1, "bilinear": 2}

# name: (input shape, {size or scale_factor [, recompute_scale_factor]})
GEOMETRIES = {
    # rows 30 -> 22 (row 11 reads 15), columns 2 -> 98 (column 49 reads 1)
    "size_30x2_to_22x98": ((1, 1, 30, 2), dict(size=(22, 98))),
    # rows halve, columns double
    "size_98x3_to_49x6": ((1, 1, 98, 3), dict(size=(49, 6))),
    "size_same": ((2, 1, 7, 5), dict(size=(7, 5))),
    "size_5x7_to_9x3": ((1, 2, 5, 7), dict(size=(9, 3))),
    # 39 -> 50 rows: row 39 reads 39 * float(1/1.3) = 30
    "scale_1.3": ((1, 2, 39, 5), dict(scale_factor=1.3)),
    "scale_2": ((2, 1, 5, 7), dict(scale_factor=2.0)),
    "scale_0.7": ((1, 2, 10, 13), dict(scale_factor=0.7)),
    "scale_third": ((1, 1, 12, 20), dict(scale_factor=1 / 3)),
    # floor(9 * 1.05) = 9 and floor(6 * 1.05) = 6: the size stays, the scale is not 1
    "scale_1.05_same_size": ((1, 2, 9, 6), dict(scale_factor=1.05)),
    "scale_1.3_recomputed": ((1, 2, 39, 5), dict(scale_factor=1.3, recompute_scale_factor=True)),
    "scale_0.7_recomputed": ((1, 2, 10, 13), dict(scale_factor=0.7, recompute_scale_factor=True)),
    "scale_1.05_recomputed": ((1, 2, 9, 6), dict(scale_factor=1.05, recompute_scale_factor=True)),
}
ALIGN_CORNERS_GEOMETRIES = ["size_30x2_to_22x98", "size_5x7_to_9x3", "size_same", "scale_1.3", "scale_third"]


def options_row(mode, kw, align_corners):
    size = kw.get("size", (-1, -1))
    return torch.tensor([MODES[mode], size[0], size[1], kw.get("scale_factor", -1.0), float(align_corners),
                         float(kw.get("recompute_scale_factor", False))], dtype=torch.float64)


def interpolate(x, mode, kw, align_corners):
    extra = dict(align_corners=align_corners) if mode == "bilinear" else {}
    return F.interpolate(x, mode=mode, **kw, **extra)


def run(x, cot, mode, kw, align_corners, channels_last):
    x = x.detach()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    out = interpolate(x, mode, kw, align_corners)
    (grad,) = torch.autograd.grad((out * cot).sum(), [x])
    return out.detach().contiguous(), grad.contiguous()


def main():
    gen = torch.Generator().manual_seed(29)
    entries = []
    cases = [(f"{mode}_{g}", mode, g, False) for mode in MODES for g in GEOMETRIES]
    cases += [(f"bilinear_align_corners_{g}", "bilinear", g, True) for g in ALIGN_CORNERS_GEOMETRIES]
    for name, mode, geometry, align_corners in cases:
        shape, kw = GEOMETRIES[geometry]
        x = torch.randn(*shape, generator=gen)
        channels_last = mode != "bilinear"
        cot = torch.randn(*interpolate(x, mode, kw, align_corners).shape, generator=gen)
        entries += [(f"{name}.options", options_row(mode, kw, align_corners)), (f"{name}.in", x), (f"{name}.cot", cot)]
        for tag, dtype in (("f64", torch.float64), ("f32", torch.float32)):
            out, grad = run(x.to(dtype), cot.to(dtype), mode, kw, align_corners, channels_last)
            row_major_out, row_major_grad = run(x.to(dtype), cot.to(dtype), mode, kw, align_corners, False)
            assert torch.equal(grad, row_major_grad), f"{name}: the backward depends on the layout"
            if not torch.equal(out, row_major_out):
                print(f"{name} ({tag}): PyTorch's row-major forward reads other pixels than its backward scatters to")
            entries += [(f"{name}.{tag}.out", out), (f"{name}.{tag}.grad", grad)]
    write_checkpoint(os.path.join(HERE, "resample_reference.tgck"), entries)


if __name__ == "__main__":
    main()
