#!/usr/bin/env bash
# signature_app end to end with the shipped verifier (models/signature):
#   tests/signature_app.sh BIN_DIR SOURCE_DIR
# the bundled scans (enroll, verify a genuine and a forged signature, JSON), enrollment that adds,
# skips repeats and survives a bad scan, --reference/--query, eval on a small generated dataset
# (figures and a DET PNG), bpkit eval on it, bad scans and usage errors.
set -u
unset BPKIT_MODEL_PATH BPKIT_NUM_THREADS  # the shipped model, found next to the program
bin=$1
src=$2
app=$bin/signature_app
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

ex=$src/examples/signatures
refs=("$ex"/reference-*)
[ ${#refs[@]} -ge 3 ] || fail "no bundled references in $ex"

# Enroll, then verify the bundled genuine and forged scans.
expect 0 "$app" enroll --db "$tmp/db" --writer demo "${refs[@]}"
grep -q "enrolled ${#refs[@]} reference(s) for demo" "$tmp/out" || fail "enroll: $(cat "$tmp/out")"
expect 0 "$app" verify --db "$tmp/db" --writer demo "$ex/query-genuine.jpg"
grep -Eq '^genuine [0-9.-]+$' "$tmp/out" || fail "genuine query: $(cat "$tmp/out")"
expect 0 "$app" verify --db "$tmp/db" --writer demo "$ex/query-forgery.jpg"
grep -Eq '^forgery [0-9.-]+$' "$tmp/out" || fail "forged query: $(cat "$tmp/out")"
expect 0 "$app" verify --db "$tmp/db" --writer demo --json "$ex/query-genuine.jpg"
case $(cat "$tmp/out") in
  '{"query":'*'"decision":"genuine","score":'*'"threshold":'*'"references":'"${#refs[@]}"',"writer":"demo"}') ;;
  *) fail "json: $(cat "$tmp/out")" ;;
esac
t5=$(sed -n 's/.*"threshold":\([-0-9.e]*\).*/\1/p' "$tmp/out")
# Three references listed after one --reference: the model's threshold for three (it has one per
# reference count, lower for fewer references).
expect 0 "$app" verify --json --reference "${refs[0]}" "${refs[1]}" "${refs[2]}" --query "$ex/query-genuine.jpg"
grep -q '"references":3}' "$tmp/out" || fail "three references: $(cat "$tmp/out")"
t3=$(sed -n 's/.*"threshold":\([-0-9.e]*\).*/\1/p' "$tmp/out")
awk -v a="$t3" -v b="$t5" 'BEGIN { exit !(a < b) }' || fail "threshold for 3 references ($t3) not below 5's ($t5)"
# The same decisions without a database.
args=()
for r in "${refs[@]}"; do args+=(--reference "$r"); done
expect 0 "$app" verify "${args[@]}" --query "$ex/query-forgery.jpg"
grep -q '^forgery ' "$tmp/out" || fail "--reference: $(cat "$tmp/out")"

# Enrolling again adds nothing; a bad scan among good ones enrolls nothing and keeps the file.
cp "$tmp/db/demo.json" "$tmp/before.json"
expect 0 "$app" enroll --db "$tmp/db" --writer demo "${refs[0]}"
grep -q "enrolled 0 reference" "$tmp/out" || fail "repeat: $(cat "$tmp/out")"
cmp -s "$tmp/db/demo.json" "$tmp/before.json" || fail "a repeated scan changed the enrollment"
echo "not an image" >"$tmp/bad.png"
expect 1 "$app" enroll --db "$tmp/db" --writer demo "$ex/query-genuine.jpg" "$tmp/bad.png"
grep -q "bad.png" "$tmp/err" || fail "bad scan not named: $(cat "$tmp/err")"
cmp -s "$tmp/db/demo.json" "$tmp/before.json" || fail "a failed enrollment changed the file"
[ "$(ls "$tmp/db")" = "demo.json" ] || fail "files left in the database: $(ls "$tmp/db")"

