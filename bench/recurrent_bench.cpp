// The recurrent benchmark, at the libtorch peer's shapes (shared/peers/torch_lstm): T = 100 frames,
// batch 32, 40 features, bidirectional LSTM with 128 units per direction, a per-frame linear layer
// to 12 classes, CTC loss (blank 0, random label sequences of 8 labels), SGD lr 0.01 momentum 0.9,
// on random data. Figures: training sequences/s (20 steps after one warm-up step, as the peer) and
// batch-1 inference of one 100-frame utterance (forward + per-frame argmax, the mean of 200 calls;
// best of three such rounds). The same for a bidirectional GRU. The last line is machine-readable.
//
// Each training line is followed by the mean time per step of each phase.
// usage: bench_recurrent [--iters N] [--threads N] [--cells lstm,gru]
// Without --threads each network runs with 2 engine threads, then 1 (the peer script likewise takes
// libtorch's best thread setting), and the summary takes the best of the two for each figure.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "bpkit/ctc.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"
#include "bpkit/random.h"
#include "bpkit/recurrent.h"
#include "bpkit/threading.h"
#include "bpkit/version.h"
#include "tool_args.h"

namespace {

using bpkit::Tensor;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr int64_t kT = 100, kB = 32, kF = 40, kH = 128, kC = 12, kLabels = 8;

struct Figures {
  double train_seq_s = 0, b1_ms = 0, loss = 0;
  // Mean ms per training step of each phase: zero_grad, forward, loss, backward, optimizer step.
  double phase_ms[5] = {0, 0, 0, 0, 0};
};

Figures run(bpkit::Cell cell, int iters) {
  bpkit::Network<float> net({bpkit::kDynamic, kF}, 1);
  bpkit::RecurrentOptions o;
  o.bidirectional = true;
  net.emplace<bpkit::Recurrent<float>>(cell, kH, o);
  net.emplace<bpkit::FrameDense<float>>(kC);
  bpkit::Sgd<float> opt(net.params(), 0.01, 0.9);
  bpkit::CtcLoss<float> loss(0);

  bpkit::Rng rng(1);
  Tensor<float> x({kB, kT, kF});
  for (float& v : x) v = float(rng.normal());
  bpkit::Targets<float> targets;
  targets.sequences.assign(size_t(kB), std::vector<int32_t>(size_t(kLabels)));
  for (auto& s : targets.sequences)
    for (auto& l : s) l = int32_t(1 + rng.below(kC - 1));
  targets.lengths.assign(size_t(kB), int32_t(kT));

  Tensor<float> grad;
  Figures f;
  double mark[6];
  auto step = [&] {
    mark[0] = now_s();
    net.zero_grad();
    mark[1] = now_s();
    const Tensor<float>& y = net.forward(x, bpkit::Mode::kTrain, &targets.lengths);
    mark[2] = now_s();
    f.loss = loss.compute(y, targets, grad);
    mark[3] = now_s();
    net.backward(grad);
    mark[4] = now_s();
    opt.step();
    mark[5] = now_s();
  };
  step();  // warm-up: buffers grow to the batch
  const double t0 = now_s();
  for (int i = 0; i < iters; ++i) {
    step();
    for (int p = 0; p < 5; ++p) f.phase_ms[p] += 1000 * (mark[p + 1] - mark[p]) / iters;
  }
  f.train_seq_s = iters * kB / (now_s() - t0);

  Tensor<float> x1({1, kT, kF});
  for (float& v : x1) v = float(rng.normal());
  std::vector<int32_t> best(kT);
  f.b1_ms = 1e30;
  for (int round = 0; round < 3; ++round) {
    const int n = 200;
    const double t1 = now_s();
    for (int i = 0; i < n; ++i) {
      const Tensor<float>& y = net.forward(x1, bpkit::Mode::kInfer);
      for (int64_t t = 0; t < kT; ++t) {
        const float* row = y.data() + t * kC;
        int32_t k = 0;
        for (int32_t c = 1; c < kC; ++c)
          if (row[c] > row[k]) k = c;
        best[size_t(t)] = k;
      }
    }
    f.b1_ms = std::min(f.b1_ms, 1000 * (now_s() - t1) / n);
  }
  return f;
}

const char kProgram[] = "bench_recurrent";

const char kUsage[] =
    "usage: bench_recurrent [--iters N] [--threads N] [--cells lstm,gru]\n"
    "\n"
    "The recurrent benchmark at the libtorch peer's shapes: a bidirectional LSTM and GRU (128\n"
    "units per direction, T=100 frames, batch 32, 40 features), a per-frame linear layer to 12\n"
    "classes and CTC loss, trained with SGD on random data: training sequences/s and batch-1\n"
    "inference ms per 100-frame utterance. The last line is machine-readable:\n"
    "lstm_train_seq_s=... lstm_b1_ms=... gru_train_seq_s=... gru_b1_ms=...\n"
    "\n"
    "  --iters N          timed training steps after one warm-up step, 1..1000000 (default 20)\n"
    "  --threads N        engine threads, 1..1024 (default: 2, then 1, the best of the two)\n"
    "  --cells LIST       comma-separated cells to run: lstm, gru (default lstm,gru)\n"
    "  -h, --help         this text\n"
    "  --version          the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  bpkit_tools::usage_error(kProgram, msg);
}

