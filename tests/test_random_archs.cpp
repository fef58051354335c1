// Gradients of whole layer stacks: random valid architectures (tests/random_arch.h), each checked
// in double precision against finite differences (tests/gradcheck.h) through the projection L = Σ y
// ⊙ R and through every loss that fits its output, on its own engine thread count (1-3, so
// recurrent layers take both thread strategies); and its float network (Winograd, the fast exp of
// recurrent cells, the batch-1 dense kernel, fused pairs) compared with the double one.
//
// Environment:
//   BPKIT_GRAD_ARCHS=N      architectures to check (default 1000, about 5 s on two cores)
//   BPKIT_GRAD_SEED=S       seed of the first one (default 1); architecture i has seed S + i
//   BPKIT_GRADCHECK_REPLAY=FILE   check only the architecture in FILE (the YAML a failure prints)
// The summary line (architectures, failures, tensors and elements compared, the float paths'
// largest differences) goes to standard output; docs/testing.md records the long campaigns.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "bpkit/ctc.h"
#include "bpkit/error.h"
#include "bpkit/fixed_point.h"
#include "bpkit/loss.h"
#include "bpkit/network.h"
#include "gradcheck.h"
#include "random_arch.h"

using namespace bpkit;
using namespace bpkit_test;

namespace {

// Elements compared per tensor: with the projection, and with each loss.
constexpr int64_t kProjectedChecks = 12;
constexpr int64_t kLossChecks = 4;
// Relative-error floor (gradcheck.h's kFloor is 1e-4): gradients below it are compared absolutely,
// to 1e-9. An exactly zero gradient (a bias under batch normalization) comes out of the
// difference quotient as rounding noise of about ε·Σ|R·y|/h, up to a few 1e-10 for the larger
// random outputs.
constexpr double kRandomFloor = 1e-3;
// Metric losses depend only on differences of rows, so below linear layers every bias gradient is
// exactly zero (both members of a pair move together) while the loss, squared distances of
// unnormalized random outputs, reaches thousands: its rounding noise reaches a few 1e-9. Compared
// absolutely to 1e-8; a real error in these gradients is of the order of the others (1-100).
constexpr double kMetricFloor = 1e-2;

// Float against double (compare_float): the difference allowed beyond what ill-conditioning
// explains. Float rounding (2^-24) grows through a few layers of products and sums of up to a few
// hundred terms; Winograd's transforms and the recurrent cells' approximate exp (about 2 ulp) add a
// few ulp more; a gradient that is zero in exact arithmetic (a bias under batch normalization)
// keeps the rounding of a sum of several hundred terms (up to 4.2e-4 of the network's gradient
// scale in the 10 000-architecture campaign, docs/testing.md). kFloatTol is far below what a wrong
// kernel gives (an error of the order of the values). kConditioning scales the double network's
// own sensitivity to one rounding of its inputs and parameters (rounding inside every layer moves
// results by a few times that).
constexpr double kFloatTol = 1e-3;
constexpr double kConditioning = 30;

double largest_magnitude(const Tensor<double>& d) {
  double m = 0;
  for (double v : d) m = std::max(m, std::abs(v));
  return m;
}

struct Totals {
  int64_t archs = 0, failed = 0, loss_checks = 0, cut = 0;
  GradCheckStats grad;
  double float_worst = 0;
  std::map<std::string, int64_t> kinds, losses;
};

void add(GradCheckStats& total, const GradCheckStats& s) {
  total.tensors += s.tensors;
  total.elements += s.elements;
  total.failures += s.failures;
  total.kinks += s.kinks;
  total.independent += s.independent;
  total.worst = std::max(total.worst, s.worst);
}

// Targets for `loss` at the network's output y (valid output lengths `out_lengths`).
Targets<double> targets_for(const std::string& loss, const Tensor<double>& y,
                            const std::vector<int32_t>& out_lengths, Rng& rng) {
  Targets<double> t;
  if (loss == "softmax_cross_entropy") {
    for (int64_t b = 0; b < y.rows(); ++b)
      t.labels.push_back(int32_t(rng.below(uint64_t(y.cols()))));
  } else if (loss == "contrastive") {
    for (int64_t g = 0; g < y.rows() / 2; ++g) t.labels.push_back(int32_t(rng.below(2)));
  } else if (loss == "triplet") {
  } else if (loss == "ctc") {
    const int64_t C = y.dim(2);
    for (int64_t b = 0; b < y.rows(); ++b) {
      // Up to half the valid frames, repeats allowed (a repeat needs a blank between).
      const int32_t frames = out_lengths.empty() ? int32_t(y.dim(1)) : out_lengths[size_t(b)];
      const uint64_t n = rng.below(uint64_t(frames / 2 + 1));
      std::vector<int32_t> labels;
      for (uint64_t i = 0; i < n; ++i)
        labels.push_back(i > 0 && rng.uniform() < 0.3 ? labels.back()
                                                      : int32_t(1 + rng.below(uint64_t(C - 1))));
      t.sequences.push_back(labels);
    }
    t.lengths = out_lengths;
  } else {
    t.values = Tensor<double>(y.shape());
    const bool probability = loss != "mse";
    for (double& v : t.values) v = probability ? rng.uniform() : 2 * rng.uniform() - 1;
  }
  return t;
}

// One network's results, as double: the training output, the input gradient and every parameter
// gradient for a random output gradient, the inference output of the batch and of each sample
// alone (batch 1: the dense layer's batch-1 kernel).
struct Results {
  std::vector<std::string> names;
  std::vector<Tensor<double>> values;
  std::vector<bool> gradient;
  void add(std::string name, const Tensor<double>& v, bool is_gradient) {
    names.push_back(std::move(name));
    values.push_back(v);
    gradient.push_back(is_gradient);
  }
};

template <class T>
Tensor<T> cast(const Tensor<double>& d) {
  Tensor<T> t(d.shape());
  for (int64_t i = 0; i < d.size(); ++i) t[i] = T(d[i]);
  return t;
}
template <class T>
Tensor<double> to_double(const Tensor<T>& t) {
  Tensor<double> d(t.shape());
  for (int64_t i = 0; i < t.size(); ++i) d[i] = double(t[i]);
  return d;
}

// Runs the architecture in precision T with the parameters `params` (double values, rounded to T)
// on x. `jitter` > 0 multiplies every parameter and input by 1 + jitter·u, u uniform in ±1: the
// double network's sensitivity to rounding its inputs.
template <class T>
Results run_precision(const Arch& a, const std::vector<Tensor<double>>& params,
                      const Tensor<double>& x_in, double jitter) {
  const std::vector<int32_t>* lengths = a.lengths.empty() ? nullptr : &a.lengths;
  Network<T> net = build_network<T>(a);
  Rng rng(a.seed + 23);
  auto jittered = [&](Tensor<double> t) {
    if (jitter > 0)
      for (double& v : t) v *= 1 + jitter * (2 * rng.uniform() - 1);
    return cast<T>(t);
  };
  auto ps = net.params();
  for (size_t k = 0; k < ps.size(); ++k) *ps[k].value = jittered(params[k]);
  // Fixed-point relaxations to what float can resolve (the reference runs to 1e-13); the jittered
  // double network stops at the same tolerances, so its sensitivity includes where a relaxation
  // stops.
  if (sizeof(T) == sizeof(float) || jitter > 0)
    for (size_t i = 0; i < net.size(); ++i)
      if (auto* fp = dynamic_cast<FixedPoint<T>*>(&net.layer(i))) {
        FixedPointOptions o = fp->options();
        o.tol = 1e-6;
        o.adjoint_tol = 1e-5;
        fp->set_options(o);
      }
  const Tensor<T> x = jittered(x_in);
  Results r;
  // Training pass: every network of the architecture draws the same dropout masks.
  const Tensor<double> y = to_double(net.forward(x, Mode::kTrain, lengths));
  r.add("training output", y, false);
  Tensor<T> dx;
  net.zero_grad();
  net.backward(cast<T>(random_tensor(y.shape(), a.seed + 17)), &dx);
  r.add("input gradient", to_double(dx), true);
  for (auto& p : ps) r.add(p.name + " gradient", to_double(*p.grad), true);
  // Inference (batch-norm running statistics hold the training batch's update).
  const Tensor<double> all = to_double(net.forward(x, Mode::kInfer, lengths));
  r.add("inference output", all, false);
  const int64_t row = x.size() / x.rows();
  for (int64_t b = 0; b < x.rows(); ++b) {
    Shape s = x.shape();
    s[0] = 1;
    Tensor<T> one(s);
    std::copy(x.data() + b * row, x.data() + (b + 1) * row, one.data());
    std::vector<int32_t> len;
    if (lengths) len = {(*lengths)[size_t(b)]};
    r.add("inference of sample " + std::to_string(b) + " alone",
          to_double(net.forward(one, Mode::kInfer, lengths ? &len : nullptr)), false);
  }
  return r;
}

// The float network against the double one. Each quantity's difference is measured as
// max |float − double| over a scale: for outputs the largest |double| of the tensor, for gradients
// the largest |double| of any gradient of the network, both floored at 1e-3. (A gradient that is
// zero in exact arithmetic, a bias under batch normalization, is a sum of terms of the network's
// gradient scale that cancel: float leaves rounding of that scale.) The allowance is kFloatTol plus
// kConditioning times the double network's own change when its inputs and parameters are jittered
// by one float rounding (2^-24): ill-conditioned results (batch normalization of nearly equal
// values) move that much in any precision. Samples alone are compared with the batch's rows.
// Returns the largest ratio of a difference to its allowance (above 1 fails).
double compare_float(const Arch& a, const Tensor<double>& x) {
  std::vector<Tensor<double>> params;
  {
    Network<double> nd = build_network<double>(a);
    for (auto& p : nd.params()) params.push_back(*p.value);
  }
  const Results d = run_precision<double>(a, params, x, 0);
  const Results f = run_precision<float>(a, params, x, 0);
  const Results j = run_precision<double>(a, params, x, std::ldexp(1.0, -24));
  REQUIRE(d.values.size() == f.values.size());
  double gradient_scale = 1e-3;
  for (size_t k = 0; k < d.values.size(); ++k)
    if (d.gradient[k]) gradient_scale = std::max(gradient_scale, largest_magnitude(d.values[k]));
  double worst = 0;
  const Tensor<double>& batch_out = d.values[d.values.size() - size_t(x.rows()) - 1];
  for (size_t k = 0; k < d.values.size(); ++k) {
    Tensor<double> want = d.values[k], jit = j.values[k];
    const bool alone = d.names[k].rfind("inference of sample", 0) == 0;
    if (alone) {  // sample b's row of the batch's inference
      const int64_t b = int64_t(k) - int64_t(d.values.size()) + x.rows();
      const int64_t n = batch_out.size() / batch_out.rows();
      const Tensor<double>& jb = j.values[j.values.size() - size_t(x.rows()) - 1];
      std::copy(batch_out.data() + b * n, batch_out.data() + (b + 1) * n, want.data());
      std::copy(jb.data() + b * n, jb.data() + (b + 1) * n, jit.data());
    }
    const double scale = std::max(d.gradient[k] ? gradient_scale : 1e-3, largest_magnitude(want));
    auto diff = [&](const Tensor<double>& other) {
      if (other.shape() != want.shape()) return HUGE_VAL;
      double m = 0;
      for (int64_t i = 0; i < want.size(); ++i) m = std::max(m, std::abs(other[i] - want[i]));
      return m / scale;
    };
    const double got = diff(f.values[k]), sensitivity = diff(jit);
    const double allowed = kFloatTol + kConditioning * sensitivity;
    INFO("float against double: " << d.names[k] << ", difference " << got
                                  << " of the scale; allowed " << allowed << " (sensitivity to "
                                  << "rounding the inputs " << sensitivity << ")");
    CHECK(got <= allowed);
    worst = std::max(worst, got / allowed);
  }
  return worst;
}

void check_arch(const Arch& a, Totals& totals) {
  INFO("architecture (as YAML):\n" << a.yaml());
  ThreadCount threads(a.threads);
  const std::vector<int32_t>* lengths = a.lengths.empty() ? nullptr : &a.lengths;
  const Tensor<double> x = random_input_away_from_zero(a.batch_shape(), a.seed);
  const int cut = highest_cut_layer(a);
  const int64_t failures_before = totals.grad.failures;
  bool failed = false;
  try {
    Network<double> net = build_network<double>(a);
    GradCheckOptions o;
    o.max_checks = kProjectedChecks;
    o.lengths = lengths;
    o.input = &x;
    o.require_dependence = false;
    o.kinks = true;
    o.floor = kRandomFloor;
    if (cut >= 0) {  // truncated BPTT: only the layers above the cut get exact gradients
      o.check_input = false;
      o.first_layer = size_t(cut) + 1;
      ++totals.cut;
    }
    add(totals.grad, check_network_gradients_with(net, a.batch, a.seed, o));
    Rng rng(a.seed + 5);
    for (const std::string& kind : a.losses) {
      std::unique_ptr<Loss<double>> loss = make_loss<double>(kind);
      const Tensor<double> y = net.forward(x, Mode::kTrain, lengths);
      const Targets<double> t = targets_for(kind, y, net.output_lengths(), rng);
      o.loss = loss.get();
      o.targets = &t;
      o.max_checks = kLossChecks;
      o.floor = kind == "contrastive" || kind == "triplet" ? kMetricFloor : kRandomFloor;
      add(totals.grad, check_network_gradients_with(net, a.batch, a.seed + 1, o));
      ++totals.loss_checks;
      ++totals.losses[kind];
    }
    const double float_diff = compare_float(a, x);
    totals.float_worst = std::max(totals.float_worst, float_diff);
    failed = !(float_diff <= 1);
  } catch (const std::exception& e) {
    FAIL_CHECK("exception: " << e.what());
    failed = true;
  }
  ++totals.archs;
  if (failed || totals.grad.failures > failures_before) ++totals.failed;
  for (const auto& l : a.layers) ++totals.kinds[l.kind];
}

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

}  // namespace

