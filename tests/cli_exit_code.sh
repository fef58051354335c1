#!/bin/sh
# Runs a command and checks its exit status and, optionally, its output.
#   cli_exit_code.sh EXPECTED_STATUS OUTPUT_REGEX COMMAND [ARGS...]
# OUTPUT_REGEX is an extended regular expression that stdout+stderr must match ('' = no check).
# Prints the command's output, so a failing ctest shows what the program said.
if [ $# -lt 3 ]; then
  echo "usage: $0 EXPECTED_STATUS OUTPUT_REGEX COMMAND [ARGS...]" >&2
  exit 2
fi
expected=$1
regex=$2
shift 2
out=$("$@" 2>&1)
status=$?
printf '%s\n' "$out"
if [ "$status" -ne "$expected" ]; then
  echo "FAIL: '$*' exited with $status, expected $expected" >&2
  exit 1
fi
if [ -n "$regex" ] && ! printf '%s\n' "$out" | grep -Eq -- "$regex"; then
  echo "FAIL: the output of '$*' does not match /$regex/" >&2
  exit 1
fi
echo "ok: '$*' exited with $status"
