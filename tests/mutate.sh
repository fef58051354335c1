#!/usr/bin/env bash
# Mutation run: small plausible bugs planted one at a time in a copy of the tree, the whole test
# suite run against each. A mutant is killed when a test fails; one that survives is a gap in the
# tests (write the test that kills it). Prints one line per mutant and, last, the kill rate:
#   mutants=N mutants_killed=K survivors=...
#
#   tests/mutate.sh [--only K] [--list]
#
# Needs the tools of the README's test command (tools/setup.sh). Works in a private copy (a git
# worktree of HEAD under a temporary directory, removed at exit); the working tree is never
# touched. About 2-3 minutes a mutant on 2 cores (an incremental rebuild, then ctest).
set -u
src=$(cd "$(dirname "$0")/.." && pwd)

# file | text to replace (exactly once) | replacement | what the bug is
mutants=(
  "engine/src/ctc.cpp|const double c = can_skip(ext, s) ? prev[s - 2] : kNegInf;|const double c = (s >= 2 && (s & 1)) ? prev[s - 2] : kNegInf;|CTC log space: a repeated label skips the blank between its copies"
  "engine/src/layers/batchnorm.cpp|momentum_ * var * N / double(N - 1));|momentum_ * var);|batch norm: running variance from the biased batch variance"
  "engine/src/model_file.cpp|if (!stored.emplace(name, t).second) r.fail(\"tensor '\" + name + \"' appears twice\");|stored.emplace(name, t);|model files: a tensor name stored twice is accepted"
  "engine/src/model_file.cpp|if (crc != crc_file) r.fail(\"corrupted: checksum mismatch\");|(void)crc_file;|model files: the checksum is not checked"
  "engine/src/layers/pool2d.cpp|const T inv = T(1) / T(k_ * kw_);|const T inv = T(1) / T(k_ * k_);|average pooling: a non-square window divides by the square"
  "engine/src/optimizer.cpp|const double c1 = 1 - std::pow(beta1_, double(t_))|const double c1 = 1|Adam: no bias correction of the first moment"
  "engine/src/layers/dropout.cpp|const T keep = T(1 / (1 - p_));|const T keep = T(1);|dropout: kept units are not rescaled"
  "engine/src/network.cpp|return g == &grads_[0] ? &grads_[1] : &grads_[0];|return &grads_[0];|backward: a layer's input and output gradients share one buffer"
  "plugins/audio/mfcc.cpp|o.preemphasis = 0.97f;|o.preemphasis = 0.95f;|MFCC: the Sphinx preset's pre-emphasis"
  "plugins/audio/audio_stages.cpp|const double sd = std::sqrt(s2 / double(t));|const double sd = std::sqrt(s2 / double(t + 1));|CMVN: the standard deviation's divisor"
  "pipeline/src/speech.cpp|offset_ + double(from) / rate_);|double(from) / rate_);|long recordings: utterance times lose the audio already handed out"
  "pipeline/src/features.cpp|key = FeatureCache::key(content, pipeline.signature());|key = FeatureCache::key(content, \"\");|feature cache: the key ignores the pipeline's stages and parameters"
)

only=""
case "${1:-}" in
  --list)
    for i in "${!mutants[@]}"; do IFS='|' read -r f _ _ why <<<"${mutants[$i]}"; echo "$((i + 1)) $f: $why"; done
    exit 0 ;;
  --only) only=$2 ;;
  "") ;;
  *) echo "usage: tests/mutate.sh [--only K] [--list]" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'git -C "$src" worktree remove --force "$work/tree" >/dev/null 2>&1; rm -rf "$work"' EXIT
git -C "$src" worktree add --detach "$work/tree" HEAD >/dev/null 2>&1 || { echo "mutate: cannot make a worktree" >&2; exit 1; }
tree=$work/tree
# Every planted text must be there exactly once, or the list is stale.
for m in "${mutants[@]}"; do
  IFS='|' read -r f old _ _ <<<"$m"
  n=$(OLD="$old" perl -0ne '$n += () = /\Q$ENV{OLD}\E/g; END { print $n + 0 }' "$tree/$f")
  [ "$n" = 1 ] || { echo "mutate: '$old' occurs $n times in $f (expected once); update the list" >&2; exit 1; }
done
cmake -S "$tree" -B "$tree/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPKIT_BUILD_BENCH=OFF >/dev/null ||
  { echo "mutate: cmake failed" >&2; exit 1; }
cmake --build "$tree/build" >/dev/null || { echo "mutate: the unmutated tree does not build" >&2; exit 1; }
ctest --test-dir "$tree/build" -j2 >/dev/null 2>&1 || { echo "mutate: the unmutated suite fails" >&2; exit 1; }

total=0 killed=0 survivors=""
for i in "${!mutants[@]}"; do
  k=$((i + 1))
  [ -n "$only" ] && [ "$only" != "$k" ] && continue
  IFS='|' read -r f old new why <<<"${mutants[$i]}"
  OLD="$old" NEW="$new" perl -0pi -e 's/\Q$ENV{OLD}\E/$ENV{NEW}/' "$tree/$f"
  total=$((total + 1))
  if ! cmake --build "$tree/build" >/dev/null 2>&1; then
    verdict="does not build (counted as killed)"
    killed=$((killed + 1))
  elif ctest --test-dir "$tree/build" -j2 >"$work/ctest.log" 2>&1; then
    verdict="SURVIVED"
    survivors="$survivors $k"
  else
    verdict="killed by $(grep -c ' - .*(Failed\| - .*(SEGFAULT\| - .*(Timeout' "$work/ctest.log") failing tests: $(grep -o '[0-9]* - [A-Za-z0-9_:. -]*' "$work/ctest.log" | head -3 | sed 's/^[0-9]* - //' | tr '\n' ',' | sed 's/ *,$//; s/ *,/, /g')"
    killed=$((killed + 1))
  fi
  echo "mutant $k ($f: $why): $verdict"
  git -C "$tree" checkout -- "$f"
done
cmake --build "$tree/build" >/dev/null 2>&1
echo "mutants=$total mutants_killed=$killed survivors=${survivors:- none}"
