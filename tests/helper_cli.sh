#!/usr/bin/env bash
# The helper programs of tools/ and bench/ as command-line tools: --help/-h prints a usage text on
# stdout (exit 0); an unknown option, a missing value, a malformed or out-of-range number or an
# unknown choice is one line on stderr naming the option, nothing on stdout, exit 2; a runtime
# failure (an output path that is a file, an unreadable input) is one line "PROGRAM: PATH: why",
# exit 1; never an uncaught exception. Nothing here runs a benchmark or generates data: every call
# stops at its arguments or at its first file (each under a timeout, should one ever start work).
#   helper_cli.sh BIN_DIR WORKDIR
# The bench programs are skipped when not built (BPKIT_BUILD_BENCH=OFF; bench_gemm needs Eigen and
# OpenMP).
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 BIN_DIR WORKDIR" >&2
  exit 2
fi
bin=$1
work=$2
rm -rf "$work"
mkdir -p "$work" || exit 1
file=$work/a-file.txt # an existing regular file, where a directory is expected
echo text >"$file"
missing=$work/no-such-file.txt

checks=0 failures=0 programs=0 skipped=""
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect STATUS STREAM REGEX PROGRAM [ARGS...]: runs BIN_DIR/PROGRAM ARGS, checks its exit status
# and that STREAM (out or err) matches the extended regex REGEX ('' = no check). A usage error or
# a failure (status 1 or 2) must print exactly one line on stderr and nothing on stdout.
expect() {
  local want=$1 stream=$2 regex=$3 status out err text
  shift 3
  checks=$((checks + 1))
  timeout 20 "$bin/$1" "${@:2}" >"$work/stdout" 2>"$work/stderr"
  status=$?
  out=$(cat "$work/stdout")
  err=$(cat "$work/stderr")
  if [ "$status" != "$want" ]; then
    fail "'$*' exited with $status, expected $want; stderr: $err"
    return
  fi
  text=$out
  [ "$stream" = err ] && text=$err
  if [ -n "$regex" ] && ! printf '%s\n' "$text" | grep -Eq -- "$regex"; then
    fail "'$*': std$stream does not match /$regex/: $text"
    return
  fi
  if [ "$want" != 0 ]; then
    [ -z "$out" ] || fail "'$*' (exit $status) printed on stdout: $out"
    if [ -z "$err" ] || [ "$(printf '%s\n' "$err" | wc -l)" != 1 ]; then
      fail "'$*' (exit $status): expected one line on stderr, got: $err"
    fi
  fi
}

# common PROGRAM: --help, -h, --version, --bogus and -x.
common() {
  local p=$1
  expect 0 out "^usage: $p" "$p" --help
  expect 0 out "^usage: $p" "$p" -h
  expect 0 out "^$p \(bpkit " "$p" --version
  expect 2 err "^$p: .*'--bogus'" "$p" --bogus
  expect 2 err "^$p: .*'-x'" "$p" -x
  # The help text: a synopsis, one line per option, what the program does.
  timeout 20 "$bin/$p" --help >"$work/help" 2>&1
  [ "$(wc -l <"$work/help")" -ge 5 ] || fail "$p --help: a usage text of a few lines expected"
  grep -Eq -- '-h, --help' "$work/help" || fail "$p --help does not list -h, --help"
}

# have PROGRAM: whether it was built; a missing tool is a failure, a missing benchmark is skipped.
have() {
  if [ -x "$bin/$1" ]; then
    programs=$((programs + 1))
    return 0
  fi
  case $1 in
    bench_* | layer_profile | assoc_memory | ocr_score | signature_baseline | g2p_bench)
      skipped="$skipped $1"
      ;;
    *) fail "$bin/$1 is missing" ;;
  esac
  return 1
}

if have make_digits; then
  common make_digits
  expect 2 err "^make_digits: --limit needs a value$" make_digits --limit
  expect 2 err "^make_digits: --limit expects a number in 1\.\.450, got '0'$" make_digits --limit 0
  expect 2 err "^make_digits: --limit expects .*'12x'" make_digits --limit 12x
  expect 2 err "^make_digits: --limit expects .*'451'" make_digits --limit 451
  expect 2 err "^make_digits: unexpected argument 'extra'" make_digits extra
  # Runtime failures: an output that is a file, under a file; a missing sheet.
  expect 1 err "^make_digits: $file: exists and is not a directory$" make_digits --out "$file"
  expect 1 err "^make_digits: $file/sub/images: cannot create directory: " \
    make_digits --out "$file/sub"
  expect 1 err "^make_digits: $missing: " make_digits --sheet "$missing" --out "$work/digits"
  [ -e "$work/digits" ] && fail "make_digits created its output before finding its sheet missing"
