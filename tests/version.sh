#!/usr/bin/env bash
# Every program answers --version (exit 0, stdout): its name, bpkit's version and revision, the
# plugin ABI, the kernels' level; `bpkit version` also lists the plugins found.
# Usage: version.sh BIN_DIR
set -euo pipefail
bin=$1
fail() { echo "version: $*" >&2; exit 1; }
programs="bpkit ocr_app speech_app signature_app make_digits render_lines render_page
  make_speech_digits export_features make_signatures bench_engine bench_recurrent bench_gemm layer_profile
  assoc_memory ocr_score signature_baseline"
n=0
for p in $programs; do
  [ -x "$bin/$p" ] || { case $p in bench_*|layer_profile|assoc_memory|ocr_score|signature_baseline) continue ;; esac; fail "$bin/$p is missing"; }
  out=$("$bin/$p" --version) || fail "$p --version exited with $?"
  first=$(echo "$out" | head -n 1)
  case $first in "$p (bpkit "[0-9]*", revision "*")") ;; *) fail "$p --version: '$first'" ;; esac
  echo "$out" | grep -q "^plugin ABI [0-9]*; kernels [a-z0-9]* (this CPU: " || fail "$p --version: $out"
  n=$((n + 1))
done
# The level follows BPKIT_ISA; an impossible one is reported, not a crash.
BPKIT_ISA=baseline "$bin/ocr_app" --version | grep -q "kernels baseline " || fail "BPKIT_ISA=baseline"
out=$(BPKIT_ISA=avx9 "$bin/ocr_app" --version) || fail "BPKIT_ISA=avx9: exit $?"
echo "$out" | grep -q "kernels unavailable (BPKIT_ISA=avx9: expected baseline, avx2 or avx512" ||
  fail "BPKIT_ISA=avx9: $out"
# --version after "--" is an argument, not the option.
"$bin/ocr_app" -- --version >/dev/null 2>&1 && fail "ocr_app -- --version succeeded"
out=$("$bin/bpkit" version)
echo "$out" | grep -q "^[0-9]* plugins:" || fail "bpkit version: $out"
echo "$out" | grep -q "^  image.read " || fail "bpkit version lists no image.read: $out"
echo "version: $n programs answer --version"
