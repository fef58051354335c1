// Times each layer's forward and backward (parameter + input gradients) at one batch size, for a
// reference network, to show where a training step spends its time. usage: layer_profile
// [mlp|cnn|...] [batch] [reps] [auto|im2col]   (the last: convolution algorithm)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bpkit/layers.h"
#include "bpkit/threading.h"
#include "bpkit/version.h"
#include "bpkit/zoo.h"

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "layer_profile")) return 0;
  const std::string name = argc > 1 ? argv[1] : "cnn";
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 64;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 50;
  bpkit::Network<float> net = bpkit::make_reference_net(name, 1);
  if (argc > 4 && std::string(argv[4]) == "im2col")
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
}
