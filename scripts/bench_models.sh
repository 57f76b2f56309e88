#!/usr/bin/env bash
# The model ports' training step next to PyTorch's (examples/models; bench/models_step.cpp and
# bench/pytorch_models.py), at 1 and 2 threads, alternating ours and PyTorch's per thread count.
# PyTorch runs with glibc's allocator tuned (see README, "Speed").
#   bash scripts/bench_models.sh [--runs 10]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh python3-torch python3-torchvision
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build --target models_step -j2 > /dev/null
echo "model,threads,ours_ms,pytorch_ms,ours/pytorch"
for t in 1 2; do
  ours=$(build/bench/models_step --threads "$t" "$@")
  theirs=$(MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 /usr/bin/python3 bench/pytorch_models.py --threads "$t" "$@")
  paste -d, <(echo "$ours") <(echo "$theirs" | cut -d, -f3) | awk -F, '{printf "%s,%s,%s,%s,%.2f\n", $1, $2, $3, $4, $3 / $4}'
done
