// Metric learning: the embedding normalization layer and the triplet and contrastive losses
// against finite differences (alone and under layer stacks), twin networks' shared-weight
// gradients, training on tuples, and the verification error rates (FAR, FRR, EER, DET).
#include <catch2/catch.hpp>
#include <cmath>

#include "bpkit/layers.h"
#include "bpkit/metric.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"
#include "bpkit/trainer.h"
#include "gradcheck.h"

using namespace bpkit;
using bpkit_test::check_layer_gradients;
using bpkit_test::check_loss_gradients;
using bpkit_test::random_tensor;

namespace {
using D = double;
}  // namespace

TEST_CASE("l2_normalize gradients", "[gradcheck]") {
  check_layer_gradients(std::make_unique<L2Normalize<D>>(), {7}, 4, 201);
  check_layer_gradients(std::make_unique<L2Normalize<D>>(), {2, 3, 2}, 3, 202);
  check_layer_gradients(std::make_unique<L2Normalize<D>>(1e-3), {1}, 2, 203);
}

TEST_CASE("l2_normalize gives unit rows", "[layers]") {
  L2Normalize<float> l;
  l.build({3});
  Tensor<float> x({2, 3}), y;
  const float v[] = {3, 0, 4, 0, 0, 0};
  std::copy(v, v + 6, x.data());
  l.forward(x, y, Mode::kInfer);
  CHECK(y[0] == Approx(0.6));
  CHECK(y[2] == Approx(0.8));
  CHECK(y[3] == 0.0f);  // an all-zero row stays finite
}

TEST_CASE("triplet loss: value and gradient", "[gradcheck][loss]") {
  TripletLoss<D> loss(0.5);
  Targets<D> none;
  check_loss_gradients(loss, random_tensor({12, 5}, 211), none);
  // One triplet by hand: a = 0, p = (1, 0), n = (0, 2): 1 − 4 + 0.5 < 0, nothing to learn; with n
  // at (0, 1): 1 − 1 + 0.5 = 0.5.
  Tensor<D> out({3, 2}), grad;
  const D v[] = {0, 0, 1, 0, 0, 2};
  std::copy(v, v + 6, out.data());
  CHECK(loss.compute(out, none, grad) == 0);
  CHECK(loss.count_right(out, none) == 1);
  out[5] = 1;
  CHECK(loss.compute(out, none, grad) == Approx(0.5));
  CHECK(grad[0] == Approx(-2));  // ∂/∂a = 2(n − p) = (−2, 2)
  CHECK(grad[1] == Approx(2));
  CHECK(loss.count_right(out, none) == 0);  // a tie is not right
  Tensor<D> bad({4, 2});
  CHECK_THROWS_AS(loss.compute(bad, none, grad), std::invalid_argument);
}

TEST_CASE("contrastive loss: value and gradient", "[gradcheck][loss]") {
  ContrastiveLoss<D> loss(1.5);
  Targets<D> t;
  t.labels = {1, 0, 0, 1, 0, 0};
  check_loss_gradients(loss, random_tensor({12, 4}, 221, -0.6, 0.6), t);
  Tensor<D> out({2, 1}), grad;
  out[0] = 0;
  out[1] = 0.5;
  t.labels = {0};
  CHECK(loss.compute(out, t, grad) == Approx(0.5));  // (1.5 − 0.5)² / 2
  CHECK(grad[0] == Approx(1.0));  // −(m − d)(x1 − x2)/d = −1·(−0.5)/0.5
  t.labels = {1};
  CHECK(loss.compute(out, t, grad) == Approx(0.125));
  t.labels = {};
  CHECK_THROWS_AS(loss.compute(out, t, grad), std::invalid_argument);
}

