#!/usr/bin/env bash
# Hostile and damaged inputs against the real programs (bpkit train/predict/eval, ocr_app,
# speech_app, signature_app): each must end with its documented exit code and a message that says
# what is wrong -- never a crash (a signal), never a hang, never more memory than a fixed limit.
#   hostile.sh BIN_DIR SOURCE_DIR WORKDIR
# Small inputs are committed in tests/hostile/; large or binary ones (100000x100000 PNG and JPEG
# headers, a 4 GB WAV header, a model declaring 2^40 parameters, NaN weights and features, YAML
# nested 100000 deep) are written at test time by tests/hostile/make_inputs.py.
# Decisions: a model file holding a NaN or infinite weight is refused at load (it could only give
# NaN outputs); paths with spaces and non-ASCII names must work. Tests running as root cannot make a
# file unreadable with chmod 000, so that case is skipped (with a message) under root.
# Prints "hostile_inputs=N hostile_failed=M" last; exits 1 when any input failed.
set -u
unset BPKIT_MODEL_PATH  # the shipped models, found next to the programs
export BPKIT_NUM_THREADS=2
bin=$1
src=$2
dir=$3
here=$src/tests/hostile
rm -rf "$dir"
mkdir -p "$dir"
g=$dir/gen
python3 "$here/make_inputs.py" "$g" "$src/models/digits/model.bpk" || exit 1

# Every program runs under a 3 GiB address-space limit (they need well under 1 GiB on these
# inputs; the valid controls below show they work under it). AddressSanitizer reserves terabytes
# of address space up front, so a sanitizer build runs without the limit.
limit=3145728
if grep -q __asan_init "$bin/bpkit" 2>/dev/null; then
  limit=unlimited
fi

inputs=0
failed=0
# check NAME STATUS TEXT CMD...: runs CMD under the limit and a 120 s timeout; it must exit with
# STATUS and print TEXT (a fixed string; empty: anything) on stdout or stderr.
check() {
  local name=$1 want=$2 text=$3
  shift 3
  inputs=$((inputs + 1))
  (
    ulimit -v "$limit"
    exec timeout -k 5 120 "$@"
  ) >"$dir/out" 2>"$dir/err" </dev/null
  local got=$? problem=""
  if [ "$got" = 124 ] || [ "$got" = 137 ]; then
    problem="hung (killed after 120 s)"
  elif [ "$got" -ge 128 ]; then
    problem="crashed (signal $((got - 128)))"
  elif [ "$got" != "$want" ]; then
    problem="exit $got, expected $want"
  elif [ -n "$text" ] && ! grep -qF -- "$text" "$dir/out" "$dir/err"; then
    problem="no '$text' in its output"
  fi
  if [ -n "$problem" ]; then
    failed=$((failed + 1))
    echo "FAIL $name: $problem: $(head -c 400 "$dir/err")"
  else
    echo "ok   $name (exit $got)"
  fi
}

bpkit=$bin/bpkit
ocr=$bin/ocr_app
speech=$bin/speech_app
sig=$bin/signature_app
cp "$src/models/digits/model.bpk" "$dir/good.bpk"

# --- Model directories (bpkit predict, ocr_app --mode char): damaged model.bpk and pipeline.yaml.
"$bin/make_digits" --out "$dir/data" --limit 20 >/dev/null || exit 1
digit=$dir/data/images/3_000.png
model_dir() {  # model_dir NAME MODEL_FILE [PIPELINE]: a copy of the digits model with those files
  mkdir -p "$dir/$1"
  cp "$2" "$dir/$1/model.bpk"
  cp "${3:-$src/models/digits/pipeline.yaml}" "$dir/$1/pipeline.yaml"
}
model_dir digits "$dir/good.bpk"
check "valid model, predict (control)" 0 "3_000.png" "$bpkit" predict "$dir/digits" "$digit"
check "valid model, ocr_app char (control)" 0 "" "$ocr" --mode char --model "$dir/digits" "$digit"
: >"$dir/empty"
model_dir m_empty "$dir/empty"
check "empty model.bpk" 2 "shorter than the header" "$bpkit" predict "$dir/m_empty" "$digit"
model_dir m_trunc "$g/truncated.bpk"
check "truncated model.bpk" 2 "truncated" "$bpkit" predict "$dir/m_trunc" "$digit"
check "truncated model.bpk, ocr_app" 2 "truncated" "$ocr" --mode char --model "$dir/m_trunc" "$digit"
model_dir m_magic "$g/wrong_magic.bpk"
check "wrong magic model.bpk" 2 "not a bpkit model" "$bpkit" predict "$dir/m_magic" "$digit"
model_dir m_huge "$g/huge_params.bpk"
check "model declaring 2^40 parameters" 2 "needs tensor 'huge.weight' of shape [1048576,1048576]" \
  "$bpkit" predict "$dir/m_huge" "$digit"
