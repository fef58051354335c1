#!/usr/bin/env bash
# speech_app end to end with the shipped model (models/speech_digits):
#   tests/speech_app.sh BIN_DIR SOURCE_DIR
# the bundled utterances (text, several files, JSON with times, spectrogram), a Sphinx feature file
# made by sphinx_fe (--features), other formats and rates (FLAC, stereo 44.1 kHz float, 8 kHz),
# recordings cut into utterances (--segment, and a 20-minute one in bounded memory),
# bad input (not audio, empty, truncated, a missing file, one bad among good ones), usage errors.
set -u
unset BPKIT_MODEL_PATH BPKIT_NUM_THREADS  # the shipped model, found next to the program
bin=$1
src=$2
app=$bin/speech_app
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# expect STATUS CMD...: runs CMD, checks its exit status; stdout in $tmp/out, stderr in $tmp/err.
expect() {
  local want=$1
  shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  [ "$got" = "$want" ] || fail "exit $got (expected $want): $* -- $(cat "$tmp/err")"
}

ex=$src/examples/speech
expect 0 "$app" "$ex/digits.wav"
[ "$(cat "$tmp/out")" = "seven seven five three two nine" ] || fail "digits.wav: '$(cat "$tmp/out")'"
expect 0 "$app" "$ex/digits.wav" "$ex/digits2.wav"
grep -qx "$ex/digits.wav: seven seven five three two nine" "$tmp/out" || fail "several: $(cat "$tmp/out")"
grep -qx "$ex/digits2.wav: eight five two zero six" "$tmp/out" || fail "several: $(cat "$tmp/out")"

# JSON: one object per file; words in order, their times inside the file and increasing.
expect 0 "$app" --json "$ex/digits2.wav"
out=$(cat "$tmp/out")
case $out in
  '{"file":"'*'","text":"eight five two zero six","confidence":'*'"words":[{"word":"eight","start":'*) ;;
  *) fail "json: $out" ;;
esac
echo "$out" | grep -o '"start":[0-9.e-]*,"end":[0-9.e-]*' | tr -d '"startend:' |
  awk -F, -v dur="$(echo "$out" | sed 's/.*"duration":\([0-9.]*\).*/\1/')" '
    { if ($1 < prev || $2 <= $1 || $2 > dur + 0.05) bad = 1; prev = $2; n++ }
    END { exit bad || n != 5 }' || fail "json times: $out"

