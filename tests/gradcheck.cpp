#include "gradcheck.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "bpkit/random.h"
#include "bpkit/threading.h"

namespace bpkit_test {

using bpkit::Mode;
using bpkit::Rng;
using bpkit::Shape;
using bpkit::Tensor;

namespace {

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

double relative_error(double analytic, double numeric, double floor = kFloor) {
  const double scale = std::max({std::abs(analytic), std::abs(numeric), floor});
  return std::abs(analytic - numeric) / scale;
}

// All indices of a tensor of n elements, or a random sorted subset of `most` of them.
std::vector<int64_t> pick_elements(int64_t n, int64_t most, Rng& rng) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  if (n <= most) return idx;
  for (int64_t i = 0; i < most; ++i)  // partial Fisher–Yates
    std::swap(idx[size_t(i)], idx[size_t(i + int64_t(rng.below(uint64_t(n - i))))]);
  idx.resize(size_t(most));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Fourth-order central difference of Σ_i R_i·y_i(θ) with respect to θ, where eval() recomputes y.
// Differences are taken output by output before projecting, so outputs that θ does not reach
// contribute exactly zero.
template <class Eval>
double projected_derivative(double& theta, const Tensor<double>& R, Eval&& eval,
                            double step = kStep) {
  const double t0 = theta;
  const int64_t n = R.size();
  const size_t count = static_cast<size_t>(n);
  std::vector<double> plus(count), d1(count), d2(count);
  auto run = [&](double offset, std::vector<double>* store, std::vector<double>* diff) {
    theta = t0 + offset;
    const Tensor<double>& y = eval();
    REQUIRE(y.size() == n);
    for (int64_t i = 0; i < n; ++i) {
      if (store) (*store)[size_t(i)] = y[i];
      if (diff) (*diff)[size_t(i)] = plus[size_t(i)] - y[i];
    }
  };
  run(step, &plus, nullptr);
  run(-step, nullptr, &d1);
  run(2 * step, &plus, nullptr);
  run(-2 * step, nullptr, &d2);
  theta = t0;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += R[i] * (8 * d1[size_t(i)] - d2[size_t(i)]);
  return sum / (12 * step);
}

// Fourth-order central difference of a scalar objective with respect to θ.
template <class Eval>
double scalar_derivative(double& theta, Eval&& eval, double step = kStep) {
  const double t0 = theta;
  auto at = [&](double offset) {
    theta = t0 + offset;
    return eval();
  };
  const double d1 = at(step) - at(-step), d2 = at(2 * step) - at(-2 * step);
  theta = t0;
  return (8 * d1 - d2) / (12 * step);
}

// Compares analytic[i] with numeric(i, step) for the picked elements of one tensor, reports the
// worst element through Catch2 and adds to `stats`. With `kinks`, an element that fails is
// differenced again with steps of kStep/16, /256 and /4096 (see GradCheckOptions::kinks).
template <class Numeric>
void compare_tensor(const std::string& what, const Tensor<double>& analytic, int64_t n, Rng& rng,
                    const GradCheckOptions& o, GradCheckStats& stats, Numeric&& numeric) {
  const double tol = o.tol;
  const std::vector<int64_t> idx = pick_elements(n, o.max_checks, rng);
  int64_t failures = 0, worst = -1;
  double worst_err = -1, worst_a = 0, worst_n = 0, largest = 0;
  for (int64_t i : idx) {
    double num = numeric(i, kStep);
    const double a = analytic[i];
    double err = relative_error(a, num, o.floor);
    if (o.kinks && !(err <= tol))
      for (double step : {kStep / 16, kStep / 256, kStep / 4096}) {
        const double closer = numeric(i, step);
        if (relative_error(a, closer, o.floor) <= kKinkTol) {
          ++stats.kinks;
          num = closer;
          err = relative_error(a, closer, o.floor);
          break;
        }
      }
    largest = std::max(largest, std::abs(num));
    if (!(err <= tol)) ++failures;
    if (!(err <= worst_err)) {
      worst_err = err;
      worst = i;
      worst_a = a;
      worst_n = num;
    }
  }
  INFO(what << ": " << idx.size() << " of " << n << " elements checked, " << failures
            << " above tolerance " << fmt(tol) << "; worst element " << worst << ": analytic "
            << fmt(worst_a) << ", numeric " << fmt(worst_n) << ", relative error "
            << fmt(worst_err));
  CHECK(failures == 0);
  if (std::getenv("BPKIT_GRADCHECK_VERBOSE"))
    std::fprintf(stderr,
                 "gradcheck %-32s worst relative error %.3g (analytic %.6g, numeric %.6g)\n",
                 what.c_str(), worst_err, worst_a, worst_n);
  // A tensor the output does not depend on at all would make the comparison vacuous.
  if (o.require_dependence) CHECK(largest > 0);
  ++stats.tensors;
  stats.elements += int64_t(idx.size());
  stats.failures += failures;
  if (!(largest > 0)) ++stats.independent;
  if (!(worst_err <= stats.worst)) stats.worst = worst_err;
}

// Entries in ±[0.1, 1): never within a finite-difference step of a ReLU kink.
Tensor<double> away_from_zero(const Shape& shape, Rng& rng) {
  Tensor<double> t(shape);
  for (double& v : t) {
    const double magnitude = 0.1 + 0.9 * rng.uniform();
    v = rng.uniform() < 0.5 ? -magnitude : magnitude;
  }
  return t;
}

}  // namespace

ThreadCount::ThreadCount(int n) : before_(bpkit::num_threads()) {
  bpkit::set_num_threads(n);
}
ThreadCount::~ThreadCount() {
  bpkit::set_num_threads(before_);
}

Tensor<double> random_tensor(const Shape& shape, uint64_t seed, double lo, double hi) {
  Rng rng(seed);
  Tensor<double> t(shape);
  for (double& v : t) v = lo + (hi - lo) * rng.uniform();
  return t;
}

namespace {

// Largest relative difference between two analytic results that must agree to rounding; values
// below `floor` in magnitude are compared absolutely.
double max_relative_difference(const Tensor<double>& a, const Tensor<double>& b,
                               double floor = kFloor) {
  if (a.shape() != b.shape()) return HUGE_VAL;
  double worst = 0;
  for (int64_t i = 0; i < a.size(); ++i) worst = std::max(worst, relative_error(a[i], b[i], floor));
  return worst;
}

// The checks behind the public routines. `only`, when given, is the network's single layer: its
// backward() is then also called on its own, outside the fused path the network takes.
GradCheckStats check_gradients(bpkit::Network<double>& net, bpkit::Layer<double>* only,
                               int64_t batch, uint64_t seed, const GradCheckOptions& o) {
  Rng rng(seed);
  const std::vector<int32_t>* lengths = o.lengths;
  Tensor<double> x;
  if (o.input) {
    x = *o.input;
  } else {
    Shape shape{batch};
    shape.insert(shape.end(), net.input_shape().begin(), net.input_shape().end());
    // A dynamic dimension gets the longest of the lengths (7 without lengths).
    for (size_t i = 1; i < shape.size(); ++i)
      if (shape[i] == bpkit::kDynamic)
        shape[i] = lengths ? *std::max_element(lengths->begin(), lengths->end()) : 7;
    x = away_from_zero(shape, rng);
  }
  std::string name;
  for (size_t i = 0; i < net.size(); ++i) name += (i ? " → " : "") + net.layer(i).describe();
  INFO("network: " << name << ", input " << bpkit::to_string(x.shape())
                   << (o.loss ? ", loss " + o.loss->kind() : std::string(", projected output")));

  // The first forward draws any random masks; holding them makes every later evaluation the
  // same deterministic function.
  Tensor<double> R = net.forward(x, Mode::kTrain, lengths);
  for (size_t i = 0; i < net.size(); ++i) net.layer(i).hold_randomness(true);
  for (double& v : R) v = 2 * rng.uniform() - 1;

  // The objective and its gradient dL/dy: the loss's, or R for L = Σ y ⊙ R.
  Tensor<double> scratch;
  auto objective = [&](const Tensor<double>& y, Tensor<double>& grad) {
    if (o.loss) return o.loss->compute(y, *o.targets, grad);
    grad = R;
    double sum = 0;
    for (int64_t i = 0; i < y.size(); ++i) sum += R[i] * y[i];
    return sum;
  };

  // Analytic gradients. With an input gradient requested, every layer runs gradient_and_backward
  // (which a layer may fuse).
  const Tensor<double> y = net.forward(x, Mode::kTrain, lengths);
  Tensor<double> dy;
  objective(y, dy);
  net.zero_grad();
  Tensor<double> dx;
  net.backward(dy, &dx);
  REQUIRE(dx.shape() == x.shape());
  std::vector<bpkit::Param<double>> params = net.params();
  std::vector<Tensor<double>> grads;
  for (const auto& p : params) {
    REQUIRE(p.grad->shape() == p.value->shape());
    grads.push_back(*p.grad);
  }

  // Gradients that agree to rounding are compared relative to the network's largest gradient
  // (the accumulating products of a second pass round differently, and a gradient that is zero in
  // exact arithmetic is rounding of that scale).
  double scale = o.floor;
  for (double v : dx) scale = std::max(scale, std::abs(v));
  for (const auto& g : grads)
    for (double v : g) scale = std::max(scale, std::abs(v));
  // Parameter gradients accumulate: a second backward without zero_grad doubles them.
  Tensor<double> dx_again;
  net.backward(dy, &dx_again);
  CHECK(max_relative_difference(dx, dx_again, scale) <= 1e-12);
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor<double> twice = grads[k];
    for (double& v : twice) v *= 2;
    INFO(params[k].name << ": gradient after two backward passes vs twice the first");
    CHECK(max_relative_difference(twice, *params[k].grad, scale) <= 1e-12);
  }

