#!/usr/bin/env bash
# The documentation's commands, run as written: every ```sh block that follows a line
# "<!-- tested -->" in the given Markdown files is run line by line (a line ending in '\' continues)
# from a scratch directory that looks like the source tree (build/bin, configs, examples, models,
# tests).
# A command that fails fails the test, and a comment after a command that says 'prints "TEXT"' requires
# TEXT in its output (whitespace runs count as one space), so figures and examples cannot drift.
#   readme_blocks.sh BIN_DIR SOURCE_DIR WORKDIR FILE.md...
set -u
bin=$1
src=$2
work=$3
shift 3
fail() {
  echo "doc commands: $*" >&2
  exit 1
}
rm -rf "$work"
mkdir -p "$work/build"
ln -s "$bin" "$work/build/bin"
for d in configs examples models tests; do ln -s "$src/$d" "$work/$d"; done
blocks=0
commands=0
for md in "$@"; do
  armed=0
  inside=0
  cmd=""
  lineno=0
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    if [ $inside = 0 ]; then
      case $line in
        "<!-- tested -->") armed=1 ;;
        '```sh')
          [ $armed = 1 ] && inside=1 && blocks=$((blocks + 1))
          armed=0
          ;;
        '') ;;
        *) armed=0 ;;
      esac
      continue
    fi
    [ "$line" = '```' ] && inside=0 && continue
    case $line in *\\) cmd="$cmd${line%\\} " && continue ;; esac
    cmd="$cmd$line"
    expect=""
    case $cmd in *'#'*'prints "'*'"'*)
      expect=${cmd#*#}
      expect=${expect#*prints \"}
      expect=${expect%%\"*}
      ;;
    esac
    run=$cmd
    cmd=""
    case $run in '' | '#'*) continue ;; esac
    commands=$((commands + 1))
    out=$(cd "$work" && bash -c "$run" 2>&1) ||
      fail "$(basename "$md"):$lineno: '$run' failed: $(printf '%s\n' "$out" | tail -5)"
    if [ -n "$expect" ]; then
      flat=$(printf '%s\n' "$out" | tr -s ' \t\n' '   ')
      case $flat in *"$expect"*) ;; *)
        fail "$(basename "$md"):$lineno: '$run' did not print \"$expect\": $(printf '%s\n' "$out" | tail -5)"
        ;;
      esac
    fi
  done <"$md"
done
[ $blocks -ge 1 ] || fail "no block marked <!-- tested --> in $*"
echo "doc commands: $commands commands in $blocks blocks ran as documented"
