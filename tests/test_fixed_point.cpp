// Fixed-point recurrent backpropagation (fixed_point.h): the relaxation reaches a true fixed point,
// the Almeida–Pineda gradient equals finite differences of the loss at the fixed point, both
// relaxations report non-convergence instead of returning a wrong answer, and the layer saves,
// loads, seeds and validates like every other layer.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "../bench/assoc_memory.h"
#include "bpkit/error.h"
#include "bpkit/fixed_point.h"
#include "bpkit/layers.h"
#include "bpkit/loss.h"
#include "bpkit/model_file.h"
#include "bpkit/optimizer.h"
#include "bpkit/threading.h"
#include "gradcheck.h"
#include "temp_dir.h"

using namespace bpkit;
using bpkit_test::check_layer_gradients;
using bpkit_test::random_tensor;
using Catch::Matchers::Contains;

namespace {

using Act = FixedPointActivation;

FixedPointOptions tight(double damping = 1.0) {
  FixedPointOptions o;
  o.tol = 1e-14;  // the finite differences below must see the fixed point itself
  o.adjoint_tol = 1e-14;
  o.max_iter = 20000;
  o.damping = damping;
  return o;
}

template <class T>
FixedPoint<T>& only_layer(Network<T>& net) {
  return static_cast<FixedPoint<T>&>(net.layer(0));
}

// max_i |s_i − f(W_eff·s + U·x + b)_i| for sample b, computed here from the parameters with plain
// loops (not the layer's GEMM path).
double fixed_point_residual(FixedPoint<double>& layer, const Tensor<double>& x, int64_t b,
                            bool symmetric, bool zero_diagonal, Act act) {
  const auto p = layer.params();
  const Tensor<double>& W = *p[0].value;
  const Tensor<double>& U = *p[1].value;
  const Tensor<double>& bias = *p[2].value;
  const Tensor<double>& s = layer.state();
  const int64_t N = layer.units(), F = x.cols();
  double worst = 0;
  for (int64_t i = 0; i < N; ++i) {
    double a = bias[i];
    for (int64_t j = 0; j < N; ++j) {
      double w = symmetric ? 0.5 * (W[i * N + j] + W[j * N + i]) : W[i * N + j];
      if (zero_diagonal && i == j) w = 0;
      a += w * s[b * N + j];
    }
    for (int64_t k = 0; k < F; ++k) a += U[i * F + k] * x[b * F + k];
    const double f = act == Act::kSigmoid ? 1 / (1 + std::exp(-a)) : std::tanh(a);
    worst = std::max(worst, std::abs(s[b * N + i] - f));
  }
  return worst;
}

}  // namespace

TEST_CASE("fixed_point relaxes to a fixed point of s = f(W·s + U·x + b)", "[fixed_point]") {
  struct Case {
    Act act;
    bool symmetric, zero_diagonal;
    double radius, damping;
  };
  for (const Case c :
       {Case{Act::kSigmoid, false, false, 2.0, 1.0}, Case{Act::kTanh, true, true, 0.9, 0.5},
        Case{Act::kTanh, false, true, 0.8, 0.7}}) {
    FixedPointOptions o;
    o.tol = 1e-10;
    o.max_iter = 5000;
    o.damping = c.damping;
    Network<double> net({5}, 7);
    net.emplace<FixedPoint<double>>(9, 4, c.act, o, c.symmetric, c.zero_diagonal, c.radius);
    FixedPoint<double>& fp = only_layer(net);
    const Tensor<double> x = random_tensor({6, 5}, 8);
    const Tensor<double> y = net.forward(x, Mode::kTrain);
    REQUIRE(y.shape() == Shape{6, 4});
    CHECK(fp.last_forward().max_iterations > 2);
    CHECK(fp.last_forward().max_residual < 1e-10);
    for (int64_t b = 0; b < 6; ++b) {
      // Below the tolerance in every unit (up to the rounding of the two computations).
      CHECK(fixed_point_residual(fp, x, b, c.symmetric, c.zero_diagonal, c.act) < 1.0001e-10);
      for (int64_t i = 0; i < 4; ++i) CHECK(y[b * 4 + i] == fp.state()[b * 9 + i]);
    }
    // The equilibrium does not depend on the damping, only the path to it does; a sample alone
    // reaches the same state as in the batch.
    FixedPointOptions slower = o;
    slower.damping = c.damping * 0.5;
    fp.set_options(slower);
    Tensor<double> one({1, 5});
    std::copy(x.data() + 2 * 5, x.data() + 3 * 5, one.data());
    const Tensor<double> y1 = net.forward(one, Mode::kTrain);
    CHECK(fp.last_forward().max_iterations > 2);
    for (int64_t i = 0; i < 4; ++i) CHECK(std::abs(y1[i] - y[2 * 4 + i]) < 1e-8);
  }
}

