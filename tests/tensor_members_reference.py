#!/usr/bin/env python3
"""Writes tests/tensor_members_reference.txt: what PyTorch 1.13 computes for the Tensor members
that tests/test_tensor_members.cpp checks against PyTorch. One line per value:
  <name> <shape, as d0xd1x... or "scalar"> <values, row-major; nan and inf as Python writes them>
Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/tensor_members_reference.py
"""
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def line(name, t):
    t = t.detach()
    shape = "x".join(str(s) for s in t.shape) if t.dim() else "scalar"
    return " ".join([name, shape] + [repr(float(v)) for v in t.reshape(-1).tolist()])


def main():
    out = []
    # pow with a tensor exponent, at the points where PyTorch's gradient formulas take their special
    # values: 0^0, 0^positive, a negative base, a fractional exponent.
    a = torch.tensor([0.0, 0.0, 2.0, -1.0, 1.5, 3.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.0, 2.0, 0.5, 2.0, -1.5, 0.0], dtype=torch.float64, requires_grad=True)
    y = a.pow(b)
    y.backward(torch.arange(1.0, 7.0, dtype=torch.float64))
    out += [line("pow_tensor.value", y), line("pow_tensor.grad_base", a.grad), line("pow_tensor.grad_exponent", b.grad)]
    # broadcast exponent
    a = torch.tensor([[1.5, 2.0, 0.5], [3.0, 1.0, 2.5]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([2.0, -0.5, 3.0], dtype=torch.float64, requires_grad=True)
    y = a.pow(b)
    y.sum().backward()
    out += [line("pow_broadcast.value", y), line("pow_broadcast.grad_base", a.grad), line("pow_broadcast.grad_exponent", b.grad)]
    out.append(line("pow_int.value", torch.tensor([2, 3, -2, 7]).pow(torch.tensor([3, 0, 5, 1]))))
    out.append(line("pow_int_float.value", torch.tensor([4, 9]).pow(torch.tensor([0.5, 1.5]))))
    # max() and min() over every element share the gradient between ties.
    x = torch.tensor([[1.0, 3.0, -2.0], [3.0, 0.5, 3.0]], requires_grad=True)
    m = x.max()
    m.backward()
    out += [line("max_all.value", m), line("max_all.grad", x.grad)]
    x = torch.tensor([[2.0, -1.0], [-1.0, 5.0]], requires_grad=True)
    m = x.min()
    (m * 4).backward()
    out += [line("min_all.value", m), line("min_all.grad", x.grad)]
    x = torch.tensor([1.0, float("nan"), 3.0, float("nan")], requires_grad=True)
    m = x.max()
    m.backward()
    out += [line("max_nan.value", m), line("max_nan.grad", x.grad)]
    # x.max(dim) and argmax
    x = torch.tensor([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]])
    v, i = x.max(1)
    out += [line("max_dim.values", v), line("max_dim.indices", i)]
    v, i = x.min(0, keepdim=True)
    out += [line("min_dim_keepdim.values", v), line("min_dim_keepdim.indices", i)]
    out += [line("argmax_flat", x.argmax()), line("argmax_dim_keepdim", x.argmax(1, keepdim=True)),
            line("argmin_flat", x.argmin())]
    # views
    z = torch.zeros(1, 2, 1, 3, 1)
    out += [line("squeeze_all.shape", torch.tensor(z.squeeze().shape, dtype=torch.float64)),
            line("squeeze_dim.shape", torch.tensor(z.squeeze(2).shape, dtype=torch.float64)),
            line("squeeze_not_one.shape", torch.tensor(z.squeeze(1).shape, dtype=torch.float64)),
            line("expand_keep.shape", torch.tensor(torch.zeros(3, 1).expand(2, -1, 4).shape, dtype=torch.float64))]
    # x[i] is differentiable
    x = torch.arange(12.0).reshape(3, 4).requires_grad_()
    (x[1] * torch.tensor([1.0, 2.0, 3.0, 4.0]) + x[-1]).sum().backward()
    out.append(line("index.grad", x.grad))
    # compound assignment on a tensor with history
    x = torch.tensor([1.0, -2.0, 4.0], requires_grad=True)
    w = torch.tensor([0.5, 3.0, -1.0], requires_grad=True)
    y = x * 1.0
    y += w
    y *= w
    y -= 2.0
    y /= torch.tensor([2.0, 4.0, 8.0])
    y *= 3.0
    y.sum().backward()
    out += [line("compound.value", y), line("compound.grad_x", x.grad), line("compound.grad_w", w.grad)]
    # sum / mean over one dimension
    x = torch.arange(24.0).reshape(2, 3, 4)
    out += [line("sum_dim", x.sum(1)), line("mean_dim_keepdim", x.mean(-1, keepdim=True)),
            line("sum_dims", x.sum([0, 2])), line("t", torch.arange(6.0).reshape(2, 3).t())]
    with open(os.path.join(HERE, "tensor_members_reference.txt"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