  // Without an input gradient the network stops at the lowest layer with parameters and calls
  // only its gradient(): the same parameter gradients, by another path.
  net.zero_grad();
  net.backward(dy);
  for (size_t k = 0; k < params.size(); ++k) {
    INFO(params[k].name << ": gradient() alone vs gradient_and_backward()");
    CHECK(max_relative_difference(grads[k], *params[k].grad, scale) <= 1e-10);
  }
  // And backward() alone, for a single layer.
  if (only) {
    Tensor<double> dx_alone;
    only->backward(x, y, dy, dx_alone);
    INFO(only->describe() << ": backward() alone vs gradient_and_backward()");
    CHECK(max_relative_difference(dx, dx_alone, scale) <= 1e-10);
  }

  // The parameters compared: those of the layers at or above first_layer.
  std::vector<bool> compared(params.size(), o.first_layer == 0);
  for (size_t i = o.first_layer, k = 0; i < net.size() && o.first_layer > 0; ++i)
    for (auto& p : net.layer(i).params()) {
      while (k < params.size() && params[k].value != p.value) ++k;
      if (k < params.size()) compared[k] = true;
    }

  GradCheckStats stats;
  auto eval = [&]() -> const Tensor<double>& { return net.forward(x, Mode::kTrain, lengths); };
  auto numeric = [&](double& theta, double step) {
    if (!o.loss) return projected_derivative(theta, R, eval, step);
    return scalar_derivative(
        theta, [&] { return objective(eval(), scratch); }, step);
  };
  if (o.check_input)
    compare_tensor("input gradient", dx, x.size(), rng, o, stats,
                   [&](int64_t i, double step) { return numeric(x[i], step); });
  for (size_t k = 0; k < params.size(); ++k) {
    if (!compared[k]) continue;
    Tensor<double>& value = *params[k].value;
    compare_tensor("gradient of " + params[k].name, grads[k], value.size(), rng, o, stats,
                   [&](int64_t i, double step) { return numeric(value[i], step); });
  }
  return stats;
}

}  // namespace

