#!/usr/bin/env bash
# The out-of-tree plugin story, end to end:
#   1. installs the build into a temporary prefix (cmake --install) and checks what landed there;
#   2. builds examples/plugin (example.levels) against the installed bpkit package in a fresh build
#      directory (find_package(bpkit) through CMAKE_PREFIX_PATH), warnings as errors;
#   3. the installed bpkit lists it with `plugins --plugin-path` (and its built-in plugins from
#      PREFIX/lib/bpkit/plugins);
#   4. trains a pipeline with the plugin as a stage (found through the pipeline's plugin_path:
#      `bpkit train` searches the plugin_path of the file it is given) on small generated images
#      of three gray levels, black, gray and white;
#   5. checks the plugin's output through that model: copies of it whose pipeline sets
#      example.levels to low 0.4, high 0.6 (and inverted) must classify the mid-gray probes as the
#      levels map them (0.42 → black, 0.58 → white), where the trained pipeline calls them all gray
#      (predict with --plugin-path, eval with $BPKIT_PLUGIN_PATH);
#   6. without the plugin the model is refused (exit 2), as is a configuration its configure()
#      rejects (exit 2, with the position of the key);
#   7. the model directory's own plugin_path is not searched without --trust-model-plugins (exit 2
#      naming the plugin, the directory and the flag), and is with it; a plugin file or directory
#      writable by group or others is refused.
# usage: tests/out_of_tree.sh BUILD_DIR SOURCE_DIR
# Environment: CMAKE (the cmake program), CMAKE_GENERATOR and CXX (for the example's build);
# BPKIT_KEEP_TMP=1 keeps the temporary directory.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
cmake=${CMAKE:-cmake}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bpkit-out-of-tree.XXXXXX")
if [ "${BPKIT_KEEP_TMP:-}" = 1 ]; then echo "out_of_tree: keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
fail() {
  echo "out_of_tree: FAIL: $*" >&2
  exit 1
}
run_logged() {  # LOG CMD...: runs CMD, shows its output only when it fails
  local log=$1
  shift
  local status=0
  "$@" >"$log" 2>&1 || status=$?
  [ $status -eq 0 ] || { cat "$log" >&2; fail "$* (exit $status)"; }
}
unset BPKIT_PLUGIN_PATH BPKIT_MODEL_PATH
export BPKIT_CACHE_DIR=$tmp/cache
prefix=$tmp/prefix
bpkit=$prefix/bin/bpkit
plugdir=$tmp/example-build

echo "== cmake --install into a temporary prefix"
run_logged "$tmp/install.log" "$cmake" --install "$build" --prefix "$prefix"
for f in bin/bpkit bin/ocr_app bin/render_lines bin/render_page bin/make_signatures \
  bin/make_speech_digits bin/make_digits bin/export_features share/bpkit/models/digits/model.bpk share/bpkit/models/ocr/model.bpk \
  lib/bpkit/plugins/libbpkit_image.so include/bpkit/plugin.h \
  include/bpkit/tensor.h lib/libbpkit_engine.a lib/cmake/bpkit/bpkitConfig.cmake \
  lib/cmake/bpkit/bpkitConfigVersion.cmake lib/cmake/bpkit/bpkitTargets.cmake \
  lib/cmake/bpkit/BpkitPlugin.cmake; do
  [ -e "$prefix/$f" ] || fail "cmake --install did not install $f"
