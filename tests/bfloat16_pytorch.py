#!/usr/bin/env python3
"""Writes tests/bfloat16_reference.txt: float32 and float64 values and the bfloat16 PyTorch 1.13
rounds each to (.to(torch.bfloat16)), which tests/test_bfloat16.cpp converts with tapegrad and
compares bit for bit. Each line is `f32 <float32 bits> <bfloat16 bits>` or
`f64 <float64 bits> <bfloat16 bits>`, in hex. Run with Debian's PyTorch (python3-torch), from the
repository root:
  /usr/bin/python3 tests/bfloat16_pytorch.py > tests/bfloat16_reference.txt
"""
import struct

import torch

g = torch.Generator().manual_seed(23)

f32 = [0.0, -0.0, 1.0, -1.0, 3.14159265, 1e-40, -1e-45, 1e38, 3.4028234663852886e38, -3.4028234663852886e38,
       float("inf"), float("-inf"), 65504.0, 1.0 / 3.0]
# Ties and near-ties: 1 + k/256 sits halfway between two bfloat16 values when k is odd.
for k in range(1, 9):
    for sign in (1.0, -1.0):
        f32.append(sign * (1.0 + k / 256.0))
        f32.append(sign * (1.0 + k / 256.0 + 2.0 ** -20))
        f32.append(sign * (1.0 + k / 256.0 - 2.0 ** -20))
f32 += (torch.randn(300, generator=g) * 10.0 ** torch.randint(-30, 30, (300,), generator=g).double()).float().tolist()
x = torch.tensor(f32, dtype=torch.float32)
bits32 = x.view(torch.int32).tolist()
nan_bits = [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF, 0x7FBFFFFF]  # quiet, negative, signalling NaNs
bits32 += [b - (1 << 32) if b >= 1 << 31 else b for b in nan_bits]
x = torch.tensor(bits32, dtype=torch.int32).view(torch.float32)
out = x.to(torch.bfloat16).view(torch.int16).tolist()
for b, o in zip(bits32, out):
    print(f"f32 {b & 0xFFFFFFFF:08x} {o & 0xFFFF:04x}")

# float64 goes through float32 first: 1 + 2^-8 + 2^-30 rounds to the tie 1 + 2^-8 as a float, then
# to even, 1.0, although it lies above the tie.
f64 = [1.0 + 2.0 ** -8 + 2.0 ** -30, 1.0 + 2.0 ** -8 - 2.0 ** -30, 1e300, -1e-300, 0.1, 2.0 ** 128]
f64 += (torch.randn(50, generator=g, dtype=torch.float64) * 1e3).tolist()
y = torch.tensor(f64, dtype=torch.float64)
out = y.to(torch.bfloat16).view(torch.int16).tolist()
for v, o in zip(f64, out):
    print(f"f64 {struct.unpack('<Q', struct.pack('<d', v))[0]:016x} {o & 0xFFFF:04x}")
