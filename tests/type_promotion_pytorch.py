"""PyTorch 1.13's side of tests/test_type_promotion.cpp: the dtypes add, sub, mul and div give for
every pair of tapegrad's dtypes (tensors with dimensions and 0-dim ones), what integers compute,
which in-place writes are refused, and the dtypes of the gradients. Run with a Python that has torch
(/usr/bin/python3 here); it prints one line per case and exits non-zero if PyTorch no longer
behaves as the C++ tests assume.

tapegrad's scalars are C++ doubles, so a scalar is always PyTorch's Python float: int64 * 2.0 is
float32 (PyTorch's int64 * 2, an int scalar, stays int64; tapegrad has no integer scalar).
Where the C++ tests deliberately differ from PyTorch it says so below (DIFFERS): an in-place write
of an integer result into a narrower integer tensor is refused when a value does not fit, where
PyTorch wraps it.
"""
import sys

import torch

F32, F64, I64, I32 = torch.float32, torch.float64, torch.int64, torch.int32
NAMES = {F32: "float32", F64: "float64", I64: "int64", I32: "int32"}
failures = []


def expect(label, fn, want):
    """want: the value fn() must return, or ("raises", text) for a RuntimeError containing text."""
    try:
        got = fn()
    except RuntimeError as e:
        got = ("raises", str(e).splitlines()[0])
        ok = isinstance(want, tuple) and want[0] == "raises" and want[1] in got[1]
    else:
        ok = got == want
    print(("ok   " if ok else "FAIL ") + label + " -> " + str(got))
    if not ok:
        failures.append(label)


def make(dtype, zero_dim):
    return torch.tensor(3, dtype=dtype) if zero_dim else torch.tensor([3, 6], dtype=dtype)


# The table kResultTypes in tests/test_type_promotion.cpp: (a, a 0-dim, b, b 0-dim) -> add's dtype.
# sub and mul give the same; div gives float32 where add gives an integer dtype.
TABLE = {
    (F32, False, F64, False): F64, (F64, False, F32, False): F64, (I64, False, I32, False): I64,
    (I32, False, I64, False): I64, (I64, False, F32, False): F32, (I32, False, F64, False): F64,
    (F32, False, I64, False): F32, (I32, False, I32, False): I32,
    (F32, False, F64, True): F32, (F64, True, F32, False): F32, (I64, False, F64, True): F64,
    (I32, False, F32, True): F32, (I32, False, I64, True): I32, (I64, True, I32, False): I32,
    (F32, False, I64, True): F32, (F32, True, F64, True): F64, (I32, True, I64, True): I64,
    (I64, True, F32, True): F32,
}
for (da, za, db, zb), want in TABLE.items():
    label = f"{NAMES[da]}{' 0-dim' if za else ''} with {NAMES[db]}{' 0-dim' if zb else ''}"
    a, b = make(da, za), make(db, zb)
    expect(label + ": add", lambda: NAMES[(a + b).dtype], NAMES[want])
    expect(label + ": sub", lambda: NAMES[(a - b).dtype], NAMES[want])
    expect(label + ": mul", lambda: NAMES[(a * b).dtype], NAMES[want])
    expect(label + ": div", lambda: NAMES[(a / b).dtype], NAMES[want if want.is_floating_point else F32])

big = 2**53 + 1
expect("int64 add exact", lambda: (torch.tensor([big]) + torch.tensor([2])).tolist(), [big + 2])
expect("int64 mul exact", lambda: (torch.tensor([big]) * torch.tensor([-1])).tolist(), [-big])
expect("int64 max + 1 wraps", lambda: (torch.tensor([2**63 - 1]) + torch.tensor([1])).tolist(), [-(2**63)])
expect("int32 mul wraps", lambda: (torch.tensor([65536], dtype=I32) * torch.tensor([65536], dtype=I32)).tolist(), [0])
expect("int32 * int64 is int64", lambda: (torch.tensor([65536], dtype=I32) * torch.tensor([65536])).tolist(), [2**32])
expect("neg int64 min wraps", lambda: (-torch.tensor([-(2**63), 5])).tolist(), [-(2**63), -5])
expect("neg int32", lambda: (-torch.tensor([7], dtype=I32)).dtype, I32)
expect("int64 / int64 true division", lambda: (torch.tensor([7, -7]) / torch.tensor([2, 2])).tolist(), [3.5, -3.5])
expect("add alpha int", lambda: torch.add(torch.tensor([1, 2]), torch.tensor([10, 20]), alpha=-3).tolist(), [-29, -58])
expect("add alpha float with ints", lambda: torch.add(torch.tensor([1]), torch.tensor([1]), alpha=0.5),
       ("raises", "For integral input tensors, argument alpha must not be a floating point number."))
expect("add alpha float32 + int64", lambda: torch.add(torch.tensor([1.0]), torch.tensor([3]), alpha=0.5).tolist(), [2.5])