TEST_CASE("fixed_point gradients equal finite differences at the fixed point",
          "[fixed_point][gradcheck]") {
  auto make = [](int64_t units, int64_t outputs, Act act, FixedPointOptions o, bool sym, bool zd,
                 double radius) {
    return std::make_unique<FixedPoint<double>>(units, outputs, act, o, sym, zd, radius);
  };
  // Asymmetric W, sigmoid, a subset of output units (the others hidden).
  check_layer_gradients(make(7, 3, Act::kSigmoid, tight(0.7), false, false, 3.0), {5}, 4, 1);
  // Asymmetric W, tanh, every unit an output, damped iteration.
  check_layer_gradients(make(6, 0, Act::kTanh, tight(0.6), false, false, 0.8), {4}, 3, 2);
  // Symmetric W with a zero diagonal (a Hopfield-style network), tanh.
  check_layer_gradients(make(8, 5, Act::kTanh, tight(0.8), true, true, 0.9), {6}, 3, 3);
  // Symmetric W with self-connections, sigmoid; and a zero diagonal alone.
  check_layer_gradients(make(5, 2, Act::kSigmoid, tight(), true, false, 3.0), {3}, 2, 4);
  check_layer_gradients(make(5, 5, Act::kSigmoid, tight(), false, true, 3.0), {3}, 2, 5);
  // One unit, one sample.
  check_layer_gradients(make(1, 0, Act::kTanh, tight(), false, false, 0.5), {2}, 1, 6);
}

TEST_CASE("fixed_point gradients inside a network", "[fixed_point][gradcheck]") {
  Network<double> net({6}, 21);
  net.emplace<Dense<double>>(5, -1, Init::kGlorot);
  net.emplace<FixedPoint<double>>(7, 4, Act::kTanh, tight(0.7), false, false, 0.9);
  net.emplace<Dense<double>>(3, -1, Init::kGlorot);
  bpkit_test::check_network_gradients(net, 3, 22);
}

TEST_CASE("fixed_point keeps the symmetric and zero-diagonal constraints while training",
          "[fixed_point]") {
  Network<double> net({4}, 31);
  net.emplace<FixedPoint<double>>(6, 3, Act::kTanh, FixedPointOptions{}, true, true, 0.9);
  const auto params = net.params();
  const Tensor<double>& W = *params[0].value;
  Sgd<double> opt(params, 0.5, 0.9);
  MeanSquaredError<double> loss;
  Targets<double> t;
  t.values = random_tensor({5, 3}, 32, -0.8, 0.8);
  const Tensor<double> x = random_tensor({5, 4}, 33);
  Tensor<double> grad;
  for (int step = 0; step < 20; ++step) {
    net.zero_grad();
    loss.compute(net.forward(x, Mode::kTrain), t, grad);
    net.backward(grad);
    opt.step();
  }
  for (int64_t i = 0; i < 6; ++i) {
    CHECK(W[i * 6 + i] == 0);
    for (int64_t j = 0; j < 6; ++j) CHECK(W[i * 6 + j] == W[j * 6 + i]);
  }
  CHECK(W[1] != 0);
}

