#!/usr/bin/env python3
"""Writes tests/models/loss_reference.tgck, PyTorch's answers for the losses that
tests/test_losses_pytorch.cpp checks tapegrad against: binary_cross_entropy (with probabilities of
exactly 0 and 1, and of a saturated sigmoid), binary_cross_entropy_with_logits (weight, pos_weight,
logits of +-1e4), l1_loss, smooth_l1_loss, huber_loss, mse_loss, kl_div (batchmean, log_target,
zeros in the target), nll_loss (weight, ignore_index, spatial targets, every target ignored) and
cross_entropy (probability targets, spatial labels), in each reduction.

For each case, in tapegrad's checkpoint format (nn/serialize.hpp):
  <case>.x, <case>.t          the input and the target (float64; absent target: class labels only)
  <case>.weight, .pos_weight  the constants, where the case has them
  <case>.labels               class indices as float64 (-100 ignored)
  <case>.cot, <case>.v        a random cotangent c of the output and a direction v of the input
  <case>.<dtype>.out          the output, computed by PyTorch in <dtype> (f64 or f32) from the
                              inputs converted to it
  <case>.<dtype>.grad0/grad1  d sum(out * c) / d x (and / d t where the target is differentiable)
  <case>.<dtype>.gg0/gg1      d sum(grad0 * v) / d x (and / d t): the second derivatives
Run with Debian's PyTorch (python3-torch), from the repository root:
  /usr/bin/python3 tests/models/make_loss_reference.py
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tgck import write_checkpoint  # noqa: E402

DTYPES = {"f64": torch.float64, "f32": torch.float32}


def materialized(t, like):
    """t, or zeros of like's shape where autograd returned nothing or its storage-less zero tensor
    (the second derivative of abs), whose memory is not zeros."""
    return torch.zeros_like(like) if t is None or t._is_zerotensor() else t


def main():
    gen = torch.Generator().manual_seed(1913)

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)

    def normal(shape, scale=1.0):
        return scale * torch.randn(shape, generator=gen, dtype=torch.float64)

    def log_probs(shape):
        return F.log_softmax(normal(shape, 2.0), dim=1 if len(shape) > 1 else 0)

    def probs(shape):
        return F.softmax(normal(shape, 2.0), dim=1 if len(shape) > 1 else 0)

    entries = []

    def add(name, fn, x, t=None, weight=None, pos_weight=None, labels=None):
        """fn(x, t, weight, pos_weight, labels) -> loss; t gets a gradient where it is given."""
        entries.append((f"{name}.x", x))
        for key, value in (("t", t), ("weight", weight), ("pos_weight", pos_weight)):
            if value is not None:
                entries.append((f"{name}.{key}", value))
        if labels is not None:
            entries.append((f"{name}.labels", labels.double()))
        cot = v = None
        for tag, dtype in DTYPES.items():
            xd = x.to(dtype).requires_grad_()
            td = t.to(dtype).requires_grad_() if t is not None else None
            wrt = [xd] + ([td] if td is not None else [])
            out = fn(xd, td, None if weight is None else weight.to(dtype), None if pos_weight is None else pos_weight.to(dtype),
                     labels)
            if cot is None:
                cot = normal(out.shape)
                v = normal(x.shape)
            grads = torch.autograd.grad((out * cot.to(dtype)).sum(), wrt, create_graph=True)
            if grads[0].requires_grad:
                second = torch.autograd.grad((grads[0] * v.to(dtype)).sum(), wrt, allow_unused=True)
            else:  # the gradient does not depend on x or t (l1_loss, nll_loss)
                second = [None] * len(wrt)
            second = [materialized(s, w) for s, w in zip(second, wrt)]
            grads = [materialized(g, w) for g, w in zip(grads, wrt)]
            entries.append((f"{name}.{tag}.out", out))
            for i, (g, s) in enumerate(zip(grads, second)):
                entries.extend([(f"{name}.{tag}.grad{i}", g), (f"{name}.{tag}.gg{i}", s)])
        entries.extend([(f"{name}.cot", cot), (f"{name}.v", v)])

    bce = F.binary_cross_entropy
    add("bce_mean", lambda x, t, w, pw, l: bce(x, t), uniform((4, 5), 0.02, 0.98), uniform((4, 5), 0, 1))
    # Probabilities of exactly 0 and 1 (a loss of 100 where the label disagrees, gradients of
    # 1e12, target gradients of +-inf), and nearly so.
    add("bce_saturated_none", lambda x, t, w, pw, l: bce(x, t, reduction="none"),
        torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 1e-20, 0.9999999], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.5, 0.0, 1.0, 0.25, 0.5, 1.0, 0.0], dtype=torch.float64))
    add("bce_weight_sum", lambda x, t, w, pw, l: bce(x, t, weight=w, reduction="sum"),
        uniform((3, 5), 0.02, 0.98), uniform((3, 5), 0, 1), weight=uniform((5,), 0.5, 2.0))
    add("bce_weight_mean_4d", lambda x, t, w, pw, l: bce(x, t, weight=w),
        uniform((2, 3, 2, 2), 0.02, 0.98), uniform((2, 3, 2, 2), 0, 1), weight=uniform((3, 1, 1), 0.5, 2.0))
    # A GAN discriminator's sigmoid saturated to exactly 1 (and 0) in float32: finite loss and
    # gradients with respect to the logits.
    add("bce_of_sigmoid_saturated", lambda x, t, w, pw, l: bce(torch.sigmoid(x), t),
        torch.tensor([30.0, -30.0, 200.0, -200.0, 2.0, -1.0], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64))

    bcel = F.binary_cross_entropy_with_logits
    add("bcel_mean", lambda x, t, w, pw, l: bcel(x, t), normal((4, 5), 3.0), uniform((4, 5), 0, 1))
    add("bcel_weight_pos_weight_sum", lambda x, t, w, pw, l: bcel(x, t, weight=w, pos_weight=pw, reduction="sum"),
        normal((4, 5), 3.0), uniform((4, 5), 0, 1), weight=uniform((4, 1), 0.5, 2.0), pos_weight=uniform((5,), 0.5, 3.0))
    add("bcel_extreme_pos_weight_none", lambda x, t, w, pw, l: bcel(x, t, pos_weight=pw, reduction="none"),
        torch.tensor([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.5, 1.0, 0.0, 0.3, 1.0], dtype=torch.float64), pos_weight=uniform((7,), 0.5, 3.0))
    add("bcel_extreme_mean", lambda x, t, w, pw, l: bcel(x, t),
        torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=torch.float64),
        torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0], dtype=torch.float64))

    add("l1_mean", lambda x, t, w, pw, l: F.l1_loss(x, t), normal((4, 5)), normal((4, 5)))
    tied = normal((6,))
    add("l1_ties_none", lambda x, t, w, pw, l: F.l1_loss(x, t, reduction="none"), tied,
        torch.where(torch.arange(6) % 2 == 0, tied, normal((6,))))
    add("smooth_l1_mean", lambda x, t, w, pw, l: F.smooth_l1_loss(x, t), normal((4, 5), 2.0), normal((4, 5)))
    add("smooth_l1_beta0.5_none", lambda x, t, w, pw, l: F.smooth_l1_loss(x, t, reduction="none", beta=0.5),
        normal((3, 4)), normal((3, 4)))
    add("smooth_l1_beta0_sum", lambda x, t, w, pw, l: F.smooth_l1_loss(x, t, reduction="sum", beta=0.0),
        normal((3, 4)), normal((3, 4)))
    add("huber_mean", lambda x, t, w, pw, l: F.huber_loss(x, t), normal((4, 5), 2.0), normal((4, 5)))
    add("huber_delta2.5_none", lambda x, t, w, pw, l: F.huber_loss(x, t, reduction="none", delta=2.5),
        normal((3, 4), 3.0), normal((3, 4)))
    add("mse_mean", lambda x, t, w, pw, l: F.mse_loss(x, t), normal((4, 5)), normal((4, 5)))
    add("mse_sum_4d", lambda x, t, w, pw, l: F.mse_loss(x, t, reduction="sum"), normal((2, 3, 2, 2)), normal((2, 3, 2, 2)))

    add("kl_batchmean", lambda x, t, w, pw, l: F.kl_div(x, t, reduction="batchmean"), log_probs((4, 5)), probs((4, 5)))
    add("kl_mean", lambda x, t, w, pw, l: F.kl_div(x, t, reduction="mean"), log_probs((3, 4)), probs((3, 4)))
    # Zeros in the target: the loss is 0 there, and PyTorch's target gradient NaN.
    zeros_target = probs((3, 4)) * (torch.arange(12).reshape(3, 4) % 3 != 0)
    add("kl_zero_target_none", lambda x, t, w, pw, l: F.kl_div(x, t, reduction="none"), log_probs((3, 4)), zeros_target)
    add("kl_zero_target_sum", lambda x, t, w, pw, l: F.kl_div(x, t, reduction="sum"), log_probs((3, 4)), zeros_target)
    add("kl_log_target_batchmean", lambda x, t, w, pw, l: F.kl_div(x, t, reduction="batchmean", log_target=True),
        log_probs((4, 5)), log_probs((4, 5)))

    labels5 = torch.tensor([0, 3, -100, 1, 3])
    add("nll_weight_ignore_mean", lambda x, t, w, pw, l: F.nll_loss(x, l, weight=w), log_probs((5, 4)),
        weight=uniform((4,), 0.5, 2.0), labels=labels5)
    add("nll_weight_sum", lambda x, t, w, pw, l: F.nll_loss(x, l, weight=w, reduction="sum"), log_probs((5, 4)),
        weight=uniform((4,), 0.5, 2.0), labels=torch.tensor([0, 3, 2, 1, 3]))
    add("nll_spatial_weight_ignore_mean", lambda x, t, w, pw, l: F.nll_loss(x, l, weight=w), log_probs((2, 3, 4)),
        weight=uniform((3,), 0.5, 2.0), labels=torch.tensor([[0, 2, -100, 1], [2, 2, 0, -100]]))
    add("nll_spatial_none", lambda x, t, w, pw, l: F.nll_loss(x, l, reduction="none"), log_probs((2, 3, 2, 2)),
        labels=torch.tensor([[[0, 1], [2, 0]], [[2, 2], [1, 0]]]))
    add("nll_all_ignored_mean", lambda x, t, w, pw, l: F.nll_loss(x, l), log_probs((3, 4)),
        labels=torch.tensor([-100, -100, -100]))
    add("nll_unbatched", lambda x, t, w, pw, l: F.nll_loss(x, l), log_probs((4,)), labels=torch.tensor(2))

    add("ce_probs_mean", lambda x, t, w, pw, l: F.cross_entropy(x, t), normal((4, 5), 2.0), probs((4, 5)))
    add("ce_probs_weight_smoothing_none",
        lambda x, t, w, pw, l: F.cross_entropy(x, t, weight=w, reduction="none", label_smoothing=0.15),
        normal((4, 5), 2.0), uniform((4, 5), 0, 1), weight=uniform((5,), 0.5, 2.0))
    add("ce_probs_4d_weight_sum", lambda x, t, w, pw, l: F.cross_entropy(x, t, weight=w, reduction="sum"),
        normal((2, 3, 2, 2), 2.0), probs((2, 3, 2, 2)), weight=uniform((3,), 0.5, 2.0))
    add("ce_labels_spatial_weight_ignore_smoothing_mean",
        lambda x, t, w, pw, l: F.cross_entropy(x, l, weight=w, label_smoothing=0.1),
        normal((2, 3, 4), 2.0), weight=uniform((3,), 0.5, 2.0), labels=torch.tensor([[0, 2, -100, 1], [2, 2, 0, 1]]))
    add("ce_labels_spatial_none", lambda x, t, w, pw, l: F.cross_entropy(x, l, reduction="none"),
        normal((2, 3, 2, 2), 2.0), labels=torch.tensor([[[0, 1], [2, 0]], [[2, 2], [1, 0]]]))
    write_checkpoint(os.path.join(HERE, "loss_reference.tgck"), entries)


if __name__ == "__main__":
    main()
