#!/usr/bin/env bash
# One command for the side-by-side comparison with PyTorch:
#   1. builds tapegrad_bench (and examples/train_fashion_mnist when it exists), Release;
#   2. runs our Google Benchmarks at 1 and 2 threads (JSON);
#   3. runs bench/pytorch_reference.py at 1 and 2 threads, with glibc's allocator as shipped and
#      tuned (MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_, see MEASURED.md);
#   4. times one Fashion-MNIST epoch at 2 threads, ours and PyTorch's (tuned), and takes the peak
#      RSS of both runs (/usr/bin/time);
#   5. prints one markdown table (bench/compare.py), also written to $RESULTS/table.md.
# About 5-10 minutes on 2 cores.
#
# Usage: scripts/bench.sh [--quick] [--filter REGEX]
#   --quick         skip the Fashion-MNIST epochs (and so the RSS comparison)
#   --filter REGEX  only benchmarks whose name matches (Google Benchmark regex; the PyTorch side
#                   takes it as a plain substring)
# Environment: BUILD_DIR (default build-bench), RESULTS (default $BUILD_DIR/bench-results),
#   MIN_TIME and REPETITIONS (Google Benchmark: each case runs REPETITIONS times for at least
#   MIN_TIME seconds, and the median is reported; defaults 0.05 and 9), RUNS (PyTorch: timed runs
#   per case, median reported; default 20).
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are left exactly as the environment has them.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-bench}
RESULTS=${RESULTS:-$BUILD_DIR/bench-results}
MIN_TIME=${MIN_TIME:-0.05}
REPETITIONS=${REPETITIONS:-9}
RUNS=${RUNS:-20}
PYTHON=/usr/bin/python3  # Debian's python3-torch; the python3 on PATH may lack torch
TUNED_ENV=(MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000)

quick=0
filter=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --filter) filter="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "== $*" >&2; }
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.json

say "building (Release) in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON >/dev/null
targets=(tapegrad_bench)
if cmake --build "$BUILD_DIR" --target help | grep -q '^train_fashion_mnist:'; then
    targets+=(train_fashion_mnist)
fi
cmake --build "$BUILD_DIR" --target "${targets[@]}"

bench_args=(--benchmark_min_time="$MIN_TIME" --benchmark_repetitions="$REPETITIONS"
            --benchmark_report_aggregates_only=true)
[[ -n "$filter" ]] && bench_args+=(--benchmark_filter="$filter")
for t in 1 2; do
    say "tapegrad, $t thread(s)"
    "$BUILD_DIR/bench/tapegrad_bench" --threads="$t" "${bench_args[@]}" \
        --benchmark_out="$RESULTS/ours_t$t.json" --benchmark_out_format=json
done

py_args=(--threads 1,2 --runs "$RUNS" --filter "$filter")
say "PyTorch, allocator tuned"
env "${TUNED_ENV[@]}" "$PYTHON" bench/pytorch_reference.py "${py_args[@]}" --out "$RESULTS/torch_tuned.json"
say "PyTorch, allocator as shipped"
"$PYTHON" bench/pytorch_reference.py "${py_args[@]}" --out "$RESULTS/torch_shipped.json"

rss_args=()
if [[ $quick == 0 && -z "$filter" ]]; then
    # Peak RSS in KiB from GNU time's %M, written on the last line of its -o file.
    example="$BUILD_DIR/examples/train_fashion_mnist"
    if [[ -x "$example" ]]; then
        say "tapegrad, one Fashion-MNIST epoch, 2 threads"
        # Its progress bar goes to stderr; stdout has "epoch 1: train loss ..., 12.3 s".
        /usr/bin/time -f '%M' -o "$RESULTS/ours_epoch.rss" \
            "$example" --epochs 1 --threads 2 --out "$RESULTS/fashion-mnist" 2>/dev/null | tee "$RESULTS/ours_epoch.log"
        "$PYTHON" - "$RESULTS/ours_epoch.log" >"$RESULTS/ours_epoch.json" <<'EOF'
import json, re, sys
m = re.search(r"^epoch 1:.*?([0-9.]+) s\s*$", open(sys.argv[1]).read(), re.M)
results = [{"case": "fashion-mnist epoch", "mode": "train epoch", "threads": 2, "ms": float(m.group(1)) * 1e3}] if m else []
json.dump({"results": results}, sys.stdout)
EOF
    else
        say "no examples/train_fashion_mnist built: skipping our epoch"
    fi
    say "PyTorch, one Fashion-MNIST epoch, 2 threads, allocator tuned"
    env "${TUNED_ENV[@]}" /usr/bin/time -f '%M' -o "$RESULTS/torch_epoch.rss" \
        "$PYTHON" bench/pytorch_train_fashion_mnist.py --epochs 1 --threads 2 >"$RESULTS/torch_epoch.out"
    "$PYTHON" - "$RESULTS/torch_epoch.out" >"$RESULTS/torch_epoch.json" <<'EOF'
import json, sys
report = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
json.dump({"results": [{"case": "fashion-mnist epoch", "mode": "train epoch", "threads": report["threads"],
                        "ms": report["epoch_seconds"][0] * 1e3}]}, sys.stdout)
EOF
    "$PYTHON" - "$RESULTS" >"$RESULTS/rss.json" <<'EOF'
import json, os, sys
def kib(name):
    path = os.path.join(sys.argv[1], name)
    return int(open(path).read().split()[-1]) if os.path.exists(path) else None
json.dump({"tapegrad, Fashion-MNIST epoch, 2 threads": kib("ours_epoch.rss"),
           "PyTorch (tuned allocator), Fashion-MNIST epoch, 2 threads": kib("torch_epoch.rss")}, sys.stdout)
EOF
    rss_args=(--rss "$RESULTS/rss.json")
fi

ours=("$RESULTS"/ours_t*.json)
[[ -s "$RESULTS/ours_epoch.json" ]] && ours+=("$RESULTS/ours_epoch.json")
tuned=("$RESULTS/torch_tuned.json")
[[ -s "$RESULTS/torch_epoch.json" ]] && tuned+=("$RESULTS/torch_epoch.json")
"$PYTHON" bench/compare.py --ours "${ours[@]}" --torch-tuned "${tuned[@]}" \
    --torch-shipped "$RESULTS/torch_shipped.json" "${rss_args[@]}" | tee "$RESULTS/table.md"
