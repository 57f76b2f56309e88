#!/usr/bin/python3
"""PyTorch's side of the comparison: the cases of bench/*.cpp with the same shapes and names.

Median of --runs timed runs (after warm-up), in ms (wall-clock, and process CPU time), forward and forward+backward, at each of
--threads. Writes JSON: {"allocator": ..., "torch": ..., "results": [{"case", "mode", "threads",
"ms", "cpu_ms"}]} (cpu_ms: CPU time of the whole process, all threads).

The allocator matters more than anything else here (docs/measured.md): run it once as shipped and once
with MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 in the environment
("tuned"). glibc reads those variables at start-up, so they must be set by the caller; the script
only reports which variant it ran under.

Run with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def allocator_variant():
    return "tuned" if os.environ.get("MALLOC_MMAP_THRESHOLD_") else "shipped"


def median_ms(fn, runs, warmup):
    """(wall-clock ms, process CPU ms of all threads): medians over `runs` runs."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


class Case:
    """An op on fixed inputs. fwd runs under no_grad; fwd+bwd drops the input gradients
    (set_to_none, as tapegrad's zero_grad) and backpropagates a fixed grad_output."""

    def __init__(self, name, op, inputs, grad_inputs=None):
        self.name = name
        self.op = op
        self.inputs = inputs
        self.grad_inputs = grad_inputs if grad_inputs is not None else inputs
        with torch.no_grad():
            out = op(*inputs)
        self.grad_output = None if out.dim() == 0 else torch.randn_like(out)

    def fwd(self):
        with torch.no_grad():
            self.op(*self.inputs)

    def fwd_bwd(self):
        for t in self.grad_inputs:
            t.grad = None
        out = self.op(*self.inputs)
        out.backward(self.grad_output)


def leaf(*shape):
    return torch.randn(*shape).requires_grad_()


def op_cases():
    cases = []
    convs = [
        ((32, 3, 32, 32), (32, 3, 3, 3), 1, 1),
        ((32, 32, 16, 16), (64, 32, 3, 3), 1, 1),
        ((8, 64, 56, 56), (64, 64, 3, 3), 1, 1),
        ((64, 1, 28, 28), (16, 1, 5, 5), 1, 0),
        ((32, 64, 16, 16), (128, 64, 3, 3), 2, 1),
    ]
    for xs, ws, stride, pad in convs:
        name = "conv2d x[{}] w[{}]{} p{}".format(
            ",".join(map(str, xs)), ",".join(map(str, ws)), " s%d" % stride if stride != 1 else "", pad)
        cases.append(Case(name, lambda x, w, s=stride, p=pad: F.conv2d(x, w, None, s, p), [leaf(*xs), leaf(*ws)]))

    cases.append(Case("max_pool2d x[32,32,32,32] k2 s2", lambda x: F.max_pool2d(x, 2, 2), [leaf(32, 32, 32, 32)]))
    cases.append(Case("relu x[32,32,32,32]", F.relu, [leaf(32, 32, 32, 32)]))

    running_mean, running_var = torch.zeros(32), torch.ones(32)
    cases.append(Case("batch_norm train x[32,32,32,32]",
                      lambda x, g, b: F.batch_norm(x, running_mean, running_var, g, b, training=True),
                      [leaf(32, 32, 32, 32), torch.ones(32).requires_grad_(), torch.zeros(32).requires_grad_()]))

    for m, k, n in [(64, 4096, 128), (512, 512, 512)]:
        cases.append(Case("matmul [{},{}]x[{},{}]".format(m, k, k, n), torch.matmul, [leaf(m, k), leaf(k, n)]))

    cases.append(Case("add [32,32,32,32]+[32,32,32,32]", torch.add, [leaf(32, 32, 32, 32), leaf(32, 32, 32, 32)]))
    cases.append(Case("add [32,32,32,32]+[1,32,1,1]", torch.add, [leaf(32, 32, 32, 32), leaf(1, 32, 1, 1)]))
    cases.append(Case("sum [32,32,32,32]", torch.sum, [leaf(32, 32, 32, 32)]))

    for n, k in [(64, 10), (512, 1000)]:
        labels = torch.randint(0, k, (n,))
        cases.append(Case("cross_entropy [{},{}]".format(n, k), lambda x, y=labels: F.cross_entropy(x, y),
                          [leaf(n, k)]))
    return cases


def small_cnn(in_channels=3, image=32):
    """The SmallCNN of seed 003, section 2.8 (docs/measured.md)."""
    flat = 64 * (image // 4) ** 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10))


def small_cnn_step_ms(runs, warmup):
    torch.manual_seed(0)
    model = small_cnn()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return median_ms(step, runs, warmup)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per case (median reported)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--filter", default="", help="only cases whose name contains this")
    parser.add_argument("--fashion-mnist", action="store_true",
                        help="also time one Fashion-MNIST epoch per thread count (about 30 s each)")
    parser.add_argument("--out", default="-", help="JSON output file (default stdout)")
    args = parser.parse_args()

    torch.manual_seed(0)
    cases = [c for c in op_cases() if args.filter in c.name]
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for case in cases:
            for mode, fn in (("fwd", case.fwd), ("fwd+bwd", case.fwd_bwd)):
                ms, cpu_ms = median_ms(fn, args.runs, args.warmup)
                results.append({"case": case.name, "mode": mode, "threads": threads, "ms": ms, "cpu_ms": cpu_ms})
                print("{:>8} {:>2}t {:<45} {:<8} {:9.3f} ms".format(
                    allocator_variant(), threads, case.name, mode, ms), file=sys.stderr)
        if args.filter in "smallcnn step b64":
            ms, cpu_ms = small_cnn_step_ms(args.runs, args.warmup)
            results.append({"case": "smallcnn step b64", "mode": "train step", "threads": threads, "ms": ms,
                            "cpu_ms": cpu_ms})
            print("{:>8} {:>2}t smallcnn step b64 {:9.3f} ms".format(allocator_variant(), threads, ms), file=sys.stderr)
        if args.fashion_mnist:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import pytorch_train_fashion_mnist as fm
            report = fm.train(epochs=1, max_steps=None, threads=threads, log=sys.stderr)
            results.append({"case": "fashion-mnist epoch", "mode": "train epoch", "threads": threads,
                            "ms": report["epoch_seconds"][0] * 1e3})

    # OpenBLAS carries PyTorch's matmul here; its speed depends on OPENBLAS_CORETYPE, which this
    # script only reports (docs/measured.md: leave it as the environment sets it).
    doc = {"allocator": allocator_variant(), "torch": torch.__version__,
           "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""), "results": results}
    if args.out == "-":
        json.dump(doc, sys.stdout, indent=1)
        print()
    else:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
