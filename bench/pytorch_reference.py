#!/usr/bin/python3
"""PyTorch's side of the comparison, and the driver that times both sides alternately.

Every case of bench/*.cpp, with the same shapes and names (the op rows as `tapegrad_bench --list-ops`
lists them from the op registry, with PyTorch's expression of each; TAPEGRAD_OP=<op> keeps one
op's rows and nothing else), in forward and forward+backward, at
each of --threads, and the training steps of the SmallCNN and of the model ports (ResNet-18,
MobileNetV2, U-Net). Four-dimensional cases and the training steps run in PyTorch's two layouts,
NCHW and channels_last (inputs, weights and model converted), and the faster one is the anchor.

With --ours BINARY the script starts `BINARY --serve` (bench/bench_main.cpp) and, for --rounds
rounds, times each case on our side and on PyTorch's one right after the other, the order turned
round each round, so that a neighbour's burst on a shared machine hits both sides alike. Each
timing is the mean of the runs that fit in --min-time seconds (at least 3), on both sides. The
JSON written to --out holds every round's figures; bench/compare.py turns them into the table
(median ratio and its spread). With --before BINARY an older build of tapegrad_bench is a third side
in the same rounds (a before/after comparison of a change, on every row, in one alternated run).

Also recorded: the processor (model, family, ISA flags, clock), which BLAS library torch actually
loaded (read from /proc/self/maps: Debian's python3-torch links libblas.so.3, which is whatever
update-alternatives or LD_LIBRARY_PATH selects; the fair anchor is OpenBLAS's OpenMP build), and a
STREAM-like copy bandwidth per thread count, for the memory-bound rows.

The allocator: glibc reads MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ at start-up, so the
caller sets them (scripts/bench.sh: tuned); our side is started without them, and without
LD_LIBRARY_PATH (it finds its OpenBLAS through its RPATH).

Run with /usr/bin/python3 (Debian's python3-torch and python3-torchvision).
"""
import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import mobilenet_v2, resnet18

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models"))
from make_reference import SmallUNet, segmentation_rows  # noqa: E402

NCHW, CL = "nchw", "channels_last"


def allocator_variant():
    return "tuned" if os.environ.get("MALLOC_MMAP_THRESHOLD_") else "shipped"


def machine():
    """Processor model, ISA and clock from /proc/cpuinfo."""
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key in ("model name", "cpu family", "model", "cpu MHz", "flags") and key not in info:
                info[key] = value
            if key == "" and info:
                break
    flags = set(info.get("flags", "").split())
    family, model = int(info.get("cpu family", 0)), int(info.get("model", 0))
    # AMD: family 25 is Zen 3 (no AVX-512) or Zen 4, family 26 is Zen 5.
    zen = {25: "Zen 4" if "avx512f" in flags else "Zen 3", 26: "Zen 5"}.get(family, "") \
        if "AMD" in info.get("model name", "") else ""
    isa = "AVX-512 BF16" if "avx512_bf16" in flags else "AVX-512" if "avx512f" in flags else \
        "AVX2" if "avx2" in flags else "pre-AVX2"
    return {"model_name": info.get("model name", "?"), "family": family, "model": model, "zen": zen, "isa": isa,
            "mhz": float(info.get("cpu MHz", 0) or 0), "fma": "fma" in flags, "cores": os.cpu_count(),
            "dnnl_max_cpu_isa": os.environ.get("DNNL_MAX_CPU_ISA", ""),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
            "ours_openblas_coretype": os.environ.get(OURS_ENV_PREFIX + "OPENBLAS_CORETYPE", "")}


# scripts/bench.sh gives PyTorch OpenBLAS's best kernel for the processor (OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE unset together) and hands the environment's own values to our side under these
# names, so that only the PyTorch side leaves the pinned kernel.
OURS_ENV_PREFIX = "TAPEGRAD_OURS_"
OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def openblas_corename(libraries):
    """The kernel OpenBLAS loaded in this process (openblas_get_corename), or "" without OpenBLAS."""
    for path in libraries:
        try:
            lib = ctypes.CDLL(path)
            get = lib.openblas_get_corename
        except (OSError, AttributeError):
            continue
        get.restype = ctypes.c_char_p
        return get().decode()
    return ""


