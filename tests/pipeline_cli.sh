#!/bin/sh
# The bpkit command end to end on a small digits pipeline: train, the model directory and its
# report, inspect, predict, eval, plugins, and the exit codes of configuration and data errors.
#   pipeline_cli.sh BPKIT MAKE_DIGITS WORKDIR
set -eu
bpkit=$1
make_digits=$2
dir=$3
fail() {
  echo "pipeline test: $*" >&2
  exit 1
}
# expect STATUS REGEX command...: runs the command, checks its exit status and that its output
# matches REGEX.
expect() {
  want=$1
  regex=$2
  shift 2
  set +e
  out=$("$@" 2>&1)
  got=$?
  set -e
  [ "$got" = "$want" ] || fail "'$*' exited $got, expected $want: $out"
  printf '%s\n' "$out" | grep -Eq -- "$regex" || fail "'$*' printed no match for '$regex': $out"
}
rm -rf "$dir"
mkdir -p "$dir"
"$make_digits" --out "$dir/data" --limit 60 >/dev/null
cat >"$dir/p.yaml" <<YAML
name: digits_small
stages:
  - image.read
  - image.gray
  - plugin: image.resize
    params: {width: 16, height: 16}
  - image.features
data:
  train: data/train.tsv
  test: data/test.tsv
network:
  layers:
    - flatten
    - dense: {units: 64}
    - relu
    - dense: {units: 10}
optimizer: {type: sgd, lr: 0.05, momentum: 0.9}
training: {epochs: 8, batch: 16, seed: 3}
cache: {dir: cache}
output: {dir: model}
YAML
expect 0 "test_accuracy 0\.[5-9]" "$bpkit" train "$dir/p.yaml"
for f in model.bpk pipeline.yaml metrics.json curves.png confusion.png summary.txt; do
  [ -s "$dir/model/$f" ] || fail "the model directory lacks $f"
done
expect 0 "features: train 600 samples \(600 from the cache" "$bpkit" train "$dir/p.yaml" --out "$dir/m2"
expect 0 "stage image.resize width=16 height=16" "$bpkit" inspect "$dir/model"
expect 0 "meta class.9 = 9" "$bpkit" inspect "$dir/model"
# predict: the file, the class and its probability; --top 3 gives three.
expect 0 "0_450.png	0	0\.[0-9]+$" "$bpkit" predict "$dir/model" "$dir/data/images/0_450.png"
expect 0 "7_450.png	[0-9]	0\.[0-9]+	[0-9]	0\.[0-9]+	[0-9]	0\.[0-9]+$" \
  "$bpkit" predict "$dir/model" "$dir/data/images/7_450.png" --top 3
