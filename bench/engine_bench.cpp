// The engine benchmark: trains the reference MLP and CNN on Fashion-MNIST with the peer recipe
// (SGD lr 0.05, momentum 0.9, batch 64, softmax cross-entropy) and prints the same figures as the
// libtorch peer: training samples/s, test accuracy, inference samples/s (whole test set at once)
// and batch-1 latency. The last line is machine-readable.
//
// usage: bench_engine [--epochs N] [--nets mlp,cnn] [--best] [--threads N] [--data DIR]
// Without --epochs the MLP trains 3 epochs and the CNN 1, as the peer script runs libtorch; speed
// figures are the best epoch, accuracy is the last.
// --best also trains the engine's best recipe (batch norm, dropout, Adam, cosine schedule).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>

#include "bpkit/threading.h"
#include "bpkit/trainer.h"
#include "bpkit/version.h"
#include "bpkit/zoo.h"
#include "tool_args.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Figures {
  double train_sps = 0, infer_sps = 0, b1_us = 0, acc = 0;
};

Figures run(const std::string& name, const bpkit::Dataset& train, const bpkit::Dataset& test,
            int epochs, bool best) {
  bpkit::Network<float> net = bpkit::make_reference_net(name, 1);
  bpkit::SoftmaxCrossEntropy<float> loss;
  std::unique_ptr<bpkit::Optimizer<float>> opt;
  bpkit::TrainOptions o;
  o.epochs = 1;
  o.batch = 64;
  if (best) {
    opt = std::make_unique<bpkit::Adam<float>>(net.params(), 2e-3, 0.9, 0.999, 1e-8, 1e-4);
    o.schedule.kind = bpkit::Schedule::kCosine;
    o.schedule.total_epochs = epochs;
  } else {
    opt = std::make_unique<bpkit::Sgd<float>>(net.params(), 0.05, 0.9);
  }
  Figures f;
  const double base_lr = opt->lr();
  for (int e = 0; e < epochs; ++e) {
    // One epoch per fit() call so every epoch is timed and reported like the peer's.
    opt->set_lr(o.schedule.lr_at(base_lr, e));
    bpkit::TrainOptions oe = o;
    oe.schedule = bpkit::Schedule();
    oe.seed = 1 + uint64_t(e);
    const bpkit::TrainResult r = bpkit::fit(net, loss, *opt, train, oe);
    const double sps = r.history[0].samples_per_s;
    // Inference: the whole test set as one batch, as the peer does; best of three passes (the
    // peer script reports its best epoch of nine runs).
    double si = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      const double t1 = now_s();
      net.forward(test.x, bpkit::Mode::kInfer);
      si = std::min(si, now_s() - t1);
    }
    const bpkit::Tensor<float>& out = net.forward(test.x, bpkit::Mode::kInfer);
    int64_t right = 0;
    for (int64_t b = 0; b < out.rows(); ++b)
      right += bpkit::argmax_row(out, b) == test.y[size_t(b)];
    f.acc = double(right) / double(test.size());
    f.infer_sps = std::max(f.infer_sps, double(test.size()) / si);
    f.train_sps = std::max(f.train_sps, sps);
    // Batch-1 latency: one image at a time, as an app classifying a single image calls it.
    bpkit::Tensor<float> x1({1, 1, 28, 28});
    std::memcpy(x1.data(), test.x.data(), sizeof(float) * 784);
    const int reps = 2000;
    int sink = 0;
    const double t2 = now_s();
    for (int r2 = 0; r2 < reps; ++r2)
      sink += bpkit::argmax_row(net.forward(x1, bpkit::Mode::kInfer), 0);
    const double b1 = (now_s() - t2) * 1e6 / reps;
    f.b1_us = e == 0 ? b1 : std::min(f.b1_us, b1);
    std::printf(
        "%s%s epoch %d train_s %.2f train_samples_per_s %.0f test_acc %.4f "
        "infer_samples_per_s %.0f b1_infer_us %.1f%s\n",
        name.c_str(), best ? " best" : "", e + 1, r.history[0].seconds, sps, f.acc,
        double(test.size()) / si, b1, sink < 0 ? "!" : "");
    std::fflush(stdout);
  }
  return f;
}

