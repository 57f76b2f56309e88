"""PyTorch 1.13's side of tests/test_int_exact.cpp: what it keeps exact, what it refuses, what it
promotes. Run with a Python that has torch (/usr/bin/python3 here); it prints one line per case
and exits non-zero if PyTorch no longer behaves as the C++ tests assume.

Where the C++ tests deliberately differ from PyTorch it says so below (DIFFERS): PyTorch has no
check in tensor .to() (NaN becomes INT64_MIN, int64 2^40 wraps to int32 0), and its scalar check
lets 2.0**63 through to int64 (wrapping to -2^63); tapegrad refuses those, since the C++
conversions behind them are undefined behaviour. item<T>() and at<T>() follow ATen's C++
Tensor::item<T>() (c10::checked_convert, the same "cannot be converted to type int without
overflow"), which Python cannot call.
"""
import math
import sys

import torch

I64, I32 = torch.int64, torch.int32
failures = []


class Raises:
    """The RuntimeError's first line contains `text`."""

    def __init__(self, text):
        self.text = text


OVERFLOW = Raises("cannot be converted to type")
CANT_CAST = Raises("result type Float can't be cast to the desired output type Long")


def expect(label, fn, want):
    """want: the value fn() must return, or Raises(text)."""
    try:
        got = fn()
    except RuntimeError as e:
        got = "raises: " + str(e).splitlines()[0]
        ok = isinstance(want, Raises) and want.text in got
    else:
        ok = not isinstance(want, Raises) and got == want
    print(("ok   " if ok else "FAIL ") + label + " -> " + str(got))
    if not ok:
        failures.append(label)


big = [2**53 + 1, 2**63 - 2, -(2**63), 2**63 - 1, -(2**53 + 1), 3]
expect("int64 round trip", lambda: torch.tensor(big).tolist(), big)
expect("int64 item", lambda: torch.tensor([2**53 + 1]).item(), 2**53 + 1)
expect("print", lambda: str(torch.tensor([2**53 + 1, -(2**63)])), "tensor([    9007199254740993, -9223372036854775808])")
expect("exact allclose", lambda: torch.allclose(torch.tensor([2**53 + 1]), torch.tensor([2**53]), rtol=0, atol=0), False)
expect("int64 -> float64 rounds", lambda: torch.tensor([2**53 + 1]).double().item(), 9007199254740992.0)

refused = {I64: [math.nan, math.inf, -math.inf, 1e30, -1e30],
           I32: [math.nan, math.inf, 2.0**31, -2.0**31 - 1, 2.0**40, 2.0**31 - 0.5, -2.0**31 - 0.5, 1e30]}
for dtype, values in refused.items():
    for v in values:
        expect(f"full {v} {dtype}", lambda: torch.full((2,), v, dtype=dtype), OVERFLOW)
        expect(f"scalar_tensor {v} {dtype}", lambda: torch.scalar_tensor(v, dtype=dtype), OVERFLOW)
        expect(f"tensor {v} {dtype}", lambda: torch.tensor([1.0, v], dtype=dtype), OVERFLOW)
        expect(f"fill_ {v} {dtype}", lambda: torch.zeros(2, dtype=dtype).fill_(v), OVERFLOW)
expect("DIFFERS full 2**63 int64 (tapegrad refuses)", lambda: torch.full((1,), 2.0**63, dtype=I64).tolist(), [-(2**63)])
expect("tensor int64 2**40 as int32", lambda: torch.tensor([1, 2**40], dtype=I32), OVERFLOW)

expect("full -2**63 int64", lambda: torch.full((1,), -(2.0**63), dtype=I64).tolist(), [-(2**63)])
expect("full 2**63-1024 int64", lambda: torch.full((1,), 2.0**63 - 1024, dtype=I64).tolist(), [2**63 - 1024])
expect("full -2**31 int32", lambda: torch.full((1,), -(2.0**31), dtype=I32).tolist(), [-(2**31)])
expect("full 2**31-1 int32", lambda: torch.full((1,), 2147483647.0, dtype=I32).tolist(), [2**31 - 1])
expect("tensor truncates", lambda: torch.tensor([1.7, -2.9, -0.5], dtype=I64).tolist(), [1, -2, 0])
expect("fill_ truncates", lambda: torch.zeros(2, dtype=I64).fill_(1.7).tolist(), [1, 1])

