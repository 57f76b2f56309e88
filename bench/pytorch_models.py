#!/usr/bin/python3
"""PyTorch's side of bench/models_step.cpp: the same training step (zero_grad, forward,
cross_entropy, backward, AdamW step) of torchvision's ResNet-18 and MobileNetV2 and the small U-Net
of tests/models/make_reference.py, at the same shapes; median of --runs steps after 3 warm-up
steps, in ms, one CSV line per model: name,threads,ms. Run with /usr/bin/python3 (python3-torch).
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torchvision.models import mobilenet_v2, resnet18

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models"))
from make_reference import SmallUNet  # noqa: E402


def median_step_ms(model, x, labels, runs, logits_of=lambda t: t):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    model.train()

    def step():
        opt.zero_grad()
        F.cross_entropy(logits_of(model(x)), labels).backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(32, 3, 32, 32)
    labels = torch.randint(0, 10, (32,))
    print(f"resnet18 b32 3x32x32,{a.threads},{median_step_ms(resnet18(num_classes=10), x, labels, a.runs):.3f}")
    print(f"mobilenet_v2 b32 3x32x32,{a.threads},{median_step_ms(mobilenet_v2(num_classes=10), x, labels, a.runs):.3f}")
    xs = torch.randn(8, 3, 64, 64)
    seg = torch.randint(0, 3, (8 * 64 * 64,))
    rows = lambda out: out.permute(0, 2, 3, 1).reshape(-1, 3)  # noqa: E731
    print(f"unet w16 b8 3x64x64,{a.threads},{median_step_ms(SmallUNet(3, 3, 16), xs, seg, a.runs, rows):.3f}")


if __name__ == "__main__":
    main()
