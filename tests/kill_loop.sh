#!/usr/bin/env bash
# SIGKILL at random points, again and again: a training run is killed at pseudo-random moments
# (fixed seed, so a failure replays), resumed after each kill, and finally resumed to the end.
# After every kill the last complete checkpoint must load and must not be older than the one
# before the kill (nothing lost), and the model the run ends with must be the one an uninterrupted
# run makes (same weights digest).
#   kill_loop.sh BPKIT MAKE_DIGITS WORKDIR [KILLS] [SEED]
# Prints "kill_runs=N lost=M" last.
set -u
bpkit=$1
make_digits=$2
dir=$3
kills=${4:-7}
seed=${5:-14}
fail() {
  echo "kill loop: $*" >&2
  exit 1
}
rm -rf "$dir"
mkdir -p "$dir"
"$make_digits" --out "$dir/data" --limit 50 >/dev/null || fail "make_digits failed"
# Dropout, augmentation and Adam: the state a checkpoint must carry (as in resume.sh), on a run of
# a few seconds with a checkpoint after each of its 150 short epochs.
cat >"$dir/p.yaml" <<YAML
name: kill_loop
stages:
  - image.read
  - image.gray
  - plugin: image.resize
    params: {width: 16, height: 16}
  - image.features
data:
  train: data/train.tsv
  test: data/test.tsv
  validation_split: 0.1
network:
  layers:
    - flatten
    - dense: {units: 256}
    - relu
    - dropout: {p: 0.2}
    - dense: {units: 10}
optimizer: {type: adam, lr: 0.002}
training:
  {epochs: 150, batch: 8, seed: 3, threads: 2, schedule: cosine, patience: 50,
   augment: {shift: 1, rotate: 5, scale: 0.05}}
cache: {dir: cache}
YAML
# The uninterrupted run, twice: the first computes the features, the second reads them from the
# cache (as the killed runs do) and gives the time T the kill delays scale with.
"$bpkit" train "$dir/p.yaml" --out "$dir/a" >"$dir/a.log" 2>&1 || fail "uninterrupted run: $(tail -3 "$dir/a.log")"
digest_a=$("$bpkit" inspect "$dir/a" | grep "weights digest")
[ -n "$digest_a" ] || fail "no weights digest: $("$bpkit" inspect "$dir/a")"
start=$(date +%s.%N)
"$bpkit" train "$dir/p.yaml" --out "$dir/a2" >"$dir/a2.log" 2>&1 || fail "second run: $(tail -3 "$dir/a2.log")"
full=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
[ "$("$bpkit" inspect "$dir/a2" | grep "weights digest")" = "$digest_a" ] ||
  fail "a run on cached features ends with another model"

# The epochs a checkpoint holds (its metadata), -1 without a checkpoint, "unloadable" when it does
# not load.
checkpoint_epoch() {
  [ -f "$dir/b/checkpoint.bpk" ] || {
    echo -1
    return
  }
  local info
  info=$("$bpkit" inspect "$dir/b/checkpoint.bpk" 2>&1) || {
    echo "unloadable"
    echo "$info" >&2
    return
  }
  echo "$info" | sed -n 's/^meta checkpoint\.epochs_done = \([0-9][0-9]*\)$/\1/p'
}

# Kill delays from a fixed seed: uniform in [0.3 T / KILLS, 2 T / KILLS], so that the runs, less
# their start-up, together cover most of a run and every kill lands (an early one before the first
# checkpoint, the others in epochs and in checkpoint writes).
delays=$(awk -v n="$kills" -v s="$seed" -v t="$full" \
  'BEGIN { srand(s); for (i = 0; i < n; i++) printf "%.2f\n", t / n * (0.3 + 1.7 * rand()) }')
runs=0
lost=0
last=-1
for d in $delays; do
  if [ -f "$dir/b/model.bpk" ]; then
    echo "the run finished before kill $((runs + 1)); stopping the kills"
    break
  fi
  resume=""
  [ "$last" = -1 ] || resume=--resume
  "$bpkit" train "$dir/p.yaml" --out "$dir/b" $resume >>"$dir/b.log" 2>&1 &
  pid=$!
  sleep "$d"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  status=$?
  if [ "$status" = 0 ]; then
    echo "the run finished before kill $((runs + 1)); stopping the kills"
    break
  fi
  [ "$status" = 137 ] || fail "run $((runs + 1)) failed before its kill (exit $status): $(tail -3 "$dir/b.log")"
  runs=$((runs + 1))
  now=$(checkpoint_epoch)
  echo "kill $runs after ${d}s: checkpoint epoch ${last} -> ${now}"
  if [ "$now" = unloadable ] || [ -z "$now" ] || [ "$now" -lt "$last" ]; then
    lost=$((lost + 1))
    echo "LOST: the checkpoint of epoch $last is gone or unreadable after kill $runs" >&2
    [ "$now" = unloadable ] || [ -z "$now" ] && now=-1
  fi
  last=$now
done
if [ ! -f "$dir/b/model.bpk" ]; then
  resume=""
  [ "$last" = -1 ] || resume=--resume
  "$bpkit" train "$dir/p.yaml" --out "$dir/b" $resume >>"$dir/b.log" 2>&1 ||
    fail "the final resume failed: $(tail -3 "$dir/b.log")"
fi
digest_b=$("$bpkit" inspect "$dir/b" | grep "weights digest")
echo "kill_runs=$runs lost=$lost"
[ "$lost" = 0 ] || fail "$lost checkpoints lost"
[ "$digest_a" = "$digest_b" ] || fail "models differ: uninterrupted '$digest_a', killed $runs times '$digest_b'"
echo "same model after $runs kills: $digest_a"
rm -rf "$dir"