Tensor<double> random_input_away_from_zero(const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  return away_from_zero(shape, rng);
}

void check_network_gradients(bpkit::Network<double>& net, int64_t batch, uint64_t seed, double tol,
                             const std::vector<int32_t>* lengths) {
  GradCheckOptions o;
  o.tol = tol;
  o.lengths = lengths;
  check_gradients(net, nullptr, batch, seed, o);
}

GradCheckStats check_network_gradients_with(bpkit::Network<double>& net, int64_t batch,
                                            uint64_t seed, const GradCheckOptions& options) {
  return check_gradients(net, nullptr, batch, seed, options);
}

void check_layer_gradients(std::unique_ptr<bpkit::Layer<double>> layer,
                           const Shape& per_sample_input, int64_t batch, uint64_t seed, double tol,
                           const std::vector<int32_t>* lengths) {
  bpkit::Network<double> net(per_sample_input, seed);
  bpkit::Layer<double>& only = net.add(std::move(layer));
  GradCheckOptions o;
  o.tol = tol;
  o.lengths = lengths;
  check_gradients(net, &only, batch, seed, o);
}

void check_loss_gradients(bpkit::Loss<double>& loss, const Tensor<double>& out_in,
                          const bpkit::Targets<double>& targets, double tol) {
  INFO("loss " << loss.kind() << " on output " << bpkit::to_string(out_in.shape()));
  Tensor<double> out = out_in, grad, scratch;
  const double value = loss.compute(out, targets, grad);
  CHECK(std::isfinite(value));
  REQUIRE(grad.shape() == out.shape());
  auto at = [&](int64_t i, double offset) {
    const double saved = out[i];
    out[i] = saved + offset;
    const double l = loss.compute(out, targets, scratch);
    out[i] = saved;
    return l;
  };
  Rng rng(out.size());
  GradCheckStats stats;
  GradCheckOptions o;
  o.tol = tol;
  compare_tensor("output gradient", grad, out.size(), rng, o, stats, [&](int64_t i, double) {
    return (8 * (at(i, kStep) - at(i, -kStep)) - (at(i, 2 * kStep) - at(i, -2 * kStep))) /
           (12 * kStep);
  });
}

}  // namespace bpkit_test
