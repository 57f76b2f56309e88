#!/usr/bin/python3
"""Turns bench/pytorch_reference.py's alternated timings (--results) into the markdown table of
docs/performance.md:

  case | mode | threads | ours ms | PyTorch NCHW ms | PyTorch channels_last ms | ours / PyTorch best
  | physical limit

Each figure is the median over the rounds. The ratio is taken round by round, against PyTorch's
faster layout (the one with the lower median), and reported as its median with the lowest and
highest round in brackets. "same, CPU time": the median ratio of whole-process CPU time, which a
busy neighbour disturbs less than wall-clock time (at 2 threads it also counts threads that wait
by spinning). "physical limit": GFLOP/s and the fraction of the processor's peak for
conv2d and matmul rows; GB/s of nominal traffic and the fraction of a measured STREAM-like copy for
the memory-bound rows. The peak is cores x FMA units (2) x vector width in floats (8 for AVX2, 16
for AVX-512) x 2 flops x the clock in /proc/cpuinfo (the nominal one; a boost clock can pass it).

With a "before" side (pytorch_reference.py --before, scripts/bench.sh BEFORE=<build dir>), a last
column gives ours / before: the median of the rounds' ratios of this build to the older one, timed
in the same rounds, with its range.

Above the table: the processor, its ISA, what oneDNN runs (DNNL_MAX_CPU_ISA), which BLAS PyTorch
loaded and which one our GEMM takes for each matmul shape. Below it: matmul against the faster raw
BLAS, and the Fashion-MNIST epoch and peak RSS when given (--ours-epoch, --torch-epoch: a run's
stdout and GNU time's "%M %U %S" file).
"""
import argparse
import json
import re
import statistics
import sys


def fmt(ms):
    if ms is None:
        return "-"
    return "{:.3f}".format(ms) if ms < 10 else "{:.1f}".format(ms) if ms < 1000 else "{:.0f}".format(ms)


def median(values):
    return statistics.median(values) if values else None


def peak_gflops(m, threads):
    lanes = 16 if m["isa"].startswith("AVX-512") else 8
    return threads * 2 * lanes * 2 * m["mhz"] / 1000


def header(doc):
    m = doc["machine"]
    ours = doc.get("ours", {})
    lines = ["Processor: {} (family {}, model {}{}), {} cores, {} MHz; ISA: {}.".format(
        m["model_name"], m["family"], m["model"], ", " + m["zen"] if m["zen"] else "", m["cores"], m["mhz"], m["isa"])]
    lines.append("oneDNN runs its {} kernels (DNNL_MAX_CPU_ISA={}). Our side: OPENBLAS_CORETYPE={}.".format(
        ours.get("onednn_isa", "?"), m["dnnl_max_cpu_isa"] or "unset",
        m.get("ours_openblas_coretype") or m["openblas_coretype"] or "unset"))
    lines.append("PyTorch {} on {} ({}), OpenBLAS kernel {} (OPENBLAS_CORETYPE={}; its sgemm agrees with float64 to "
                 "{}); allocator {}.".format(doc["torch"], doc["blas"]["kind"], ", ".join(doc["blas"]["libraries"]),
                                            doc["blas"].get("corename") or "?", m["openblas_coretype"] or "unset",
                                            "{:.1e}".format(doc["sgemm_rel_err"]) if "sgemm_rel_err" in doc else "?",
                                            doc["allocator"]))
    if ours.get("gemm"):
        lines.append("Our GEMM: " + "; ".join("{} -> {}".format(k, v) for k, v in ours["gemm"].items()) + ".")
    lines.append("Peak: {} FMA units x {} floats x 2 flops x {:.2f} GHz = {:.0f} GFLOP/s per core. "
                 "Copy bandwidth (STREAM-like copy of 4 MiB, read + write): {}.".format(
                     2, 16 if m["isa"].startswith("AVX-512") else 8, m["mhz"] / 1000, peak_gflops(m, 1),
                     ", ".join("{:.1f} GB/s at {} thread(s)".format(v, t) for t, v in doc["copy_gbs"].items())))
    return lines


def before_cell(r):
    """' ours / before |': this build against the older one, round by round (none if it lacks the row)."""
    per_round = [o / b for o, b in zip(r["ours"], r.get("before", [])) if o and b]
    if not per_round:
        return " - |"
    return " {:.2f} [{:.2f}-{:.2f}] |".format(statistics.median(per_round), min(per_round), max(per_round))


