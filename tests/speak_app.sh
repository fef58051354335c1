#!/usr/bin/env bash
# speak_app end to end with the shipped letters-to-sounds model (models/g2p):
#   tests/speak_app.sh BIN_DIR SOURCE_DIR
# letters with their sounds, standard input, JSON, numbers and punctuation, refused words, usage
# errors, and speech: --wav spoken with the predicted phonemes is recognized by speech_app.
set -u
unset BPKIT_MODEL_PATH BPKIT_NUM_THREADS  # the shipped models, found next to the programs
bin=$1
src=$2
app=$bin/speak_app
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

# Letters, symbols and phonemes, one line a word.
expect 0 "$app" "Phone the box"
grep -qx "Phone  P h o n e → F - OW N -  /F OW N/" "$tmp/out" || fail "phone: $(cat "$tmp/out")"
grep -qx "box  b o x → B AA K_S  /B AA K S/" "$tmp/out" || fail "box: $(cat "$tmp/out")"
[ "$(wc -l <"$tmp/out")" = 3 ] || fail "three words: $(cat "$tmp/out")"
# Standard input, one sentence a line; numbers spelled out, punctuation dropped.
printf 'one, two!\n42\n' | "$app" >"$tmp/out" 2>"$tmp/err" || fail "stdin: $(cat "$tmp/err")"
[ "$(cut -d' ' -f1 "$tmp/out" | tr '\n' ' ')" = "one two forty two " ] || fail "stdin: $(cat "$tmp/out")"
# JSON: the letters with their symbols and probabilities.
expect 0 "$app" --json box
case $(cat "$tmp/out") in
  '{"text":"box","words":[{"word":"box","letters":[{"letter":"b","symbol":"B","phonemes":["B"],"probability":'*'"phonemes":["B","AA","K","S"],"confidence":'*) ;;
  *) fail "json: $(cat "$tmp/out")" ;;
esac
# A word with an accent is refused by name; the others are still printed; exit 1.
expect 1 "$app" "the café"
grep -q "^the " "$tmp/out" || fail "the rest of the sentence: $(cat "$tmp/out")"
grep -q "café" "$tmp/err" || fail "accent message: $(cat "$tmp/err")"
# Usage errors: no text, an empty line, --spell alone, an unknown option, a missing model.
expect 2 "$app" ""
expect 2 "$app" --spell hello
expect 2 "$app" --play --wav "$tmp/x.wav" hello
[ -e "$tmp/x.wav" ] && fail "--play with --wav wrote a file"
expect 2 "$app" --frobnicate hello
grep -q "unknown option '--frobnicate'" "$tmp/err" || fail "unknown option: $(cat "$tmp/err")"
expect 2 "$app" --model "$tmp/nowhere" hello
printf '\n \n' | "$app" >"$tmp/out" 2>"$tmp/err"
[ $? = 2 ] || fail "empty standard input must be a usage error"
expect 0 "$app" --help
grep -q "^usage: speak_app" "$tmp/out" || fail "help"
# Speech with the predicted phonemes, recognized by speech_app; the file is written atomically
# (no temporary left), and a directory that does not exist is an error.
expect 0 "$app" --wav "$tmp/three.wav" "three one four"
expect 0 "$bin/speech_app" "$tmp/three.wav"
[ "$(cat "$tmp/out")" = "three one four" ] || fail "round trip: '$(cat "$tmp/out")'"
[ "$(ls "$tmp" | grep -c tmp)" = 0 ] || fail "a temporary file was left: $(ls "$tmp")"
expect 0 "$app" --spell --wav "$tmp/spell.wav" "nine"
[ -s "$tmp/spell.wav" ] || fail "spelled speech"
expect 1 "$app" --wav "$tmp/no/dir/x.wav" hello
grep -q "cannot write" "$tmp/err" || fail "unwritable: $(cat "$tmp/err")"
# bpkit eval on a dictionary: PER and WER; a dictionary of which no word can be read is an error,
# not a perfect score.
printf 'box B AA K S\nphone F OW N\n' >"$tmp/two.dict"
expect 0 "$bin/bpkit" eval "$src/models/g2p" "$tmp/two.dict"
grep -q "^words 2 skipped 0 phonemes 7 phoneme_error_rate 0.0000 word_error_rate 0.0000" "$tmp/out" ||
  fail "eval: $(cat "$tmp/out")"
printf 'caf\xc3\xa9 K AE F EY\n' >"$tmp/none.dict"
expect 1 "$bin/bpkit" eval "$src/models/g2p" "$tmp/none.dict"
grep -q "no word the model can read (1 skipped)" "$tmp/err" || fail "eval of nothing: $(cat "$tmp/err")"
echo "speak_app: all checks passed"
