#!/usr/bin/env python3
"""Writes what PyTorch 1.13 computes for tests/test_libtorch_spellings.cpp and tests/test_printoptions.cpp (the libtorch spellings:
Tensor members, in-place twins, tg::autograd, tg::optim, scheduler state dicts, bool attention
masks, max/min of bool tensors, set_printoptions):
  tests/libtorch_spellings_reference.txt  one line per tensor:
      <name> <shape, as d0xd1x... or "scalar"> <values, row-major; nan and inf as Python writes them>
  tests/printoptions_reference.txt        blocks "case <name>", PyTorch's repr, "end"
Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/libtorch_spellings_reference.py
"""
import math
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
f64 = torch.float64


def line(name, t):
    t = torch.as_tensor(t).detach()
    shape = "x".join(str(s) for s in t.shape) if t.dim() else "scalar"
    return " ".join([name, shape] + [repr(float(v)) for v in t.reshape(-1).tolist()])


def members(out):
    nan = float("nan")
    x = torch.tensor([[1.0, nan, 3.0], [2.0, 2.0, -1.0]])
    y = torch.tensor([[1.0, nan, 2.0], [3.0, 2.0, -1.0]])
    for op in ["eq", "ne", "lt", "le", "gt", "ge"]:
        out.append(line(f"compare.{op}", getattr(x, op)(y)))
        out.append(line(f"compare.{op}_scalar", getattr(x, op)(2.0)))
    z = torch.tensor([[1.0, 0.0, 2.0], [3.0, 4.0, 5.0]])
    out += [line("logical.all", z.all()), line("logical.any", z.any()), line("logical.all_1", z.all(1)),
            line("logical.any_0_keepdim", z.any(0, keepdim=True))]
    # norm: every element, along one dimension (as the autograd tour's gradient.norm(2, 1)), p = 1 keepdim
    for name, fn in [("norm.all", lambda a: a.norm()), ("norm.dim1", lambda a: a.norm(2, 1)),
                     ("norm.p1_keepdim", lambda a: a.norm(1, [0, 1], keepdim=True))]:
        a = torch.tensor([[3.0, 4.0, 0.0], [1.0, -2.0, 2.0]], dtype=f64, requires_grad=True)
        n = fn(a)
        (n * torch.arange(1.0, n.numel() + 1, dtype=f64).reshape(n.shape)).sum().backward()
        out += [line(name + ".value", n), line(name + ".grad", a.grad)]


def inplace(out):
    # y = a * 1.5 (a non-leaf), y.<op>_(...), then (y * w).sum() backward: y, a.grad, y's version.
    cases = [
        ("exp_", lambda y: y.exp_()), ("log_", lambda y: y.log_()), ("sqrt_", lambda y: y.sqrt_()),
        ("abs_", lambda y: y.abs_()), ("neg_", lambda y: y.neg_()), ("sigmoid_", lambda y: y.sigmoid_()),
        ("tanh_", lambda y: y.tanh_()), ("pow_", lambda y: y.pow_(2.5)), ("clamp_", lambda y: y.clamp_(0.5, 2.0)),
        ("clamp_min_", lambda y: y.clamp_min_(1.0)), ("clamp_max_", lambda y: y.clamp_max_(1.0)),
    ]
    positive = {"log_", "sqrt_", "pow_"}
    for name, fn in cases:
        values = [0.25, 0.75, 1.5] if name in positive else [-1.25, 0.5, 1.5]
        a = torch.tensor(values, dtype=f64, requires_grad=True)
        y = a * 1.5
        fn(y)
        (y * torch.tensor([1.0, -2.0, 3.0], dtype=f64)).sum().backward()
        out += [line(f"inplace.{name}.value", y), line(f"inplace.{name}.grad", a.grad),
                line(f"inplace.{name}.version", torch.tensor(float(y._version)))]


