#!/usr/bin/env python3
"""Writes tests/printing_reference.txt: tensors and PyTorch 1.13's repr of each, which
tests/test_printing.cpp rebuilds in tapegrad and prints.

Each case is a block:
  case <name>
  dtype <float32|float64|int32|int64>
  shape <sizes...>           (nothing after "shape" for a 0-d tensor)
  requires_grad <0|1>
  times_two <0|1>            (1: the printed tensor is x * 2, which has a grad_fn)
  values <v...>              (row-major; floats as float.hex, exact)
  repr
  <PyTorch's repr, any number of lines>
  end
Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/printing_reference.py
"""
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int32: "int32", torch.int64: "int64",
          torch.bfloat16: "bfloat16"}


def cases():
    f32, f64, i32, i64 = torch.float32, torch.float64, torch.int32, torch.int64
    yield "fixed_2d", torch.tensor([[1.5, -2.25, 3.0], [0.125, 10.0, -7.75]])
    yield "integer_valued_floats", torch.tensor([1.0, -2.0, 30.0])
    yield "small_is_scientific", torch.tensor([1e-6, 1.0, 2.0])
    yield "tiny_alone_is_scientific", torch.tensor([1e-6])
    yield "ratio_over_1000_is_scientific", torch.tensor([0.5, 600.0])
    yield "large_is_scientific", torch.tensor([1.5e9, 2.0])
    yield "whole_ratio_over_1000_is_scientific", torch.tensor([1.0, 2000.0])
    yield "whole_large_is_scientific", torch.tensor([3.0e8])
    yield "zeros", torch.zeros(2, 2)
    yield "negative_zero", torch.tensor([-0.0, 1.5])
    yield "nan_inf", torch.tensor([float("nan"), float("inf"), -float("inf"), 1.25])
    yield "nan_inf_whole", torch.tensor([float("nan"), -float("inf"), 2.0])
    yield "nan_inf_scientific", torch.tensor([float("nan"), 1e-7, float("inf")])
    yield "only_nan", torch.tensor([float("nan")])
    yield "scalar", torch.tensor(3.25)
    yield "scalar_whole", torch.tensor(7.0)
    yield "scalar_int", torch.tensor(-42)
    yield "scalar_float64", torch.tensor(1e-9, dtype=f64)
    yield "float64", torch.tensor([[0.1, 0.2], [0.3, 1.0 / 3.0]], dtype=f64)
    yield "int64", torch.tensor([[3, -1, 100], [7, 0, -2048]])
    yield "int64_extremes", torch.tensor([2**53 + 1, -(2**63)])
    yield "int32", torch.tensor([[3, -1], [7, 0]], dtype=i32)
    yield "empty_1d", torch.zeros(0)
    yield "empty_2d", torch.zeros(2, 0)
    yield "empty_int64", torch.zeros(0, 3, dtype=i64)
    yield "empty_float64", torch.zeros(0, dtype=f64)
    yield "long_row_wraps", torch.arange(30, dtype=f32) * 1.5
    yield "long_int_row_wraps", torch.arange(40, dtype=i64) * 1000
    yield "3d", torch.arange(24, dtype=f32).reshape(2, 3, 4) / 8.0
    yield "4d_int", torch.arange(36, dtype=i64).reshape(3, 2, 2, 3) - 18
    yield "summarised_1d", torch.arange(1001, dtype=f32) / 4.0
    yield "summarised_2d", torch.arange(2000, dtype=f32).reshape(40, 50) / 3.0
    yield "summarised_3d_int", torch.arange(1200, dtype=i32).reshape(10, 10, 12)
    yield "summarised_scientific", torch.cat([torch.tensor([1e-7]), torch.arange(1, 1200, dtype=f32)])
    yield "requires_grad", torch.tensor([1.0, 2.0], requires_grad=True)
    yield "requires_grad_float64_long_line", torch.arange(18, dtype=f64).requires_grad_()
    yield "suffix_wraps", torch.tensor([1234.5, -2.25, 3.0, 4.0, 5.0, 6.0], dtype=f64, requires_grad=True)
    yield "grad_fn", torch.tensor([[1.0, 2.5]], requires_grad=True)
    bf16 = torch.bfloat16
    yield "bfloat16", torch.tensor([3.14159, -2.5, 0.1]).to(bf16)
    yield "bfloat16_2d_whole", torch.tensor([[1.0, 256.0], [-3.0, 1000.0]]).to(bf16)
    yield "bfloat16_scientific", torch.tensor([1e-6, 1.0, float("nan"), 3e38]).to(bf16)
    yield "bfloat16_scalar", torch.tensor(1.0 / 3.0).to(bf16)
    yield "bfloat16_empty", torch.zeros(0, 2, dtype=bf16)


def value_text(v, floating):
    return float(v).hex() if floating else str(int(v))


def main():
    out = []
    for name, t in cases():
        times_two = name == "grad_fn"
        shown = t * 2 if times_two else t
        floating = t.dtype.is_floating_point
        out.append("case " + name)
        out.append("dtype " + DTYPES[t.dtype])
        out.append(("shape " + " ".join(str(s) for s in t.shape)).rstrip())
        out.append("requires_grad " + str(int(t.requires_grad)))
        out.append("times_two " + str(int(times_two)))
        out.append(("values " + " ".join(value_text(v, floating) for v in t.detach().reshape(-1).tolist())).rstrip())
        out.append("repr")
        out.append(repr(shown))
        out.append("end")
    with open(os.path.join(HERE, "printing_reference.txt"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