expect("DIFFERS to(int64) of nan (tapegrad refuses)", lambda: torch.tensor([math.nan]).to(I64).tolist(), [-(2**63)])
expect("DIFFERS to(int32) of 2**40 (tapegrad refuses)", lambda: torch.tensor([2**40]).to(I32).tolist(), [0])
expect("to truncates", lambda: torch.tensor([1.7, -2.9, -0.5]).to(I64).tolist(), [1, -2, 0])
expect("to int32 extremes", lambda: torch.tensor([-(2.0**31), 2147483647.0], dtype=torch.float64).to(I32).tolist(),
       [-(2**31), 2**31 - 1])

i = torch.tensor([1, 2])
f30 = torch.tensor(1e30, dtype=torch.float32).item()
expect("int64 + 1e30 is float32", lambda: ((i + 1e30).dtype, (i + 1e30).tolist()), (torch.float32, [f30, f30]))
expect("int64 + 1.5", lambda: (i + 1.5).tolist(), [2.5, 3.5])
expect("int64 - 0.5", lambda: (i - 0.5).tolist(), [0.5, 1.5])
expect("int64 * 2.0 is float32", lambda: (i * 2.0).dtype, torch.float32)
expect("int64 / 4.0", lambda: (i / 4.0).tolist(), [0.25, 0.5])
expect("1.0 - int64", lambda: (1.0 - i).tolist(), [0.0, -1.0])
expect("4.0 / int64", lambda: (4.0 / i).tolist(), [4.0, 2.0])
expect("3.0 * int32 is float32", lambda: (3.0 * i.int()).dtype, torch.float32)
expect("int64 + nan", lambda: math.isnan((i + math.nan)[0].item()), True)
for v in [1e30, 1.5, 2.0]:
    expect(f"add_ {v}", lambda: i.clone().add_(v), CANT_CAST)
    expect(f"mul_ {v}", lambda: i.clone().mul_(v), CANT_CAST)

# An integer scalar keeps an integer tensor's dtype (libtorch's integral Scalar; Python ints here).
i32 = i.int()
b = torch.tensor([True, False])
expect("int64 * 2", lambda: ((i * 2).dtype, (i * 2).tolist()), (I64, [2, 4]))
expect("int64 + 1", lambda: ((i + 1).dtype, (i + 1).tolist()), (I64, [2, 3]))
expect("10 - int64", lambda: ((10 - i).dtype, (10 - i).tolist()), (I64, [9, 8]))
expect("3 * int32 is int32", lambda: ((3 * i32).dtype, (3 * i32).tolist()), (I32, [3, 6]))
expect("int32 - 1 is int32", lambda: (i32 - 1).dtype, I32)
expect("bool * 2 is int64", lambda: ((b * 2).dtype, (b * 2).tolist()), (I64, [2, 0]))
expect("bool + 1 is int64", lambda: ((b + 1).dtype, (b + 1).tolist()), (I64, [2, 1]))
expect("int64 / 2 is float32", lambda: ((i / 2).dtype, (i / 2).tolist()), (torch.float32, [0.5, 1.0]))
expect("float32 * 2", lambda: ((torch.tensor([1.5]) * 2).dtype, (torch.tensor([1.5]) * 2).tolist()), (torch.float32, [3.0]))
expect("int64 pow 2", lambda: (i.pow(2).dtype, i.pow(2).tolist()), (I64, [1, 4]))
expect("int64 pow -1", lambda: i.pow(-1), Raises("Integers to negative integer powers are not allowed"))
expect("int64 += 1", lambda: i.clone().add_(1).tolist(), [2, 3])
expect("int64 *= 3", lambda: i.clone().mul_(3).tolist(), [3, 6])
expect("int32 -= 1 keeps int32", lambda: i32.clone().sub_(1).dtype, I32)
expect("int64 wraps", lambda: (torch.tensor([2**62]) * 4).tolist(), [0])

if failures:
    print(f"{len(failures)} case(s) differ from what tests/test_int_exact.cpp assumes: {failures}")
    sys.exit(1)
print("PyTorch", torch.__version__, "behaves as tests/test_int_exact.cpp assumes")