int run_program(int argc, char** argv) {
  int iters = 20;
  std::string cells = "lstm,gru";
  std::vector<int> settings = {2, 1};
  bpkit_tools::ArgReader args{kProgram, argc, argv};
  for (int& i = args.i; ++i < argc;) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--iters") {
      iters = int(args.number(a, args.value(), 1, 1000000));
    } else if (a == "--threads") {
      settings = {int(args.number(a, args.value(), 1, 1024))};
    } else if (a == "--cells") {
      cells = args.value();
      std::stringstream ss(cells);
      std::string item;
      bool any = false;
      while (std::getline(ss, item, ',')) {
        if (item != "lstm" && item != "gru")
          usage_error("--cells expects a comma-separated list of lstm and gru, got '" + cells +
                      "'");
        any = true;
      }
      if (!any || cells.back() == ',')
        usage_error("--cells expects a comma-separated list of lstm and gru, got '" + cells + "'");
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else {
      usage_error("unexpected argument '" + a + "'");
    }
  }
  std::string summary;
  for (const char* name : {"lstm", "gru"}) {
    if (cells.find(name) == std::string::npos) continue;
    const bpkit::Cell cell =
        std::strcmp(name, "lstm") == 0 ? bpkit::Cell::kLstm : bpkit::Cell::kGru;
    Figures f;
    f.b1_ms = 1e30;
    for (int threads : settings) {
      bpkit::set_num_threads(threads);
      const Figures g = run(cell, iters);
      std::printf(
          "bpkit bi%s T=%lld B=%lld F=%lld H=%lld threads=%d train_seq_per_s %.1f loss %.3f "
          "batch1_infer_ms %.3f\n",
          name, (long long)kT, (long long)kB, (long long)kF, (long long)kH, bpkit::num_threads(),
          g.train_seq_s, g.loss, g.b1_ms);
      std::printf("  ms per step: zero_grad %.2f forward %.2f loss %.2f backward %.2f step %.2f\n",
                  g.phase_ms[0], g.phase_ms[1], g.phase_ms[2], g.phase_ms[3], g.phase_ms[4]);
      std::fflush(stdout);
      f.train_seq_s = std::max(f.train_seq_s, g.train_seq_s);
      f.b1_ms = std::min(f.b1_ms, g.b1_ms);
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s%s_train_seq_s=%.1f %s_b1_ms=%.3f",
                  summary.empty() ? "" : " ", name, f.train_seq_s, name, f.b1_ms);
    summary += buf;
  }
  std::printf("%s\n", summary.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run_program(argc, argv); });
}