def autograd(out):
    # The autograd tour's gradient penalty, on fixed inputs, through torch.autograd.grad.
    w = torch.tensor([[0.5, -1.0, 0.25, 2.0], [1.5, 0.5, -0.5, 1.0], [-0.75, 0.25, 1.0, 0.5]], dtype=f64, requires_grad=True)
    b = torch.tensor([0.1, -0.2, 0.3], dtype=f64, requires_grad=True)
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5], [0.0, -1.5, 2.0, 1.0], [0.5, 0.5, 0.5, -2.0]], dtype=f64, requires_grad=True)
    target = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0], [1.0, -1.0, 0.5]], dtype=f64)
    output = F.linear(x, w, b)
    loss = F.mse_loss(output, target)
    gradient = torch.autograd.grad([output], [x], [torch.ones_like(output)], create_graph=True)[0]
    penalty = ((gradient.norm(2, dim=1) - 1) ** 2).mean()
    (loss + penalty).backward()
    out += [line("autograd.penalty", penalty), line("autograd.x_grad", x.grad), line("autograd.w_grad", w.grad)]
    # torch.autograd.backward of two outputs with their grad_tensors
    a = torch.tensor([1.0, 2.0, 3.0], dtype=f64, requires_grad=True)
    torch.autograd.backward([a * a, a.sum() * 2], [torch.tensor([1.0, 0.5, -1.0], dtype=f64), torch.tensor(3.0, dtype=f64)])
    out.append(line("autograd.backward_grad", a.grad))


def optimizers(out):
    target = torch.tensor([0.5, -1.0, 2.0], dtype=f64)
    scale = torch.tensor([1.0, 2.0, 0.5], dtype=f64)

    def run(name, make, scheduler=None, steps=3):
        p = torch.tensor([1.0, -2.0, 0.5], dtype=f64, requires_grad=True)
        opt = make([p])
        sched = scheduler(opt) if scheduler else None
        lrs = []
        for _ in range(steps):
            opt.zero_grad()
            (((p - target) ** 2) * scale).sum().backward()
            opt.step()
            if sched:
                sched.step()
                lrs.append(opt.param_groups[0]["lr"])
        out.append(line(f"optim.{name}.params", p))
        if sched:
            out.append(line(f"optim.{name}.lrs", torch.tensor(lrs, dtype=f64)))

    run("sgd", lambda ps: torch.optim.SGD(ps, 0.1))
    run("sgd_nesterov", lambda ps: torch.optim.SGD(ps, 0.1, momentum=0.9, nesterov=True))
    run("adam_steplr", lambda ps: torch.optim.Adam(ps, 0.1, betas=(0.5, 0.9), weight_decay=0.01),
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, 0.5))
    run("adamw", lambda ps: torch.optim.AdamW(ps, 0.05, betas=(0.8, 0.99), amsgrad=True))
    run("rmsprop", lambda ps: torch.optim.RMSprop(ps, 0.01, alpha=0.9, momentum=0.5, centered=True))
    run("adagrad", lambda ps: torch.optim.Adagrad(ps, 0.1, lr_decay=0.01))


def schedulers(out):
    # StepLR: 3 steps, state_dict, a new optimizer and scheduler loaded from both, 3 more steps.
    def opt_for():
        return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)

    opt = opt_for()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        opt.step()
        sched.step()
    sd = sched.state_dict()
    out += [line("sched.step.last_epoch", torch.tensor(float(sd["last_epoch"]))),
            line("sched.step.base_lrs", torch.tensor(sd["base_lrs"], dtype=f64)), line("sched.step._last_lr", torch.tensor(sd["_last_lr"], dtype=f64))]
    opt2 = opt_for()
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sd)
    lrs = []
    for _ in range(3):
        opt2.step()
        sched2.step()
        lrs.append(opt2.param_groups[0]["lr"])
    out.append(line("sched.step.resumed_lrs", torch.tensor(lrs, dtype=f64)))
    # ReduceLROnPlateau: metrics, state_dict, resumed on a new one.
    opt = opt_for()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    for m in [1.0, 0.9, 0.95, 0.96]:
        plateau.step(m)
    sd = plateau.state_dict()
    out += [line("sched.plateau.best", torch.tensor(sd["best"], dtype=f64)),
            line("sched.plateau.num_bad_epochs", torch.tensor(float(sd["num_bad_epochs"]))),
            line("sched.plateau.cooldown_counter", torch.tensor(float(sd["cooldown_counter"]))),
            line("sched.plateau.last_epoch", torch.tensor(float(sd["last_epoch"])))]
    opt2 = opt_for()
    plateau2 = torch.optim.lr_scheduler.ReduceLROnPlateau(opt2, factor=0.5, patience=1)
    opt2.load_state_dict(opt.state_dict())
    plateau2.load_state_dict(sd)
    lrs = []
    for m in [0.97, 0.98, 0.5, 0.6, 0.7]:
        plateau2.step(m)
        lrs.append(opt2.param_groups[0]["lr"])
    out.append(line("sched.plateau.resumed_lrs", torch.tensor(lrs, dtype=f64)))