check "model declaring 2^40 parameters, inspect" 1 "which is missing from the file" \
  "$bpkit" inspect "$g/huge_params.bpk"
model_dir m_nan "$g/nan_weights.bpk"
check "NaN weight" 2 "holds NaN at element 1" "$bpkit" predict "$dir/m_nan" "$digit"
check "NaN weight, ocr_app" 2 "holds NaN" "$ocr" --mode char --model "$dir/m_nan" "$digit"
model_dir m_inf "$g/inf_weights.bpk"
check "infinite weight" 2 "holds an infinite value" "$bpkit" predict "$dir/m_inf" "$digit"
model_dir m_yaml_empty "$dir/good.bpk" "$dir/empty"
check "empty pipeline.yaml in a model" 2 "the pipeline file is empty" \
  "$bpkit" predict "$dir/m_yaml_empty" "$digit"
model_dir m_yaml_trunc "$dir/good.bpk" "$here/truncated.yaml"
check "truncated pipeline.yaml in a model" 2 "pipeline.yaml:" \
  "$bpkit" predict "$dir/m_yaml_trunc" "$digit"
# The other apps' models.
mkdir -p "$dir/speech_bad" "$dir/sig_bad"
cp "$src/models/speech_digits/pipeline.yaml" "$dir/speech_bad/"
cp "$g/truncated.bpk" "$dir/speech_bad/model.bpk"
check "truncated model, speech_app" 2 "truncated" \
  "$speech" --model "$dir/speech_bad" "$src/examples/speech/digits.wav"
cp "$src/models/signature/pipeline.yaml" "$dir/sig_bad/"
cp "$dir/empty" "$dir/sig_bad/model.bpk"
check "empty model, signature_app" 2 "model file" "$sig" verify --model "$dir/sig_bad" \
  --reference "$src/examples/signatures/reference-1.jpg" \
  --query "$src/examples/signatures/query-genuine.jpg"

# --- Images: bpkit predict (digits), ocr_app (page and char), signature_app.
page=$src/examples/ocr/page.png
head -c 300 "$page" >"$dir/truncated.png"
head -c 2000 "$src/examples/signatures/reference-1.jpg" >"$dir/truncated.jpg"
cp "$dir/empty" "$dir/empty.png"
for img in empty.png truncated.png truncated.jpg; do
  check "image $img, predict" 1 "$img" "$bpkit" predict "$dir/digits" "$dir/$img"
  check "image $img, ocr_app" 1 "$img" "$ocr" "$dir/$img"
done
check "image with wrong magic, predict" 1 "wrong_magic.png" \
  "$bpkit" predict "$dir/digits" "$here/wrong_magic.png"
check "image with wrong magic, ocr_app" 1 "wrong_magic.png" "$ocr" "$here/wrong_magic.png"
for img in huge.png huge.jpg large_no_data.png; do
  check "image $img, predict" 1 "$img" "$bpkit" predict "$dir/digits" "$g/$img"
  check "image $img, ocr_app" 1 "$img" "$ocr" "$g/$img"
  check "image $img, ocr_app char" 1 "$img" "$ocr" --mode char "$g/$img"
done
# A real, decodable 9900x9900 blank page: read within the limit (about 2 GB at its peak).
check "blank 98-megapixel page, ocr_app" 0 "" "$ocr" "$g/large_blank.png"
check "image huge.png, signature_app" 1 "huge.png" "$sig" verify \
  --reference "$g/huge.png" --query "$src/examples/signatures/query-genuine.jpg"
