#!/usr/bin/env python3
"""Writes tests/optim/optim_reference.tgck, torch.optim's trajectories that tests/test_optim_pytorch.cpp
checks tapegrad's optimizers and schedulers against (float64 throughout).

Optimizers with fixed gradients: two parameters p0 [3] and p1 [2, 2] start at INIT and get the
gradients grads.p0 [STEPS, 3] and grads.p1 [STEPS, 2, 2] (shrinking, so that amsgrad's running
maximum differs from the second moment); for each case <case>.p0 [STEPS, 3] and <case>.p1
[STEPS, 2, 2] hold the parameters after each step. The cases (SGD, Adam, AdamW with param groups
and amsgrad, RMSprop, Adagrad) are listed in CASES below, written as the C++ test builds them.

LBFGS on the 6-dimensional Rosenbrock function, its variables split as p0 [4] and p1 [2]:
lbfgs.<case>.p0 [CALLS, 4], .p1 [CALLS, 2] after each step(closure) call, .loss [CALLS] the loss
each call returned, .func_evals and .n_iter [CALLS] the state's counters after each call.

Schedulers: sched.<case>.lr [EPOCHS, groups] the lr of each group after construction (row 0) and
after each step(); sched.<case>.momentum the same for OneCycleLR's momentum or beta1;
sched.plateau_*.metrics [EPOCHS] the metrics fed to ReduceLROnPlateau.step.

Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/optim/make_reference.py
"""
import os
import sys

import torch
from torch.optim import lr_scheduler as sched

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models"))
from tgck import write_checkpoint  # noqa: E402

torch.set_default_dtype(torch.float64)
STEPS = 12
INIT = {"p0": [1.0, -2.0, 0.5], "p1": [[0.3, -0.7], [1.5, -0.2]]}

# name -> (optimizer class, param groups as (param names, options), defaults)
CASES = {
    "sgd_groups": (torch.optim.SGD,
                   [(["p0"], {}), (["p1"], dict(lr=0.05, momentum=0.5, nesterov=True))],
                   dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    "sgd_dampening": (torch.optim.SGD, [(["p0", "p1"], {})],
                      dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.02)),
    "adam_groups": (torch.optim.Adam,
                    [(["p0"], {}), (["p1"], dict(lr=0.02, betas=(0.8, 0.99), amsgrad=True))],
                    dict(lr=0.01, weight_decay=0.1)),
    "adam_amsgrad": (torch.optim.Adam, [(["p0", "p1"], {})], dict(lr=0.05, amsgrad=True)),
    "adam_plain": (torch.optim.Adam, [(["p0", "p1"], {})], dict(lr=0.05)),
    "adamw_amsgrad": (torch.optim.AdamW, [(["p0", "p1"], {})],
                      dict(lr=0.01, betas=(0.85, 0.95), eps=1e-6, weight_decay=0.05, amsgrad=True)),
    "rmsprop_default": (torch.optim.RMSprop, [(["p0", "p1"], {})], dict()),
    "rmsprop_centered_momentum": (torch.optim.RMSprop, [(["p0", "p1"], {})],
                                  dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.8,
                                       centered=True)),
    "rmsprop_groups": (torch.optim.RMSprop,
                       [(["p0"], dict(centered=True)), (["p1"], dict(lr=0.003, momentum=0.5))],
                       dict(lr=0.01, alpha=0.95)),
    "adagrad_default": (torch.optim.Adagrad, [(["p0", "p1"], {})], dict()),
    "adagrad_options": (torch.optim.Adagrad, [(["p0", "p1"], {})],
                        dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-8)),
    "adagrad_groups": (torch.optim.Adagrad,
                       [(["p0"], {}), (["p1"], dict(lr=0.3, initial_accumulator_value=0.5))],
                       dict(lr=0.05, lr_decay=0.1)),
}


def gradients():
    gen = torch.Generator().manual_seed(2024)
    shrink = torch.tensor([2.0 ** (-t / 3) for t in range(STEPS)])
    g0 = torch.randn(STEPS, 3, generator=gen) * shrink[:, None]
    g1 = torch.randn(STEPS, 2, 2, generator=gen) * shrink[:, None, None]
    return {"p0": g0, "p1": g1}


def build(case, params):
    cls, groups, defaults = CASES[case]
    return cls([dict(params=[params[n] for n in names], **opts) for names, opts in groups], **defaults)


def run(case, grads, steps=STEPS, resume_at=None):
    """The parameters after each step; with resume_at, the optimizer is rebuilt with other options
    after that many steps and takes the state (hyper-parameters included) from state_dict()."""
    params = {n: torch.tensor(v, requires_grad=True) for n, v in INIT.items()}
    opt = build(case, params)
    out = {n: [] for n in params}
    for t in range(steps):
        if resume_at is not None and t == resume_at:
            saved = opt.state_dict()
            cls, groups, defaults = CASES[case]
            other = dict(lr=7.0, betas=(0.1, 0.2)) if cls in (torch.optim.Adam, torch.optim.AdamW) else dict(lr=7.0)
            opt = cls([dict(params=[params[n] for n in names]) for names, _ in groups], **other)
            opt.load_state_dict(saved)
        for n, p in params.items():
            p.grad = grads[n][t].clone()
        opt.step()
        for n, p in params.items():
            out[n].append(p.detach().clone())
    return {n: torch.stack(v) for n, v in out.items()}


def rosenbrock(z):
    return (100 * (z[1:] - z[:-1] ** 2) ** 2 + (1 - z[:-1]) ** 2).sum()


