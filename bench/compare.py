#!/usr/bin/python3
"""Joins tapegrad's Google Benchmark JSON with bench/pytorch_reference.py's JSON into one markdown
table: case | mode | layout | threads | ours ms | PyTorch ms (tuned) | PyTorch ms (shipped) |
ours/PyTorch-tuned, wall-clock, and the same ratio over CPU time of the whole process (all threads),
which a busy neighbour on a shared machine disturbs less. Below it: matmul against dnnl_sgemm, and peak RSS when given.

--ours takes Google Benchmark files (thread count from the context key tapegrad_threads); the
--torch-* options take pytorch_reference.py's JSON. --ours-epoch and --torch-epoch each take the
stdout of a one-epoch Fashion-MNIST run (examples/train_fashion_mnist, and
bench/pytorch_train_fashion_mnist.py) and GNU time's "%M %U %S" file for it: the epoch time goes
into the table (its CPU time is the whole process's, data loading and test included), the peak
RSS below it.
"""
import argparse
import json
import re
import sys


def load_results(path):
    """{(case, mode, threads): (wall ms, CPU ms or None, layout)} from either format."""
    with open(path) as f:
        doc = json.load(f)
    out = {}
    if "benchmarks" in doc:
        threads = int(doc["context"].get("tapegrad_threads", 0))
        # With --benchmark_repetitions the median of the repetitions is taken (robust against a
        # neighbour's burst on a shared machine); otherwise the single run.
        has_median = any(b.get("aggregate_name") == "median" for b in doc["benchmarks"])
        for b in doc["benchmarks"]:
            wanted = b.get("aggregate_name") == "median" if has_median else b.get("run_type", "iteration") == "iteration"
            if not wanted or b.get("error_occurred"):
                continue
            name = re.sub(r"(/process_time|/real_time)+$", "", b.get("run_name", b["name"]))
            case, _, mode = name.rpartition("/")
            scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
            out[(case, mode, threads)] = (b["real_time"] * scale, b["cpu_time"] * scale, b.get("label", ""))
    else:
        for r in doc["results"]:
            out[(r["case"], r["mode"], int(r["threads"]))] = (r["ms"], r.get("cpu_ms"), r.get("layout", ""))
    return out


def load_epoch(log_path, time_path, label, rss):
    """The epoch row {(case, mode, 2): ...} from a training run's stdout; records its peak RSS."""
    text = open(log_path).read()
    # tapegrad prints "epoch 1: train loss ..., 12.3 s"; the PyTorch script ends with a JSON line.
    m = re.search(r"^epoch 1:.*?([0-9.]+) s\s*$", text, re.M)
    if m:
        seconds = float(m.group(1))
    else:
        seconds = json.loads(text.strip().splitlines()[-1])["epoch_seconds"][0]
    kib, user, system = open(time_path).read().split()[-3:]
    rss[label] = int(kib)
    return {("fashion-mnist epoch", "train epoch", 2): (seconds * 1e3, (float(user) + float(system)) * 1e3,
                                                         "whole run's CPU")}


def load_all(paths):
    merged = {}
    for p in paths or []:
        merged.update(load_results(p))
    return merged


def fmt(ms):
    if ms is None:
        return "-"
    return "{:.3f}".format(ms) if ms < 10 else "{:.1f}".format(ms) if ms < 1000 else "{:.0f}".format(ms)


def verdict(ratio):
    if ratio is None:
        return ""
    return "{:.2f}x faster".format(1 / ratio) if ratio < 1 else "{:.2f}x slower".format(ratio)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", nargs="+", required=True)
    parser.add_argument("--torch-tuned", nargs="*", default=[])
    parser.add_argument("--torch-shipped", nargs="*", default=[])
    parser.add_argument("--ours-epoch", nargs=2, metavar=("STDOUT", "TIME"))
    parser.add_argument("--torch-epoch", nargs=2, metavar=("STDOUT", "TIME"))
    args = parser.parse_args()

    ours = load_all(args.ours)
    tuned = load_all(args.torch_tuned)
    shipped = load_all(args.torch_shipped)
    rss = {}
    if args.ours_epoch:
        ours.update(load_epoch(*args.ours_epoch, "tapegrad", rss))
    if args.torch_epoch:
        tuned.update(load_epoch(*args.torch_epoch, "PyTorch (tuned allocator)", rss))

    # Grouped by thread count; cases in the order PyTorch ran them, each dnnl_sgemm row right after
    # its matmul, then whatever only we have.
    cases = list(dict.fromkeys([k[0] for k in tuned] + [k[0] for k in shipped] + [k[0] for k in ours]))
    for c in [c for c in cases if c.startswith("dnnl_sgemm ")]:
        twin = "matmul " + c[len("dnnl_sgemm "):]
        if twin in cases:
            cases.remove(c)
            cases.insert(cases.index(twin) + 1, c)
    modes = ["fwd", "fwd+bwd", "train step", "train epoch"]
    all_keys = set(ours) | set(tuned) | set(shipped)
    keys = sorted(all_keys, key=lambda k: (k[2], cases.index(k[0]), modes.index(k[1]) if k[1] in modes else 99))
    lines = ["| case | mode | layout (ours) | threads | ours ms | PyTorch ms (tuned) | PyTorch ms (shipped) "
             "| ours / PyTorch-tuned | same, CPU time |", "|---|---|---|---|---|---|---|---|---|"]
    for key in keys:
        case, mode, threads = key
        o, t, s = ours.get(key), tuned.get(key), shipped.get(key)
        ratio = o[0] / t[0] if o and t else None
        cpu_ratio = o[1] / t[1] if o and t and o[1] and t[1] else None
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            case, mode, o[2] if o else "", threads, fmt(o[0] if o else None), fmt(t[0] if t else None),
            fmt(s[0] if s else None), "{:.2f} ({})".format(ratio, verdict(ratio)) if ratio else "-",
            "{:.2f}".format(cpu_ratio) if cpu_ratio else "-"))
    print("\n".join(lines))

    notes = []
    for (case, mode, threads), (ms, cpu, _) in sorted(ours.items(), key=lambda kv: kv[0][2]):
        if case.startswith("matmul "):
            ref = ours.get(("dnnl_sgemm " + case[len("matmul "):], mode, threads))
            if ref:
                notes.append("- {} {} at {} thread(s): {:.0%} of dnnl_sgemm's speed ({} ms vs {} ms); "
                             "over CPU time {:.0%}".format(case, mode, threads, ref[0] / ms, fmt(ms), fmt(ref[0]),
                                                           ref[1] / cpu))
    if notes:
        print("\nmatmul against raw dnnl_sgemm on the same shapes (target: >= 90%):\n")
        print("\n".join(notes))

    missing = sorted({k[0] for k in tuned} - {k[0] for k in ours})
    if missing:
        print("\nNot measured on our side (op or module not built yet): " + ", ".join(missing))

    if rss:
        print("\nPeak RSS of one Fashion-MNIST epoch (whole process, 2 threads):\n")
        print("| run | peak RSS MiB |\n|---|---|")
        for label, kib in rss.items():
            print("| {} | {:.0f} |".format(label, kib / 1024))

if __name__ == "__main__":
    sys.exit(main())
