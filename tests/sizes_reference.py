#!/usr/bin/env python3
"""Prints PyTorch 1.13's answers for the huge-geometry cases that tests/test_sizes.cpp pins.

Each line is the case, then PyTorch's output shape and values (or the error it raises); the
expected values in test_sizes.cpp are these. Run with Debian's PyTorch, from the repository root:
  /usr/bin/python3 tests/sizes_reference.py
"""
import torch
import torch.nn.functional as F

MAX = 2**63 - 1
x = torch.arange(16.0).reshape(1, 1, 4, 4)


def show(name, make):
    try:
        r = make()
        if isinstance(r, (list, tuple)):
            print(f"{name}: {[tuple(t.shape) for t in r]}")
        else:
            print(f"{name}: shape {tuple(r.shape)} values {r.flatten()[:16].tolist()}")
    except Exception as e:  # noqa: BLE001 - the error is the answer
        print(f"{name}: raises {type(e).__name__}: {str(e).splitlines()[0][:120]}")


show("conv2d stride 2^40", lambda: F.conv2d(x, torch.ones(2, 1, 3, 3), stride=2**40))
show("conv2d stride 2^62", lambda: F.conv2d(x, torch.ones(2, 1, 3, 3), stride=2**62))
xg = x.clone().requires_grad_()
F.conv2d(xg, torch.ones(2, 1, 3, 3), stride=2**40).sum().backward()
print(f"conv2d stride 2^40 input gradient: {xg.grad.flatten().tolist()}")
show("conv2d padding and dilation 2^30", lambda: F.conv2d(x, torch.ones(1, 1, 3, 3), padding=2**30, dilation=2**30))
show("conv2d 1x1 weight, dilation 2^62", lambda: F.conv2d(x, torch.ones(1, 1, 1, 1), dilation=2**62))
show("conv2d with 0 input channels", lambda: F.conv2d(torch.ones(1, 0, 4, 4), torch.ones(2, 0, 3, 3)))
show("conv_transpose2d stride 2^31-1, 1x1 input",
     lambda: F.conv_transpose2d(torch.full((1, 1, 1, 1), 2.0), torch.ones(1, 1, 3, 3), stride=2**31 - 1))
show("max_pool2d kernel (1,2^31-1) padding (0,2^30-1)", lambda: F.max_pool2d(x, (1, 2**31 - 1), padding=(0, 2**30 - 1)))
show("max_pool2d kernel 2^31", lambda: F.max_pool2d(x, (2**31, 1), padding=(2**30, 0)))
show("avg_pool2d kernel 2^30 padding 2^29", lambda: F.avg_pool2d(torch.ones(1, 1, 4, 4), 2**30, padding=2**29))
show("avg_pool2d kernel 2^30 padding 2^29, count_include_pad=False",
     lambda: F.avg_pool2d(x, 2**30, padding=2**29, count_include_pad=False))
show("adaptive_avg_pool2d (2^40,1) of [1,1,4,4]", lambda: F.adaptive_avg_pool2d(x, (2**40, 1)))
show("adaptive_avg_pool2d (2^40,1) of [0,1,4,4]", lambda: F.adaptive_avg_pool2d(torch.ones(0, 1, 4, 4), (2**40, 1)))
show("adaptive_avg_pool2d (2^40,1) of [1,0,4,4]", lambda: F.adaptive_avg_pool2d(torch.ones(1, 0, 4, 4), (2**40, 1)))
show("max_pool2d (1,2) of [0,1,1,2^30]", lambda: F.max_pool2d(torch.ones(0, 1, 1, 2**30), (1, 2)))
show("avg_pool2d (1,2) of [0,1,1,2^30]", lambda: F.avg_pool2d(torch.ones(0, 1, 1, 2**30), (1, 2)))
show("slice [1::MAX] of dim 2", lambda: x[:, :, 1::MAX])
show("slice [-MAX-1:MAX:2] of dim 2", lambda: x[:, :, -MAX - 1:MAX:2])
show("narrow(2, 1, MAX)", lambda: x.narrow(2, 1, MAX))
show("narrow(2, -1, 1)", lambda: x.narrow(2, -1, 1))
show("split(MAX, 2)", lambda: x.split(MAX, 2))
show("split([MAX, MAX, 2], 2)", lambda: x.split([MAX, MAX, 2], 2))
show("chunk(3, 2)", lambda: x.chunk(3, 2))
show("pad [0,4] by (2^40, 0)", lambda: F.pad(torch.ones(0, 4), (2**40, 0)))
show("zeros(2^40, 2^40)", lambda: torch.zeros(2**40, 2**40))
