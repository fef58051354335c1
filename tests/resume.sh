#!/bin/sh
# Kill-and-resume: a training run killed with SIGKILL and resumed with --resume ends with the same
# model (same weights digest) as an uninterrupted run.
#   resume.sh BPKIT MAKE_DIGITS WORKDIR
set -eu
bpkit=$1
make_digits=$2
dir=$3
fail() {
  echo "resume test: $*" >&2
  exit 1
}
rm -rf "$dir"
mkdir -p "$dir"
"$make_digits" --out "$dir/data" --limit 450 >/dev/null
# Dropout (random draws per epoch), augmentation (random shifts, rotations and scales per epoch),
# Adam (a step count) and a validation split with early-stopping bookkeeping: every piece of state
# a checkpoint must carry.
cat >"$dir/p.yaml" <<YAML
name: resume
stages:
  - image.read
  - image.gray
  - plugin: image.resize
    params: {width: 20, height: 20}
  - image.features
data:
  train: data/train.tsv
  test: data/test.tsv
  validation_split: 0.1
network:
  layers:
    - flatten
    - dense: {units: 128}
    - relu
    - dropout: {p: 0.2}
    - dense: {units: 128}
    - relu
    - dense: {units: 10}
optimizer: {type: adam, lr: 0.001}
training:
  {epochs: 6, batch: 16, seed: 7, threads: 2, schedule: cosine, patience: 50,
   augment: {shift: 1, rotate: 5, scale: 0.05}}
cache: {dir: cache}
YAML
"$bpkit" train "$dir/p.yaml" --out "$dir/a" >"$dir/a.log" 2>&1 || fail "uninterrupted run failed: $(tail -3 "$dir/a.log")"

"$bpkit" train "$dir/p.yaml" --out "$dir/b" >"$dir/b.log" 2>&1 &
pid=$!
while [ ! -f "$dir/b/checkpoint.bpk" ]; do
  kill -0 "$pid" 2>/dev/null || fail "the run ended before writing a checkpoint: $(tail -3 "$dir/b.log")"
  sleep 0.02
done
kill -9 "$pid"
wait "$pid" 2>/dev/null && fail "the killed run exited normally"
[ ! -f "$dir/b/model.bpk" ] || fail "the run finished before it was killed; nothing was tested"
# An interrupted run is not started over unasked (exit 2, the checkpoint kept).
ck=$(cksum <"$dir/b/checkpoint.bpk")
rc=0
"$bpkit" train "$dir/p.yaml" --out "$dir/b" >"$dir/b1.log" 2>&1 || rc=$?
[ $rc = 2 ] || fail "trained over an interrupted run without --force: $(tail -3 "$dir/b1.log")"
grep -q "an interrupted run is there (checkpoint.bpk): --resume continues it, --force" "$dir/b1.log" ||
  fail "interrupted run: $(cat "$dir/b1.log")"
[ "$(cksum <"$dir/b/checkpoint.bpk")" = "$ck" ] || fail "the checkpoint changed"
"$bpkit" train "$dir/p.yaml" --out "$dir/b" --resume >"$dir/b2.log" 2>&1 || fail "resume failed: $(tail -3 "$dir/b2.log")"
grep -q "resuming from .*checkpoint.bpk after epoch" "$dir/b2.log" || fail "did not resume: $(head -5 "$dir/b2.log")"
[ ! -f "$dir/b/checkpoint.bpk" ] || fail "the checkpoint was left behind"
da=$("$bpkit" inspect "$dir/a" | grep "weights digest")
db=$("$bpkit" inspect "$dir/b" | grep "weights digest")
[ -n "$da" ] && [ "$da" = "$db" ] || fail "models differ: uninterrupted '$da', resumed '$db'"
grep "resuming" "$dir/b2.log"
# Nothing to resume: a finished run, or a directory no run has written, is an error, never a
# silent retrain over the finished model.
"$bpkit" train "$dir/p.yaml" --out "$dir/b" --resume >"$dir/b3.log" 2>&1 && fail "resumed a finished run"
grep -q "training there has finished" "$dir/b3.log" || fail "finished run: $(cat "$dir/b3.log")"
[ "$("$bpkit" inspect "$dir/b" | grep "weights digest")" = "$db" ] || fail "the finished model changed"
# Nor is a finished model trained over without --force; with it, it is.
rc=0
"$bpkit" train "$dir/p.yaml" --out "$dir/b" >"$dir/b4.log" 2>&1 || rc=$?
[ $rc = 2 ] || fail "trained over a finished model without --force: $(tail -3 "$dir/b4.log")"
grep -q "a trained model is there (model.bpk): --force trains over it" "$dir/b4.log" ||
  fail "finished model: $(cat "$dir/b4.log")"
[ "$("$bpkit" inspect "$dir/b" | grep "weights digest")" = "$db" ] || fail "the finished model changed"
rc=0
"$bpkit" train "$dir/p.yaml" --out "$dir/b" --resume --force >"$dir/b5.log" 2>&1 || rc=$?
[ $rc = 2 ] || fail "--resume --force: $(cat "$dir/b5.log")"
"$bpkit" train "$dir/p.yaml" --out "$dir/b" --force >"$dir/b6.log" 2>&1 || fail "--force: $(tail -3 "$dir/b6.log")"
[ "$("$bpkit" inspect "$dir/b" | grep "weights digest")" = "$db" ] || fail "--force made another model"
"$bpkit" train "$dir/p.yaml" --out "$dir/c" --resume >"$dir/c.log" 2>&1 && fail "resumed nothing"
grep -q "no checkpoint.bpk to resume from" "$dir/c.log" || fail "no run: $(cat "$dir/c.log")"
# Ctrl-C (SIGINT) ends the run at once with status 130, saying how to continue; that works.
"$bpkit" train "$dir/p.yaml" --out "$dir/i" >"$dir/i.log" 2>&1 &
pid=$!
while [ ! -f "$dir/i/checkpoint.bpk" ]; do
  kill -0 "$pid" 2>/dev/null || fail "the run ended before writing a checkpoint: $(tail -3 "$dir/i.log")"
  sleep 0.02
done
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ $rc = 130 ] || fail "interrupted run: status $rc, expected 130: $(tail -3 "$dir/i.log")"
grep -q "interrupted; the checkpoint of the last finished epoch is kept: 'bpkit train .*p.yaml --out .*/i --resume' continues the run" "$dir/i.log" ||
  fail "interrupted run: $(tail -3 "$dir/i.log")"
"$bpkit" train "$dir/p.yaml" --out "$dir/i" --resume >"$dir/i2.log" 2>&1 || fail "resume after Ctrl-C: $(tail -3 "$dir/i2.log")"
[ "$("$bpkit" inspect "$dir/i" | grep "weights digest")" = "$da" ] || fail "resumed after Ctrl-C: another model"
echo "same model after kill and resume: $da"
rm -rf "$dir"