def check_sgemm_against_float64():
    """PyTorch's float32 matmul under the loaded kernel against float64, before anything is timed:
    a kernel that computes wrong is no anchor."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(512, 512, generator=g), torch.randn(512, 512, generator=g)
    exact = a.double() @ b.double()
    err = ((a @ b).double() - exact).abs().max().item() / exact.abs().max().item()
    if not err < 1e-5:
        raise SystemExit("PyTorch's sgemm differs from float64 by {:.1e} (relative to the largest entry) under "
                         "this OpenBLAS kernel: not a valid anchor".format(err))
    return err


def loaded_blas():
    """The BLAS shared objects this process has mapped (after a matmul has run)."""
    a = torch.ones(64, 64)
    torch.mm(a, a)
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if re.search(r"blas|lapack|mkl", os.path.basename(path)):
                libs.add(os.path.realpath(path))
    libs = sorted(libs)
    text = " ".join(libs)
    core = openblas_corename(libs)
    kind = "OpenBLAS, OpenMP build" if "openblas-openmp" in text else \
        "OpenBLAS, pthread build" if "openblas-pthread" in text else \
        "OpenBLAS, serial build" if "openblas-serial" in text else \
        "reference BLAS (libblas3)" if "/blas/" in text else "unknown"
    return {"kind": kind, "libraries": libs, "corename": core}


def time_runs(fn, min_time, warmup=1):
    """Wall-clock and process-CPU ms per run, averaged over the runs that fit in min_time seconds
    (at least 3): the estimator Google Benchmark uses on our side. (A median of single runs would
    drop the runs a busy neighbour preempted on one side only, when a run is shorter than a
    scheduler time slice.)"""
    for _ in range(warmup):
        fn()
    runs = 0
    start, start_cpu = time.perf_counter(), time.process_time()
    while runs < 3 or time.perf_counter() - start < min_time:
        fn()
        runs += 1
    return (time.perf_counter() - start) * 1e3 / runs, (time.process_time() - start_cpu) * 1e3 / runs


class Case:
    """An op on fixed inputs, in one layout. fwd runs under no_grad; fwd+bwd drops the input
    gradients (set_to_none, as tapegrad's zero_grad) and backpropagates a fixed grad_output."""

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


def leaf(shape, layout=NCHW):
    t = torch.randn(*shape)
    if layout == CL and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t.requires_grad_()


def selected_op():
    """The op TAPEGRAD_OP names, or "" for every op: as in the registry's tests and our benchmarks,
    only that op's rows run (and no training step, no SmallCNN layer)."""
    return os.environ.get("TAPEGRAD_OP", "")


def op_cases(layout, binary):
    """The op rows in one layout: the op registry's bench shapes (tests/registry/cases_<family>.cpp)
    as `binary --list-ops` lists them, each with PyTorch's expression of its inputs x[0], x[1], ...
    In channels_last only those with a 4-D operand; a row that compares layouts only in its own."""
    listing = subprocess.run([binary, "--list-ops"], capture_output=True, text=True, check=True).stdout
    cases = []
    for row in map(json.loads, listing.splitlines()):
        if selected_op() and row["op"] != selected_op():
            continue
        if layout == CL and not any(len(shape) == 4 for shape in row["shapes"]):
            continue
        if row["torch_in_our_layout"] and row["channels_last"] != (layout == CL):
            continue
        fn = eval("lambda *x: " + row["torch"], {"torch": torch, "F": F})  # noqa: S307 (our own listing)
        cases.append(Case(row["name"], fn, [leaf(shape, layout) for shape in row["shapes"]]))
    return cases


def small_cnn_layers(layout):
    """The SmallCNN step's layers one by one, at their shapes in the step (bench_smallcnn.cpp)."""
    cases = []
    for name, xs, ws in [("conv1 x[64,3,32,32] w[32,3,3,3]+b p1", (64, 3, 32, 32), (32, 3, 3, 3)),
                         ("conv2 x[64,32,16,16] w[64,32,3,3]+b p1", (64, 32, 16, 16), (64, 32, 3, 3))]:
        cases.append(Case("smallcnn layer " + name, lambda x, w, b: F.conv2d(x, w, b, 1, 1),
                          [leaf(xs, layout), leaf(ws, layout), leaf((ws[0],))]))
    for i, xs in [(1, (64, 32, 32, 32)), (2, (64, 64, 16, 16))]:
        dims = ",".join(map(str, xs))
        c = xs[1]
        running_mean, running_var = torch.zeros(c), torch.ones(c)
        cases.append(Case("smallcnn layer bn{} x[{}]".format(i, dims),
                          lambda x, g, b, m=running_mean, v=running_var: F.batch_norm(x, m, v, g, b, training=True),
                          [leaf(xs, layout), torch.ones(c).requires_grad_(), torch.zeros(c).requires_grad_()]))
        cases.append(Case("smallcnn layer relu{} x[{}]".format(i, dims), F.relu, [leaf(xs, layout)]))
        cases.append(Case("smallcnn layer pool{} x[{}]".format(i, dims), lambda x: F.max_pool2d(x, 2, 2),
                          [leaf(xs, layout)]))
    if layout == NCHW:
        for i, (n_in, n_out) in [(1, (4096, 128)), (2, (128, 10))]:
            cases.append(Case("smallcnn layer fc{} x[64,{}] w[{},{}]+b".format(i, n_in, n_out, n_in), F.linear,
                              [leaf((64, n_in)), leaf((n_out, n_in)), leaf((n_out,))]))
    return cases


def small_cnn(in_channels=3, image=32):
    """The SmallCNN: conv3-32 bn relu pool, conv32-64 bn relu pool, fc 4096-128 relu dropout, fc 128-10."""
    flat = 64 * (image // 4) ** 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10))


def train_step(model, x, labels, layout, logits_of=lambda t: t, bf16=False):
    """One training step (zero_grad, forward, cross_entropy, backward, AdamW lr 1e-3 with PyTorch's
    default weight decay 1e-2), the model and its input in `layout`; with bf16, the forward and the
    loss under torch.autocast("cpu", dtype=torch.bfloat16)."""
    if layout == CL:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(logits_of(model(x)), labels)
        loss.backward()
        opt.step()

    return step


def small_cnn_step(layout, bf16=False):
    torch.manual_seed(0)
    return train_step(small_cnn(), torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,)), layout, bf16=bf16)


