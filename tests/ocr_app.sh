#!/usr/bin/env bash
# ocr_app end to end with the shipped models (models/ocr, models/digits):
#   tests/ocr_app.sh BIN_DIR SOURCE_DIR
# the bundled page (text, JSON, overlay), a blank page, bad images (not an image, truncated,
# 0x0 and 100000x100000 headers, missing file), several images with one bad, single characters
# of both polarities, the dictionary options, usage errors.
set -u
unset BPKIT_MODEL_PATH BPKIT_NUM_THREADS  # the shipped models, found next to the program
bin=$1
src=$2
app=$bin/ocr_app
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Character error rate of file $1 against reference file $2 (lines joined by newlines; edit
# distance over bytes / reference length), in percent.
cer() {
  awk -v ref="$2" '
    function lev(a, b,   n, m, i, j, prev, cur, c, x, y, z) {
      n = length(a); m = length(b)
      for (j = 0; j <= m; j++) prev[j] = j
      for (i = 1; i <= n; i++) {
        cur[0] = i
        for (j = 1; j <= m; j++) {
          c = substr(a, i, 1) == substr(b, j, 1) ? 0 : 1
          x = prev[j] + 1; y = cur[j - 1] + 1; z = prev[j - 1] + c
          cur[j] = x < y ? (x < z ? x : z) : (y < z ? y : z)
        }
        for (j = 0; j <= m; j++) prev[j] = cur[j]
      }
      return prev[m]
    }
    { out = out (NR > 1 ? "\n" : "") $0 }
    END {
      while ((getline line < ref) > 0) r = r (k++ ? "\n" : "") line
      printf "%.2f\n", 100 * lev(out, r) / length(r)
    }' "$1"
}

page=$src/examples/ocr/page.png
truth=$src/examples/ocr/page.txt

# The bundled page: every line found, in order, and read with a low character error rate (with
# the default word list; without one where it is not installed, which ocr_app would mention).
dict=()
[ -f /usr/share/dict/american-english ] || dict=(--dict none)
"$app" "${dict[@]}" "$page" >"$tmp/out.txt" 2>"$tmp/err.txt" || fail "exit $? on the bundled page: $(cat "$tmp/err.txt")"
[ -s "$tmp/err.txt" ] && fail "messages on the bundled page: $(cat "$tmp/err.txt")"
[ "$(wc -l <"$tmp/out.txt")" -eq "$(wc -l <"$truth")" ] ||
  fail "$(wc -l <"$tmp/out.txt") lines read, the page has $(wc -l <"$truth")"
rate=$(cer "$tmp/out.txt" "$truth")
echo "bundled page: CER $rate%"
awk -v r="$rate" 'BEGIN { exit !(r < 3) }' || fail "CER $rate% on the bundled page (expected < 3%)"
# The scorer itself: a one-character change is one edit.
sed '1s/^./#/' "$truth" >"$tmp/one_edit.txt"
[ "$(cer "$tmp/one_edit.txt" "$truth")" = "$(awk -v n="$(wc -c <"$truth")" 'BEGIN { printf "%.2f", 100 / (n - 1) }')" ] ||
  fail "the CER helper miscounts one edit"

# --json: one object with every line, its box inside the page, text and confidence.
"$app" --json "$page" >"$tmp/out.json" || fail "--json exit $?"
[ "$(wc -l <"$tmp/out.json")" -eq 1 ] || fail "--json wrote more than one line for one image"
[ "$(grep -o '"box":{"x":[0-9]*,"y":[0-9]*,"width":[1-9][0-9]*,"height":[1-9][0-9]*},"text":"' "$tmp/out.json" | wc -l)" -eq "$(wc -l <"$truth")" ] ||
  fail "--json: not one box and text per line: $(head -c 300 "$tmp/out.json")"
grep -q '"confidence":[01]\.[0-9]*' "$tmp/out.json" || fail "--json without confidences"
first=$(head -n 1 "$tmp/out.txt" | sed 's/[\\"]/\\&/g')
grep -qF "\"text\":\"$first\"" "$tmp/out.json" || fail "--json's first line differs from the text output"

# --overlay: a PNG twice as wide as the page.
"$app" --overlay "$tmp/overlay.png" "$page" >/dev/null || fail "--overlay exit $?"
[ "$(head -c 8 "$tmp/overlay.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] ||
  fail "--overlay did not write a PNG"

# --mode line: one rendered line (a held-out font, noise and blur of the training augmentation).
"$app" --mode line "$src/tests/data/line_heldout.png" >"$tmp/line.out" || fail "--mode line: exit $?"
rate=$(cer "$tmp/line.out" "$src/tests/data/line_heldout.txt")
awk -v r="$rate" 'BEGIN { exit !(r < 10) }' || fail "--mode line: CER $rate%: $(cat "$tmp/line.out")"
# Overlay destinations: a directory takes NAME.overlay.png; a missing directory, the input itself
# or two inputs of one name are refused up front (exit 2) and nothing is read.
mkdir -p "$tmp/ovdir"
"$app" --overlay "$tmp/ovdir" "$page" >/dev/null || fail "--overlay DIR with one image: exit $?"
[ -s "$tmp/ovdir/page.overlay.png" ] || fail "--overlay DIR did not write DIR/page.overlay.png"
cp "$page" "$tmp/self.png"
for args in "--overlay $tmp/missing/o.png $page" "--overlay $tmp/self.png $tmp/self.png" \
  "--overlay $tmp/ovdir $page $tmp/ovdir/page.overlay.png" "--mode char --overlay $tmp/o.png $page"; do
  # shellcheck disable=SC2086
  out=$("$app" $args 2>"$tmp/ov.err")
  rc=$?
  [ $rc -eq 2 ] && [ -z "$out" ] || fail "'ocr_app $args': exit $rc, expected 2 and no output"
done
cmp -s "$page" "$tmp/self.png" || fail "--overlay overwrote its input"

# A blank page: no output, exit 0.
out=$("$app" "$src/tests/data/blank_page.png") || fail "blank page: exit $?"
[ -z "$out" ] || fail "blank page printed: $out"

# Bad images: a clear message naming the file, exit 1, nothing on stdout, bounded memory.
printf 'not an image\n' >"$tmp/text.png"
head -c 2000 "$page" >"$tmp/truncated.png"
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x00\x00\x00\x00\x00\x00\x00\x00' >"$tmp/huge.png"
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00' >"$tmp/zero.png"
for f in text truncated huge zero missing; do
  (
    # AddressSanitizer reserves terabytes of address space up front: a sanitizer build runs
    # without the limit.
    grep -q __asan_init "$app" 2>/dev/null || ulimit -v 4000000
    "$app" "$tmp/$f.png" >"$tmp/bad.out" 2>"$tmp/bad.err"
  )
  rc=$?
  [ $rc -eq 1 ] || fail "$f.png: exit $rc, expected 1 ($(cat "$tmp/bad.err"))"
  [ -s "$tmp/bad.out" ] && fail "$f.png: printed $(cat "$tmp/bad.out")"
  grep -q "ocr_app: .*$f.png" "$tmp/bad.err" || fail "$f.png: the message does not name the file: $(cat "$tmp/bad.err")"
done
grep -q "100000x100000" <("$app" "$tmp/huge.png" 2>&1) || fail "the huge header's message does not give its size"

# --json: a record for a failed image too, so that output lines match the inputs.
"$app" --json "$tmp/text.png" "$src/tests/data/blank_page.png" >"$tmp/err.json" 2>/dev/null
[ $? -eq 1 ] || fail "--json with a bad image: exit not 1"
[ "$(sed -n 1p "$tmp/err.json" | grep -c '^{"file":".*text.png","error":".*image.read.*"}$')" -eq 1 ] ||
  fail "--json error record: $(sed -n 1p "$tmp/err.json")"
grep -q '"lines":\[\]}$' <(sed -n 2p "$tmp/err.json") || fail "--json after an error: $(sed -n 2p "$tmp/err.json")"
# A line narrower than the recognizer's windows (one column): no failure.
{ printf 'P5\n1 40\n255\n'; head -c 40 /dev/zero | tr '\0' '\200'; } >"$tmp/narrow.pgm"
"$app" --mode line "$tmp/narrow.pgm" >/dev/null 2>"$tmp/narrow.err" || fail "a 1x40 line: $(cat "$tmp/narrow.err")"
# A full disk is an error, not a success.
if [ -w /dev/full ]; then
  "$app" "$page" >/dev/full 2>/dev/null && fail "writing to a full disk reported success"
fi

# Several images, one bad: a header per image, the good ones read, exit 1.
"$app" "$page" "$tmp/text.png" "$src/tests/data/blank_page.png" >"$tmp/multi.out" 2>"$tmp/multi.err"
rc=$?
[ $rc -eq 1 ] || fail "several images with one bad: exit $rc"
[ "$(grep -c '^==> .* <==$' "$tmp/multi.out")" -eq 2 ] || fail "headers: $(grep '^==>' "$tmp/multi.out")"
grep -qxF "==> $page <==" "$tmp/multi.out" || fail "no header for the page"
cmp -s <(sed -n '2,$p' "$tmp/multi.out" | sed '/^==>/,$d') "$tmp/out.txt" ||
  fail "the page's text differs when read with other images"

# Single characters (the shipped digits model), light on dark as trained and dark on light.
build_digits() {
  "$bin/make_digits" --out "$tmp/digits" >/dev/null 2>&1 || fail "make_digits failed"
}
build_digits
got=$("$app" --mode char "$tmp/digits/images/3_470.png" | cut -f1)
[ "$got" = 3 ] || fail "--mode char on 3_470.png: '$got'"
got=$("$app" --mode char "$src/tests/data/digit3_dark_on_light.png" | cut -f1)
[ "$got" = 3 ] || fail "--mode char on a dark-on-light 3: '$got'"
out=$("$app" --mode char "$src/tests/data/blank_page.png" 2>"$tmp/blank.err")
[ $? -eq 1 ] && [ -z "$out" ] && grep -q "no character" "$tmp/blank.err" ||
  fail "--mode char on a blank image: '$out' $(cat "$tmp/blank.err")"
"$app" --mode char --json "$tmp/digits/images/7_455.png" | grep -q '^{"file":.*"class":"7","confidence":[01]\.[0-9]*,"top":\[{"class":"7"' ||
  fail "--mode char --json"

# A model directory's page.yaml replaces the built-in page layout; one that does not end in text
# lines is refused with its file named.
mkdir -p "$tmp/model"
cp "$src/models/ocr/model.bpk" "$src/models/ocr/pipeline.yaml" "$tmp/model/"
printf 'stages:\n  - image.read\n  - image.gray\n  - plugin: image.contrast\n  - plugin: image.lines\n    params: {max_angle: 5}\n' >"$tmp/model/page.yaml"
"$app" --model "$tmp/model" "$page" >"$tmp/layout.out" || fail "page.yaml layout: exit $?"
[ "$(wc -l <"$tmp/layout.out")" -eq "$(wc -l <"$truth")" ] || fail "page.yaml layout: $(wc -l <"$tmp/layout.out") lines"
printf 'stages:\n  - image.read\n  - image.gray\n' >"$tmp/model/page.yaml"
"$app" --model "$tmp/model" "$page" >/dev/null 2>"$tmp/layout.err"
rc=$?
[ $rc -eq 2 ] && grep -q "page.yaml: a page layout must end in a stage producing an image_list" "$tmp/layout.err" ||
  fail "a page.yaml without lines: exit $rc, $(cat "$tmp/layout.err")"

# The dictionary: --dict none reads without one, and a list whose only word is "kayak" at an
# unbounded cost puts kayaks wherever five letters fit (so the option reaches the decoder), at the
# default cost nowhere (the page has no kayak).
"$app" --dict none "$page" >"$tmp/nodict.txt" 2>"$tmp/nodict.err" || fail "--dict none: exit $?"
[ -s "$tmp/nodict.err" ] && fail "--dict none printed $(cat "$tmp/nodict.err")"
[ "$(wc -l <"$tmp/nodict.txt")" -eq "$(wc -l <"$truth")" ] || fail "--dict none lost lines"
echo kayak >"$tmp/kayak.txt"
"$app" --dict "$tmp/kayak.txt" --dict-cost 1e9 "$page" >"$tmp/kayak.out" || fail "--dict kayak: exit $?"
grep -qi kayak "$tmp/kayak.out" || fail "--dict with an unbounded cost changed no word: $(head -3 "$tmp/kayak.out")"
"$app" --dict "$tmp/kayak.txt" "$page" >"$tmp/kayak3.out" || fail "--dict kayak (cost 3): exit $?"
grep -qi kayak "$tmp/kayak3.out" && fail "--dict kayak at the default cost replaced a word"
# A word list too large to be one is refused (bounded memory).
awk 'BEGIN { srand(1); for (i = 0; i < 20000; i++) { w = ""; for (j = 0; j < 200; j++) w = w sprintf("%c", 97 + int(rand() * 26)); print w } }' >"$tmp/huge.txt"
"$app" --dict "$tmp/huge.txt" "$page" >/dev/null 2>"$tmp/huge.err"
rc=$?
[ $rc -eq 2 ] && grep -q "huge.txt:[0-9]*: the word list is too large" "$tmp/huge.err" ||
  fail "--dict with a huge list: exit $rc, $(cat "$tmp/huge.err")"
"$app" --dict "$tmp/no_such_words.txt" "$page" >/dev/null 2>"$tmp/dict.err"
rc=$?
[ $rc -eq 2 ] && grep -q "no_such_words.txt: cannot open the dictionary" "$tmp/dict.err" ||
  fail "--dict with a missing file: exit $rc, $(cat "$tmp/dict.err")"

# Usage and model errors: exit 2 with a message.
for args in "--dict-cost -1 $page" "--dict-cost nan $page" "--dict none --mode char $src/tests/data/digit3_dark_on_light.png" "" "--mode word $page" "--model $tmp/nowhere $page" "--threads 0 $page" "--threads 1e5 $page" "--frobnicate $page" "-x $page" "--mode char --model $src/models/ocr $page" "--overlay $tmp/nodir/x.png $page $page"; do
  # shellcheck disable=SC2086
  "$app" $args >/dev/null 2>"$tmp/usage.err"
  rc=$?
  [ $rc -eq 2 ] || fail "'ocr_app $args': exit $rc, expected 2"
  grep -q '^ocr_app: ' "$tmp/usage.err" || fail "'ocr_app $args': no message"
done
"$app" --help | grep -q '^usage: ocr_app' || fail "--help"
"$app" -h | grep -q '^usage: ocr_app' || fail "-h"
# "--" ends the options: a file named like an option is a file.
cp "$src/tests/data/blank_page.png" "$tmp/--json"
(cd "$tmp" && "$app" -- --json) >"$tmp/dashdash.out" || fail "ocr_app -- --json: exit $?"
[ ! -s "$tmp/dashdash.out" ] || fail "ocr_app -- --json printed $(cat "$tmp/dashdash.out")"
# "-": the image from standard input, read as the file would be.
"$app" - <"$src/examples/ocr/page.png" >"$tmp/stdin.out" 2>"$tmp/stdin.err" ||
  fail "ocr_app - : $(cat "$tmp/stdin.err")"
"$app" "$src/examples/ocr/page.png" >"$tmp/file.out" 2>/dev/null || fail "ocr_app page.png"
cmp -s "$tmp/stdin.out" "$tmp/file.out" || fail "ocr_app - read another text than the file"
"$app" --json - <"$src/tests/data/blank_page.png" | grep -q '^{"file":"-",' || fail "ocr_app --json -"
echo garbage | "$app" - >/dev/null 2>"$tmp/stdin.err" && fail "ocr_app - on garbage: exit 0"
grep -q "^ocr_app: -: " "$tmp/stdin.err" || fail "stdin garbage: $(cat "$tmp/stdin.err")"
echo "ocr_app: all checks passed"
