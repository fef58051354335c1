#!/usr/bin/env bash
# Kill-and-resume of a verifier ensemble (training.members): runs killed with SIGKILL in the middle
# of the second member and just after it finished (its checkpoint then is a finished member's), then resumed with --resume, end
# with the members (same weights digests) an uninterrupted run makes; finished members are not
# trained again.
#   members_resume.sh BIN_DIR WORKDIR
set -u
bin=$1
dir=$2
fail() {
  echo "members resume test: $*" >&2
  exit 1
}
rm -rf "$dir"
mkdir -p "$dir"
"$bin/make_signatures" --out "$dir/set" --writers 10 --genuine 7 --forgeries 3 --clean --seed 9 \
  --threads 2 >/dev/null 2>&1 || fail "make_signatures failed"
cat >"$dir/p.yaml" <<YAML
name: members
stages:
  - image.read
  - signature.clean
  - plugin: signature.features
    params: {lbp: false, hog: false}
data: {layout: writers, train: set, validation_split: 0.3, tuples: 40000, references: 3}
network:
  layers:
    - batchnorm
    - dense: {units: 32}
    - relu
    - dropout: {p: 0.1}
    - dense: {units: 8}
    - l2_normalize
loss: {type: triplet, margin: 0.3}
optimizer: {type: adamw, lr: 0.002}
training: {epochs: 12, batch: 16, seed: 4, threads: 1, schedule: cosine, members: 3}
cache: {dir: cache}
YAML
digests() {
  for f in model.bpk model.2.bpk model.3.bpk; do
    "$bin/bpkit" inspect "$1/$f" | grep "weights digest" || echo "no digest: $1/$f"
  done
}
"$bin/bpkit" train "$dir/p.yaml" --out "$dir/a" >"$dir/a.log" 2>&1 ||
  fail "uninterrupted run failed: $(tail -3 "$dir/a.log")"
grep -q "member 3 of 3" "$dir/a.log" || fail "no third member: $(cat "$dir/a.log")"
expected=$(digests "$dir/a")
[ "$(echo "$expected" | sort -u | wc -l)" = 3 ] || fail "members are not three networks: $expected"

# The epochs the checkpoint holds when it is the second member's (its pipeline digest names the
# member), else -1.
epochs() {
  local info
  info=$("$bin/bpkit" inspect "$dir/b/checkpoint.bpk" 2>/dev/null)
  case $info in *"checkpoint.config = "*" member 2/3"*) ;; *)
    echo -1
    return
    ;;
  esac
  echo "$info" | sed -n 's/^meta checkpoint\.epochs_done = \([0-9][0-9]*\)$/\1/p'
}
# Kill 1: the second member in training (its own checkpoint after a few epochs).
"$bin/bpkit" train "$dir/p.yaml" --out "$dir/b" >"$dir/b.log" 2>&1 &
pid=$!
until [ -f "$dir/b/member.1.bpk" ] && [ "$(epochs)" -ge 3 ]; do
  kill -0 "$pid" 2>/dev/null || fail "the run ended before the second member's epoch 3"
  sleep 0.01
done
kill -9 "$pid"
wait "$pid" 2>/dev/null && fail "the killed run exited normally"
[ ! -f "$dir/b/member.2.bpk" ] || fail "killed too late: the second member had finished"
# Kill 2: as soon as the second member has finished (its checkpoint is the finished member's).
"$bin/bpkit" train "$dir/p.yaml" --out "$dir/b" --resume >"$dir/b2.log" 2>&1 &
pid=$!
until [ -f "$dir/b/member.2.bpk" ]; do
  kill -0 "$pid" 2>/dev/null || fail "the resumed run ended before the second member finished"
  sleep 0.005
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
grep -q "trained before the stop" "$dir/b2.log" || fail "member 1 trained again: $(cat "$dir/b2.log")"
grep -q "resuming from .*checkpoint.bpk after epoch [0-9]" "$dir/b2.log" ||
  fail "member 2 did not resume: $(cat "$dir/b2.log")"
"$bin/bpkit" train "$dir/p.yaml" --out "$dir/b" --resume >"$dir/b3.log" 2>&1 ||
  fail "the last resume failed: $(tail -3 "$dir/b3.log")"
[ "$(grep -c "trained before the stop" "$dir/b3.log")" = 2 ] ||
  fail "members 1 and 2 were not both kept: $(cat "$dir/b3.log")"
[ "$(digests "$dir/b")" = "$expected" ] ||
  fail "resumed members differ: $(digests "$dir/b") vs $expected"
for f in checkpoint.bpk member.1.bpk member.2.bpk member.3.bpk; do
  [ ! -f "$dir/b/$f" ] || fail "$f left behind"
done
echo "members resume: all checks passed"
