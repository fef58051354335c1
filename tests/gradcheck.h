// Finite-difference gradient checks, in double precision, shared by every layer and loss test.
//
// The checked scalar is L = Σ y ⊙ R for the network output y and a fixed random projection R, so
// the analytic gradients are what backward()/gradient() produce from dy = R. The numeric
// derivative of each checked element uses the fourth-order central difference
//   dL/dθ ≈ (−L(θ+2h) + 8·L(θ+h) − 8·L(θ−h) + L(θ−2h)) / 12h,
// formed output by output (Σ_i R_i·(−y_i(θ+2h) + 8·y_i(θ+h) − …)) so that outputs the element
// does not touch cancel exactly instead of adding rounding noise. Its truncation error is O(h⁴),
// far below the 1e-6 tolerance, which lets h stay large enough (1e-4) for rounding not to matter.
//
// Each element passes when |analytic − numeric| / max(|analytic|, |numeric|, kFloor) <= tol.
// Tensors with more than kMaxChecks elements are checked on a random subset of that many.
//
// The routines report failures through Catch2 (CHECK), naming the layer, the tensor (input or
// parameter name), the element and both values, so a test is one line per layer. With
// BPKIT_GRADCHECK_VERBOSE set in the environment they also print every tensor's worst error.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bpkit/layer.h"
#include "bpkit/loss.h"
#include "bpkit/network.h"

namespace bpkit_test {

// Relative-error floor: gradients smaller than this in magnitude are compared absolutely, to
// tol·kFloor (1e-10 at the default tol). The difference quotient's rounding noise is about
// ε_mach·Σ|R_i·y_i|/h, a few 1e-12 for these tests (measured: 3e-12 on the exactly-zero gradient of
// a convolution bias followed by batch normalization), so a much smaller floor would fail exact
// zeros on noise alone.
constexpr double kFloor = 1e-4;
// Elements checked per tensor at most.
constexpr int64_t kMaxChecks = 300;
// Finite-difference step.
constexpr double kStep = 1e-4;
// Tolerance of the smaller steps that re-check a kink (GradCheckOptions::kinks).
constexpr double kKinkTol = 1e-5;

// Draws a random input [batch, per-sample...] with entries in ±[0.1, 1] (kept away from 0 so
// that ReLU-family kinks are never within a step), builds `layer` alone in a Network<double> and
// checks its input gradient (backward) and every parameter gradient (gradient) against finite
// differences, all in Mode::kTrain. Stochastic layers are held to their first random draw. Also
// requires gradient() to accumulate (a second backward doubles the parameter gradients),
// backward() to shape dx like x, and gradient() and backward() called on their own to agree with
// the network's gradient_and_backward() path.
// With `lengths`, every forward pass runs Network::forward(x, mode, lengths) (sequences padded to
// the input's time dimension; the padded frames' input gradient must come out zero). A kDynamic
// dimension of the input shape is drawn with the longest length (7 without lengths).
void check_layer_gradients(std::unique_ptr<bpkit::Layer<double>> layer,
                           const bpkit::Shape& per_sample_input, int64_t batch, uint64_t seed,
                           double tol = 1e-6, const std::vector<int32_t>* lengths = nullptr);

// The same checks for a whole network: input gradient through Network::backward(dloss, &dx) and
// the gradients of all of its parameters (also by Network::backward(dloss) without dx).
void check_network_gradients(bpkit::Network<double>& net, int64_t batch, uint64_t seed,
                             double tol = 1e-6, const std::vector<int32_t>* lengths = nullptr);

// What check_network_gradients_with checks and how.
struct GradCheckOptions {
  double tol = 1e-6;
  int64_t max_checks = kMaxChecks;  // elements per tensor at most
  const std::vector<int32_t>* lengths = nullptr;
  const bpkit::Tensor<double>* input = nullptr;  // the input (default: drawn from the seed)
  // The objective: with `loss` (and its `targets`), L = loss(y, targets) and dL/dy is the loss's
  // gradient; otherwise the projection L = Σ y ⊙ R.
  bpkit::Loss<double>* loss = nullptr;
  const bpkit::Targets<double>* targets = nullptr;
  // Every checked tensor must depend on the input somewhere (off for random architectures, where a
  // dead ReLU or a bias before batch normalization has an exactly zero gradient; counted instead).
  bool require_dependence = true;
  // Finite differences across a kink (a ReLU input or a max-pooling tie within two steps of
  // changing) see part of both slopes. With `kinks`, an element that fails is differenced again
  // with steps of kStep/16, /256 and /4096: the chance that a kink lies within the step falls with
  // the step, while a wrong gradient stays wrong at every step. It passes when one of them agrees
  // within kKinkTol (rounding noise grows as the step shrinks), and is counted in
  // GradCheckStats::kinks.
  bool kinks = false;
  // The relative-error floor (kFloor): random architectures have larger outputs, so the rounding
  // noise of an exactly zero gradient (a bias under batch normalization) is larger.
  double floor = kFloor;
  // Compare only these: the input gradient, and the parameters of layers at or above first_layer.
  bool check_input = true;
  size_t first_layer = 0;
};

struct GradCheckStats {
  int64_t tensors = 0;      // tensors compared with finite differences
  int64_t elements = 0;     // elements compared
  int64_t failures = 0;     // elements above tolerance (each also a failed CHECK)
  int64_t independent = 0;  // tensors whose numeric gradient was zero everywhere checked
  int64_t kinks = 0;        // elements that passed only with a smaller step
  double worst = 0;         // largest relative error
};

// check_network_gradients with options; returns what it compared.
GradCheckStats check_network_gradients_with(bpkit::Network<double>& net, int64_t batch,
                                            uint64_t seed, const GradCheckOptions& options);

// Entries in ±[0.1, 1), drawn from `seed`: never within a finite-difference step of a ReLU kink
// at the first layer.
bpkit::Tensor<double> random_input_away_from_zero(const bpkit::Shape& shape, uint64_t seed);

// Checks the gradient a loss writes against finite differences of the value it returns, at the
// given outputs and targets.
void check_loss_gradients(bpkit::Loss<double>& loss, const bpkit::Tensor<double>& out,
                          const bpkit::Targets<double>& targets, double tol = 1e-6);

// Sets the engine's thread count for a scope and restores the previous one, also when a failed
// REQUIRE leaves the scope by an exception.
class ThreadCount {
 public:
  explicit ThreadCount(int n);
  ~ThreadCount();
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int before_;
};

// Uniform values in [lo, hi), drawn from a bpkit::Rng with the given seed.
bpkit::Tensor<double> random_tensor(const bpkit::Shape& shape, uint64_t seed, double lo = -1,
                                    double hi = 1);

}  // namespace bpkit_test