def model_steps(layout, wanted):
    """The model ports' training steps (bench/bench_models.cpp), {case name: step} for the names
    that contain `wanted`: torchvision's ResNet-18 and MobileNetV2 (10 classes) on batch 32 of
    3x32x32, and the U-Net of tests/models/make_reference.py at width 16 on batch 8 of 3x64x64 with
    per-pixel cross-entropy over 3 classes; ResNet-18's "bf16" step under autocast."""
    builders = {
        "model resnet18 step b32 3x32x32": lambda: (resnet18(num_classes=10), (32, 3, 32, 32), 10, None),
        "model resnet18 step b32 3x32x32 bf16": lambda: (resnet18(num_classes=10), (32, 3, 32, 32), 10, None),
        "model mobilenet_v2 step b32 3x32x32": lambda: (mobilenet_v2(num_classes=10), (32, 3, 32, 32), 10, None),
        "model unet w16 step b8 3x64x64": lambda: (SmallUNet(3, 3, 16), (8, 3, 64, 64), 3, segmentation_rows),
    }
    steps = {}
    for name, build in builders.items():
        if wanted not in name:
            continue
        torch.manual_seed(0)
        model, shape, classes, rows = build()
        x = torch.randn(*shape)
        n = shape[0] if rows is None else shape[0] * shape[2] * shape[3]
        steps[name] = train_step(model, x, torch.randint(0, classes, (n,)), layout, rows or (lambda t: t),
                                 bf16=name.endswith(" bf16"))
    return steps