// ---- Non-convergence -------------------------------------------------------------------------

namespace {

// A network of N tanh units, one input each (U = I, b = 0) and W = w·I: unit i iterates
// s ← (1−λ)·s + λ·tanh(w·s + x_i).
Network<double> self_coupled(int64_t n, double w, FixedPointOptions o) {
  Network<double> net({n}, 1);
  net.emplace<FixedPoint<double>>(n, 0, Act::kTanh, o);
  auto p = net.params();
  p[0].value->zero();
  p[1].value->zero();
  for (int64_t i = 0; i < n; ++i) {
    (*p[0].value)[i * n + i] = w;
    (*p[1].value)[i * n + i] = 1;
  }
  p[2].value->zero();
  return net;
}

}  // namespace

TEST_CASE("fixed_point reports a forward relaxation that does not converge", "[fixed_point]") {
  FixedPointOptions o;
  o.tol = 1e-8;
  o.max_iter = 200;
  o.damping = 1;
  // Strong self-inhibition: with λ = 1, s ← tanh(−4·s + x) overshoots into a 2-cycle.
  Network<double> net = self_coupled(3, -4, o);
  Tensor<double> x({4, 3}, 0.0);
  x[3 * 3 + 1] = 0.3;  // only sample 3 is driven away from the fixed point s = 0
  try {
    net.forward(x, Mode::kTrain);
    FAIL("no ConvergenceError");
  } catch (const ConvergenceError& e) {
    const std::string m = e.what();
    CHECK_THAT(m, Contains("layer 'fixed_point1' (fixed_point)"));
    CHECK_THAT(m, Contains("forward relaxation did not converge"));
    CHECK_THAT(m, Contains("sample 3 of a batch of 4"));
    CHECK_THAT(m, Contains("after 200 iterations"));
    CHECK_THAT(m, Contains("1 samples unconverged"));
    CHECK_THAT(m, Contains("residual "));
    CHECK_THAT(m, Contains("does not settle"));
  }
  // A failed forward leaves nothing for backward.
  FixedPoint<double>& fp = only_layer(net);
  Tensor<double> dx;
  CHECK_THROWS_WITH(fp.backward(x, x, x, dx), Contains("completed forward pass"));
  // Damping is the cure: the damped map (1−λ)·s + λ·tanh(−4·s + x) is a contraction near the
  // fixed point for λ = 0.3.
  o.damping = 0.3;
  fp.set_options(o);
  net.forward(x, Mode::kTrain);
  CHECK(fp.last_forward().max_residual < 1e-8);
  CHECK(fp.last_forward().max_iterations > 5);
  CHECK(fp.last_forward().max_iterations < 200);
}

TEST_CASE("fixed_point reports the failing sample of any block of the batch", "[fixed_point]") {
  // 128 units: the batch of 16 splits into blocks of 8 samples, one per thread (two or more
  // threads); the failing sample sits in the second block, the others converge at once.
  FixedPointOptions o;
  o.tol = 1e-8;
  o.max_iter = 50;
  o.damping = 1;
  Network<double> net = self_coupled(128, -4, o);
  Tensor<double> x({16, 128}, 0.0);
  x[13 * 128 + 100] = 0.3;
  CHECK_THROWS_WITH(net.forward(x, Mode::kTrain), Contains("sample 13 of a batch of 16") &&
                                                      Contains("1 samples unconverged") &&
                                                      Contains("after 50 iterations"));
  x[2 * 128 + 7] = 0.2;
  CHECK_THROWS_WITH(net.forward(x, Mode::kTrain), Contains("2 samples unconverged"));
}

