#!/usr/bin/env bash
# Fuzzes the three readers of untrusted bytes (the IDX/gzip reader, the checkpoint reader and the
# safetensors reader) and the ops' size and geometry arithmetic (tests/fuzz/fuzz_geometry.cpp)
# with libFuzzer under AddressSanitizer and UndefinedBehaviorSanitizer, for a fixed time per target.
#   bash scripts/fuzz.sh          # 30 s per target
#   bash scripts/fuzz.sh 600      # 10 minutes per target
# Exits non-zero on any crash, sanitizer report, leak, timeout or out-of-memory; the input that
# caused it is left in build-fuzz/ (crash-*, leak-*, timeout-*, oom-*). Inputs that found new
# coverage go to build-fuzz/corpus-<target>/; the seeds in tests/fuzz/corpus/ are only read.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
build=build-fuzz

bash scripts/setup.sh clang libclang-rt-14-dev libomp-dev
cmake -S tests/fuzz -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for target in idx checkpoint safetensors geometry; do
  mkdir -p "$build/corpus-$target"
  log="$build/fuzz_$target.log"
  echo "fuzz: $target for ${seconds}s"
  rc=0
  "$build/fuzz_$target" "$build/corpus-$target" "tests/fuzz/corpus/$target" \
    -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz: $target FAILED (exit $rc) after ${runs:-?} executions; see $log" >&2
    status=1
  else
    echo "fuzz: $target ok: ${runs:-?} executions in ${seconds}s, corpus $(ls "$build/corpus-$target" | wc -l) new inputs"
  fi
done
exit "$status"
