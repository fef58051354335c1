// End-to-end learning: XOR with the classic 2-2-1 sigmoid network, bit-identical training runs for
// a fixed seed and thread count, and the reference MLP's one-epoch accuracy on Fashion-MNIST.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bpkit/data.h"
#include "bpkit/layers.h"
#include "bpkit/loss.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"
#include "bpkit/threading.h"
#include "bpkit/trainer.h"
#include "bpkit/zoo.h"

using namespace bpkit;

namespace {

// Sets the engine's thread count for one scope and restores the previous one.
struct ThreadCount {
  int saved = num_threads();
  explicit ThreadCount(int n) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved); }
};

// Three classes of 6×6 single-channel images: each class has its own fixed template (a different
// random pattern), and every sample is its template plus Gaussian noise.
Dataset synthetic_dataset(int64_t n, uint64_t seed) {
  const int64_t classes = 3, pixels = 36;
  Rng rng(seed);
  std::vector<float> templates(size_t(classes * pixels));
  for (float& v : templates) v = float(rng.normal());
  Dataset d;
  d.classes = int(classes);
  d.x.resize({n, 1, 6, 6});
  d.y.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = int32_t(rng.below(uint64_t(classes)));
    d.y[size_t(i)] = c;
    for (int64_t p = 0; p < pixels; ++p)
      d.x[i * pixels + p] = templates[size_t(c * pixels + p)] + float(0.8 * rng.normal());
  }
  return d;
}

// conv → batchnorm → relu → maxpool → flatten → dropout → dense: every kind of state a training
// run can make nondeterministic (threaded convolution, batch statistics, dropout masks).
Network<float> small_cnn(uint64_t seed) {
  Network<float> net({1, 6, 6}, seed);
  net.emplace<Conv2d<float>>(4, 3, 1, 1);
  net.emplace<BatchNorm<float>>();
  net.emplace<ActivationLayer<float>>(Activation::kRelu);
  net.emplace<Pool2d<float>>(PoolKind::kMax, 2);
  net.emplace<Reshape<float>>();
  net.emplace<Dropout<float>>(0.2);
  net.emplace<Dense<float>>(3);
  return net;
}

struct Run {
  std::vector<std::vector<float>> tensors;  // parameters and buffers, in network order
  std::vector<double> losses;               // training loss per epoch
  double final_train_acc = 0;
};

Run train_small_cnn(const Dataset& data, uint64_t net_seed, uint64_t shuffle_seed) {
  Network<float> net = small_cnn(net_seed);
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> opt(net.params(), 0.05, 0.9);
  TrainOptions o;
  o.epochs = 3;
  o.batch = 32;
  o.seed = shuffle_seed;
  const TrainResult r = fit(net, loss, opt, data, o);
  Run run;
  for (const EpochStats& s : r.history) run.losses.push_back(s.train_loss);
  run.final_train_acc = r.history.back().train_acc;
  for (size_t i = 0; i < net.size(); ++i) {
    for (auto& p : net.layer(i).params())
      run.tensors.emplace_back(p.value->begin(), p.value->end());
    for (auto& b : net.layer(i).buffers())
      run.tensors.emplace_back(b.second->begin(), b.second->end());
  }
  return run;
}

// Bitwise equality (== on floats would also accept −0 for +0; memcmp does not).
bool identical(const Run& a, const Run& b) {
  if (a.tensors.size() != b.tensors.size() || a.losses.size() != b.losses.size()) return false;
  for (size_t k = 0; k < a.tensors.size(); ++k)
    if (a.tensors[k].size() != b.tensors[k].size() ||
        std::memcmp(a.tensors[k].data(), b.tensors[k].data(), a.tensors[k].size() * sizeof(float)))
      return false;
  return std::memcmp(a.losses.data(), b.losses.data(), a.losses.size() * sizeof(double)) == 0;
}

std::string fashion_mnist_dir() {
  const char* env = std::getenv("BPKIT_FMNIST_DIR");
  return env ? env : "/usr/share/datasets/fashion-mnist";
}

}  // namespace