const char kProgram[] = "bench_engine";

const char kUsage[] =
    "usage: bench_engine [--epochs N] [--nets mlp,cnn] [--best] [--threads N] [--data DIR]\n"
    "\n"
    "The engine benchmark: trains the reference MLP and CNN on Fashion-MNIST with the peer recipe\n"
    "(SGD lr 0.05, momentum 0.9, batch 64, softmax cross-entropy) and prints per epoch the\n"
    "training samples/s, test accuracy, inference samples/s and batch-1 latency. Speed figures\n"
    "are the best epoch, accuracy the last. The last line is machine-readable:\n"
    "mlp_train_sps=... mlp_infer_sps=... mlp_b1_us=... mlp_acc=... cnn_... peak_rss_mb=...\n"
    "\n"
    "  --epochs N     epochs per network, 0..1000 (default 0: MLP 3, CNN 1, as the peer script)\n"
    "  --nets LIST    comma-separated networks to train: mlp, cnn (default mlp,cnn)\n"
    "  --best         also train the engine's best recipe (batch norm, dropout, Adam, cosine\n"
    "                 schedule)\n"
    "  --threads N    engine threads, 1..1024 (default: BPKIT_NUM_THREADS, else every hardware\n"
    "                 thread)\n"
    "  --data DIR     Fashion-MNIST in IDX files (default /usr/share/datasets/fashion-mnist)\n"
    "  -h, --help     this text\n"
    "  --version      the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 success, 1 failure (missing or unreadable data), 2 usage error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  bpkit_tools::usage_error(kProgram, msg);
}

int run_program(int argc, char** argv) {
  int epochs = 0;  // 0: the peer's counts (MLP 3, CNN 1)
  std::string nets = "mlp,cnn", data = "/usr/share/datasets/fashion-mnist";
  bool best = false;
  bpkit_tools::ArgReader args{kProgram, argc, argv};
  for (int& i = args.i; ++i < argc;) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--epochs") {
      epochs = int(args.number(a, args.value(), 0, 1000));
    } else if (a == "--nets") {
      nets = args.value();
      std::stringstream ss(nets);
      std::string item;
      bool any = false;
      while (std::getline(ss, item, ',')) {
        if (item != "mlp" && item != "cnn")
          usage_error("--nets expects a comma-separated list of mlp and cnn, got '" + nets + "'");
        any = true;
      }
      if (!any || nets.back() == ',')
        usage_error("--nets expects a comma-separated list of mlp and cnn, got '" + nets + "'");
    } else if (a == "--data") {
      data = args.value();
    } else if (a == "--threads") {
      bpkit::set_num_threads(int(args.number(a, args.value(), 1, 1024)));
    } else if (a == "--best") {
      best = true;
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else {
      usage_error("unexpected argument '" + a + "'");
    }
  }
  try {
    const bpkit::Dataset train = bpkit::load_mnist_dir(data, "train");
    const bpkit::Dataset test = bpkit::load_mnist_dir(data, "t10k");
    std::printf("bpkit engine benchmark: threads=%d\n", bpkit::num_threads());
    std::string summary;
    char buf[256];
    for (const std::string name : {"mlp", "cnn"}) {
      if (nets.find(name) == std::string::npos) continue;
      const int n = epochs > 0 ? epochs : (name == "mlp" ? 3 : 1);
      const Figures f = run(name, train, test, n, false);
      std::snprintf(buf, sizeof buf,
                    "%s_train_sps=%.0f %s_infer_sps=%.0f %s_b1_us=%.1f %s_acc=%.4f ", name.c_str(),
                    f.train_sps, name.c_str(), f.infer_sps, name.c_str(), f.b1_us, name.c_str(),
                    f.acc);
      summary += buf;
      if (best) {
        const Figures fb = run(name + "_bn", train, test, n, true);
        std::snprintf(buf, sizeof buf, "%s_best_acc=%.4f ", name.c_str(), fb.acc);
        summary += buf;
      }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::snprintf(buf, sizeof buf, "peak_rss_mb=%.0f", double(ru.ru_maxrss) / 1024);
    std::printf("%s%s\n", summary.c_str(), buf);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", kProgram, e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run_program(argc, argv); });
}
