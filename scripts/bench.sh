#!/usr/bin/env bash
# One command for the side-by-side comparison with PyTorch:
#   1. builds tapegrad_bench (and examples/train_fashion_mnist when it exists), Release;
#   2. runs bench/pytorch_reference.py, which starts `tapegrad_bench --serve` and times every case
#      (the ops, the SmallCNN's training step and the model ports': ResNet-18, MobileNetV2, U-Net)
#      on both sides alternately, case by case, for ROUNDS rounds, at 1 and 2 threads; PyTorch in
#      NCHW and channels_last, with the tuned allocator (MALLOC_MMAP_THRESHOLD_ /
#      MALLOC_TRIM_THRESHOLD_, see docs) and on OpenBLAS's OpenMP build (LD_LIBRARY_PATH below; the
#      script checks at run time which BLAS torch loaded and says so at the top of the table);
#   3. times one Fashion-MNIST epoch at 2 threads, ours (examples/train_fashion_mnist) and PyTorch's
#      (bench/pytorch_train_fashion_mnist.py, tuned allocator), with the peak RSS of both runs;
#   4. prints one markdown table (bench/compare.py), also written to $RESULTS/table.md: the
#      processor and its ISA first, then per case the median ratio ours / PyTorch's faster layout
#      with the rounds' range, and GFLOP/s (conv, matmul) or GB/s (memory-bound) against the limit.
# About 10 minutes on 2 cores, and about 2 more for the model ports' steps (5 rounds of ~25 s).
#
# Usage: scripts/bench.sh [--quick] [--filter TEXT]
#   --quick        skip the Fashion-MNIST epochs (and so the RSS comparison)
#   --filter TEXT  only cases whose name contains TEXT ("model" for the three model ports'
#                  training steps, "step" for those and the SmallCNN's)
# Environment: BUILD_DIR (default build-bench), RESULTS (default $BUILD_DIR/bench-results), ROUNDS
#   (default 5), MIN_TIME (seconds per timing and side, default 0.1), THREADS (default 1,2).
#   TAPEGRAD_OP=<op> (conv2d, relu, ...) times only that op's rows of the op registry, on both
#   sides, as it keeps only that op's rows in the registry's tests: no step, no epoch.
#   DNNL_MAX_CPU_ISA=AVX2 makes oneDNN (and our GEMM table) take the AVX2 paths on an AVX-512
#   processor; a build with -DTAPEGRAD_NATIVE=OFF does the same for our own loops.
#   BEFORE=<build dir> of an older checkout (its bench/tapegrad_bench built): times that build as a
#   third side in the same rounds, and the table gains a column ours / before.
#   ANCHOR=pinned keeps the PyTorch side on the environment's OpenBLAS kernel too (a second column).
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE: our side keeps them exactly as the environment has them.
# The PyTorch side runs with both unset, so that OpenBLAS picks its best kernel for the processor
# (an environment pinning Haswell halves PyTorch's sgemm on AVX-512); bench/pytorch_reference.py
# checks that sgemm under that kernel agrees with float64 before timing anything, and prints the
# kernel OpenBLAS loaded (openblas_get_corename).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-bench}
RESULTS=${RESULTS:-$BUILD_DIR/bench-results}
ROUNDS=${ROUNDS:-5}
MIN_TIME=${MIN_TIME:-0.1}
THREADS=${THREADS:-1,2}
PYTHON=/usr/bin/python3  # Debian's python3-torch; the python3 on PATH may lack torch
TUNED_ENV=(MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000)
# Debian's torch links libblas.so.3, which update-alternatives may point at the reference BLAS or at
# OpenBLAS's pthread build (whose threads fight PyTorch's OpenMP threads); this directory holds the
# OpenMP build's libblas.so.3 (package libopenblas0-openmp).
TORCH_BLAS_ENV=(LD_LIBRARY_PATH=/usr/lib/$(gcc -print-multiarch)/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH})

quick=0
filter=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --filter) filter="$2"; shift ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "== $*" >&2; }
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.json "$RESULTS"/*.time "$RESULTS"/*.log

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
say "building (Release) in $BUILD_DIR"
# Debian's python3-torch (and torchvision's models) and OpenBLAS's OpenMP build for the PyTorch
# side; a no-op when installed.
bash scripts/setup.sh python3-torch python3-torchvision libopenblas0-openmp
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON >/dev/null
targets=(tapegrad_bench)
if cmake --build "$BUILD_DIR" --target help | grep -q '^train_fashion_mnist:'; then
    targets+=(train_fashion_mnist)
fi
cmake --build "$BUILD_DIR" --target "${targets[@]}"

# Our side gets the environment's pins back from TAPEGRAD_OURS_* (bench/pytorch_reference.py).
UNSET_PINS=() OURS_PINS=()
if [[ ${ANCHOR:-best} != pinned ]]; then
    for pin in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
        UNSET_PINS+=(-u "$pin")
        if [[ -n ${!pin+x} ]]; then OURS_PINS+=("TAPEGRAD_OURS_$pin=${!pin}"); fi
    done
fi
before_args=()
if [[ -n ${BEFORE:-} ]]; then
    before_args=(--before "$BEFORE/bench/tapegrad_bench")
fi
say "tapegrad${BEFORE:+, the build in $BEFORE} and PyTorch, alternately, $ROUNDS rounds, threads $THREADS"
env "${UNSET_PINS[@]}" "${OURS_PINS[@]}" "${TUNED_ENV[@]}" "${TORCH_BLAS_ENV[@]}" "$PYTHON" bench/pytorch_reference.py --ours "$BUILD_DIR/bench/tapegrad_bench" "${before_args[@]}" \
    --threads "$THREADS" --rounds "$ROUNDS" --min-time "$MIN_TIME" --filter "$filter" --out "$RESULTS/alternated.json"

epoch_args=()
if [[ $quick == 0 && -z "$filter" && -z "${TAPEGRAD_OP:-}" ]]; then
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
    env "${TUNED_ENV[@]}" "${TORCH_BLAS_ENV[@]}" /usr/bin/time -f '%M %U %S' -o "$RESULTS/torch_epoch.time" \
        "$PYTHON" bench/pytorch_train_fashion_mnist.py --epochs 1 --threads 2 | tee "$RESULTS/torch_epoch.log"
    epoch_args+=(--torch-epoch "$RESULTS/torch_epoch.log" "$RESULTS/torch_epoch.time")
fi

"$PYTHON" bench/compare.py --results "$RESULTS/alternated.json" "${epoch_args[@]}" | tee "$RESULTS/table.md"
# Wall-clock times on a shared 2-core machine mean little when others are busy: say how busy.
echo -e "\nLoad average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)" |
    tee -a "$RESULTS/table.md"
