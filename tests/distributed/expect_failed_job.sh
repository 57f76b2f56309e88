#!/bin/sh
# Runs an MPI job that must end by itself, with a failure: within LIMIT seconds (timeout's 124 or
# 137 means it hung), with a non-zero exit code, with output that matches every --expect pattern
# and no --reject pattern (grep -E).
#   expect_failed_job.sh LIMIT [--expect REGEX]... [--reject REGEX]... -- COMMAND...
set -u
limit=$1
shift
expect=""
reject=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    case $1 in
    --expect) expect="$expect$2
" ;;
    --reject) reject="$reject$2
" ;;
    *) echo "expect_failed_job.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift 2
done
shift
start=$(date +%s)
out=$(timeout "$limit" "$@" 2>&1)
rc=$?
printf '%s\n' "$out"
echo "exit code $rc after $(($(date +%s) - start)) s"
status=0
if [ "$rc" -eq 0 ]; then echo "FAIL: the job succeeded"; status=1; fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "FAIL: the job did not end within $limit s"; status=1; fi
while IFS= read -r pattern; do
    [ -z "$pattern" ] && continue
    if ! printf '%s\n' "$out" | grep -Eq -- "$pattern"; then echo "FAIL: no line matches: $pattern"; status=1; fi
done <<END
$expect
END
while IFS= read -r pattern; do
    [ -z "$pattern" ] && continue
    if printf '%s\n' "$out" | grep -Eq -- "$pattern"; then echo "FAIL: a line matches: $pattern"; status=1; fi
done <<END
$reject
END
exit $status