// The losses under whole embedding networks: the gradient reaching every parameter through the
// normalization and every member of each tuple.
TEST_CASE("embedding networks with metric losses: gradients of the stack", "[gradcheck][loss]") {
  SECTION("dense, tanh, dense, l2_normalize with the triplet loss") {
    Network<D> net({6}, 231);
    net.emplace<Dense<D>>(8);
    net.emplace<ActivationLayer<D>>(Activation::kTanh);
    net.emplace<Dense<D>>(4);
    net.emplace<L2Normalize<D>>();
    TripletLoss<D> loss(1.0);
    Targets<D> none;
    bpkit_test::GradCheckOptions o;
    o.loss = &loss;
    o.targets = &none;
    bpkit_test::check_network_gradients_with(net, 9, 232, o);
  }
  SECTION("conv2d(relu), maxpool2d, batchnorm, dense, l2_normalize with the contrastive loss") {
    Network<D> net({1, 6, 6}, 233);
    net.emplace<Conv2d<D>>(4, 3, 1, 1, Init::kHe, true);
    net.emplace<Pool2d<D>>(PoolKind::kMax, 2);
    net.emplace<Reshape<D>>();
    net.emplace<BatchNorm<D>>();
    net.emplace<Dense<D>>(5);
    net.emplace<L2Normalize<D>>();
    ContrastiveLoss<D> loss(1.2);
    Targets<D> t;
    t.labels = {1, 0, 0};
    bpkit_test::GradCheckOptions o;
    o.loss = &loss;
    o.targets = &t;
    o.kinks = true;
    bpkit_test::check_network_gradients_with(net, 6, 234, o);
  }
}

// Twin networks: the gradient of the stacked batch is the sum of the gradients each member's
// branch sends through the shared weights (each branch run alone, with its rows of dL/dy).
TEST_CASE("twin network: one stacked batch sums the members' gradients", "[metric]") {
  Network<D> net({5}, 241);
  net.emplace<Dense<D>>(6);
  net.emplace<ActivationLayer<D>>(Activation::kTanh);
  net.emplace<Dense<D>>(3);
  net.emplace<L2Normalize<D>>();
  const int64_t G = 4;
  const Tensor<D> x = random_tensor({3 * G, 5}, 242);
  TripletLoss<D> loss(1.5);
  Targets<D> none;
  Tensor<D> dy;
  const Tensor<D> y = net.forward(x, Mode::kTrain);
  REQUIRE(loss.compute(y, none, dy) > 0);
  net.zero_grad();
  net.backward(dy);
  std::vector<Tensor<D>> stacked;
  for (auto& p : net.params()) stacked.push_back(*p.grad);

  net.zero_grad();
  for (int m = 0; m < 3; ++m) {  // branch m: the m-th member of every tuple, alone
    Tensor<D> xm({G, 5}), dym({G, 3});
    for (int64_t g = 0; g < G; ++g) {
      std::copy(x.data() + (3 * g + m) * 5, x.data() + (3 * g + m + 1) * 5, xm.data() + g * 5);
      std::copy(dy.data() + (3 * g + m) * 3, dy.data() + (3 * g + m + 1) * 3, dym.data() + g * 3);
    }
    net.forward(xm, Mode::kTrain);
    net.backward(dym);  // accumulates into the same gradients
  }
  auto params = net.params();
  for (size_t i = 0; i < params.size(); ++i)
    for (int64_t k = 0; k < params[i].grad->size(); ++k)
      REQUIRE((*params[i].grad)[k] == Approx(stacked[i][k]).margin(1e-12));
}

TEST_CASE("equal error rate, error rates and the DET curve", "[metric]") {
  // Rates that meet exactly at a score.
  Eer e = equal_error_rate({0.9, 0.8, 0.7, 0.4}, {0.1, 0.2, 0.5, 0.3});
  CHECK(e.eer == Approx(0.25));
  CHECK(e.threshold == Approx(0.5));
  // Separable scores: no error at the lowest genuine score.
  e = equal_error_rate({0.8, 0.9}, {0.1, 0.2});
  CHECK(e.eer == 0);
  CHECK(e.threshold == Approx(0.8));
  // Rates that cross between two scores: FAR 1/2 → 0 while FRR stays 1/3.
  e = equal_error_rate({1, 2, 3}, {0, 1.5});
  CHECK(e.eer == Approx(1.0 / 3));
  CHECK(e.threshold == Approx(1.5 + 0.5 / 3));
  const ErrorRates r = error_rates({1, 2, 3}, {0, 1.5}, e.threshold);
  CHECK(r.far == 0);
  CHECK(r.frr == Approx(1.0 / 3));
  // All scores inverted: every genuine below every impostor.
  e = equal_error_rate({0.1, 0.2}, {0.8, 0.9});
  CHECK(e.eer == Approx(1.0));
  const std::vector<DetPoint> det = det_curve({1, 2, 3}, {0, 1.5});
  REQUIRE(det.size() == 6);
  CHECK(det.front().far == 1);
  CHECK(det.front().frr == 0);
  CHECK(det.back().far == 0);
  CHECK(det.back().frr == 1);
  for (size_t i = 1; i < det.size(); ++i) {
    CHECK(det[i].far <= det[i - 1].far);
    CHECK(det[i].frr >= det[i - 1].frr);
  }
  CHECK_THROWS_AS(equal_error_rate({}, {1}), std::invalid_argument);
}

