#!/usr/bin/env python3
"""Writes tests/models/function_reference.tgck, PyTorch's answers for the user-defined autograd
functions that tests/test_custom_function.cpp ports to tg::Function: libtorch's tutorial examples
(MulConstant, LinearFunction), a function that saves its own output (exp), and functions with two
outputs, one saving its input (tanh(x), x * x) and one saving both outputs (exp(x), exp(2x)). Each is a
torch.autograd.Function here too, so the second derivatives go through PyTorch's handling of saved
outputs.

Entries (all float64), in tapegrad's checkpoint format (nn/serialize.hpp):
  mul_constant.{x,y,grad}                    y = MulConstant(x, 5.5); grad = d sum(y) / dx
  linear.{x,weight,bias,cot}                 inputs and a cotangent c for y
  linear.{y,grad_x,grad_weight,grad_bias}    y = LinearFunction(x, weight, bias); d sum(y * c) / d ...
  linear_nobias.{y,grad_x,grad_weight}       the same without bias
  exp.{x,y,grad,grad2}                       grad = d sum(y) / dx; grad2 = d sum(grad) / dx (create_graph)
  tanh_square.{x,c0,c1}                      L = sum(c0 * tanh(x) + c1 * x * x) through one two-output function
  tanh_square.{grad,grad2}                   dL/dx and d sum(dL/dx) / dx
  tanh_square.grad_tanh_only                 d sum(c0 * tanh(x)) / dx (the square output unused)
  exp_pair.{x,a,b}                           L = sum(a * exp(x) + b * exp(2x)), outputs saved for backward
  exp_pair.{grad,grad2}                      dL/dx and d sum(dL/dx) / dx
  exp_pair.grad2_first_only                  d sum(d sum(a * exp(x)) / dx) / dx (the second output unused)
Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/models/make_function_reference.py
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_reference import write_checkpoint  # noqa: E402


class MulConstant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, constant):
        ctx.constant = constant
        return tensor * constant

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.constant, None


class LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias=None):
        ctx.save_for_backward(input, weight, bias)
        output = input.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, bias = ctx.saved_tensors
        grad_bias = grad_output.sum(0) if bias is not None else None
        return grad_output.mm(weight), grad_output.t().mm(input), grad_bias


class Exp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class TanhSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.tanh(), x * x

    @staticmethod
    def backward(ctx, grad_tanh, grad_square):
        (x,) = ctx.saved_tensors
        return grad_tanh * (1 - x.tanh() ** 2) + grad_square * 2 * x


class ExpPair(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y1, y2 = x.exp(), (2 * x).exp()
        ctx.save_for_backward(y1, y2)
        return y1, y2

    @staticmethod
    def backward(ctx, g1, g2):
        y1, y2 = ctx.saved_tensors
        return g1 * y1 + 2 * g2 * y2


def first_and_second(loss_of, x):
    """d loss / dx and d sum(d loss / dx) / dx."""
    (grad,) = torch.autograd.grad(loss_of(x), [x], create_graph=True)
    (grad2,) = torch.autograd.grad(grad.sum(), [x])
    return grad.detach(), grad2


def main():
    gen = torch.Generator().manual_seed(7)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    entries = []

    x = r(2).requires_grad_()
    y = MulConstant.apply(x, 5.5)
    y.sum().backward()
    entries += [("mul_constant.x", x), ("mul_constant.y", y), ("mul_constant.grad", x.grad)]

    x, weight, bias, cot = r(2, 3).requires_grad_(), r(4, 3).requires_grad_(), r(4).requires_grad_(), r(2, 4)
    entries += [("linear.x", x), ("linear.weight", weight), ("linear.bias", bias), ("linear.cot", cot)]
    y = LinearFunction.apply(x, weight, bias)
    gx, gw, gb = torch.autograd.grad((y * cot).sum(), [x, weight, bias])
    entries += [("linear.y", y), ("linear.grad_x", gx), ("linear.grad_weight", gw), ("linear.grad_bias", gb)]
    y = LinearFunction.apply(x, weight)
    gx, gw = torch.autograd.grad((y * cot).sum(), [x, weight])
    entries += [("linear_nobias.y", y), ("linear_nobias.grad_x", gx), ("linear_nobias.grad_weight", gw)]

    x = r(5).requires_grad_()
    grad, grad2 = first_and_second(lambda t: Exp.apply(t).sum(), x)
    entries += [("exp.x", x), ("exp.y", Exp.apply(x)), ("exp.grad", grad), ("exp.grad2", grad2)]

    x, c0, c1 = r(2, 3).requires_grad_(), r(2, 3), r(2, 3)

    def tanh_square_loss(t):
        th, sq = TanhSquare.apply(t)
        return (c0 * th + c1 * sq).sum()

    grad, grad2 = first_and_second(tanh_square_loss, x)
    (grad_tanh_only,) = torch.autograd.grad((c0 * TanhSquare.apply(x)[0]).sum(), [x])
    entries += [("tanh_square.x", x), ("tanh_square.c0", c0), ("tanh_square.c1", c1), ("tanh_square.grad", grad),
                ("tanh_square.grad2", grad2), ("tanh_square.grad_tanh_only", grad_tanh_only)]

    x, a, b = (0.5 * r(4)).requires_grad_(), r(4), r(4)

    def pair_loss(t):
        y1, y2 = ExpPair.apply(t)
        return (a * y1 + b * y2).sum()

    grad, grad2 = first_and_second(pair_loss, x)
    _, grad2_first = first_and_second(lambda t: (a * ExpPair.apply(t)[0]).sum(), x)
    entries += [("exp_pair.x", x), ("exp_pair.a", a), ("exp_pair.b", b), ("exp_pair.grad", grad),
                ("exp_pair.grad2", grad2), ("exp_pair.grad2_first_only", grad2_first)]

    write_checkpoint(os.path.join(HERE, "function_reference.tgck"), entries)


if __name__ == "__main__":
    main()