TEST_CASE("fixed_point reports an adjoint relaxation that does not converge", "[fixed_point]") {
  FixedPointOptions o;
  o.adjoint_tol = 1e-8;
  o.max_iter = 100;
  // W = 2·I, x = 0, b = 0: s = 0 is a fixed point and the relaxation starts on it (zero
  // iterations), but it is unstable (D·W = 2·I), so the adjoint z ← Wᵀ·D·z + e grows without end.
  Network<double> net = self_coupled(3, 2, o);
  FixedPoint<double>& fp = only_layer(net);
  Tensor<double> x({2, 3}, 0.0);
  net.forward(x, Mode::kTrain);
  CHECK(fp.last_forward().max_iterations == 0);
  Tensor<double> dy({2, 3}, 0.0);
  dy[1 * 3 + 2] = 1;  // sample 0 has no error to propagate and converges at once
  try {
    net.backward(dy);
    FAIL("no ConvergenceError");
  } catch (const ConvergenceError& e) {
    const std::string m = e.what();
    CHECK_THAT(m, Contains("layer 'fixed_point1' (fixed_point)"));
    CHECK_THAT(m, Contains("adjoint relaxation did not converge"));
    CHECK_THAT(m, Contains("sample 1 of a batch of 2"));
    CHECK_THAT(m, Contains("relative residual"));
    CHECK_THAT(m, Contains("after 100 iterations"));
    CHECK_THAT(m, Contains("the residual grows: the forward equilibrium is unstable"));
  }
  // Nothing was accumulated.
  for (const auto& p : net.params())
    for (double g : *p.grad) CHECK(g == 0);
  // W = 0.5·I: the same equilibrium is stable and the adjoint converges, to z = e/(1 − 0.5).
  (*net.params()[0].value)[0] = 0.5;
  (*net.params()[0].value)[4] = 0.5;
  (*net.params()[0].value)[8] = 0.5;
  net.forward(x, Mode::kTrain);
  Tensor<double> dx;
  net.backward(dy, &dx);
  CHECK(fp.last_adjoint().max_iterations > 5);
  CHECK(dx[1 * 3 + 2] == Approx(2.0).epsilon(1e-7));  // U = I, D = 1 at s = 0
  CHECK(dx[0] == 0);
}

TEST_CASE("fixed_point reports a non-finite state", "[fixed_point]") {
  Network<double> net({3}, 1);
  net.emplace<FixedPoint<double>>(4);
  Tensor<double> x({2, 3}, 0.5);
  x[4] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(net.forward(x, Mode::kTrain), ConvergenceError);
  CHECK_THROWS_WITH(net.forward(x, Mode::kTrain), Contains("sample 1 of a batch of 2") &&
                                                      Contains("no longer finite") &&
                                                      Contains("after 0 iterations"));
}

// ---- Iteration counts, determinism, model files, bad input -----------------------------------

TEST_CASE("fixed_point reports iteration counts of both relaxations", "[fixed_point]") {
  FixedPointOptions o;
  o.tol = 1e-9;
  o.damping = 1;
  Network<float> net({5}, 3);
  net.emplace<FixedPoint<float>>(12, 4, Act::kTanh, FixedPointOptions{}, false, false, 0.9);
  FixedPoint<float>& fp = static_cast<FixedPoint<float>&>(net.layer(0));
  o.tol = 1e-5;
  fp.set_options(o);
  Tensor<float> x({8, 5});
  Rng rng(4);
  for (float& v : x) v = float(rng.uniform() * 2 - 1);
  net.forward(x, Mode::kTrain);
  const RelaxationStats fast = fp.last_forward();
  CHECK(fast.max_iterations > 3);
  CHECK(fast.mean_iterations <= double(fast.max_iterations));
  CHECK(fast.mean_iterations > 0);
  CHECK(fast.max_residual < 1e-5);
  Tensor<float> dy({8, 4}, 0.25f);
  net.backward(dy);
  CHECK(fp.last_adjoint().max_iterations > 3);
  // Too few iterations for a converging relaxation: the error says the residual was falling.
  FixedPointOptions few = o;
  few.max_iter = 10;
  fp.set_options(few);
  CHECK_THROWS_WITH(net.forward(x, Mode::kTrain),
                    Contains("after 10 iterations") && Contains("falls too slowly"));
  // Heavy damping takes more steps to the same equilibrium.
  o.damping = 0.1;
  fp.set_options(o);
  net.forward(x, Mode::kTrain);
  CHECK(fp.last_forward().max_iterations > fast.max_iterations);
}