# The spectrogram is a PNG.
expect 0 "$app" --spectrogram "$tmp/spec.png" "$ex/digits.wav"
[ "$(head -c 8 "$tmp/spec.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "not a PNG"

# Features made by sphinx_fe (tests/data/feature_files/make.sh): "seven two".
expect 0 "$app" --features "$src/tests/data/feature_files/seven_two.mfc"
[ "$(cat "$tmp/out")" = "seven two" ] || fail "--features: '$(cat "$tmp/out")'"

# Other containers, rates and channel counts (written with the bundled file's samples).
if command -v sox >/dev/null; then
  sox "$ex/digits2.wav" "$tmp/a.flac"
  sox "$ex/digits2.wav" -r 44100 -c 2 -e floating-point -b 32 "$tmp/b.wav"
  sox "$ex/digits2.wav" -r 8000 "$tmp/c.wav"
  for f in a.flac b.wav c.wav; do
    expect 0 "$app" "$tmp/$f"
    [ "$(cat "$tmp/out")" = "eight five two zero six" ] || fail "$f: '$(cat "$tmp/out")'"
  done
fi

# Recordings of several utterances: --segment cuts them at the pauses, one line each with its
# span in the file; a recording longer than 30 s is always cut, and read 30 s at a time: twenty
# minutes of faint noise between utterances stay in bounded memory (the samples alone would take
# 77 MB as floats).
if command -v sox >/dev/null; then
  sox -n -r 16000 -c 1 -b 16 "$tmp/pause.wav" trim 0 1.3
  sox "$ex/digits.wav" "$tmp/pause.wav" "$ex/digits2.wav" "$tmp/two.wav"
  expect 0 "$app" --segment "$tmp/two.wav"
  [ "$(cut -d' ' -f2- "$tmp/out" | tr '\n' '|')" = "seven seven five three two nine|eight five two zero six|" ] ||
    fail "--segment: $(cat "$tmp/out")"
  awk -F'[-:]' '{ if ($1 < prev || $2 <= $1) bad = 1; prev = $2 } END { exit bad }' "$tmp/out" ||
    fail "--segment spans: $(cat "$tmp/out")"
  expect 0 "$app" --segment --json "$tmp/two.wav"
  [ "$(grep -c '"start":.*"end":.*"text":' "$tmp/out")" = 2 ] || fail "--segment --json: $(cat "$tmp/out")"
  sox -n -r 16000 -c 1 -b 16 "$tmp/quiet.wav" synth 600 whitenoise vol 0.0005
  sox "$tmp/two.wav" "$tmp/quiet.wav" "$tmp/two.wav" "$tmp/quiet.wav" "$tmp/two.wav" "$tmp/long.wav"
  "$app" "$tmp/long.wav" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  peak=0
  while kill -0 $pid 2>/dev/null; do  # the peak resident memory, as long as the process lives
    v=$(awk '/VmHWM/ { print $2 }' /proc/$pid/status 2>/dev/null)
    [ -n "$v" ] && peak=$v
    sleep 0.02
  done
  wait $pid || fail "long recording: exit $? -- $(cat "$tmp/err")"
  [ "$(cut -d' ' -f2- "$tmp/out" | sort | uniq -c | tr -s ' ' | tr '\n' '|')" = \
    " 3 eight five two zero six| 3 seven seven five three two nine|" ] || fail "long: $(cat "$tmp/out")"
  # The second copy (from 606.97 s) of digits.wav: its words from 607.2 s to 609.5 s.
  sed -n 3p "$tmp/out" | awk -F'[-:]' '{ exit !($1 > 606.5 && $1 < 607.2 && $2 > 609.5 && $2 < 610.5) }' ||
    fail "long: times: $(cat "$tmp/out")"
  # Under AddressSanitizer its shadow memory and quarantine dwarf the bound: not checked there.
  if ! grep -q __asan_init "$app" 2>/dev/null; then
    [ "$peak" -gt 0 ] && [ "$peak" -lt 50000 ] || fail "long recording: peak memory $peak KB"
  fi
fi

# Bad input: a clear message naming the file, exit 1, the other files still processed.
echo "not audio" >"$tmp/text.wav"
: >"$tmp/empty.wav"
head -c 44 "$ex/digits.wav" >"$tmp/header_only.wav"
for f in text.wav empty.wav header_only.wav missing.wav; do
  expect 1 "$app" "$tmp/$f"
  grep -q "$tmp/$f" "$tmp/err" || fail "$f: message does not name the file: $(cat "$tmp/err")"
done
expect 1 "$app" "$tmp/text.wav" "$ex/digits2.wav"
grep -q "digits2.wav: eight five two zero six" "$tmp/out" || fail "good file after a bad one"
expect 1 "$app" --json "$tmp/text.wav"
grep -q '"error":' "$tmp/out" || fail "json error record"
head -c 20000 "$ex/digits.wav" >"$tmp/cut.wav"  # truncated: what is there is recognized
expect 0 "$app" "$tmp/cut.wav"

# Usage and model errors: exit 2.
expect 2 "$app"
grep -q "no audio file given" "$tmp/err" || fail "no file"
expect 2 "$app" --bogus "$ex/digits.wav"
expect 2 "$app" --model "$tmp/nowhere" "$ex/digits.wav"
expect 2 "$app" --threads 0 "$ex/digits.wav"
expect 2 "$app" --features --spectrogram "$tmp/x.png" "$ex/digits.wav"
expect 2 "$app" --segment --spectrogram "$tmp/x.png" "$ex/digits.wav"
grep -q "cannot be combined with --segment" "$tmp/err" || fail "--segment --spectrogram: $(cat "$tmp/err")"
expect 2 "$app" --segment --features "$ex/digits.wav"
expect 0 "$app" --help
expect 0 "$app" -h
grep -q "^usage: speech_app" "$tmp/out" || fail "-h"
grep -q "usage: speech_app" "$tmp/out" || fail "help"
# "-": the audio from standard input, named "-" in the output; bad or empty input is exit 1 and
# names "-" (not the temporary copy); "-" twice or with --features is a usage error.
"$app" --json - <"$ex/digits.wav" >"$tmp/out" 2>"$tmp/err" || fail "speech_app - : $(cat "$tmp/err")"
grep -q '^{"file":"-","text":"seven seven five three two nine"' "$tmp/out" || fail "stdin: $(cat "$tmp/out")"
echo garbage | "$app" - >"$tmp/out" 2>"$tmp/err" && fail "speech_app - on garbage: exit 0"
grep -q "^speech_app: -: stage 'audio.read' failed" "$tmp/err" || fail "stdin garbage: $(cat "$tmp/err")"
grep -q "/proc/self" "$tmp/err" && fail "the temporary copy is named: $(cat "$tmp/err")"
"$app" - </dev/null >"$tmp/out" 2>"$tmp/err"
[ $? = 1 ] && grep -q "standard input is empty" "$tmp/err" || fail "empty stdin: $(cat "$tmp/err")"
expect 2 "$app" - - </dev/null
expect 2 "$app" --features - </dev/null
echo "speech_app: all checks passed"