def load_epoch(log_path, time_path, rss, label):
    text = open(log_path).read()
    m = re.search(r"^epoch 1:.*?([0-9.]+) s\s*$", text, re.M)
    seconds = float(m.group(1)) if m else json.loads(text.strip().splitlines()[-1])["epoch_seconds"][0]
    rss[label] = int(open(time_path).read().split()[-3])
    return seconds * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, help="pytorch_reference.py --ours ... --out FILE")
    parser.add_argument("--ours-epoch", nargs=2, metavar=("STDOUT", "TIME"))
    parser.add_argument("--torch-epoch", nargs=2, metavar=("STDOUT", "TIME"))
    args = parser.parse_args()
    doc = json.load(open(args.results))
    m = doc["machine"]

    print("\n".join(header(doc)) + "\n")
    with_before = any("before" in r for r in doc["results"])
    print("| case | mode | threads | ours ms | PyTorch NCHW ms | PyTorch channels_last ms "
          "| ours / PyTorch best (rounds' range) | same, CPU time | physical limit (ours) |"
          + (" ours / before (rounds' range) |" if with_before else ""))
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if with_before else ""))
    rows = {(r["case"], r["mode"], r["threads"]): r for r in doc["results"]}
    for r in doc["results"]:
        ours = median(r["ours"])
        torch_ms = {layout: median(v) for layout, v in r["torch"].items()}
        ratio, cpu_ratio = "-", "-"
        if ours and torch_ms:
            best = min(torch_ms, key=torch_ms.get)
            per_round = [o / t for o, t in zip(r["ours"], r["torch"][best])]
            ratio = "**{:.2f}** [{:.2f}-{:.2f}] vs {}".format(statistics.median(per_round), min(per_round),
                                                               max(per_round), "NCHW" if best == "nchw" else "CL")
            theirs_cpu = r.get("torch_cpu", {}).get(best)
            if r.get("ours_cpu") and theirs_cpu:
                cpu_ratio = "{:.2f}".format(statistics.median([o / t for o, t in zip(r["ours_cpu"], theirs_cpu)]))
        limit = ""
        if r.get("GFLOP/s"):
            g = median(r["GFLOP/s"])
            limit = "{:.0f} GFLOP/s, {:.0%} of peak".format(g, g / peak_gflops(m, r["threads"]))
        elif r.get("GB/s"):
            g = median(r["GB/s"])
            copy = doc["copy_gbs"].get(str(r["threads"]), doc["copy_gbs"].get(r["threads"]))
            limit = "{:.1f} GB/s, {:.0%} of copy".format(g, g / copy) if copy else "{:.1f} GB/s".format(g)
        print("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["case"], r["mode"], r["threads"], fmt(ours), fmt(torch_ms.get("nchw")),
            fmt(torch_ms.get("channels_last")), ratio, cpu_ratio, limit) + (before_cell(r) if with_before else ""))

    notes = []
    for (case, mode, threads), r in rows.items():
        if not case.startswith("matmul ") or not r["ours"]:
            continue
        raw = {lib: rows.get((lib + " " + case[len("matmul "):], mode, threads)) for lib in ("dnnl_sgemm", "openblas_sgemm")}
        raw = {lib: median(v["ours"]) for lib, v in raw.items() if v and v["ours"]}
        if raw:
            lib = min(raw, key=raw.get)
            notes.append("- {} {} at {} thread(s): {:.0%} of the faster raw BLAS ({}, {} ms; ours {} ms{})".format(
                case, mode, threads, raw[lib] / median(r["ours"]), lib, fmt(raw[lib]), fmt(median(r["ours"])),
                "".join("; {} {} ms".format(k, fmt(v)) for k, v in raw.items() if k != lib)))
    if notes:
        print("\nmatmul against the faster raw BLAS on the same shapes (target: >= 95%):\n")
        print("\n".join(notes))

    # The bf16 step against PyTorch's float32 step too (its own row has PyTorch's autocast step).
    bf16 = []
    for (case, mode, threads), r in rows.items():
        fp32 = rows.get((case[:-len(" bf16")], mode, threads)) if case.endswith(" bf16") else None
        if not (fp32 and r["ours"] and fp32["ours"] and fp32["torch"] and r["torch"]):
            continue
        theirs32 = min(median(v) for v in fp32["torch"].values())
        theirs16 = min(median(v) for v in r["torch"].values())
        bf16.append("- {} at {} thread(s): ours bf16 {} ms, ours float32 {} ms; PyTorch autocast bf16 {} ms, float32 {} ms; "
                    "ours bf16 / PyTorch float32 {:.2f}, ours bf16 / ours float32 {:.2f}".format(
                        case, threads, fmt(median(r["ours"])), fmt(median(fp32["ours"])), fmt(theirs16), fmt(theirs32),
                        median(r["ours"]) / theirs32, median(r["ours"]) / median(fp32["ours"])))
    if bf16:
        print("\nbf16 steps against float32 (medians, each PyTorch side in its faster layout):\n")
        print("\n".join(bf16))

    layers = [r for r in doc["results"] if r["case"].startswith("smallcnn layer ") and r["mode"] == "fwd+bwd"]
    if layers:
        print("\nThe SmallCNN step layer by layer, fwd+bwd (medians, ms; each side in its best layout):\n")
        print("| threads | layer | ours | PyTorch best | ours / PyTorch |\n|---|---|---|---|---|")
        for threads in sorted({r["threads"] for r in layers}):
            total_ours = total_theirs = 0
            for r in [r for r in layers if r["threads"] == threads]:
                ours = median(r["ours"])
                theirs = min(median(v) for v in r["torch"].values()) if r["torch"] else None
                if ours and theirs:
                    total_ours, total_theirs = total_ours + ours, total_theirs + theirs
                print("| {} | {} | {} | {} | {} |".format(threads, r["case"][len("smallcnn layer "):], fmt(ours), fmt(theirs),
                                                         "{:.2f}".format(ours / theirs) if ours and theirs else "-"))
            if total_theirs:
                print("| {} | **sum** | {} | {} | {:.2f} |".format(threads, fmt(total_ours), fmt(total_theirs),
                                                                  total_ours / total_theirs))

    rss = {}
    if args.ours_epoch or args.torch_epoch:
        ours = load_epoch(*args.ours_epoch, rss, "tapegrad") if args.ours_epoch else None
        theirs = load_epoch(*args.torch_epoch, rss, "PyTorch") if args.torch_epoch else None
        print("\nOne Fashion-MNIST epoch at 2 threads (one run each, not alternated): ours {} ms, PyTorch {} ms{}.".format(
            fmt(ours), fmt(theirs), ", ratio {:.2f}".format(ours / theirs) if ours and theirs else ""))
        print("\n| run | peak RSS MiB |\n|---|---|")
        for label, kib in rss.items():
            print("| {} | {:.0f} |".format(label, kib / 1024))


if __name__ == "__main__":
    sys.exit(main())
