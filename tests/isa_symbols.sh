#!/usr/bin/env bash
# The kernels compiled for AVX2 and AVX-512 (engine/src/kernels/kernels.h) must define no global
# symbol outside their own namespace: an inline function of a library header emitted there (a
# std::vector member, say) is one symbol with the baseline code's copy, the linker keeps either,
# and a machine without those instructions could then crash in code that never asked for them.
# Usage: isa_symbols.sh OBJECT...   (the objects of bpkit_kernels_avx2 and bpkit_kernels_avx512)
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 OBJECT..." >&2; exit 2; }
bad=0
for o in "$@"; do
  case $o in
    *kernels_avx2*) ns="bpkit::isa_avx2::" mangled=5bpkit8isa_avx2 ;;
    *kernels_avx512*) ns="bpkit::isa_avx512::" mangled=5bpkit10isa_avx512 ;;
    *) echo "isa_symbols: $o is not an object of the AVX2 or AVX-512 kernels" >&2; exit 2 ;;
  esac
  # Global and weak definitions (nm's upper-case types, u and i), minus the namespace's own
  # (mangled: its functions and data, the local entities of its functions such as lambdas, and
  # their guard variables), type information (data, no instructions: UBSan's function checks
  # emit it for function types), and what the sanitizers and coverage instrumentation add.
  found=$(nm --defined-only "$o" | awk '$2 ~ /^[A-Zui]$/ { print $3 }' |
    grep -v -E -e "^_Z(GV)?Z?NK?$mangled" -e '^_ZT[IS]' \
      -e '^(__asan|___asan|__odr_asan|__sancov|__tsan|__ubsan)' | c++filt || true)
  if [ -n "$found" ]; then
    echo "isa_symbols: $o defines symbols outside $ns:" >&2
    echo "$found" | sed 's/^/  /' >&2
    bad=1
  fi
done
[ $bad -eq 0 ] && echo "isa_symbols: $# kernel objects define only their own namespace's symbols"
exit $bad
