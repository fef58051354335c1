#!/bin/sh
# fuzz/run.sh FUZZER SEEDS WORKDIR SECONDS: runs one libFuzzer target for SECONDS, starting from the
# seed corpus SEEDS (read only; new inputs go to WORKDIR/corpus). Exits non-zero on any crash,
# sanitizer report, leak, input slower than 10 s or allocation over 2 GB, leaving the input in
# WORKDIR/artifacts (replay it: FUZZER FILE).
set -eu
fuzzer=$1 seeds=$2 work=$3 seconds=$4
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
# Leaks inside system libraries (fuzz/lsan.supp says which and why).
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz: $(basename "$fuzzer") failed (exit $status); inputs in $work/artifacts:" >&2
  ls -l "$work/artifacts" >&2
fi
exit "$status"
