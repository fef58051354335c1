// Times each layer's forward and backward (parameter + input gradients) at one batch size, for a
// reference network, to show where a training step spends its time. usage: layer_profile
// [mlp|cnn|mlp_bn|cnn_bn] [batch] [reps] [auto|im2col]   (the last: convolution algorithm)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "bpkit/layers.h"
#include "bpkit/threading.h"
#include "bpkit/version.h"
#include "bpkit/zoo.h"
#include "tool_args.h"

namespace {

const char kProgram[] = "layer_profile";

const char kUsage[] =
    "usage: layer_profile [NETWORK [BATCH [REPS [ALGORITHM]]]]\n"
    "\n"
    "Times each layer's forward and backward (parameter + input gradients) at one batch size for\n"
    "a reference network, to show where a training step spends its time: microseconds per call,\n"
    "mean and fastest, per layer, then the whole step. The engine's threads: BPKIT_NUM_THREADS.\n"
    "\n"
    "  NETWORK     mlp, cnn, mlp_bn or cnn_bn (default cnn)\n"
    "  BATCH       batch size, 1..65536 (default 64)\n"
    "  REPS        timed repetitions after 3 warm-up ones, 1..1000000 (default 50)\n"
    "  ALGORITHM   convolution algorithm: auto or im2col (default auto)\n"
    "  -h, --help  this text\n"
    "  --version   the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  bpkit_tools::usage_error(kProgram, msg);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int run(int argc, char** argv) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    }
    positional.push_back(a);
  }
  if (positional.size() > 4)
    usage_error("expected at most 4 arguments (NETWORK BATCH REPS ALGORITHM), got " +
                std::to_string(positional.size()));
  const bpkit_tools::ArgReader args{kProgram, argc, argv};
  const std::string name = positional.size() > 0 ? positional[0] : "cnn";
  if (name != "mlp" && name != "cnn" && name != "mlp_bn" && name != "cnn_bn")
    usage_error("NETWORK expects mlp, cnn, mlp_bn or cnn_bn, got '" + name + "'");
  const int64_t batch = positional.size() > 1 ? args.number("BATCH", positional[1], 1, 65536) : 64;
  const int reps = positional.size() > 2 ? int(args.number("REPS", positional[2], 1, 1000000)) : 50;
  const std::string algorithm = positional.size() > 3 ? positional[3] : "auto";
  if (algorithm != "auto" && algorithm != "im2col")
    usage_error("ALGORITHM expects auto or im2col, got '" + algorithm + "'");
  bpkit::Network<float> net = bpkit::make_reference_net(name, 1);
  if (algorithm == "im2col")
    for (size_t i = 0; i < net.size(); ++i)
      if (auto* conv = dynamic_cast<bpkit::Conv2d<float>*>(&net.layer(i)))
        conv->set_algorithm(bpkit::ConvAlgorithm::kIm2col);
  bpkit::Rng rng(3);
  bpkit::Shape in{batch};
  in.insert(in.end(), net.input_shape().begin(), net.input_shape().end());
  bpkit::Tensor<float> x(in);
  for (float& v : x) v = float(rng.uniform());
  const size_t L = net.size();
  std::vector<bpkit::Tensor<float>> acts(L), grads(L);
  std::vector<double> tf(L), tb(L);
  // Fastest call of each layer: on a shared machine the mean carries every time slice lost to
  // other processes; the minimum is what the layer costs when it runs undisturbed.
  std::vector<double> mf(L, 1e30), mb(L, 1e30);
  for (size_t i = 0; i < L; ++i) {
    bpkit::Shape s{batch};
    s.insert(s.end(), net.shape_after(i).begin(), net.shape_after(i).end());
    grads[i] = bpkit::Tensor<float>(s, 0.01f);
  }
  bpkit::Tensor<float> dx;
  for (int r = 0; r < reps + 3; ++r) {
    const bool count = r >= 3;
    const bpkit::Tensor<float>* cur = &x;
    for (size_t i = 0; i < L; ++i) {
      const double t0 = now_s();
      net.layer(i).forward(*cur, acts[i], bpkit::Mode::kTrain);
      const double dt = now_s() - t0;
      if (count) tf[i] += dt;
      if (count) mf[i] = std::min(mf[i], dt);
      cur = &acts[i];
    }
    // As Network::backward does it: parameter and input gradients in one call, the first layer's
    // parameter gradient alone.
    for (size_t i = L; i-- > 0;) {
      const bpkit::Tensor<float>& xi = i == 0 ? x : acts[i - 1];
      const double t0 = now_s();
      if (i == 0)
        net.layer(i).gradient(xi, acts[i], grads[i]);
      else
        net.layer(i).gradient_and_backward(xi, acts[i], grads[i], dx);
      const double dt = now_s() - t0;
      if (count) tb[i] += dt;
      if (count) mb[i] = std::min(mb[i], dt);
    }
  }
  double total = 0, fastest = 0;
  std::printf(
      "%s batch %lld threads %d (microseconds per call: mean, fastest)\n%-12s %9s %9s %9s %9s\n",
      name.c_str(), static_cast<long long>(batch), bpkit::num_threads(), "layer", "forward",
      "backward", "fwd_min", "bwd_min");
  for (size_t i = 0; i < L; ++i) {
    std::printf("%-12s %9.1f %9.1f %9.1f %9.1f\n", net.layer(i).name().c_str(), tf[i] * 1e6 / reps,
                tb[i] * 1e6 / reps, mf[i] * 1e6, mb[i] * 1e6);
    total += tf[i] + tb[i];
    fastest += mf[i] + mb[i];
  }
  std::printf("total %.1f us per step = %.0f samples/s (layers only)\n", total * 1e6 / reps,
              double(batch) * reps / total);
  std::printf("fastest calls: %.1f us per step\n", fastest * 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run(argc, argv); });
}