TEST_CASE("a 2-2-1 sigmoid network learns XOR", "[learning]") {
  // Seed 3 converges. With 2 hidden units some seeds end in a local minimum instead (of seeds
  // 1–30 with this recipe, 4, 7, 8, 12, 18, 19, 22 and 29 output ≈ 0.5 on two of the four cases),
  // so the seed is part of the test.
  Network<double> net({2}, 3);
  net.emplace<Dense<double>>(2, -1, Init::kGlorot);
  net.emplace<ActivationLayer<double>>(Activation::kSigmoid);
  net.emplace<Dense<double>>(1, -1, Init::kGlorot);
  net.emplace<ActivationLayer<double>>(Activation::kSigmoid);

  Tensor<double> x({4, 2});
  Targets<double> t;
  t.values = Tensor<double>({4, 1});
  const double inputs[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
  for (int i = 0; i < 4; ++i) {
    x[2 * i] = inputs[i][0];
    x[2 * i + 1] = inputs[i][1];
    t.values[i] = inputs[i][0] != inputs[i][1] ? 1 : 0;
  }

  MeanSquaredError<double> loss;
  Sgd<double> opt(net.params(), 0.5, 0.9);
  Tensor<double> grad;
  double first = 0, last = 0;
  for (int epoch = 0; epoch < 2000; ++epoch) {  // full batch: one step per epoch
    const Tensor<double>& out = net.forward(x, Mode::kTrain);
    last = loss.compute(out, t, grad);
    if (epoch == 0) first = last;
    net.zero_grad();
    net.backward(grad);
    opt.step();
  }
  CAPTURE(first, last);
  CHECK(last < 0.01 * first);
  const Tensor<double>& out = net.forward(x, Mode::kInfer);
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i, out[i]);
    if (t.values[i] > 0.5)
      CHECK(out[i] > 0.8);
    else
      CHECK(out[i] < 0.2);
  }
}

TEST_CASE("training is bit-identical for a fixed seed and thread count", "[learning]") {
  const Dataset data = synthetic_dataset(600, 7);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    ThreadCount scope(threads);
    const Run a = train_small_cnn(data, 11, 5);
    const Run b = train_small_cnn(data, 11, 5);
    CHECK(identical(a, b));
    // The runs learned something, so the comparison is not between two untouched networks.
    CHECK(a.losses.back() < a.losses.front());
    CHECK(a.final_train_acc > 0.9);
    // Another initialization seed, or another shuffling seed, gives other weights.
    CHECK_FALSE(identical(a, train_small_cnn(data, 12, 5)));
    CHECK_FALSE(identical(a, train_small_cnn(data, 11, 6)));
  }
}

// The peer benchmark's recipe (SGD lr 0.05, momentum 0.9, batch 64) with the learning rate decayed
// to zero over the epoch by the cosine schedule, as `bpkit fmnist` trains by default. With a
// constant rate the last iterate swings between about 82% and 85.5% from seed to seed (libtorch
// with the same recipe: 84.2%); the decay settles it at 85.2-85.7% for seeds 1-3.
TEST_CASE("reference mlp reaches 85% on Fashion-MNIST after one epoch", "[learning][fmnist]") {
  const std::string dir = fashion_mnist_dir();
  INFO("Fashion-MNIST from " << dir << " (set BPKIT_FMNIST_DIR to use another directory)");
  const Dataset train = load_mnist_dir(dir, "train");
  const Dataset test = load_mnist_dir(dir, "t10k");
  REQUIRE(train.size() == 60000);
  REQUIRE(test.size() == 10000);

  Network<float> net = make_reference_net("mlp", 1);
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> opt(net.params(), 0.05, 0.9);
  TrainOptions o;
  o.epochs = 1;
  o.batch = 64;
  o.seed = 1;
  o.schedule.kind = Schedule::kCosine;
  o.schedule.total_epochs = 1;
  fit(net, loss, opt, train, o);
  const EvalResult r = evaluate(net, loss, test, 256);
  CAPTURE(r.accuracy, r.loss);
  CHECK(r.accuracy >= 0.85);
}
