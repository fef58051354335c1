#!/usr/bin/env bash
# Builds and runs a benchmark; the last line printed is machine-readable.
#   bench/run.sh engine [--epochs N] [--best] [--threads N] [--peers DIR]
#     (without --epochs: MLP 3 epochs, CNN 1, as the peer script runs libtorch; speed figures are
#     the best epoch, accuracy the last)
#     MLP and CNN on Fashion-MNIST with the peer recipe (SGD lr 0.05, momentum 0.9, batch 64):
#     mlp_train_sps mlp_infer_sps mlp_b1_us mlp_acc cnn_train_sps ... peak_rss_mb.
#     --best also trains the engine's best recipe (batch norm, dropout, Adam, cosine schedule).
#     --peers DIR runs DIR/run.sh (the libtorch/OpenCV baselines) right after, in the same session,
#     and appends the ratios bpkit/peer to the last line.
#   bench/run.sh recurrent [--iters N] [--threads N] [--peers DIR]
#     Bidirectional LSTM and GRU (128 units, T=100, batch 32, 40 features) + per-frame linear to 12
#     classes + CTC, SGD lr 0.01 momentum 0.9, at the libtorch peer's shapes:
#     lstm_train_seq_s lstm_b1_ms gru_train_seq_s gru_b1_ms. --peers DIR runs `DIR/run.sh lstm`
#     right after and appends its figures and the ratios bpkit/peer (b1: peer time / bpkit time).
#   bench/run.sh gemm
#     GEMM GFLOP/s of each candidate kernel at the engine's shapes.
#   bench/run.sh ocr [--pages N] [--lines N] [--seed S] [--psm 3|6] [--model DIR] [--ours CMD]
#     ocr_app against Tesseract 5 (installed here as root when missing) on pages rendered with the
#     held-out fonts (tools/render_page), clean and degraded (rotate, blur, noise, jpeg, dpi150,
#     combined; N pages of each, default 60, of N lines, default 20: ten pages of one seed put
#     between 2 and 17 errors on Tesseract's clean pages), and on the real scans and
#     street-scene photographs listed in bench/ocr_real/manifest.tsv (categories real, scene). Both run single-threaded (Tesseract OMP_THREAD_LIMIT=1, ours
#     BPKIT_NUM_THREADS=1), each once per category on all its images (one model load per category).
#     Character error rate by bench/ocr_score (quotes and dashes normalized, line breaks count as
#     one character), seconds per page, and the digits model's test error (bpkit eval):
#     cer_ours cer_tesseract (clean) cer_degraded_* (the six degraded kinds pooled) cer_rotated_*
#     cer_real_* cer_scene_* sec_page_ours sec_page_tesseract (all synthetic pages) digits_err.
#     --ours CMD replaces "ocr_app --model DIR" (CMD IMAGE... must print ocr_app's format).
#   bench/run.sh speech [--count N] [--seed S] [--model DIR]
#     speech_app against PocketSphinx (pocketsphinx_continuous, en-us model, a JSGF grammar of 1-7
#     digit words; installed here as root when missing) on connected digits neither was trained
#     on: held-out espeak-ng voices clean and with noise at 10-20 dB SNR (tools/make_speech_digits
#     --voices heldout), and Festival's ked diphone voice (text2wave), N utterances each (default
#     300). One process per file, one thread, start-up included. Word error rate (edits over
#     reference words), sentence accuracy and real-time factor (seconds of processing per second
#     of audio): wer_ours wer_pocketsphinx wer_noisy_* wer_other_synth_* sacc_* rtf_ours
#     rtf_pocketsphinx.
#   bench/run.sh signature [--writers N] [--model DIR]
#     signature_app eval on N (default 100) held-out synthetic writers (tools/make_signatures, seed 2,
#     never trained on), 5 references each, against the classical baseline on the same scans
#     (bench/signature_baseline: zoning, LBP and HOG of the cleaned scan, nearest reference):
#     eer_skilled eer_random eer_skilled_baseline eer_random_baseline, FRR and FAR at the model's
#     threshold, and seconds per verification (one signature_app process per query with its 5
#     reference scans, start-up included, one thread, median of 20; the baseline's in process).
#   bench/run.sh g2p [--model DIR] [--nettalk DIR]
#     Letters to sounds on CMUdict's held-out words (tools/make_g2p: XXH64 of the spelling mod 10,
#     never trained or tuned on; every pronunciation of a word is a reference, the closest counts):
#     phoneme error rate and word error rate of the shipped model (models/g2p), the NETtalk
#     network (models/g2p_nettalk) and espeak-ng's own spelling rules (its mnemonics mapped to
#     ARPAbet, docs/g2p.md), and words per second on one thread (bench/g2p_bench, in process):
#     per_ours wer_ours per_nettalk wer_nettalk per_espeak wer_espeak words_per_s
#     words_per_s_espeak.
#   bench/run.sh reliability [--archs N] [--seed S] [--mutants] [--fuzz-seconds N]
#     Random layer stacks (default 10 000 from seed 1) checked against finite differences and as
#     float against double (docs/testing.md): grad_archs grad_failures; hostile inputs against
#     the programs (tests/hostile.sh): hostile_inputs hostile_failed; training killed at random
#     moments (tests/kill_loop.sh): kill_runs lost; every fuzz target for N seconds (default 60)
#     in a clang build of its own: fuzz_targets fuzz_execs crashes_open; --mutants: the mutation
#     run (tests/mutate.sh): mutants mutants_killed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-}
[ $# -gt 0 ] && shift
build=${BPKIT_BENCH_BUILD:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
# --peers DIR goes to $peers, every other argument to the benchmark ($args).
split_peers() {
  args=() peers=""
  while [ $# -gt 0 ]; do
    case $1 in
      --peers) peers=$2; shift 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
}
# The value of KEY in a "key=value ..." line; a / b to two decimals (nan unless both are positive).
get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "nan" }'; }

case $what in
  engine)
    cmake --build "$build" --target bench_engine >/dev/null
    split_peers "$@"
    out=$("$build/bin/bench_engine" "${args[@]}" | tee /dev/stderr | tail -n 1)
    if [ -n "$peers" ]; then
      p=$(bash "$peers/run.sh" all 2>/dev/null | tail -n 1)
      echo "$p" >&2
      out="$out mlp_train_ratio=$(ratio "$(get "$out" mlp_train_sps)" "$(get "$p" peer_mlp_train_sps)")"
      out="$out mlp_infer_ratio=$(ratio "$(get "$out" mlp_infer_sps)" "$(get "$p" peer_mlp_infer_sps)")"
      out="$out mlp_b1_speedup=$(ratio "$(get "$p" peer_mlp_b1_us)" "$(get "$out" mlp_b1_us)")"
      out="$out cnn_train_ratio=$(ratio "$(get "$out" cnn_train_sps)" "$(get "$p" peer_cnn_train_sps)")"
    fi
    echo "$out"
    ;;
  recurrent)
    cmake --build "$build" --target bench_recurrent >/dev/null
    split_peers "$@"
    out=$("$build/bin/bench_recurrent" "${args[@]}" | tee /dev/stderr | tail -n 1)
    if [ -n "$peers" ]; then
      p=$(bash "$peers/run.sh" lstm 2>/dev/null | tail -n 1)
      echo "$p" >&2
      out="$out $p"
      out="$out lstm_train_ratio=$(ratio "$(get "$out" lstm_train_seq_s)" "$(get "$p" peer_lstm_train_seq_s)")"
      out="$out lstm_b1_speedup=$(ratio "$(get "$p" peer_lstm_b1_ms)" "$(get "$out" lstm_b1_ms)")"
    fi
    echo "$out"
    ;;
  gemm)
    cmake --build "$build" --target bench_gemm >/dev/null
    "$build/bin/bench_gemm"
    ;;
  ocr)
    pages=60 lines=20 seed=1 psm=6 model=$root/models/ocr ours_cmd=""
    while [ $# -gt 0 ]; do
      case $1 in
        --pages) pages=$2; shift 2 ;;
        --lines) lines=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --psm) psm=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        --ours) ours_cmd=$2; shift 2 ;;
        *) echo "bench/run.sh ocr: unknown option $1" >&2; exit 2 ;;
      esac
    done
    if ! command -v tesseract >/dev/null; then
      if [ "$(id -u)" = 0 ]; then
        echo "installing tesseract-ocr tesseract-ocr-eng" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q tesseract-ocr tesseract-ocr-eng >/dev/null
      else
        echo "bench/run.sh ocr: tesseract is missing: apt-get install tesseract-ocr tesseract-ocr-eng" >&2
        exit 1
      fi
    fi
    cmake --build "$build" --target render_page ocr_score bpkit make_digits bpkit_image >/dev/null
    have_app=0
    if [ -z "$ours_cmd" ] && cmake --build "$build" --target help | grep -q '^ocr_app:'; then
      if cmake --build "$build" --target ocr_app >"$build/ocr_app.build.log" 2>&1; then
        have_app=1
      else
        echo "ocr_app does not build (see $build/ocr_app.build.log)" >&2
      fi
    fi
    if [ -z "$ours_cmd" ]; then
      if [ "$have_app" = 1 ] && [ -f "$model/model.bpk" ]; then
        ours_cmd="$build/bin/ocr_app --model $model"
      else
        echo "ours: no ocr_app target or no model at $model (pass --model DIR): Tesseract only" >&2
      fi
    fi
    work=$build/bench-ocr
    rm -rf "$work"
    kinds="clean rotate blur noise jpeg dpi150 combined"
    for k in $kinds; do
      "$build/bin/render_page" --out "$work/$k" --count "$pages" --lines "$lines" --seed "$seed" \
        --fonts heldout --degrade "$k" >/dev/null
    done
    # Real scans and photographs: the images stay in their packages; copied here next to their
    # ground truth, one folder per category of the manifest.
    while IFS=$'\t' read -r name category package image _; do
      case $name in '#'* | '') continue ;; esac
      if [ -f "$image" ]; then
        mkdir -p "$work/$category"
        cp "$image" "$work/$category/$name.${image##*.}"
        cp "$root/bench/ocr_real/$name.txt" "$work/$category/$name.txt"
      else
        echo "real: $image missing (install the Debian package $package); $name skipped" >&2
      fi
    done <"$root/bench/ocr_real/manifest.tsv"
    now() { date +%s.%N; }
    # Runs one recognizer on the images of $dir into $dir/$tag.out and scores it; prints
    # "errors chars seconds".
    run_one() {
      local dir=$1 tag=$2 split t0 t1 r e s
      local refs=() files=()
      for r in "$dir"/*.txt; do
        for e in png jpg; do
          if [ -f "${r%.txt}.$e" ]; then refs+=("$r") files+=("${r%.txt}.$e"); break; fi
        done
      done
      if [ "$tag" = tesseract ]; then
        printf '%s\n' "${files[@]}" >"$dir/images.lst"
        t0=$(now)
        # TSV: words with their page numbers (the plain text of a page without text has no form feed).
        OMP_THREAD_LIMIT=1 tesseract "$dir/images.lst" "$dir/tesseract" --psm "$psm" tsv 2>"$dir/tesseract.log"
        t1=$(now)
        mv "$dir/tesseract.tsv" "$dir/tesseract.out"
        split=tesseract-tsv
      else
        t0=$(now)
        # shellcheck disable=SC2086
        BPKIT_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $ours_cmd "${files[@]}" >"$dir/ours.out" 2>"$dir/ours.log" ||
          echo "ours failed on $dir (exit $?; see $dir/ours.log)" >&2
        t1=$(now)
        split=header
      fi
      s=$("$build/bin/ocr_score" --split "$split" --per-page "$dir/$tag.out" "${refs[@]}" >"$dir/$tag.score" && tail -n 1 "$dir/$tag.score")
      echo "$(get "$s" errors) $(get "$s" ref_chars) $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $(get "$s" missing)"
    }
    cer() { awk -v e="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.4f", e / n; else print "nan" }'; }
    echo "OCR: ${pages} pages of ${lines} lines per kind (held-out fonts, seed $seed) + real scans;" \
      "Tesseract $(tesseract --version 2>/dev/null | head -n 1 | cut -d' ' -f2) --psm $psm OMP_THREAD_LIMIT=1;" \
      "ours: ${ours_cmd:-none} with BPKIT_NUM_THREADS=1" >&2
    printf '%-9s %5s %10s %10s %13s %13s\n' kind pages cer_ours cer_tess sec_page_ours sec_page_tess >&2
    declare -A E N T
    for k in $kinds real scene; do
      dir=$work/$k
      [ -d "$dir" ] || continue
      n=$(find "$dir" -name '*.txt' | wc -l)
      [ "$n" -gt 0 ] || continue
      read -r te tn tt _ < <(run_one "$dir" tesseract)
      if [ -n "$ours_cmd" ]; then
        read -r oe on ot om < <(run_one "$dir" ours)
        [ "${om:-0}" = 0 ] || echo "ours: no output for $om of the $k pages (counted as empty)" >&2
      else
        oe=0 on=0 ot=0
      fi
      E[$k.t]=$te N[$k.t]=$tn T[$k.t]=$tt E[$k.o]=$oe N[$k.o]=$on T[$k.o]=$ot N[$k.pages]=$n
      printf '%-9s %5s %10s %10s %13s %13s\n' "$k" "$n" "$(cer "$oe" "$on")" "$(cer "$te" "$tn")" \
        "$(awk -v t="$ot" -v n="$n" -v o="$on" 'BEGIN { if (o > 0) printf "%.3f", t / n; else print "nan" }')" \
        "$(awk -v t="$tt" -v n="$n" 'BEGIN { printf "%.3f", t / n }')" >&2
    done
    # Pooled figures: the six degraded kinds; seconds per page over every synthetic page.
    pool() {  # pool ARRAY_SUFFIX KIND... -> "errors chars seconds pages"
      local x=$1 e=0 c=0 t=0 p=0; shift
      for k in "$@"; do
        e=$((e + ${E[$k.$x]:-0})) c=$((c + ${N[$k.$x]:-0})) p=$((p + ${N[$k.pages]:-0}))
        t=$(awk -v a="$t" -v b="${T[$k.$x]:-0}" 'BEGIN { print a + b }')
      done
      echo "$e $c $t $p"
    }
    degraded="rotate blur noise jpeg dpi150 combined"
    read -r doe don _ _ < <(pool o $degraded)
    read -r dte dtn _ _ < <(pool t $degraded)
    # shellcheck disable=SC2086
    read -r _ aon aot ap < <(pool o $kinds)
    # shellcheck disable=SC2086
    read -r _ _ att _ < <(pool t $kinds)
    sec_o=$(awk -v t="$aot" -v n="$ap" -v o="$aon" 'BEGIN { if (o > 0) printf "%.3f", t / n; else print "nan" }')
    sec_t=$(awk -v t="$att" -v n="$ap" 'BEGIN { printf "%.3f", t / n }')
    # The digits model's test error (OpenCV's digits.png, last 10% of each class).
    digits_err=nan
    if "$build/bin/make_digits" --out "$work/digits" >/dev/null 2>"$work/digits.log"; then
      acc=$("$build/bin/bpkit" eval "$root/models/digits" "$work/digits/test.tsv" --no-cache 2>>"$work/digits.log" |
        sed -n 's/^samples .* accuracy \([0-9.]*\).*/\1/p')
      [ -n "$acc" ] && digits_err=$(awk -v a="$acc" 'BEGIN { printf "%.4f", 1 - a }')
    fi
    [ "$digits_err" = nan ] && echo "digits: evaluation failed (see $work/digits.log)" >&2
    echo "cer_ours=$(cer "${E[clean.o]:-0}" "${N[clean.o]:-0}") cer_tesseract=$(cer "${E[clean.t]:-0}" "${N[clean.t]:-0}")" \
      "cer_degraded_ours=$(cer "$doe" "$don") cer_degraded_tesseract=$(cer "$dte" "$dtn")" \
      "cer_rotated_ours=$(cer "${E[rotate.o]:-0}" "${N[rotate.o]:-0}") cer_rotated_tesseract=$(cer "${E[rotate.t]:-0}" "${N[rotate.t]:-0}")" \
      "cer_real_ours=$(cer "${E[real.o]:-0}" "${N[real.o]:-0}") cer_real_tesseract=$(cer "${E[real.t]:-0}" "${N[real.t]:-0}")" \
      "cer_scene_ours=$(cer "${E[scene.o]:-0}" "${N[scene.o]:-0}") cer_scene_tesseract=$(cer "${E[scene.t]:-0}" "${N[scene.t]:-0}")" \
      "sec_page_ours=$sec_o sec_page_tesseract=$sec_t speedup=$(ratio "$sec_t" "$sec_o") digits_err=$digits_err"
    ;;
  speech)
    count=300 seed=101 model=$root/models/speech_digits
    while [ $# -gt 0 ]; do
      case $1 in
        --count) count=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        *) echo "bench/run.sh speech: unknown option '$1' (--count N, --seed S, --model DIR)" >&2; exit 2 ;;
      esac
    done
    need=()
    for p in pocketsphinx pocketsphinx-en-us festival festvox-kdlpc16k sox; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
      if [ "$(id -u)" = 0 ]; then
        echo "installing ${need[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
      else
        echo "bench/run.sh speech: missing ${need[*]}: apt-get install them" >&2
        exit 1
      fi
    fi
    cmake --build "$build" --target speech_app make_speech_digits bpkit_audio >/dev/null
    [ -f "$model/model.bpk" ] || { echo "bench/run.sh speech: no model in $model (--model DIR)" >&2; exit 1; }
    work=$build/bench-speech
    rm -rf "$work"
    mkdir -p "$work"
    "$build/bin/make_speech_digits" --out "$work/clean" --name utt --count "$count" --seed "$seed" \
      --voices heldout --clean 2>/dev/null
    "$build/bin/make_speech_digits" --out "$work/noisy" --name utt --count "$count" \
      --seed "$((seed + 1))" --voices heldout --clean --noise 10,20 2>/dev/null
    # Festival's ked: the digit strings of a third seed's manifest, spoken by text2wave at 16 kHz.
    "$build/bin/make_speech_digits" --out "$work/festival-text" --name utt --count "$count" \
      --seed "$((seed + 2))" --voices heldout --clean 2>/dev/null
    mkdir -p "$work/festival/wav"
    words() { sed 's/o/ oh/g; s/0/ zero/g; s/1/ one/g; s/2/ two/g; s/3/ three/g; s/4/ four/g;
                   s/5/ five/g; s/6/ six/g; s/7/ seven/g; s/8/ eight/g; s/9/ nine/g; s/^ //'; }
    grep -v '^#' "$work/festival-text/utt.tsv" | while IFS=$'\t' read -r f label; do
      echo "$label" | words | text2wave -o "$work/festival/$f" -otype riff 2>/dev/null
      printf '%s\t%s\n' "$f" "$label"
    done >"$work/festival/utt.tsv"
    rm -rf "$work/festival-text"
    cat >"$work/digits.jsgf" <<'JSGF'
#JSGF V1.0;
grammar digits;
public <digits> = <digit> [<digit>] [<digit>] [<digit>] [<digit>] [<digit>] [<digit>];
<digit> = zero | oh | one | two | three | four | five | six | seven | eight | nine;
JSGF
    now() { date +%s.%N; }
    # Runs one recognizer on every file of $dir, one process each; writes $dir/$tag.hyp
    # ("reference<TAB>hypothesis" word lines) and prints "seconds audio_seconds".
    run_one() {
      local dir=$1 tag=$2 t0 t1 f label hyp total=0 audio=0 d
      : >"$dir/$tag.hyp"
      while IFS=$'\t' read -r f label; do
        case $f in '#'* | '') continue ;; esac
        t0=$(now)
        if [ "$tag" = ours ]; then
          hyp=$(BPKIT_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$build/bin/speech_app" --model "$model" "$dir/$f" 2>>"$dir/$tag.log" || true)
        else
          hyp=$(pocketsphinx_continuous -infile "$dir/$f" -jsgf "$work/digits.jsgf" 2>>"$dir/$tag.log" || true)
        fi
        t1=$(now)
        d=$(soxi -D "$dir/$f")
        total=$(awk -v a="$total" -v b="$t0" -v c="$t1" 'BEGIN { print a + c - b }')
        audio=$(awk -v a="$audio" -v b="$d" 'BEGIN { print a + b }')
        printf '%s\t%s\n' "$(echo "$label" | words)" "$hyp" >>"$dir/$tag.hyp"
      done <"$dir/utt.tsv"
      echo "$total $audio"
    }
    # Word edits (Levenshtein over words) and reference words; sentences right and sentences.
    score() {
      awk -F'\t' '{
        n = split($1, r, " "); m = split($2, h, " ")
        for (j = 0; j <= m; j++) d[0, j] = j
        for (i = 1; i <= n; i++) {
          d[i, 0] = i
          for (j = 1; j <= m; j++) {
            c = d[i-1, j-1] + (r[i] != h[j]); x = d[i-1, j] + 1; y = d[i, j-1] + 1
            d[i, j] = c < x ? (c < y ? c : y) : (x < y ? x : y)
          }
        }
        e += d[n, m]; w += n; s++; ok += d[n, m] == 0
      } END { printf "%.4f %.4f\n", w ? e / w : 0, s ? ok / s : 0 }' "$1"
    }
    echo "speech: $count utterances per set (held-out espeak-ng voices clean and 10-20 dB noise," \
      "Festival ked); PocketSphinx $(dpkg-query -W -f='${Version}' pocketsphinx) en-us + JSGF;" \
      "ours: speech_app --model $model, one thread; one process per file" >&2
    printf '%-9s %9s %9s %9s %9s %9s %9s\n' set wer_ours wer_ps sacc_ours sacc_ps rtf_ours rtf_ps >&2
    declare -A R
    tot_o=0 tot_p=0 tot_a=0
    for set in clean noisy festival; do
      read -r to ta < <(run_one "$work/$set" ours)
      read -r tp _ < <(run_one "$work/$set" pocketsphinx)
      read -r wo so < <(score "$work/$set/ours.hyp")
      read -r wp sp < <(score "$work/$set/pocketsphinx.hyp")
      R[$set.wo]=$wo R[$set.wp]=$wp R[$set.so]=$so R[$set.sp]=$sp
      tot_o=$(awk -v a="$tot_o" -v b="$to" 'BEGIN { print a + b }')
      tot_p=$(awk -v a="$tot_p" -v b="$tp" 'BEGIN { print a + b }')
      tot_a=$(awk -v a="$tot_a" -v b="$ta" 'BEGIN { print a + b }')
      printf '%-9s %9s %9s %9s %9s %9.4f %9.4f\n' "$set" "$wo" "$wp" "$so" "$sp" \
        "$(awk -v t="$to" -v a="$ta" 'BEGIN { print t / a }')" "$(awk -v t="$tp" -v a="$ta" 'BEGIN { print t / a }')" >&2
    done
    rtf_o=$(awk -v t="$tot_o" -v a="$tot_a" 'BEGIN { printf "%.4f", t / a }')
    rtf_p=$(awk -v t="$tot_p" -v a="$tot_a" 'BEGIN { printf "%.4f", t / a }')
    echo "wer_ours=${R[clean.wo]} wer_pocketsphinx=${R[clean.wp]}" \
      "wer_noisy_ours=${R[noisy.wo]} wer_noisy_pocketsphinx=${R[noisy.wp]}" \
      "wer_other_synth_ours=${R[festival.wo]} wer_other_synth_pocketsphinx=${R[festival.wp]}" \
      "sacc_ours=${R[clean.so]} sacc_pocketsphinx=${R[clean.sp]} sacc_noisy_ours=${R[noisy.so]}" \
      "sacc_noisy_pocketsphinx=${R[noisy.sp]} sacc_other_synth_ours=${R[festival.so]}" \
      "sacc_other_synth_pocketsphinx=${R[festival.sp]} rtf_ours=$rtf_o rtf_pocketsphinx=$rtf_p"
    ;;
  signature)
    writers=100 train_writers=60 model=$root/models/signature
    while [ $# -gt 0 ]; do
      case $1 in
        --writers) writers=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        *) echo "bench/run.sh signature: unknown option '$1' (--writers N, --model DIR)" >&2; exit 2 ;;
      esac
    done
    cmake --build "$build" --target signature_app signature_baseline make_signatures bpkit_strokes \
      bpkit_image >/dev/null
    [ -f "$model/model.bpk" ] || { echo "bench/run.sh signature: no model in $model (--model DIR)" >&2; exit 1; }
    work=$build/bench-signature
    # Held-out writers (seed 2, ids from 10001: never in training, which uses seed 1), and the
    # first training writers (seed 1, as tools/make_signatures made the training set) for the
    # baseline's feature standardization. Kept between runs when made with the same options.
    stamp="writers=$writers train=$train_writers $(sha1sum "$build/bin/make_signatures" | cut -c1-16)"
    if [ "$(cat "$work/stamp" 2>/dev/null)" != "$stamp" ]; then
      rm -rf "$work"
      mkdir -p "$work"
      "$build/bin/make_signatures" --out "$work/heldout" --writers "$writers" --first-writer 10001 \
        --seed 2 --threads 2 >&2
      "$build/bin/make_signatures" --out "$work/train" --writers "$train_writers" --seed 1 \
        --threads 2 >&2
      echo "$stamp" >"$work/stamp"
    fi
    export BPKIT_CACHE_DIR=$work/cache
    echo "signature: $writers held-out writers (5 references each; genuine, skilled and random" \
      "forgery trials); ours: signature_app --model $model; baseline: bench/signature_baseline.yaml" \
      "(zoning, LBP, HOG; nearest reference)" >&2
    ours=$("$build/bin/signature_app" eval --model "$model" --det "$work/det.png" "$work/heldout" | tail -1)
    base=$("$build/bin/signature_baseline" --pipeline "$root/bench/signature_baseline.yaml" \
      --train "$work/train" --test "$work/heldout" | tail -1)
    echo "ours:     $ours" >&2
    echo "baseline: $base" >&2
    # Seconds per verification as a user runs it: one process per query, 5 reference scans and the
    # query from their files, start-up included, one thread; the median of 20.
    times=()
    for w in $(ls "$work/heldout" | grep '^w' | head -20); do
      refs=()
      for f in $(ls "$work/heldout/$w/genuine" | head -5); do refs+=(--reference "$work/heldout/$w/genuine/$f"); done
      q=$(ls "$work/heldout/$w/forgeries" | head -1)
      t0=$(date +%s.%N)
      BPKIT_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$build/bin/signature_app" verify --model "$model" \
        "${refs[@]}" --query "$work/heldout/$w/forgeries/$q" >/dev/null
      t1=$(date +%s.%N)
      times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
    done
    sec=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] }')
    echo "eer_skilled=$(get "$ours" eer_skilled) eer_random=$(get "$ours" eer_random)" \
      "eer_skilled_baseline=$(get "$base" eer_skilled) eer_random_baseline=$(get "$base" eer_random)" \
      "frr=$(get "$ours" frr) far_skilled=$(get "$ours" far_skilled) far_random=$(get "$ours" far_random)" \
      "sec_verify=$sec sec_verify_baseline=$(get "$base" sec_verify)"
    ;;
  g2p)
    model=$root/models/g2p nettalk=$root/models/g2p_nettalk
    while [ $# -gt 0 ]; do
      case $1 in
        --model) model=$2; shift 2 ;;
        --nettalk) nettalk=$2; shift 2 ;;
        *) echo "bench/run.sh g2p: unknown option '$1' (--model DIR, --nettalk DIR)" >&2; exit 2 ;;
      esac
    done
    cmake --build "$build" --target g2p_bench make_g2p bpkit_text >/dev/null
    for m in "$model" "$nettalk"; do
      [ -f "$m/model.bpk" ] || { echo "bench/run.sh g2p: no model in $m" >&2; exit 1; }
    done
    work=$build/bench-g2p
    "$build/bin/make_g2p" --out "$work" >&2
    echo "g2p: held-out CMUdict words ($work/heldout.dict); ours: $model; NETtalk: $nettalk;" \
      "libespeak-ng $(dpkg-query -W -f='${Version}' libespeak-ng1 2>/dev/null) rules" >&2
    out=$("$build/bin/g2p_bench" --dict "$work/heldout.dict" --model "$model" --model "$nettalk" \
      --espeak)
    echo "$out" >&2
    ours=$(echo "$out" | sed -n 1p) nt=$(echo "$out" | sed -n 2p) es=$(echo "$out" | sed -n 3p)
    echo "per_ours=$(get "$ours" per) wer_ours=$(get "$ours" wer) per_nettalk=$(get "$nt" per)" \
      "wer_nettalk=$(get "$nt" wer) per_espeak=$(get "$es" per) wer_espeak=$(get "$es" wer)" \
      "words_per_s=$(get "$ours" words_per_s) words_per_s_espeak=$(get "$es" words_per_s)"
    ;;
  reliability)
    # The long gradient campaign (docs/testing.md): random layer stacks against finite differences
    # and float against double. The figures of the other reliability checks join this line as
    # they land.
    # --mutants adds the mutation run (tests/mutate.sh, about half an hour on 2 cores).
    archs=10000 seed=1 mutants=0 fuzz_seconds=60
    while [ $# -gt 0 ]; do
      case $1 in
        --archs) archs=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --mutants) mutants=1; shift ;;
        --fuzz-seconds) fuzz_seconds=$2; shift 2 ;;
        *) echo "bench/run.sh reliability: unknown option '$1' (--archs N, --seed S, --mutants, --fuzz-seconds N)" >&2; exit 2 ;;
      esac
    done
    cmake --build "$build" --target bpkit_gradsuite_tests >/dev/null
    # A failing architecture makes the test exit non-zero; its YAML goes to stderr, the figures on.
    out=$(BPKIT_GRAD_ARCHS=$archs BPKIT_GRAD_SEED=$seed "$build/bin/bpkit_gradsuite_tests" \
            "random architectures: whole*" 2>&1 | tee /dev/stderr | grep '^grad_archs=' || true)
    out=${out:-grad_archs=0 grad_failures=unknown}
    # Hostile inputs against the real programs, and training killed at random moments.
    cmake --build "$build" >/dev/null
    tmp=$(mktemp -d)
    h=$(bash "$root/tests/hostile.sh" "$build/bin" "$root" "$tmp/hostile" 2>&1 | tee /dev/stderr |
          grep '^hostile_inputs=' || true)
    k=$(bash "$root/tests/kill_loop.sh" "$build/bin/bpkit" "$build/bin/make_digits" "$tmp/kill" 2>&1 |
          tee /dev/stderr | grep '^kill_runs=' || true)
    rm -rf "$tmp"
    out="$out ${h:-hostile_inputs=0 hostile_failed=unknown} ${k:-kill_runs=0 lost=unknown}"
    # Every fuzz target for --fuzz-seconds (default 60; 0 skips) from its seeds, in a clang
    # ASan+UBSan build of its own (BPKIT_FUZZ_BUILD, default build-fuzz/): fuzz_execs sums
    # libFuzzer's executions, crashes_open counts targets that stopped on a finding.
    if [ "$fuzz_seconds" -gt 0 ]; then
      fb=${BPKIT_FUZZ_BUILD:-$root/build-fuzz}
      if cmake -S "$root" -B "$fb" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
           -DCMAKE_CXX_COMPILER=clang++ -DBPKIT_FUZZ=ON -DBPKIT_BUILD_BENCH=OFF \
           -DBPKIT_BUILD_TESTS=OFF >/dev/null && cmake --build "$fb" --target bpkit_fuzzers >/dev/null; then
        targets=0 execs=0 open=0 ftmp=$(mktemp -d)
        for z in "$fb"/bin/fuzz_*; do
          name=$(basename "$z")
          [ "$name" = fuzz_make_corpus ] && continue
          targets=$((targets + 1))
          log=$ftmp/$name.log
          sh "$root/fuzz/run.sh" "$z" "$root/fuzz/corpus/${name#fuzz_}" "$ftmp/$name" "$fuzz_seconds" \
            >"$log" 2>&1 || { open=$((open + 1)); tail -n 20 "$log" >&2; }
          n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
          echo "$name: ${n:-0} executions" >&2
          execs=$((execs + ${n:-0}))
        done
        rm -rf "$ftmp"
        out="$out fuzz_targets=$targets fuzz_execs=$execs crashes_open=$open"
      else
        echo "bench/run.sh reliability: no fuzz build (needs clang and libclang-rt-14-dev)" >&2
        out="$out fuzz_targets=0 fuzz_execs=0 crashes_open=unknown"
      fi
    fi
    if [ "$mutants" = 1 ]; then
      m=$(bash "$root/tests/mutate.sh" | tee /dev/stderr | grep '^mutants=' || true)
      out="$out ${m:-mutants=0 mutants_killed=unknown}"
    fi
    echo "$out"
    ;;
  *)
    echo "usage: bench/run.sh engine [--epochs N] [--best] [--threads N] [--peers DIR] | recurrent [--iters N] [--threads N] [--peers DIR] | gemm | ocr [--pages N] [--lines N] [--seed S] [--psm 3|6] [--model DIR] [--ours CMD] | speech [--count N] [--seed S] [--model DIR] | signature [--writers N] [--model DIR] | g2p [--model DIR] [--nettalk DIR] | reliability [--archs N] [--seed S] [--mutants]" >&2
    exit 2
    ;;
esac