fi

if have render_lines; then
  common render_lines
  expect 2 err "^render_lines: --out DIR is required" render_lines
  expect 2 err "^render_lines: --count expects a number in 1\.\.100000000, got 'abc'$" \
    render_lines --out "$work/lines" --count abc
  expect 2 err "^render_lines: --height expects .*'1'" render_lines --out "$work/lines" --height 1
  expect 2 err "^render_lines: --seed expects .*'-1'" render_lines --out "$work/lines" --seed -1
  expect 2 err "^render_lines: --name expects .*'a/b'" render_lines --out "$work/lines" --name a/b
  expect 2 err "^render_lines: --fonts needs a value$" render_lines --out "$work/lines" --fonts
  expect 1 err "^render_lines: $file: exists and is not a directory$" render_lines --out "$file"
  expect 0 out "^heldout " render_lines --list-fonts
fi

if have render_page; then
  common render_page
  expect 2 err "^render_page: --out DIR is required" render_page
  expect 2 err "^render_page: --degrade expects clean, rotate, .*'foo'" \
    render_page --out "$work/pages" --degrade foo
  expect 2 err "^render_page: --lines expects a number in 1\.\.200, got '0'$" \
    render_page --out "$work/pages" --lines 0
  expect 2 err "^render_page: --count expects .*'1e3'" render_page --out "$work/pages" --count 1e3
  expect 1 err "^render_page: $file: exists and is not a directory$" render_page --out "$file"
fi

if have ocr_score; then
  common ocr_score
  expect 2 err "^ocr_score: --split expects header, tesseract-tsv or none, got 'foo'" \
    ocr_score --split foo "$file" "$file"
  expect 2 err "^ocr_score: --split header\|tesseract-tsv\|none is required" \
    ocr_score "$file" "$file"
  expect 2 err "^ocr_score: expected the output file HYP and at least one reference" \
    ocr_score --split none "$file"
  expect 2 err "^ocr_score: --split needs a value$" ocr_score --split
  expect 1 err "^ocr_score: $missing: No such file or directory$" \
    ocr_score --split none "$missing" "$file"
  expect 1 err "^ocr_score: $work: is a directory$" ocr_score --split none "$file" "$work"
fi

if have assoc_memory; then
  common assoc_memory
  expect 2 err "^assoc_memory: --hidden expects a number in 1\.\.4096, got 'x'$" \
    assoc_memory --hidden x
  expect 2 err "^assoc_memory: --chars expects .*'1'" assoc_memory --chars 1
  expect 2 err "^assoc_memory: --steps needs a value$" assoc_memory --steps
  expect 2 err "^assoc_memory: --tol expects a number > 0 .*'0'" assoc_memory --tol 0
  expect 2 err "^assoc_memory: --damping expects .*'1.5'" assoc_memory --damping 1.5
  expect 2 err "^assoc_memory: --lr expects .*'abc'" assoc_memory --lr abc
  expect 2 err "^assoc_memory: --threads expects .*'0'" assoc_memory --threads 0
  expect 2 err "^assoc_memory: unexpected argument 'extra'" assoc_memory extra
fi

if have layer_profile; then
  common layer_profile
  expect 2 err "^layer_profile: NETWORK expects mlp, cnn, mlp_bn or cnn_bn, got 'resnet'" \
    layer_profile resnet
  expect 2 err "^layer_profile: BATCH expects a number in 1\.\.65536, got '0'$" layer_profile cnn 0
  expect 2 err "^layer_profile: REPS expects .*'ten'" layer_profile cnn 8 ten
  expect 2 err "^layer_profile: ALGORITHM expects auto or im2col, got 'winograd'" \
    layer_profile cnn 8 1 winograd
  expect 2 err "^layer_profile: expected at most 4 arguments" layer_profile cnn 8 1 auto more
fi