TEST_CASE("fixed_point is deterministic", "[fixed_point]") {
  auto train = [] {
    Network<float> net({6}, 42);
    net.emplace<FixedPoint<float>>(10, 6, Act::kSigmoid, FixedPointOptions{}, false, true, 2.0);
    Adam<float> opt(net.params(), 0.01);
    MeanSquaredError<float> loss;
    Targets<float> t;
    t.values = Tensor<float>({16, 6});
    Tensor<float> x({16, 6}), grad;
    Rng rng(9);
    for (int64_t i = 0; i < x.size(); ++i) {
      x[i] = float(rng.uniform());
      t.values[i] = x[i] > 0.5f ? 1.f : 0.f;
    }
    for (int step = 0; step < 10; ++step) {
      net.zero_grad();
      loss.compute(net.forward(x, Mode::kTrain), t, grad);
      net.backward(grad);
      opt.step();
    }
    std::vector<float> all;
    for (const auto& p : net.params()) all.insert(all.end(), p.value->begin(), p.value->end());
    return all;
  };
  const std::vector<float> a = train(), b = train();
  CHECK(a == b);
  Network<float> other({6}, 43);
  other.emplace<FixedPoint<float>>(10, 6, Act::kSigmoid, FixedPointOptions{}, false, true, 2.0);
  CHECK(std::vector<float>(other.params()[0].value->begin(), other.params()[0].value->end()) !=
        std::vector<float>(a.begin(), a.begin() + 100));
}

TEST_CASE("fixed_point gives the same results on one thread and on several", "[fixed_point]") {
  // 80 units, 64 samples: several blocks of samples when threads are available.
  Network<double> net({20}, 11);
  net.emplace<FixedPoint<double>>(80, 30, Act::kTanh, FixedPointOptions{}, false, false, 0.9);
  const Tensor<double> x = random_tensor({64, 20}, 12);
  const Tensor<double> dy = random_tensor({64, 30}, 13);
  auto run = [&](int threads, std::vector<double>& grads) {
    const int saved = num_threads();
    set_num_threads(threads);
    Tensor<double> y = net.forward(x, Mode::kTrain), dx;
    net.zero_grad();
    net.backward(dy, &dx);
    set_num_threads(saved);
    grads.assign(dx.begin(), dx.end());
    for (const auto& p : net.params()) grads.insert(grads.end(), p.grad->begin(), p.grad->end());
    return y;
  };
  std::vector<double> g1, g2;
  const Tensor<double> y1 = run(1, g1), y2 = run(std::max(2, num_threads()), g2);
  REQUIRE(y1.size() == y2.size());
  for (int64_t i = 0; i < y1.size(); ++i) CHECK(std::abs(y1[i] - y2[i]) < 1e-12);
  REQUIRE(g1.size() == g2.size());
  double worst = 0, largest = 0;
  for (size_t i = 0; i < g1.size(); ++i) {
    worst = std::max(worst, std::abs(g1[i] - g2[i]));
    largest = std::max(largest, std::abs(g1[i]));
  }
  CHECK(worst <= 1e-12 * largest);
  CHECK(largest > 0);
}