TEST_CASE("random architectures: whole-stack gradients against finite differences",
          "[gradcheck][random]") {
  Totals totals;
  if (const char* replay = std::getenv("BPKIT_GRADCHECK_REPLAY"); replay && *replay) {
    std::ifstream in(replay);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    check_arch(arch_from_yaml(text.str(), replay), totals);
  } else {
    const int64_t count = env_int("BPKIT_GRAD_ARCHS", 1000);
    const uint64_t first = uint64_t(env_int("BPKIT_GRAD_SEED", 1));
    for (int64_t i = 0; i < count; ++i) check_arch(random_arch(first + uint64_t(i)), totals);
  }
  std::string kinds;
  for (const auto& [k, n] : totals.kinds) kinds += " " + k + "=" + std::to_string(n);
  std::string losses;
  for (const auto& [k, n] : totals.losses) losses += " " + k + "=" + std::to_string(n);
  std::printf(
      "random architectures: %lld checked, %lld failed (%lld with truncated BPTT checked above the "
      "cut); %lld tensors, %lld elements compared, %lld failed, worst relative error %.3g, %lld "
      "passed with a smaller step (kinks), %lld tensors independent of the output; %lld loss "
      "checks:%s; float vs double: worst difference %.3g of its allowance; "
      "layers:%s\ngrad_archs=%lld grad_failures=%lld\n",
      (long long)totals.archs, (long long)totals.failed, (long long)totals.cut,
      (long long)totals.grad.tensors, (long long)totals.grad.elements,
      (long long)totals.grad.failures, totals.grad.worst, (long long)totals.grad.kinks,
      (long long)totals.grad.independent, (long long)totals.loss_checks, losses.c_str(),
      totals.float_worst, kinds.c_str(), (long long)totals.archs, (long long)totals.failed);
  // Every kind of layer was drawn (a generator that stopped drawing one would check nothing).
  if (totals.archs >= 200)
    for (const char* kind :
         {"dense", "conv2d", "maxpool2d",  "avgpool2d",   "batchnorm",   "dropout",     "sigmoid",
          "tanh",  "relu",   "leaky_relu", "softmax",     "flatten",     "reshape",     "columns",
          "rnn",   "lstm",   "gru",        "frame_dense", "fixed_point", "l2_normalize"}) {
      INFO(kind << " drawn " << totals.kinds[kind] << " times");
      CHECK(totals.kinds[kind] > 0);
    }
}

TEST_CASE("random architectures replay from the YAML they print", "[gradcheck][random]") {
  for (uint64_t seed : {3u, 41u, 97u}) {
    const Arch a = random_arch(seed);
    const Arch b = arch_from_yaml(a.yaml(), "printed");
    CHECK(b.yaml() == a.yaml());
    Network<double> na = build_network<double>(a), nb = build_network<double>(b);
    auto pa = na.params();
    auto pb = nb.params();
    REQUIRE(pa.size() == pb.size());
    for (size_t k = 0; k < pa.size(); ++k) CHECK(pa[k].value->shape() == pb[k].value->shape());
  }
}