check "image empty.png, signature_app enroll" 1 "empty.png" "$sig" enroll --db "$dir/db0" \
  --writer w "$dir/empty.png"

# --- Audio and feature files: speech_app.
cp "$dir/empty" "$dir/empty.wav"
check "WAV empty" 1 "empty.wav" "$speech" "$dir/empty.wav"
check "WAV truncated" 1 "truncated.wav" "$speech" "$g/truncated.wav"
check "WAV with wrong magic" 1 "wrong_magic.wav" "$speech" "$here/wrong_magic.wav"
check "WAV header claiming 4 GB" 0 "" "$speech" "$g/huge.wav"
# A float file's NaN and infinite samples are read as silence (the audio reader's documented
# choice: one bad sample must not poison a whole recording), so this one decodes as silence.
check "WAV of NaN and Inf samples" 0 "" "$speech" "$g/nan.wav"
cp "$dir/empty" "$dir/empty.ark"
cp "$dir/empty" "$dir/empty.mfc"
head -c 1000 "$src/tests/data/feature_files/seven_two.mfc" >"$dir/truncated.mfc"
for f in "$dir/empty.ark" "$g/huge.ark" "$g/nan.ark" "$dir/empty.mfc" "$dir/truncated.mfc" \
  "$g/huge.mfc" "$g/inf.mfc"; do
  check "features $(basename "$f")" 1 "$(basename "$f")" "$speech" --features "$f"
done

# --- Signature enrollments (signature_app verify --db).
refs=$src/examples/signatures
query=$refs/query-genuine.jpg
mkdir -p "$dir/db"
for j in empty deep truncated wrong_format; do
  case $j in
    empty) : >"$dir/db/$j.json" ;;
    deep) cp "$g/deep.json" "$dir/db/$j.json" ;;
    *) cp "$here/${j}_enrollment.json" "$dir/db/$j.json" ;;
  esac
  check "enrollment $j.json" 1 "$j.json" "$sig" verify --db "$dir/db" --writer "$j" "$query"
done

# --- Pipeline files and manifests (bpkit train, bpkit eval).
pipeline() {  # pipeline FILE TRAIN_MANIFEST: a tiny, fast digits pipeline
  cat >"$1" <<YAML
name: hostile
stages: [image.read, image.gray, {plugin: image.resize, params: {width: 8, height: 8}}, image.features]
data: {train: $2, test: $2}
network: {layers: [flatten, {dense: {units: 10}}]}
optimizer: {type: sgd, lr: 0.1}
training: {epochs: 1, batch: 16, seed: 1}
YAML
}
check "empty pipeline file" 2 "the pipeline file is empty" "$bpkit" train "$dir/empty" --out "$dir/r"
check "truncated pipeline file" 2 "truncated.yaml:" "$bpkit" train "$here/truncated.yaml" --out "$dir/r"
check "YAML nested 100000 deep" 2 "deep.yaml" "$bpkit" train "$g/deep.yaml" --out "$dir/r"
check "YAML of 200000 stages" 2 "enormous.yaml" "$bpkit" train "$g/enormous.yaml" --out "$dir/r"
# Sizes a pipeline asks for: a layer too large for memory, one beyond the attribute range, an image
# resize beyond the plugin's declared range.
pipeline "$dir/data/p_big.yaml" train.tsv
sed 's/units: 10}/units: 2000000000}}, {dense: {units: 10}/' "$dir/data/p_big.yaml" >"$dir/data/p_units.yaml"
if [ "$limit" = unlimited ]; then  # without the limit, the allocation could succeed lazily
  echo "skip layer of 2000000000 units: no memory limit under AddressSanitizer"
else
  check "layer of 2000000000 units" 2 "layer 'dense' is too large: its 130000000000 parameters" \
    "$bpkit" train "$dir/data/p_units.yaml" --out "$dir/r"
fi
sed 's/units: 10}/units: 4294967296}/' "$dir/data/p_big.yaml" >"$dir/data/p_units2.yaml"
check "layer of 2^32 units" 2 "attribute 'units' must be an integer in 1..2147483647" \
  "$bpkit" train "$dir/data/p_units2.yaml" --out "$dir/r"
