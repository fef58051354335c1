// The kernels compiled per instruction-set level (engine/src/kernels): the level is chosen and
// capped as documented, and every level this CPU runs computes what the baseline computes. The
// whole kernel suite also runs once per level through BPKIT_ISA (tests/CMakeLists.txt).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bpkit/cpu.h"
#include "bpkit/layers.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"
#include "bpkit/recurrent.h"

using namespace bpkit;

namespace {

// Restores the level the process started with when a test is done.
struct IsaGuard {
  Isa saved = active_isa();
  ~IsaGuard() { set_active_isa(saved); }
};

std::vector<Isa> levels_here() {
  std::vector<Isa> v;
  for (Isa i : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (int(i) <= int(cpu_isa())) v.push_back(i);
  return v;
}

// Everything a training step produces, flattened: outputs of a training and an inference pass,
// the input gradient, the parameter gradients, the parameters after two optimizer steps.
template <class T>
std::vector<double> run_step(const std::function<Network<T>()>& make, const Tensor<T>& x,
                             const std::vector<int32_t>* lengths, bool adam) {
  Network<T> net = make();
  std::vector<double> out;
  auto take = [&](const Tensor<T>& t) {
    for (int64_t i = 0; i < t.size(); ++i) out.push_back(double(t[i]));
  };
  take(net.forward(x, Mode::kInfer, lengths));
  const Tensor<T>& y = net.forward(x, Mode::kTrain, lengths);
  take(y);
  Tensor<T> dloss(y.shape());
  for (int64_t i = 0; i < dloss.size(); ++i) dloss[i] = T(std::sin(0.37 * double(i)));
  Tensor<T> dx;
  net.backward(dloss, &dx);
  take(dx);
  for (const Param<T>& p : net.params()) take(*p.grad);
  std::unique_ptr<Optimizer<T>> opt;
  if (adam)
    opt = std::make_unique<Adam<T>>(net.params(), 1e-2, 0.9, 0.999, 1e-8, 1e-3);
  else
    opt = std::make_unique<Sgd<T>>(net.params(), 1e-2, 0.9, true, 1e-3);
  opt->step();
  opt->step();
  for (const Param<T>& p : net.params()) take(*p.value);
  return out;
}

// Largest |a − b| / (1 + |b|) over the two runs.
double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
    m = std::max(m, std::abs(a[i] - b[i]) / (1 + std::abs(b[i])));
  }
  return m;
}

template <class T>
Tensor<T> random_input(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  Tensor<T> t(s);
  for (T& v : t) v = T(rng.normal());
  return t;
}

// Each network under every level against the baseline: float within `tol_float` (the levels
// differ in fused multiply-adds and the order of vector sums), double within 1e-12.
template <class T>
void compare_levels(const char* what, const std::function<Network<T>()>& make, const Tensor<T>& x,
                    const std::vector<int32_t>* lengths, double tol) {
  IsaGuard guard;
  for (bool adam : {false, true}) {
    set_active_isa(Isa::baseline);
    const std::vector<double> ref = run_step<T>(make, x, lengths, adam);
    for (Isa level : levels_here()) {
      set_active_isa(level);
      CAPTURE(what, isa_name(level), adam);
      const std::vector<double> got = run_step<T>(make, x, lengths, adam);
      CHECK(max_rel_diff(got, ref) <= tol);
    }
  }
}

template <class T>
Network<T> conv_net() {
  Network<T> net({3, 14, 12}, 5);
  net.template emplace<Conv2d<T>>(8, 3, 1, 1, Init::kHe, true);  // Winograd, fused ReLU + pool
  net.template emplace<Pool2d<T>>(PoolKind::kMax, 2, 2);
  net.template emplace<Conv2d<T>>(6, 3, 1, 0, Init::kHe, false);  // Winograd, no pool
  net.template emplace<ActivationLayer<T>>(Activation::kTanh);
  net.template emplace<Conv2d<T>>(5, 3, 2, 1, Init::kHe, true);  // im2col (stride 2)
  net.template emplace<Reshape<T>>();
  net.template emplace<Dense<T>>(24);
  net.template emplace<ActivationLayer<T>>(Activation::kRelu);
  net.template emplace<Dense<T>>(7);
  net.template emplace<ActivationLayer<T>>(Activation::kSigmoid);
  return net;
}