template <class T>
void check_round_trip() {
  bpkit_test::TempDir dir("fixed_point");
  FixedPointOptions o;
  o.tol = 1e-6;
  o.adjoint_tol = 2e-5;
  o.max_iter = 321;
  o.damping = 0.7;
  Network<T> net({7}, 5);
  net.template emplace<FixedPoint<T>>(11, 4, Act::kTanh, o, true, true, 0.8);
  net.template emplace<Dense<T>>(2);
  Tensor<T> x({3, 7});
  Rng rng(6);
  for (T& v : x) v = T(rng.uniform());
  const Tensor<T> y = net.forward(x, Mode::kInfer);
  save_model(net, dir.file("fp.bpk"));
  LoadedModel<T> loaded = load_model<T>(dir.file("fp.bpk"));
  REQUIRE(loaded.net.size() == 2);
  CHECK(loaded.net.layer(0).kind() == "fixed_point");
  CHECK(loaded.net.layer(0).attrs().to_string() == net.layer(0).attrs().to_string());
  const auto& fp = static_cast<const FixedPoint<T>&>(loaded.net.layer(0));
  CHECK(fp.options().tol == 1e-6);
  CHECK(fp.options().adjoint_tol == 2e-5);
  CHECK(fp.options().max_iter == 321);
  CHECK(fp.options().damping == 0.7);
  CHECK(fp.units() == 11);
  CHECK(fp.outputs() == 4);
  const Tensor<T> y2 = loaded.net.forward(x, Mode::kInfer);
  REQUIRE(y2.shape() == y.shape());
  for (int64_t i = 0; i < y.size(); ++i) CHECK(y2[i] == y[i]);
}

TEST_CASE("fixed_point model files round trip", "[fixed_point][model_file]") {
  check_round_trip<float>();
  check_round_trip<double>();
  Attrs a = Attrs::parse(
      "units=5 activation=tanh symmetric=1 tol=1e-7 adjoint_tol=1e-3 max_iter=9 damping=0.25");
  auto layer = make_layer<float>("fixed_point", a);
  CHECK(layer->attrs().to_string() ==
        "units=5 outputs=5 in=-1 activation=tanh symmetric=1 zero_diagonal=0 tol=1e-07 "
        "adjoint_tol=0.001 max_iter=9 damping=0.25 init_radius=0.5");
}

TEST_CASE("fixed_point refuses bad configurations and shapes", "[fixed_point][errors]") {
  using FP = FixedPoint<float>;
  FixedPointOptions bad;
  CHECK_THROWS_WITH(FP(0), Contains("units must be at least 1"));
  CHECK_THROWS_WITH(FP(4, 5), Contains("outputs must be in [0, units=4]"));
  CHECK_THROWS_WITH(FP(4, -1), Contains("outputs"));
  bad.damping = 0;
  CHECK_THROWS_WITH(FP(4, 0, Act::kSigmoid, bad), Contains("damping must be in (0, 1], got 0"));
  bad.damping = 1.5;
  CHECK_THROWS_WITH(FP(4, 0, Act::kSigmoid, bad), Contains("damping"));
  bad = {};
  bad.tol = 0;
  CHECK_THROWS_WITH(FP(4, 0, Act::kSigmoid, bad), Contains("tol must be a positive number"));
  bad = {};
  bad.adjoint_tol = -1;
  CHECK_THROWS_WITH(FP(4, 0, Act::kSigmoid, bad), Contains("adjoint_tol must be a positive"));
  bad = {};
  bad.max_iter = 0;
  CHECK_THROWS_WITH(FP(4, 0, Act::kSigmoid, bad), Contains("max_iter must be at least 1"));
  CHECK_THROWS_WITH(FP(4, 0, Act::kSigmoid, {}, false, false, -1), Contains("init_radius"));
  CHECK_THROWS_WITH(make_layer<float>("fixed_point", Attrs::parse("units=3 activation=relu")),
                    Contains("'activation' must be sigmoid or tanh, got 'relu'"));
  CHECK_THROWS_WITH(make_layer<float>("fixed_point", Attrs::parse("units=3 damping=2")),
                    Contains("damping"));

  Network<float> image({1, 4, 4}, 1);
  CHECK_THROWS_WITH(image.emplace<FP>(3),
                    Contains("(fixed_point): expects a flat input") && Contains("[1,4,4]"));
  Network<float> declared({5}, 1);
  CHECK_THROWS_WITH(declared.add(std::make_unique<FP>(3, 0, Act::kSigmoid, FixedPointOptions{},
                                                      false, false, 0.5, 6)),
                    Contains("declared input [6]") && Contains("gives [5]"));

  Network<float> net({5}, 1);
  FP& fp = net.emplace<FP>(4, 2);
  Tensor<float> x({3, 6}), y, dx;
  CHECK_THROWS_WITH(fp.forward(x, y, Mode::kTrain), Contains("expects 5 input features"));
  Tensor<float> good({3, 5}, 0.1f);
  fp.forward(good, y, Mode::kInfer);
  Tensor<float> dy({3, 2}, 1.f);
  CHECK_THROWS_WITH(fp.backward(good, y, dy, dx), Contains("forward pass in training mode"));
  fp.forward(good, y, Mode::kTrain);
  CHECK(y.shape() == Shape{3, 2});
  Tensor<float> wrong({3, 4}, 1.f);
  CHECK_THROWS_WITH(fp.backward(good, y, wrong, dx),
                    Contains("output gradient [3,4] does not match") && Contains("[3,2]"));
  FixedPointOptions o;
  o.damping = -1;
  CHECK_THROWS_WITH(fp.set_options(o), Contains("layer 'fixed_point1'") && Contains("damping"));
  // An empty batch is not an error.
  Tensor<float> empty({0, 5});
  fp.forward(empty, y, Mode::kTrain);
  CHECK(y.shape() == Shape{0, 2});
}