# In place: the result is computed in the promoted dtype, then cast to self's.
tiny = 2.0**-24 + 2.0**-50  # float32(1 + tiny) is 1 + 2^-23 from double, 1.0 if tiny were rounded to float32 first
expect("float32.add_(float64) rounds once", lambda: torch.tensor([1.0]).add_(torch.tensor([tiny], dtype=F64)).tolist(),
       [1.0 + 2.0**-23])
expect("int32.add_(int64)", lambda: torch.tensor([5], dtype=I32).add_(torch.tensor([7])).dtype, I32)
expect("DIFFERS int32.add_(int64) overflowing int32 wraps (tapegrad refuses)",
       lambda: torch.tensor([2**31 - 1], dtype=I32).add_(torch.tensor([1])).tolist(), [-(2**31)])
expect("int64.add_(int32)", lambda: torch.tensor([5]).add_(torch.tensor([7], dtype=I32)).tolist(), [12])
expect("int64.sub_(int64)", lambda: torch.tensor([5]).sub_(torch.tensor([7])).tolist(), [-2])
expect("int64.mul_(int64)", lambda: torch.tensor([5]).mul_(torch.tensor([7])).tolist(), [35])
expect("float32.mul_(int64)", lambda: torch.tensor([1.5]).mul_(torch.tensor([3])).tolist(), [4.5])
for op in ["add_", "sub_", "mul_"]:
    expect(f"int64.{op}(float32)", lambda: getattr(torch.tensor([1]), op)(torch.tensor([1.0])),
           ("raises", "result type Float can't be cast to the desired output type Long"))
expect("int64.div_(int64)", lambda: torch.tensor([4]).div_(torch.tensor([2])),
       ("raises", "result type Float can't be cast to the desired output type Long"))
expect("int32.div_(int32)", lambda: torch.tensor([4], dtype=I32).div_(torch.tensor([2], dtype=I32)),
       ("raises", "result type Float can't be cast to the desired output type Int"))

# Other ops on integer tensors.
expect("sum int64 exact", lambda: (torch.tensor([big, 1]).sum().item(), torch.tensor([big, 1]).sum().dtype), (big + 1, I64))
expect("sum int32 is int64", lambda: torch.tensor([[1, 2], [3, 4]], dtype=I32).sum(1, keepdim=True).tolist(), [[3], [7]])
expect("sum int32 dtype", lambda: torch.tensor([1], dtype=I32).sum().dtype, I64)
expect("sum wraps", lambda: torch.tensor([2**63 - 1, 1]).sum().item(), -(2**63))
expect("mean int64", lambda: torch.tensor([1, 2]).mean(), ("raises", "mean(): could not infer output dtype"))
expect("max int64", lambda: torch.tensor([[1, big], [3, 2]]).max(1).values.tolist(), [big, 3])
expect("min int32", lambda: torch.tensor([[1, 5], [3, 2]], dtype=I32).min(0).values.tolist(), [1, 2])
expect("take int64", lambda: torch.tensor([[big, 2], [3, 4]]).take(torch.tensor([3, 0, 0])).tolist(), [4, big, big])
expect("put_ accumulate int64", lambda: torch.zeros(3, dtype=I64).put_(torch.tensor([2, 0, 2]), torch.tensor([big, 5, 1]),
                                                                        accumulate=True).tolist(), [5, 0, big + 1])
expect("pad constant int64 truncates the value", lambda: torch.nn.functional.pad(torch.tensor([[1, 2]]), (1, 0), value=2.7).tolist(),
       [[2, 1, 2]])
expect("pad constant int64 value out of range", lambda: torch.nn.functional.pad(torch.tensor([[1, 2]]), (1, 0), value=1e30),
       ("raises", "cannot be converted to type int64_t without overflow"))
expect("pad reflect int64", lambda: torch.nn.functional.pad(torch.tensor([[[1, 2, 3]]]), (1, 1), mode="reflect"),
       ("raises", "not implemented for 'Long'"))


def grad_dtypes(fn):
    a = torch.tensor([1.5, -2.0], requires_grad=True)
    b = torch.tensor([0.5, 4.0], dtype=F64, requires_grad=True)
    fn(a, b).sum().backward()
    return NAMES[a.grad.dtype], NAMES[b.grad.dtype], a.grad.tolist(), b.grad.tolist()


expect("grads of float32 * float64", lambda: grad_dtypes(lambda a, b: a * b), ("float32", "float64", [0.5, 4.0], [1.5, -2.0]))
expect("grads of float32 / float64", lambda: grad_dtypes(lambda a, b: a / b), ("float32", "float64", [2.0, 0.25], [-6.0, 0.125]))
expect("grads of float32 - float64", lambda: grad_dtypes(lambda a, b: a - b), ("float32", "float64", [1.0, 1.0], [-1.0, -1.0]))

if failures:
    print(f"{len(failures)} case(s) differ from what tests/test_type_promotion.cpp assumes: {failures}")
    sys.exit(1)
print("PyTorch", torch.__version__, "behaves as tests/test_type_promotion.cpp assumes")