if have bench_engine; then
  common bench_engine
  expect 2 err "^bench_engine: --nets expects a comma-separated list of mlp and cnn, got 'rnn'" \
    bench_engine --nets rnn
  expect 2 err "^bench_engine: --nets expects .*'mlp,'" bench_engine --nets mlp,
  expect 2 err "^bench_engine: --epochs expects a number in 0\.\.1000, got 'x'$" \
    bench_engine --epochs x
  expect 2 err "^bench_engine: --threads expects .*'0'" bench_engine --threads 0
  expect 2 err "^bench_engine: --data needs a value$" bench_engine --data
  # Missing data: a failure before any training.
  expect 1 err "^bench_engine: .*$work/no-data/" bench_engine --data "$work/no-data" --nets mlp
fi

if have bench_recurrent; then
  common bench_recurrent
  expect 2 err "^bench_recurrent: --cells expects a comma-separated list of lstm and gru, got 'foo'" \
    bench_recurrent --cells foo
  expect 2 err "^bench_recurrent: --cells expects .*'lstm,foo'" bench_recurrent --cells lstm,foo
  expect 2 err "^bench_recurrent: --cells expects .*''" bench_recurrent --cells ''
  expect 2 err "^bench_recurrent: --iters expects a number in 1\.\.1000000, got '0'$" \
    bench_recurrent --iters 0
  expect 2 err "^bench_recurrent: --threads needs a value$" bench_recurrent --threads
  expect 2 err "^bench_recurrent: --threads expects .*'2x'" bench_recurrent --threads 2x
fi

if have bench_gemm; then
  common bench_gemm
  expect 2 err "^bench_gemm: unexpected argument 'now'" bench_gemm now
fi

# The other data tools and the signature baseline: help, version, unknown options, one-line errors.
for p in make_signatures make_speech_digits export_features signature_baseline make_g2p g2p_bench; do
  if have "$p"; then common "$p"; fi
done
if have make_speech_digits; then
  expect 2 err "^make_speech_digits: --voices expects train, heldout or all, got 'x'" \
    make_speech_digits --out "$work/s" --voices x
  expect 2 err "^make_speech_digits: --out DIR is required" make_speech_digits --count 3
fi
if have signature_baseline; then
  expect 2 err "^signature_baseline: --references expects a number in 1\.\.100, got '0'" \
    signature_baseline --pipeline a --train b --test c --references 0
  expect 2 err "^signature_baseline: --test needs a value" signature_baseline --test
fi
if have make_signatures; then
  expect 2 err "^make_signatures: --writers N is required" make_signatures --out "$work/sig"
fi
# Runtime failures (exit 1) of the generators and benchmarks: a missing input, an unwritable output;
# and an instruction set that does not exist (BPKIT_ISA, a configuration mistake: exit 2).
if have make_g2p; then
  expect 2 err "^make_g2p: --out DIR is required" make_g2p
  expect 2 err "^make_g2p: --iterations expects a number in 1\.\.100, got '0'" \
    make_g2p --out "$work/g2p" --iterations 0
  expect 1 err "^make_g2p: $missing: cannot read the dictionary \(No such file or directory\)" \
    make_g2p --dict "$missing" --out "$work/g2p"
  printf 'box B AA K S\n' >"$work/one.dict"
  expect 1 err "^make_g2p: $file: cannot create the directory" make_g2p --dict "$work/one.dict" \
    --out "$file"
fi
if have g2p_bench; then
  expect 2 err "^g2p_bench: give --model DIR or --espeak" g2p_bench --dict "$work/one.dict"
  expect 1 err "^g2p_bench: $missing: cannot read the dictionary" g2p_bench --dict "$missing" --espeak
fi
if have make_speech_digits; then
  expect 1 err "^make_speech_digits: " make_speech_digits --out "$file/sub" --count 1
fi
if have signature_baseline; then
  expect 1 err "^signature_baseline: " signature_baseline --pipeline "$missing" --train "$work" \
    --test "$work"
fi
for p in bench_recurrent layer_profile assoc_memory; do
  if have "$p"; then
    BPKIT_ISA=avx9 expect 2 err "BPKIT_ISA=avx9: expected baseline, avx2 or avx512" "$p"
  fi
done

if [ "$failures" = 0 ]; then
  echo "helper_cli: $checks checks on $programs programs passed${skipped:+ (not built:$skipped)}"
else
  echo "helper_cli: $failures of $checks checks failed${skipped:+ (not built:$skipped)}"
  exit 1
fi