// ---- Learning: pattern completion (the demonstration in bench/assoc_memory.cpp, made small) ----

TEST_CASE("fixed_point learns to restore corrupted 8x8 characters", "[fixed_point][learning]") {
  const auto set = assoc::glyphs(10);
  bpkit::Network<float> net = assoc::fixed_point_net(/*hidden=*/16, /*seed=*/1, false);
  auto& fp = static_cast<FixedPoint<float>&>(net.layer(0));
  assoc::TrainSettings ts;
  ts.steps = 300;
  ts.max_flips = 12;
  ts.max_occluded = 2;
  // Before training the network restores nothing.
  Rng rng(77);
  const assoc::Batch held_out = assoc::make_batch(set, 500, {8, 0}, rng);
  const assoc::Score before = assoc::evaluate(net, held_out);
  CHECK(before.exact < 0.01);
  const assoc::TrainResult trained = assoc::train(net, set, ts);
  CHECK(trained.skipped == 0);
  CHECK(trained.final_loss < 0.05);
  const assoc::Score copy = assoc::copy_input_score(held_out);
  const assoc::Score after = assoc::evaluate(net, held_out);
  CAPTURE(copy.pixel_error, after.pixel_error, after.exact, fp.last_forward().mean_iterations);
  REQUIRE(copy.pixel_error == Approx(8.0 / 64));  // 8 of 64 pixels flipped in every sample
  // Far beyond copying the input: under a tenth of its pixel errors, most characters exact.
  CHECK(after.pixel_error < copy.pixel_error / 10);
  CHECK(after.exact > 0.8);
  // And it really relaxes: the answer takes several iterations of the recurrent dynamics.
  CHECK(fp.last_forward().mean_iterations > 5);
  // Half-hidden characters (4 of 8 rows unknown) are completed too.
  const assoc::Batch hidden = assoc::make_batch(set, 500, {0, 4}, rng);
  const assoc::Score completed = assoc::evaluate(net, hidden);
  CAPTURE(completed.pixel_error, completed.exact);
  CHECK(completed.pixel_error < assoc::copy_input_score(hidden).pixel_error / 4);
}