def attention(out):
    torch.manual_seed(0)
    E, H, L, S, N = 4, 2, 3, 3, 2
    mha = torch.nn.MultiheadAttention(E, H).double()
    mha.train()
    q = torch.randn(L, N, E, dtype=f64, requires_grad=True)
    k = torch.randn(S, N, E, dtype=f64)
    v = torch.randn(S, N, E, dtype=f64)
    for name, t in [("in_proj_weight", mha.in_proj_weight), ("in_proj_bias", mha.in_proj_bias),
                    ("out_proj.weight", mha.out_proj.weight), ("out_proj.bias", mha.out_proj.bias), ("q", q), ("k", k), ("v", v)]:
        out.append(line("mha." + name, t))
    key_padding_mask = torch.tensor([[False, False, True], [False, True, False]])
    attn_mask = torch.tensor([[False, True, False], [False, False, False], [True, False, False]])
    o, w = mha(q, k, v, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
    (o * ((torch.arange(o.numel(), dtype=f64) - 5.5) * 0.25).reshape(o.shape)).sum().add((w * w).sum()).backward()
    out += [line("mha.out", o), line("mha.weights", w), line("mha.q_grad", q.grad), line("mha.in_proj_weight_grad", mha.in_proj_weight.grad)]
    # scaled_dot_product_attention with a bool mask, true where a query may attend (PyTorch 2.0's
    # rule; 1.13 has no F.scaled_dot_product_attention, so its formula is written out).
    q = torch.randn(2, 3, 4, dtype=f64, requires_grad=True)
    k = torch.randn(2, 5, 4, dtype=f64)
    v = torch.randn(2, 5, 3, dtype=f64)
    mask = torch.tensor([[True, False, True, True, False], [False, True, True, False, False], [True, True, True, True, True]])
    scores = (q @ k.transpose(-2, -1) / math.sqrt(4)).masked_fill(~mask, float("-inf"))
    y = scores.softmax(-1) @ v
    (y * y).sum().backward()
    out += [line("sdpa.q", q), line("sdpa.k", k), line("sdpa.v", v), line("sdpa.out", y), line("sdpa.q_grad", q.grad)]


def bool_extremes(out):
    m = torch.tensor([[True, False, True], [False, False, False]])
    values, indices = m.max(1)
    out += [line("bool.max", m.max()), line("bool.min", m.min()), line("bool.max1.values", values), line("bool.max1.indices", indices)]
    values, indices = m.min(1)
    out += [line("bool.min1.values", values), line("bool.min1.indices", indices)]


def print_cases():
    cases = []

    def case(name, t):
        cases.append(f"case {name}\n{t!r}\nend\n")

    torch.set_printoptions(precision=2)
    case("precision_2", torch.tensor([1.23456, 2.5, -0.001, 10.0]))
    torch.set_printoptions(sci_mode=False)
    case("precision_2_sci_off", torch.tensor([1e-6, 1.0, 2.0]))
    torch.set_printoptions(profile="default", sci_mode=True)
    case("default_sci_on", torch.tensor([[1.5, 2.0], [-3.25, 4.0]]))
    torch.set_printoptions(profile="short")
    case("short_summarised", torch.arange(2000.0).reshape(40, 50))
    torch.set_printoptions(profile="default", threshold=5, edgeitems=1, linewidth=30)
    case("threshold_edgeitems_linewidth", torch.arange(10.0) / 3)
    torch.set_printoptions(profile="full")
    case("full", torch.arange(1002))
    torch.set_printoptions(profile="default")
    return cases


def main():
    out = []
    members(out)
    inplace(out)
    autograd(out)
    optimizers(out)
    schedulers(out)
    attention(out)
    bool_extremes(out)
    with open(os.path.join(HERE, "libtorch_spellings_reference.txt"), "w") as f:
        f.write("\n".join(out) + "\n")
    with open(os.path.join(HERE, "printoptions_reference.txt"), "w") as f:
        f.write("".join(print_cases()))


if __name__ == "__main__":
    main()
