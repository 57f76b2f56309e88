"""PyTorch 1.13's side of the in-place case in tests/test_differential_pytorch.cpp: which losses let
their input or target be written in place between forward and backward. l1_loss is abs(x - t) in
PyTorch, which keeps x - t and neither operand, so both writes are allowed; mse_loss keeps both
operands, so both are refused ("modified by an inplace operation"); kl_div is t (log t - x), which
keeps t (and log t - x), so only the target's write is refused. Prints one line per case:
    <loss> <what was written> ok <gradient of the leaf>   or   <loss> <what> raises
"""
import warnings

import torch
import torch.nn.functional as F

warnings.simplefilter("ignore")
for name, loss in [("l1_loss", F.l1_loss), ("mse_loss", F.mse_loss), ("kl_div", F.kl_div)]:
    for written in ["target", "input"]:
        leaf = torch.tensor([0.3, 0.6, 0.2], requires_grad=True)
        x = leaf * 1
        t = torch.tensor([0.5, 0.1, 0.4])
        out = loss(x, t)
        (t if written == "target" else x).add_(0.01)
        try:
            out.backward()
            print(name, written, "ok", " ".join(repr(v) for v in leaf.grad.tolist()))
        except RuntimeError:
            print(name, written, "raises")