expect 0 "samples 60 skipped 0 accuracy 0\.[5-9]" "$bpkit" eval "$dir/model" "$dir/data/test.tsv"
expect 0 "image.resize 1.0  \(image -> image\)" "$bpkit" plugins
# --seed: another seed, other weights; the model directory's pipeline file says so.
expect 0 "test_accuracy 0\.[5-9]" "$bpkit" train "$dir/p.yaml" --seed 4 --out "$dir/s4"
grep -q "^# trained with 'bpkit train --seed 4'" "$dir/s4/pipeline.yaml" || fail "pipeline.yaml does not note --seed 4"
d3=$("$bpkit" inspect "$dir/m2" | grep 'weights digest')
d4=$("$bpkit" inspect "$dir/s4" | grep 'weights digest')
[ "$d3" != "$d4" ] || fail "--seed 4 trained the same weights as seed 3 ($d3)"
expect 2 "--seed expects an integer" "$bpkit" train "$dir/p.yaml" --seed -1
# ensemble: two trained models averaged; eval, predict and inspect see both.
expect 0 "ensemble of 2" "$bpkit" ensemble --out "$dir/ens" "$dir/model" "$dir/s4"
[ -s "$dir/ens/model.2.bpk" ] && [ -s "$dir/ens/pipeline.yaml" ] || fail "the ensemble lacks its files"
expect 0 "ensemble of 2 members" "$bpkit" inspect "$dir/ens"
expect 0 "member 2 .*model.2.bpk: \[1,16,16\] -> \[10\], parameters [0-9]+, $d4" "$bpkit" inspect "$dir/ens"
expect 0 "samples 60 skipped 0 accuracy 0\.[5-9]" "$bpkit" eval "$dir/ens" "$dir/data/test.tsv"
expect 0 "0_450.png	[0-9]	0\.[0-9]+$" "$bpkit" predict "$dir/ens" "$dir/data/images/0_450.png"
expect 2 "at least two model directories" "$bpkit" ensemble --out "$dir/e2" "$dir/model"
expect 2 "needs --out" "$bpkit" ensemble "$dir/model" "$dir/s4"
expect 1 "nothing: not a model directory" "$bpkit" ensemble --out "$dir/e2" "$dir/model" "$dir/nothing"
expect 1 "already an ensemble of 2" "$bpkit" ensemble --out "$dir/e2" "$dir/ens" "$dir/model"
[ ! -e "$dir/e2" ] || fail "a refused ensemble left $dir/e2"
expect 1 "named twice" "$bpkit" ensemble --out "$dir/e2" "$dir/model" "$dir/model/"
expect 1 "the output is member 2's directory" "$bpkit" ensemble --out "$dir/s4" "$dir/model" "$dir/s4"
# Bad input: exit 1 with the file named; usage and configuration errors: exit 2.
printf 'not an image' >"$dir/fake.png"
expect 1 "fake.png: stage 'image.read' failed: not an image" "$bpkit" predict "$dir/model" "$dir/fake.png"
expect 2 "not a model directory" "$bpkit" predict "$dir/nothing" "$dir/fake.png"
expect 1 "cannot open the pipeline file" "$bpkit" train "$dir/none.yaml"
sed 's/epochs: 8/epochz: 8/' "$dir/p.yaml" >"$dir/typo.yaml"
expect 2 "typo.yaml:18:12: unknown key 'epochz' in training; did you mean 'epochs'" "$bpkit" train "$dir/typo.yaml"
sed 's/image.gray/image.grey/' "$dir/p.yaml" >"$dir/plugin.yaml"
expect 2 "plugin.yaml:4:5: no plugin named 'image.grey'; did you mean 'image.gray'" "$bpkit" train "$dir/plugin.yaml"
sed 's/units: 64/unit: 64/' "$dir/p.yaml" >"$dir/attr.yaml"
expect 2 "attr.yaml:14:[0-9]+: layer 'dense' has no attribute 'unit'; did you mean 'units'" "$bpkit" train "$dir/attr.yaml"
sed 's/units: 10}/units: 7}/' "$dir/p.yaml" >"$dir/out.yaml"
expect 2 "out.yaml:16:7: the network ends with shape \[7\], but there are 10 classes" "$bpkit" train "$dir/out.yaml" --out "$dir/m_out"
printf '%s\n' "images/0_000.png	0" "images/0_001.png	0" "images/1_000.png	1" "images/missing.png	1" \
  "images/1_001.png	1" >"$dir/data/broken.tsv"
sed 's#data/train.tsv#data/broken.tsv#; /test: /d; s/units: 10}/units: 2}/' "$dir/p.yaml" >"$dir/broken.yaml"
expect 1 "missing.png: cannot read the file \(listed at .*broken.tsv:4\)" "$bpkit" train "$dir/broken.yaml" --out "$dir/m_broken"
sed 's/seed: 3}/seed: 3, on_error: skip}/; s/units: 10}/units: 2}/' "$dir/broken.yaml" >"$dir/skip.yaml"
expect 0 "features: train 4 samples \(.*1 skipped\)" "$bpkit" train "$dir/skip.yaml" --out "$dir/m3"
expect 0 "skipped .*missing.png" "$bpkit" train "$dir/skip.yaml" --out "$dir/m3" --force
for c in train eval predict plugins inspect cache; do
  expect 0 "usage: bpkit $c" "$bpkit" $c --help
done
expect 2 "train takes one pipeline file" "$bpkit" train
expect 2 "unknown option '--bogus'" "$bpkit" train "$dir/p.yaml" --bogus 1
rm -rf "$dir"
echo "pipeline command checks passed"