template <class T>
Network<T> one_channel_net() {  // im2col with one input channel (the small weight-gradient kernel)
  Network<T> net({1, 11, 13}, 6);
  net.template emplace<Conv2d<T>>(9, 5, 1, 2, Init::kHe, true);
  net.template emplace<Pool2d<T>>(PoolKind::kMax, 2, 2);
  net.template emplace<Reshape<T>>();
  net.template emplace<Dense<T>>(300);  // the batch-1 dense kernel's widest block and remainders
  net.template emplace<ActivationLayer<T>>(Activation::kLeakyRelu, 0.1);
  net.template emplace<Dense<T>>(3);
  return net;
}

template <class T>
Network<T> recurrent_net() {
  RecurrentOptions bi;
  bi.bidirectional = true;
  Network<T> net({kDynamic, 6}, 7);
  net.template emplace<Lstm<T>>(20, bi);
  net.template emplace<Gru<T>>(17, bi);
  net.template emplace<ElmanRnn<T>>(9);
  net.template emplace<FrameDense<T>>(5);
  return net;
}

}  // namespace

TEST_CASE("the kernels' level is the CPU's best unless capped, and never beyond the CPU", "[isa]") {
  CHECK(std::string(isa_name(Isa::baseline)) == "baseline");
  CHECK(std::string(isa_name(Isa::avx2)) == "avx2");
  CHECK(std::string(isa_name(Isa::avx512)) == "avx512");
  const char* env = std::getenv("BPKIT_ISA");
  if (env && *env)
    CHECK(std::string(isa_name(active_isa())) == env);
  else
    CHECK(active_isa() == cpu_isa());
  IsaGuard guard;
  for (Isa level : levels_here()) {
    set_active_isa(level);
    CHECK(active_isa() == level);
  }
  if (cpu_isa() != Isa::avx512) {
    CHECK_THROWS_AS(set_active_isa(Isa::avx512), std::invalid_argument);
    CHECK(active_isa() != Isa::avx512);
  }
}

TEST_CASE("every level computes a training step as the baseline does", "[isa][kernels]") {
  const Tensor<float> img = random_input<float>({4, 3, 14, 12}, 11);
  const Tensor<double> imgd = random_input<double>({4, 3, 14, 12}, 11);
  compare_levels<float>("conv float", conv_net<float>, img, nullptr, 2e-4);
  compare_levels<double>("conv double", conv_net<double>, imgd, nullptr, 1e-12);

  // Batch 1 takes the dense layer's own kernel; zeros in the input exercise its skipping.
  Tensor<float> one = random_input<float>({1, 1, 11, 13}, 12);
  for (int64_t i = 0; i < one.size(); i += 3) one[i] = 0;
  compare_levels<float>("one channel float, batch 1", one_channel_net<float>, one, nullptr, 2e-4);
  const Tensor<double> oned = random_input<double>({3, 1, 11, 13}, 12);
  compare_levels<double>("one channel double", one_channel_net<double>, oned, nullptr, 1e-12);

  const std::vector<int32_t> lengths = {9, 4, 7};
  const Tensor<float> seq = random_input<float>({3, 9, 6}, 13);
  compare_levels<float>("recurrent float", recurrent_net<float>, seq, &lengths, 2e-4);
  const Tensor<float> seq1 = random_input<float>({1, 9, 6}, 14);  // batch 1: the recurrent GEMV
  compare_levels<float>("recurrent float, batch 1", recurrent_net<float>, seq1, nullptr, 2e-4);
  const Tensor<double> seqd = random_input<double>({3, 9, 6}, 13);
  compare_levels<double>("recurrent double", recurrent_net<double>, seqd, &lengths, 1e-12);
}
