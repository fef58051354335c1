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
  *)
    echo "usage: bench/run.sh engine [--epochs N] [--best] [--threads N] [--peers DIR] | recurrent [--iters N] [--threads N] [--peers DIR] | gemm" >&2
    exit 2
    ;;
esac