LBFGS_CASES = {
    "plain": dict(lr=0.1, max_iter=10, history_size=4),
    "strong_wolfe": dict(lr=1, max_iter=15, history_size=5, line_search_fn="strong_wolfe"),
    "strong_wolfe_short": dict(lr=1, max_iter=4, max_eval=6, history_size=3, line_search_fn="strong_wolfe"),
}
LBFGS_CALLS = 6


def run_lbfgs(options):
    p0 = torch.tensor([-1.2, 1.0, -0.5, 0.8], requires_grad=True)
    p1 = torch.tensor([1.3, -0.7], requires_grad=True)
    opt = torch.optim.LBFGS([p0, p1], **options)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(torch.cat([p0, p1]))
        loss.backward()
        return loss

    out = {"p0": [], "p1": [], "loss": [], "func_evals": [], "n_iter": []}
    for _ in range(LBFGS_CALLS):
        loss = opt.step(closure)
        out["p0"].append(p0.detach().clone())
        out["p1"].append(p1.detach().clone())
        out["loss"].append(float(loss))
        state = opt.state[p0]
        out["func_evals"].append(float(state["func_evals"]))
        out["n_iter"].append(float(state["n_iter"]))
    return {k: torch.stack(v) if isinstance(v[0], torch.Tensor) else torch.tensor(v) for k, v in out.items()}


def two_groups(cls=torch.optim.SGD, **defaults):
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    return cls([dict(params=[a]), dict(params=[b], lr=0.02)], lr=0.1, **defaults)


def lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def scheduler_sequences():
    entries = []

    def record(name, opt, scheduler, epochs, with_momentum=False):
        lr_rows, m_rows = [lrs(opt)], [momenta(opt)]
        for _ in range(epochs):
            scheduler.step()
            lr_rows.append(lrs(opt))
            m_rows.append(momenta(opt))
        entries.append((f"sched.{name}.lr", torch.tensor(lr_rows)))
        if with_momentum:
            entries.append((f"sched.{name}.momentum", torch.tensor(m_rows)))

    opt = two_groups()
    record("linear", opt, sched.LinearLR(opt, start_factor=0.25, end_factor=0.9, total_iters=6), 10)
    opt = two_groups()
    record("linear_default", opt, sched.LinearLR(opt), 8)
    opt = two_groups(momentum=0.9)
    record("onecycle_cos", opt, sched.OneCycleLR(opt, max_lr=[0.1, 0.05], total_steps=20), 20, True)
    # To step 23 of 24: PyTorch allows one step more, where the linear anneal overshoots to a
    # negative lr that tapegrad's optimizers refuse.
    opt = two_groups(torch.optim.Adam)
    record("onecycle_three_phase_linear", opt,
           sched.OneCycleLR(opt, max_lr=0.2, epochs=4, steps_per_epoch=6, pct_start=0.25, anneal_strategy="linear",
                            div_factor=10, final_div_factor=100, three_phase=True, base_momentum=0.8,
                            max_momentum=[0.9, 0.95]), 23, True)
    opt = two_groups(torch.optim.RMSprop, momentum=0.5)
    record("onecycle_no_momentum", opt, sched.OneCycleLR(opt, max_lr=0.3, total_steps=10, cycle_momentum=False), 10,
           True)
    opt = two_groups()
    sequence = sched.SequentialLR(opt, [sched.LinearLR(opt, start_factor=0.1, total_iters=3),
                                        sched.CosineAnnealingLR(opt, T_max=5, eta_min=0.001),
                                        sched.StepLR(opt, step_size=2, gamma=0.5)], milestones=[4, 9])
    record("sequential", opt, sequence, 15)

    plateau_metrics = {
        "plateau_min_rel": [1.0, 0.9, 0.95, 0.91, 0.92, 0.5, 0.6, 0.7, 0.8, 0.49, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9,
                            0.9, 0.9, 0.9],
        "plateau_max_abs": [0.1, 0.2, 0.25, 0.26, 0.27, 0.28, 0.5, 0.4, 0.45, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
    }
    plateau_options = {
        "plateau_min_rel": dict(mode="min", factor=0.5, patience=2, threshold=0.01, threshold_mode="rel", cooldown=1,
                                min_lr=[0.01, 0.004]),
        "plateau_max_abs": dict(mode="max", factor=0.3, patience=1, threshold=0.02, threshold_mode="abs",
                                min_lr=0.005),
    }
    for name, metrics in plateau_metrics.items():
        opt = two_groups()
        plateau = sched.ReduceLROnPlateau(opt, **plateau_options[name])
        rows = [lrs(opt)]
        for m in metrics:
            plateau.step(m)
            rows.append(lrs(opt))
        entries.append((f"sched.{name}.metrics", torch.tensor(metrics)))
        entries.append((f"sched.{name}.lr", torch.tensor(rows)))
    return entries


def main():
    grads = gradients()
    entries = [(f"grads.{n}", g) for n, g in grads.items()]
    for case in CASES:
        trajectory = run(case, grads)
        entries += [(f"{case}.{n}", v) for n, v in trajectory.items()]
        # PyTorch's load_state_dict restores the hyper-parameters: a rebuilt optimizer with other
        # options continues exactly.
        resumed = run(case, grads, resume_at=5)
        for n in trajectory:
            assert torch.equal(resumed[n], trajectory[n]), case
    # amsgrad changes the trajectory with these gradients (the second moment shrinks).
    assert not torch.allclose(run("adam_amsgrad", grads)["p0"], run("adam_plain", grads)["p0"])
    for case, options in LBFGS_CASES.items():
        entries += [(f"lbfgs.{case}.{k}", v) for k, v in run_lbfgs(options).items()]
    entries += scheduler_sequences()
    write_checkpoint(os.path.join(HERE, "optim_reference.tgck"), entries)


if __name__ == "__main__":
    main()