def copy_gbs(threads, min_time):
    """STREAM-like copy of 4 MiB, the size of the memory-bound cases' activations (so from the same
    level of the cache hierarchy): bytes read plus bytes written per second."""
    torch.set_num_threads(threads)
    a, b = torch.ones(1 << 20), torch.empty(1 << 20)
    ms, _ = time_runs(lambda: b.copy_(a), min_time)
    return 2 * a.numel() * 4 / (ms * 1e-3) / 1e9


class Ours:
    """tapegrad_bench --serve: one command a line, JSON lines back."""

    def __init__(self, binary, min_time):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MALLOC_") and k != "LD_LIBRARY_PATH" and not k.startswith(OURS_ENV_PREFIX)}
        for name in OPENBLAS_PINS:
            if OURS_ENV_PREFIX + name in os.environ:
                env[name] = os.environ[OURS_ENV_PREFIX + name]
        self.proc = subprocess.Popen([binary, "--serve", "--benchmark_min_time={}".format(min_time)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def run(self, name):
        """{benchmark name: its JSON line} of the benchmarks named `name` (+ suffixes)."""
        # Google Benchmark's POSIX extended std::regex rejects escapes of characters that are not
        # special in it (Python's re.escape escapes spaces; "]" is not special either).
        pattern = re.sub(r"([.^$|?*+()\[{}\\])", r"\\\1", name)
        self.proc.stdin.write("run ^{}(/|$)\n".format(pattern))
        self.proc.stdin.flush()
        out = {}
        while True:
            r = json.loads(self.proc.stdout.readline())
            if r.get("end"):
                return out
            if "error" in r:
                raise RuntimeError("tapegrad_bench: {}: {}".format(r.get("name"), r["error"]))
            out[re.sub(r"(/process_time|/real_time)+$", "", r["name"])] = r

    def names(self):
        """Every benchmark name (case/mode) our binary has, from one listing."""
        out = subprocess.run([self.proc.args[0], "--benchmark_list_tests=true"], capture_output=True, text=True,
                             check=True).stdout
        return [re.sub(r"(/process_time|/real_time)+$", "", l) for l in out.splitlines() if l]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--min-time", type=float, default=0.1, help="seconds per timing, each side (default 0.1)")
    parser.add_argument("--filter", default="", help="only cases whose name contains this")
    parser.add_argument("--ours", help="tapegrad_bench binary: time our side too, alternately")
    parser.add_argument("--before", help="an older tapegrad_bench binary: timed as a third side, alternately")
    parser.add_argument("--cases", help="tapegrad_bench binary whose --list-ops gives the op rows (default: --ours)")
    parser.add_argument("--out", default="-", help="JSON output file (default stdout)")
    args = parser.parse_args()

    torch.manual_seed(0)
    info = {"machine": machine(), "torch": torch.__version__, "allocator": allocator_variant(), "blas": loaded_blas(),
            "sgemm_rel_err": check_sgemm_against_float64()}
    print("== PyTorch {} on {}, OpenBLAS kernel {} (sgemm agrees with float64 to {:.1e}); allocator {}".format(
        torch.__version__, info["blas"]["kind"], info["blas"]["corename"] or "?", info["sgemm_rel_err"],
        info["allocator"]), file=sys.stderr)
    if not info["blas"]["kind"].startswith("OpenBLAS, OpenMP"):
        print("== WARNING: PyTorch is not on OpenBLAS's OpenMP build ({}): not a fair anchor for matmul. Install "
              "libopenblas0-openmp and run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp "
              "(scripts/bench.sh does)".format(info["blas"]["libraries"]), file=sys.stderr)

    # case name -> {mode -> {layout -> callable}}
    torch_fns = {}
    cases_binary = args.cases or args.ours
    if not cases_binary:
        print("== no --ours or --cases binary: the op rows are left out", file=sys.stderr)
    for layout in (NCHW, CL):
        cases = op_cases(layout, cases_binary) if cases_binary else []
        cases += [] if selected_op() else small_cnn_layers(layout)
        for c in cases:
            if args.filter in c.name:
                torch_fns.setdefault(c.name, {}).setdefault("fwd", {})[layout] = c.fwd
                torch_fns[c.name].setdefault("fwd+bwd", {})[layout] = c.fwd_bwd
        if selected_op():
            continue
        # The float32 step, and the bf16 step (bench_smallcnn.cpp's "bf16" row) under autocast.
        for name, bf16 in (("smallcnn step b64", False), ("smallcnn step b64 bf16", True)):
            if args.filter in name:
                torch_fns.setdefault(name, {}).setdefault("train step", {})[layout] = small_cnn_step(layout, bf16)
        for name, step in model_steps(layout, args.filter).items():
            torch_fns.setdefault(name, {}).setdefault("train step", {})[layout] = step

    ours = Ours(args.ours, args.min_time) if args.ours else None
    before = Ours(args.before, args.min_time) if args.before else None
    if before:
        info["before"] = before.ask("info")
    keys = [(c, m) for c in torch_fns for m in torch_fns[c]]
    if ours:
        info["ours"] = ours.ask("info")
        # Our rows without a PyTorch twin (the raw BLAS calls) are timed in the same rounds, each
        # right after the matmul on the same shape.
        for name in ours.names():
            case, _, mode = name.rpartition("/")
            if args.filter not in case or (case, mode) in keys:
                continue
            twin = ("matmul " + case.partition(" ")[2], mode)
            if selected_op() and twin not in keys:
                continue
            keys.insert(keys.index(twin) + 1 if twin in keys else len(keys), (case, mode))

    results = {}
    threads_list = [int(t) for t in args.threads.split(",")]
    if ours:
        # One untimed pass: a case's first run pays one-time costs (oneDNN's JIT, primitive and
        # buffer caches), and Google Benchmark may report that very run when it is long enough.
        # PyTorch's side warms up inside time_runs.
        for side in (ours, before):
            for threads in threads_list if side else []:
                side.ask("threads {}".format(threads))
                for case, mode in keys:
                    side.run(case + "/" + mode)
    info["copy_gbs"] = {t: copy_gbs(t, 0.3) for t in threads_list}
    for r in range(args.rounds):
        for threads in threads_list:
            torch.set_num_threads(threads)
            for side in (ours, before):
                if side:
                    side.ask("threads {}".format(threads))
            for i, (case, mode) in enumerate(keys):
                entry = results.setdefault((case, mode, threads), {"case": case, "mode": mode, "threads": threads,
                                                                   "ours": [], "ours_cpu": [], "torch": {}})
                sides = [("torch", layout, fn) for layout, fn in torch_fns.get(case, {}).get(mode, {}).items()]
                if ours:
                    sides.insert(0, ("ours", None, None))
                if before:
                    sides.insert(1, ("before", None, None))
                if (r + i) % 2:  # turn the order round
                    sides.reverse()
                for side, layout, fn in sides:
                    if side == "before":
                        # A row the older build lacks is left out of the before/after column.
                        got = before.run(case + "/" + mode).get(case + "/" + mode)
                        entry.setdefault("before", []).append(got["ms"] if got else None)
                    elif side == "ours":
                        got = ours.run(case + "/" + mode).get(case + "/" + mode)
                        if got:
                            entry["ours"].append(got["ms"])
                            entry["ours_cpu"].append(got["cpu_ms"])
                            entry["layout"] = got["label"]
                            for counter in ("GFLOP", "GB"):
                                if counter in got:
                                    entry.setdefault(counter + "/s", []).append(got[counter])
                    else:
                        ms, cpu_ms = time_runs(fn, args.min_time)
                        entry["torch"].setdefault(layout, []).append(ms)
                        entry.setdefault("torch_cpu", {}).setdefault(layout, []).append(cpu_ms)
                print("round {} {}t {:<45} {:<10} ours {} torch {}".format(
                    r + 1, threads, case, mode, "%.3f" % entry["ours"][-1] if entry["ours"] else "-",
                    " ".join("%s %.3f" % (l, v[-1]) for l, v in entry["torch"].items())), file=sys.stderr)

    info["results"] = list(results.values())
    text = json.dumps(info, indent=1)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