done
if command -v readelf >/dev/null; then
  for f in "$bpkit" "$prefix"/lib/bpkit/plugins/*.so; do
    if readelf -d "$f" | grep -E 'R(UN)?PATH' | grep -qF "$build"; then
      fail "$f keeps an RPATH into the build tree: $(readelf -d "$f" | grep -E 'R(UN)?PATH')"
    fi
  done
fi

# The package must not choose the plugin author's target CPU (bpkit itself picks its kernels'
# instruction set at run time).
if grep -rn -e '-march' -e '-mavx' "$prefix/lib/cmake/bpkit" >"$tmp/march.txt"; then
  fail "the installed CMake package passes CPU flags to plugins: $(cat "$tmp/march.txt")"
fi

echo "== build examples/plugin against the installed package"
run_logged "$tmp/configure.log" "$cmake" -S "$src/examples/plugin" -B "$plugdir" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror"
grep -qx "bpkit_DIR:PATH=$prefix/lib/cmake/bpkit" "$plugdir/CMakeCache.txt" ||
  fail "the example found another bpkit package: $(grep '^bpkit_DIR' "$plugdir/CMakeCache.txt")"
run_logged "$tmp/build.log" "$cmake" --build "$plugdir"
so=$plugdir/libexample_levels.so
[ -f "$so" ] || fail "the example's build made no $so"

echo "== bpkit plugins"
"$bpkit" plugins --plugin-path "$plugdir" >"$tmp/plugins.txt" 2>"$tmp/plugins.err" ||
  { cat "$tmp/plugins.txt" "$tmp/plugins.err" >&2; fail "bpkit plugins --plugin-path"; }
listed() { grep -qE "$1" "$tmp/plugins.txt" || { cat "$tmp/plugins.txt" >&2; fail "bpkit plugins does not list: $1"; }; }
listed '^example\.levels 1\.0  \(image -> image\)$'
listed "^  from $so\$"
listed '^    high +float +default 1 +\[0, 1\]  - input level that becomes white$'
listed '^    invert +bool +default false '
listed "^image\.read .*\$"
listed "^  from $prefix/lib/bpkit/plugins/libbpkit_image\.so\$"
[ ! -s "$tmp/plugins.err" ] || { cat "$tmp/plugins.err" >&2; fail "bpkit plugins skipped a library"; }
"$bpkit" plugins >"$tmp/builtin.txt" || fail "bpkit plugins"
! grep -q '^example\.levels' "$tmp/builtin.txt" || fail "example.levels listed without its path"

echo "== bpkit train with example.levels in the pipeline"
work=$tmp/work
mkdir -p "$work/img"
pgm() {  # FILE LEVEL: a 6x6 image of one gray level (0-255), plain PGM
  { printf 'P2\n6 6\n255\n'; for _ in $(seq 36); do echo "$2"; done; } >"$1"
}
: >"$work/train.tsv"
add() {  # MANIFEST LABEL LEVEL...
  local manifest=$1 label=$2
  shift 2
  for level in "$@"; do
    pgm "$work/img/$level.pgm" "$level"
    printf 'img/%s.pgm\t%s\n' "$level" "$label" >>"$work/$manifest"
  done
}
add train.tsv black 0 10 20 30 40 50
add train.tsv gray 100 111 122 133 144 155
add train.tsv white 205 215 225 235 245 255
: >"$work/test.tsv"
add test.tsv black 5 25 45
add test.tsv gray 105 127 150
add test.tsv white 210 230 250
cat >"$work/levels.yaml" <<'YAML'
name: levels_demo
plugin_path: [../example-build]
stages:
  - plugin: image.read
  - plugin: image.gray
  - plugin: example.levels
    params: {low: 0, high: 1}
  - plugin: image.features
data:
  train: train.tsv
  test: test.tsv
network:
  layers:
    - flatten
    - dense: {units: 8}
    - tanh
    - dense: {units: 3}
loss: softmax_cross_entropy
optimizer: {type: adam, lr: 0.02}
training: {epochs: 80, batch: 6, seed: 1, threads: 1, schedule: cosine}
output: {dir: model}
YAML
run_logged "$tmp/train.log" "$bpkit" train "$work/levels.yaml"
grep -q '^test_accuracy 1\.0000$' "$tmp/train.log" || { cat "$tmp/train.log" >&2; fail "the trained model does not separate the test images"; }

echo "== the plugin's output, seen through the model"
# Copies of the model whose pipeline reads the input through other levels; plugin_path is left
# out, so the plugin must come from --plugin-path or $BPKIT_PLUGIN_PATH.
variant() {  # NAME PARAMS
  cp -r "$work/model" "$work/$1"
  sed -e '/^plugin_path:/d' -e "s/params: {low: 0, high: 1}/params: $2/" \
    "$work/model/pipeline.yaml" >"$work/$1/pipeline.yaml"
  grep -qF "params: $2" "$work/$1/pipeline.yaml" || fail "could not edit $work/$1/pipeline.yaml"
}
variant window '{low: 0.4, high: 0.6}'
variant window_inverted '{low: 0.4, high: 0.6, invert: true}'
variant crossed '{low: 0.6, high: 0.4}'
mkdir -p "$work/probe"
for level in 107 128 148; do pgm "$work/probe/$level.pgm" $level; done
probes=("$work/probe/107.pgm" "$work/probe/128.pgm" "$work/probe/148.pgm")
classes() {  # MODEL_DIR [OPTIONS]: the predicted class of each probe, space-separated
  local model=$1
  shift
  "$bpkit" predict "$model" "${probes[@]}" "$@" 2>"$tmp/predict.err" | cut -f2 | tr '\n' ' ' ||
    { cat "$tmp/predict.err" >&2; fail "bpkit predict $model"; }
}
expect() {  # WHAT GOT WANT
  [ "$2" = "$3" ] || fail "$1: predicted '$2', expected '$3'"
  echo "$1: $2"
}
expect "trained pipeline (levels 0..1)" "$(classes "$work/model" --plugin-path "$plugdir")" "gray gray gray "
expect "trained pipeline, its own plugin_path trusted" "$(classes "$work/model" --trust-model-plugins)" \
  "gray gray gray "
expect "levels 0.4..0.6" "$(classes "$work/window" --plugin-path "$so")" "black gray white "
printf 'probe/107.pgm\twhite\nprobe/128.pgm\tgray\nprobe/148.pgm\tblack\n' >"$work/probes.tsv"
BPKIT_PLUGIN_PATH=/nonexistent:$plugdir "$bpkit" eval "$work/window_inverted" "$work/probes.tsv" \
  >"$tmp/eval.log" 2>&1 || { cat "$tmp/eval.log" >&2; fail "bpkit eval with BPKIT_PLUGIN_PATH"; }
grep -q '^samples 3 skipped 0 accuracy 1\.0000$' "$tmp/eval.log" ||
  { cat "$tmp/eval.log" >&2; fail "inverted levels 0.4..0.6: not white, gray, black"; }
echo "inverted levels 0.4..0.6: white gray black (bpkit eval)"

echo "== refusals"
status=0
"$bpkit" predict "$work/window" "${probes[0]}" >/dev/null 2>"$tmp/missing.err" || status=$?
[ $status -eq 2 ] && grep -q "example\.levels" "$tmp/missing.err" ||
  { cat "$tmp/missing.err" >&2; fail "without the plugin: exit $status, expected 2 naming example.levels"; }
status=0
"$bpkit" predict "$work/crossed" "${probes[0]}" --plugin-path "$plugdir" >/dev/null 2>"$tmp/crossed.err" || status=$?
grep -qE "pipeline\.yaml:[0-9]+:[0-9]+: parameter 'high' of plugin 'example\.levels': high \(0\.4\) must exceed low \(0\.6\)" "$tmp/crossed.err" && [ $status -eq 2 ] ||
  { cat "$tmp/crossed.err" >&2; fail "low > high: exit $status, expected 2 with the key's position"; }
echo "== a model directory does not choose the libraries that run"
status=0
"$bpkit" predict "$work/model" "${probes[0]}" >/dev/null 2>"$tmp/untrusted.err" || status=$?
[ $status -eq 2 ] && grep -q "no plugin named 'example\.levels' in the trusted plugin directories" "$tmp/untrusted.err" &&
  grep -qF "asks for plugin libraries from $plugdir" "$tmp/untrusted.err" &&
  grep -qF -- "--trust-model-plugins" "$tmp/untrusted.err" ||
  { cat "$tmp/untrusted.err" >&2; fail "the model's own plugin_path: exit $status, expected 2 naming the plugin, $plugdir and --trust-model-plugins"; }
chmod g+w "$so"
"$bpkit" plugins --plugin-path "$plugdir" >/dev/null 2>"$tmp/writable.err" || fail "bpkit plugins with a group-writable library"
chmod g-w "$so"
grep -qF "skipped $so: refused: the plugin library is writable by its group" "$tmp/writable.err" &&
  grep -qF "chmod go-w $so" "$tmp/writable.err" ||
  { cat "$tmp/writable.err" >&2; fail "a group-writable plugin library was not refused"; }
chmod o+w "$plugdir"
status=0
"$bpkit" plugins --plugin-path "$plugdir" >/dev/null 2>"$tmp/writable.err" || status=$?
chmod o-w "$plugdir"
[ $status -eq 2 ] && grep -qF "$plugdir: refused: the plugin directory is writable by all other users" "$tmp/writable.err" ||
  { cat "$tmp/writable.err" >&2; fail "a world-writable plugin directory: exit $status, expected 2"; }

echo "== the installed ocr_app finds its shipped models"
got=$("$prefix/bin/ocr_app" --mode char "$src/tests/data/digit3_dark_on_light.png" 2>&1) ||
  fail "installed ocr_app --mode char: $got"
[ "$(echo "$got" | cut -f1)" = 3 ] || fail "installed ocr_app --mode char read '$got', expected 3"
out=$("$prefix/bin/ocr_app" "$src/examples/ocr/page.png" 2>&1) || fail "installed ocr_app: $out"
[ "$(echo "$out" | wc -l)" -eq "$(wc -l <"$src/examples/ocr/page.txt")" ] ||
  fail "installed ocr_app read $(echo "$out" | wc -l) lines of the bundled page: $out"

echo "== the installed data tools run without the build tree"
run_logged "$tmp/render.log" "$prefix/bin/render_lines" --out "$tmp/lines" --count 3 --seed 5
[ "$(grep -c '^images/lines_0*[0-2]\.png' "$tmp/lines/lines.tsv")" -eq 3 ] || fail "installed render_lines: $(cat "$tmp/render.log")"
run_logged "$tmp/sigs.log" "$prefix/bin/make_signatures" --out "$tmp/sigs" --writers 1 --genuine 2 \
  --forgeries 1
[ -d "$tmp/sigs/w0001/genuine" ] || fail "installed make_signatures: $(ls -R "$tmp/sigs")"

echo "out_of_tree: OK"
