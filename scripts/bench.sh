#!/usr/bin/env bash
# One command for the side-by-side comparison with PyTorch:
#   1. builds tapegrad_bench (and examples/train_fashion_mnist when it exists), Release;
#   2. runs our Google Benchmarks at 1 and 2 threads (JSON);
#   3. runs bench/pytorch_reference.py at 1 and 2 threads, with glibc's allocator as shipped and
#      tuned (MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_, see docs/measured.md);
#   4. times one Fashion-MNIST epoch at 2 threads, ours (examples/train_fashion_mnist) and PyTorch's
#      (bench/pytorch_train_fashion_mnist.py, tuned allocator), with the peak RSS and CPU time of
#      both whole runs (/usr/bin/time);
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
rm -f "$RESULTS"/*.json "$RESULTS"/*.time "$RESULTS"/*.log

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
say "building (Release) in $BUILD_DIR"
# Debian's python3-torch for the PyTorch side; a no-op when everything is installed.
bash scripts/setup.sh python3-torch
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

epoch_args=()
if [[ $quick == 0 && -z "$filter" ]]; then
    # GNU time writes "peak-RSS-KiB user-s system-s" as the last line of its -o file.
    example="$BUILD_DIR/examples/train_fashion_mnist"
    if [[ -x "$example" ]]; then
        say "tapegrad, one Fashion-MNIST epoch, 2 threads"
        # Its progress bar goes to stderr; stdout has "epoch 1: train loss ..., 12.3 s".
        /usr/bin/time -f '%M %U %S' -o "$RESULTS/ours_epoch.time" \
            "$example" --epochs 1 --threads 2 --out "$RESULTS/fashion-mnist" 2>/dev/null | tee "$RESULTS/ours_epoch.log"
        epoch_args+=(--ours-epoch "$RESULTS/ours_epoch.log" "$RESULTS/ours_epoch.time")
    else
        say "no examples/train_fashion_mnist built: skipping our epoch"
    fi
    say "PyTorch, one Fashion-MNIST epoch, 2 threads, allocator tuned"
    env "${TUNED_ENV[@]}" /usr/bin/time -f '%M %U %S' -o "$RESULTS/torch_epoch.time" \
        "$PYTHON" bench/pytorch_train_fashion_mnist.py --epochs 1 --threads 2 | tee "$RESULTS/torch_epoch.log"
    epoch_args+=(--torch-epoch "$RESULTS/torch_epoch.log" "$RESULTS/torch_epoch.time")
fi

"$PYTHON" bench/compare.py --ours "$RESULTS"/ours_t*.json --torch-tuned "$RESULTS/torch_tuned.json" \
    --torch-shipped "$RESULTS/torch_shipped.json" "${epoch_args[@]}" | tee "$RESULTS/table.md"
# Wall-clock times on a shared 2-core machine mean little when others are busy: say how busy.
echo -e "\nLoad average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)" |
    tee -a "$RESULTS/table.md"
