#!/usr/bin/env python3
"""Writes tests/ports/autograd_reference.txt: what examples/ports/autograd.cpp must print, made by
running pytorch/examples' cpp/autograd tour in PyTorch on the inputs the port draws from
tapegrad's default generator (tapegrad_random.py reproduces those draws, in the port's order).
Tensors are printed as PyTorch's repr (which tapegrad's operator<< follows), booleans as
std::boolalpha does. Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/ports/autograd_reference.py
"""
import io
import os

import torch

from tapegrad_random import Generator

HERE = os.path.dirname(os.path.abspath(__file__))
gen = Generator()
out = io.StringIO()


def show(value):
    if isinstance(value, bool):
        value = "true" if value else "false"
    out.write(str(value) + "\n")


def randn(*shape):
    count = 1
    for size in shape:
        count *= size
    return torch.tensor(gen.randn(count), dtype=torch.float64).to(torch.float32).reshape(shape)


def basic_autograd_operations_example():
    show('====== Running: "Basic autograd operations" ======')
    x = torch.ones(2, 2, requires_grad=True)
    show(x)
    y = x + 2
    show(y)
    show(y.grad_fn.name())
    z = y * y * 3
    out_ = z.mean()
    show(z)
    show(z.grad_fn.name())
    show(out_)
    show(out_.grad_fn.name())

    a = randn(2, 2)
    a = (a * 3) / (a - 1)
    show(a.requires_grad)
    a.requires_grad_(True)
    show(a.requires_grad)
    b = (a * a).sum()
    show(b.grad_fn.name())

    out_.backward()
    show(x.grad)

    x = randn(3).requires_grad_(True)
    y = x * 2
    while y.norm().item() < 1000:
        y = y * 2
    show(y)
    show(y.grad_fn.name())

    v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)
    y.backward(v)
    show(x.grad)

    show(x.requires_grad)
    show(x.pow(2).requires_grad)
    with torch.no_grad():
        show(x.pow(2).requires_grad)
    show(x.requires_grad)
    y = x.detach()
    show(y.requires_grad)
    show(bool(x.eq(y).all().item()))


def compute_higher_order_gradients_example():
    show('====== Running "Computing higher-order gradients in C++" ======')
    model = torch.nn.Linear(4, 3)
    weight, bias = gen.linear_init(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weight, dtype=torch.float64).reshape(3, 4))
        model.bias.copy_(torch.tensor(bias, dtype=torch.float64))

    input_ = randn(3, 4).requires_grad_(True)
    output = model(input_)
    target = randn(3, 3)
    loss = torch.nn.MSELoss()(output, target)

    grad_output = torch.ones_like(output)
    # libtorch's grad(outputs, inputs, grad_outputs, retain_graph, create_graph): the original's
    # fourth argument, commented /*create_graph=*/, is retain_graph.
    gradient = torch.autograd.grad([output], [input_], grad_outputs=[grad_output], retain_graph=True)[0]
    gradient_penalty = torch.pow(gradient.norm(2, dim=1) - 1, 2).mean()
    combined_loss = loss + gradient_penalty
    combined_loss.backward()
    show(input_.grad)


class LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input_, weight, bias=None):
        ctx.save_for_backward(input_, weight, bias)
        output = input_.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input_, weight, bias = ctx.saved_tensors
        grad_bias = grad_output.sum(0) if bias is not None else None
        return grad_output.mm(weight), grad_output.t().mm(input_), grad_bias


class MulConstant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, constant):
        ctx.constant = constant
        return tensor * constant

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.constant, None


def custom_autograd_function_example():
    show('====== Running "Using custom autograd function in C++" ======')
    x = randn(2, 3).requires_grad_()
    weight = randn(4, 3).requires_grad_()
    y = LinearFunction.apply(x, weight)
    y.sum().backward()
    show(x.grad)
    show(weight.grad)

    x = randn(2).requires_grad_()
    y = MulConstant.apply(x, 5.5)
    y.sum().backward()
    show(x.grad)


def main():
    basic_autograd_operations_example()
    out.write("\n")
    compute_higher_order_gradients_example()
    out.write("\n")
    custom_autograd_function_example()
    with open(os.path.join(HERE, "autograd_reference.txt"), "w") as f:
        f.write(out.getvalue())


if __name__ == "__main__":
    main()