// A twin network learns an embedding from triplets of classes it is trained on that separates
// classes it never saw (writer independence in miniature), with tuples drawn anew every epoch.
TEST_CASE("training on triplets separates classes never seen", "[metric][learning]") {
  // 40 classes: a random center in the first 4 of 12 dimensions each, 10 samples per class with
  // small noise there and large noise in the other 8 (which an untrained network mixes in).
  // Classes 0-29 train, 30-39 test.
  const int classes = 40, per = 10, dim = 12;
  Rng rng(251);
  TupleDataset train;
  train.x = Tensor<float>({classes * per, dim});
  std::vector<std::vector<float>> centers(classes, std::vector<float>(dim));
  for (auto& c : centers)
    for (float& v : c) v = float(rng.uniform() * 2 - 1);
  for (int c = 0; c < classes; ++c)
    for (int s = 0; s < per; ++s)
      for (int k = 0; k < dim; ++k)
        train.x[(c * per + s) * dim + k] =
            (k < 4 ? centers[size_t(c)][size_t(k)] + float(0.2 * rng.normal())
                   : float(1.5 * rng.normal()));
  auto triplets = [&](int first, int last, Rng& r, int count) {
    std::vector<int64_t> t;
    for (int i = 0; i < count; ++i) {
      const int c = first + int(r.below(uint64_t(last - first)));
      int o = first + int(r.below(uint64_t(last - first - 1)));
      if (o >= c) ++o;
      const int a = int(r.below(per));
      int p = int(r.below(per - 1));
      if (p >= a) ++p;
      t.insert(t.end(), {c * per + a, c * per + p, o * per + int(r.below(per))});
    }
    return t;
  };
  TupleDataset test = train;
  Rng test_rng(252);
  test.tuples = triplets(30, 40, test_rng, 400);

  Network<float> net({dim}, 253);
  net.emplace<Dense<float>>(32);
  net.emplace<ActivationLayer<float>>(Activation::kTanh);
  net.emplace<Dense<float>>(8);
  net.emplace<L2Normalize<float>>();
  TripletLoss<float> loss(0.4);
  Adam<float> opt(net.params(), 3e-3);
  const EvalResult before = evaluate(net, loss, test, 64);
  int draws = 0;
  TrainOptions o;
  o.epochs = 20;
  o.batch = 16;
  o.draw_tuples = [&](int epoch, TupleDataset& d) {
    ++draws;
    Rng r(1000 + uint64_t(epoch));
    d.tuples = triplets(0, 30, r, 600);
  };
  const TrainResult res = fit(net, loss, opt, train, &test, o);
  CHECK(draws == 20);
  REQUIRE(res.history.size() == 20);
  const EvalResult after = evaluate(net, loss, test, 64);
  INFO("triplets ordered right on unseen classes: before " << before.accuracy << ", after "
                                                           << after.accuracy);
  CHECK(after.accuracy > 0.88);
  CHECK(after.accuracy > before.accuracy + 0.3);
  CHECK(after.loss < before.loss);

  TupleDataset pairs = train;
  pairs.arity = 2;
  CHECK_THROWS_AS(fit(net, loss, opt, pairs, nullptr, o), std::invalid_argument);
}