# Bad scans: blank, not an image, missing; a writer not enrolled; a damaged enrollment file.
python3 - "$tmp/blank.png" <<'PY' 2>/dev/null || printf 'P5\n64 64\n255\n%s' "$(head -c 4096 /dev/zero | tr '\0' '\377')" >"$tmp/blank.pgm"
import sys, zlib, struct
w = h = 64
raw = b"".join(b"\x00" + b"\xff" * w for _ in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
blank=$tmp/blank.png
[ -f "$blank" ] || blank=$tmp/blank.pgm
expect 1 "$app" verify --db "$tmp/db" --writer demo "$blank"
grep -q "no ink found" "$tmp/err" || fail "blank page: $(cat "$tmp/err")"
expect 1 "$app" verify --db "$tmp/db" --writer demo "$tmp/bad.png"
expect 1 "$app" verify --db "$tmp/db" --writer demo "$tmp/missing.png"
expect 1 "$app" verify --db "$tmp/db" --writer nobody "$ex/query-genuine.jpg"
grep -q "not enrolled" "$tmp/err" || fail "unknown writer: $(cat "$tmp/err")"
echo '{"format": "bpkit-signature-enrollment", "version": 1, "writer": "x"' >"$tmp/db/x.json"
expect 1 "$app" verify --db "$tmp/db" --writer x "$ex/query-genuine.jpg"
grep -q "damaged" "$tmp/err" || fail "damaged enrollment: $(cat "$tmp/err")"

# Usage errors.
expect 2 "$app"
expect 2 "$app" sign
expect 2 "$app" verify --db "$tmp/db" "$ex/query-genuine.jpg"
expect 2 "$app" enroll --db "$tmp/db" --writer ../up "${refs[0]}"
expect 2 "$app" enroll --db "$tmp/db" --writer demo
expect 2 "$app" verify --reference "${refs[0]}" "$ex/query-genuine.jpg"
expect 2 "$app" eval --writer demo "$tmp"
expect 2 "$app" verify --model "$tmp/nomodel" --db "$tmp/db" --writer demo "$ex/query-genuine.jpg"
expect 0 "$app" --help
grep -q "signature_app enroll" "$tmp/out" || fail "--help"
expect 0 "$app" -h
grep -q "^usage: signature_app" "$tmp/out" || fail "-h"
expect 2 "$app" verify --bogus
[ "$(cat "$tmp/err")" = "signature_app: unknown option '--bogus' (see 'signature_app --help')" ] ||
  fail "unknown option: $(cat "$tmp/err")"

# eval on a small generated dataset: figures on the last line, a DET curve, bpkit eval agrees.
if [ -x "$bin/make_signatures" ]; then
  "$bin/make_signatures" --out "$tmp/set" --writers 6 --first-writer 50001 --seed 7 --genuine 7 \
    --forgeries 3 --threads 2 >/dev/null 2>&1 || fail "make_signatures"
  expect 0 "$app" eval --det "$tmp/det.png" "$tmp/set"
  last=$(tail -1 "$tmp/out")
  case $last in eer_skilled=*' eer_random='*' frr='*) ;; *) fail "eval: $last" ;; esac
  grep -q "writers 6 references 5 trials: genuine 12 skilled 18 random 30" "$tmp/out" ||
    fail "eval trials: $(cat "$tmp/out")"
  [ "$(head -c 8 "$tmp/det.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "det.png"
  skilled=${last#eer_skilled=}
  skilled=${skilled%% *}
  expect 0 "$bin/bpkit" eval "$src/models/signature" "$tmp/set" --det "$tmp/det2.png"
  grep -q "eer_skilled $skilled" "$tmp/out" || fail "bpkit eval: $(cat "$tmp/out") vs $last"
  cmp -s "$tmp/det.png" "$tmp/det2.png" || fail "bpkit eval --det drew another DET image"
  # A manifest of pairs (paths relative to it): each pair a trial with one reference; the same
  # figures from both programs.
  scan() { (cd "$tmp" && ls set/"$1"/"$2"/* | sed -n "$3p"); }  # the N-th scan (png or jpg)
  {
    printf '# reference\tquery\tlabel\n'
    for w in w50001 w50002 w50003; do
      printf '%s\t%s\t1\n' "$(scan $w genuine 1)" "$(scan $w genuine 2)"
      printf '%s\t%s\tskilled\n' "$(scan $w genuine 1)" "$(scan $w forgeries 1)"
      printf '%s\t%s\trandom\n' "$(scan $w genuine 1)" "$(scan w50006 genuine 1)"
    done
  } >"$tmp/pairs.tsv"
  expect 0 "$app" eval --det "$tmp/det3.png" "$tmp/pairs.tsv"
  grep -q "pairs 9 references 1 trials: genuine 3 skilled 3 random 3" "$tmp/out" ||
    fail "eval pairs: $(cat "$tmp/out")"
  last=$(tail -1 "$tmp/out")
  skilled=${last#eer_skilled=}
  skilled=${skilled%% *}
  expect 0 "$bin/bpkit" eval "$src/models/signature" "$tmp/pairs.tsv"
  grep -q "^references 1 genuine_trials 3 skilled_trials 3 random_trials 3 .*eer_skilled $skilled" \
    "$tmp/out" || fail "bpkit eval pairs: $(cat "$tmp/out") vs $last"
  expect 0 "$bin/bpkit" eval "$src/models/signature" "$tmp/pairs.tsv" --json
  grep -q '^{"references":1,"genuine_trials":3,"skilled_trials":3,"random_trials":3,"threshold":0\.6.*,"eer_skilled":[0-9.]*,"eer_random":[0-9.]*}$' "$tmp/out" ||
    fail "bpkit eval --json pairs: $(cat "$tmp/out")"
  printf '%s\t%s\tmaybe\n' "$(scan w50001 genuine 1)" "$(scan w50001 genuine 2)" >"$tmp/bad.tsv"
  expect 1 "$app" eval "$tmp/bad.tsv"
  grep -q "bad.tsv:1: .*maybe: no such file" "$tmp/err" || fail "bad tuples: $(cat "$tmp/err")"
  expect 2 "$app" eval --references 3 "$tmp/pairs.tsv"
fi
echo "signature_app: all checks passed"