sed 's/width: 8, height: 8/width: 100000, height: 100000/' "$dir/data/p_big.yaml" >"$dir/data/p_resize.yaml"
check "resize to 100000x100000" 2 "value 100000 is out of range" \
  "$bpkit" train "$dir/data/p_resize.yaml" --out "$dir/r"
cp "$dir/empty" "$dir/data/empty.tsv"
# Ten classes (the network's width, checked first), the last image missing.
for k in 0 1 2 3 4 5 6 7 8; do printf 'images/%d_000.png\t%d\n' $k $k; done >"$dir/data/missing.tsv"
printf 'images/nosuch.png\t9\n' >>"$dir/data/missing.tsv"
head -c 3000 /dev/urandom | tr -d '\n\t' >"$dir/data/garbage.tsv"
cp "$dir/data/images/5_000.png" "$dir/data/images/locked.png"
chmod 000 "$dir/data/images/locked.png"
printf 'images/0_000.png\t0\nimages/locked.png\t5\n' >"$dir/data/locked.tsv"
for m in empty missing garbage locked nosuch; do
  if [ "$m" = locked ] && [ "$(id -u)" = 0 ]; then
    echo "skip manifest locked.tsv: running as root, chmod 000 does not stop reading"
    continue
  fi
  pipeline "$dir/data/p_$m.yaml" "$m.tsv"
  case $m in
    empty) text="no samples" ;;
    missing) text="nosuch.png" ;;
    garbage) text="garbage.tsv" ;;
    locked) text="locked.png" ;;
    nosuch) text="nosuch.tsv" ;;
  esac
  check "manifest $m.tsv, train" 1 "$text" "$bpkit" train "$dir/data/p_$m.yaml" --out "$dir/r_$m"
done
check "manifest pointing at a missing image, eval" 1 "nosuch.png" \
  "$bpkit" eval "$dir/digits" "$dir/data/missing.tsv"
check "missing manifest, eval" 1 "nosuch.tsv" "$bpkit" eval "$dir/digits" "$dir/data/nosuch.tsv"

# --- Paths with spaces and non-ASCII names: these must work.
u="$dir/dir with spaces/ünïcødé ñame"
mkdir -p "$u/images"
cp "$digit" "$u/images/três 3.png"
cp "$src/examples/speech/digits.wav" "$u/dígitos ü.wav"
for i in 1 2 3 4 5; do cp "$refs/reference-$i.jpg" "$u/référence $i.jpg"; done
check "non-ASCII path, predict" 0 "três 3.png" "$bpkit" predict "$dir/digits" "$u/images/três 3.png"
check "non-ASCII path, ocr_app char" 0 "" "$ocr" --mode char "$u/images/três 3.png"
check "non-ASCII path, speech_app" 0 "seven seven five three two nine" "$speech" "$u/dígitos ü.wav"
check "non-ASCII path, signature_app enroll" 0 "" "$sig" enroll --db "$u/db ü" --writer w \
  "$u/référence 1.jpg" "$u/référence 2.jpg" "$u/référence 3.jpg" "$u/référence 4.jpg" \
  "$u/référence 5.jpg"
check "non-ASCII path, signature_app verify" 0 "genuine" "$sig" verify --db "$u/db ü" --writer w \
  "$query"
for d in 0 1 2 3 4 5 6 7 8 9; do
  for k in 000 001 002; do
    cp "$dir/data/images/${d}_$k.png" "$u/images/dígito ${d} $k.png"
    printf 'images/dígito %s %s.png\t%s\n' "$d" "$k" "$d" >>"$u/train set.tsv"
  done
done
pipeline "$u/pipeline ü.yaml" "train set.tsv"
check "non-ASCII path, train" 0 "" "$bpkit" train "$u/pipeline ü.yaml" --out "$u/model ü"
check "non-ASCII path, eval" 0 "accuracy" "$bpkit" eval "$u/model ü" "$u/train set.tsv"

chmod -R u+rwX "$dir"
echo "hostile_inputs=$inputs hostile_failed=$failed"
[ "$failed" = 0 ] || exit 1
rm -rf "$dir"
