// FixedPoint: a fully recurrent network relaxed to equilibrium and trained by fixed-point recurrent
// backpropagation (Almeida 1987; Pineda 1987, "Generalization of back-propagation to recurrent
// neural networks").
//
// Shapes: B batch, F input features, N units, O output units (the first O of the N units; O = N
// when `outputs` is 0). Weights follow the mathematical convention a = W·s + U·x + b:
//   W [N,N]  W[i,j] is the connection from unit j to unit i
//   U [N,F]  U[i,k] is the connection from input k to unit i
//   b [N]
//
// Forward (the "relaxation"): from s = 0, every sample iterates
//   s ← (1−λ)·s + λ·f(W·s + U·x + b)          (λ = damping, f = sigmoid or tanh)
// until its residual max_i |s_i − f(W·s + U·x + b)_i| < tol; a converged sample is frozen (later
// iterations of the batch leave it alone), so its result does not depend on the other samples. The
// output is the first O units of the equilibrium state s*.
//
// Backward (the adjoint relaxation): with a* = W·s* + U·x + b, D = diag(f'(a*)) and e = dL/ds*
// (dL/dy on the output units, 0 on the others), every sample iterates the transposed linearized
// system, from z = e,
//   z ← (1−λ)·z + λ·(Wᵀ·D·z + e)
// until max_i |z_i − (Wᵀ·D·z + e)_i| < adjoint_tol · max_i |e_i| (relative to the sample's own
// error scale, so the loss's scaling does not matter). Then, with δ = D·z and summed over the
// batch,
//   dL/dW = δ·s*ᵀ,  dL/dU = δ·xᵀ,  dL/db = δ,  dL/dx = Uᵀ·δ.
// This is the exact gradient of the loss at the fixed point (implicit function theorem:
// ds*/dθ = (I − D·W)⁻¹·D·∂a/∂θ). The adjoint converges exactly when the forward fixed point is
// stable (both iterations have the same Jacobian spectrum), so a forward pass that stops on an
// unstable equilibrium shows up as an adjoint failure rather than a wrong gradient.
//
// Connectivity constraints. `symmetric`: the effective weights are (P + Pᵀ)/2 for the stored
// parameter P, so dL/dP = (G + Gᵀ)/2 for the unconstrained gradient G; P is initialized symmetric
// and elementwise optimizers keep it so. `zero_diagonal`: the effective W has no self-connections
// and dL/dP_ii = 0. The stored parameter is always the one optimizers see and model files hold.
//
// Iteration: the batch is split into one block of samples per thread (small batches: one block);
// a block advances together through one GEMM per iteration on its rows still active (converged
// rows are moved out of the active block). Failure to converge within max_iter
// iterations, or a non-finite residual, throws ConvergenceError naming the layer, the phase
// (forward relaxation or adjoint relaxation), the worst sample, its residual and the iteration
// count; nothing is returned or accumulated in that case.
//
// Thread safety: none (one layer, one caller). Deterministic for a fixed thread count.
// docs/fixed_point.md has the derivation, the controls and the associative-memory demonstration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpkit/error.h"
#include "bpkit/layer.h"

namespace bpkit {

// A relaxation (the forward fixed-point iteration or its adjoint) did not reach its tolerance.
struct ConvergenceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Controls of the two relaxations, stored as the layer's attributes.
struct FixedPointOptions {
  double tol = 1e-5;          // forward: absolute residual max|s − f(W·s + U·x + b)|
  double adjoint_tol = 1e-4;  // adjoint: residual relative to the sample's max|e|
  int64_t max_iter = 1000;    // per phase; reaching it throws ConvergenceError
  double damping = 0.5;       // λ in (0, 1]; 1 = plain iteration s ← f(W·s + U·x + b)
};

// What one relaxation did: its iteration counts over the samples of the batch (a sample converged
// at the start counts 0) and the largest final residual.
struct RelaxationStats {
  int64_t max_iterations = 0;
  double mean_iterations = 0;
  double max_residual = 0;
};

enum class FixedPointActivation { kSigmoid, kTanh };

template <class T>
class FixedPoint : public Layer<T> {
 public:
  // Requires units >= 1, 0 <= outputs <= units (0 = all units), tol > 0, adjoint_tol > 0,
  // max_iter >= 1,
  // 0 < damping <= 1, init_radius >= 0. `in_features` (when >= 0) is checked against the input.
  // init_radius: W starts with entries drawn so that its spectral radius is about this value
  // (circular law; semicircle law when symmetric), which keeps the first relaxations contractive.
  FixedPoint(int64_t units, int64_t outputs = 0,
             FixedPointActivation activation = FixedPointActivation::kSigmoid,
             FixedPointOptions options = {}, bool symmetric = false, bool zero_diagonal = false,
             double init_radius = 0.5, int64_t in_features = -1);

  std::string kind() const override { return "fixed_point"; }
  Attrs attrs() const override;
  // Requires a flat input [F]; returns [O].
  Shape build(const Shape& input) override;
  void init(Rng& rng) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;
  void gradient(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy) override;
  // One adjoint relaxation serves both.
  void gradient_and_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                             Tensor<T>& dx) override;
  std::vector<Param<T>> params() override;
  std::vector<std::pair<std::string, Shape>> stored_shapes(const Shape& input) const override;

  // The latest forward relaxation and the latest adjoint relaxation.
  const RelaxationStats& last_forward() const { return fwd_stats_; }
  const RelaxationStats& last_adjoint() const { return adj_stats_; }
  // The full equilibrium state s* [B,N] of the latest forward pass (hidden units included).
  const Tensor<T>& state() const { return s_; }

  const FixedPointOptions& options() const { return opt_; }
  // Changes the controls (for example a looser tolerance after training); same requirements as
  // the constructor's.
  void set_options(const FixedPointOptions& options);
  int64_t units() const { return n_; }
  int64_t outputs() const { return out_; }

 private:
  // Solves the adjoint system for dy and leaves δ = D·z [B,N] in delta_.
  void adjoint(const Tensor<T>& dy);
  void accumulate_gradients(const Tensor<T>& x);
  void input_gradient(const Tensor<T>& x, Tensor<T>& dx);
  // The effective W (symmetrized and/or with a zero diagonal) the relaxations use.
  const T* effective_w();
  // Sizes the per-row bookkeeping (order_, res_, iters_, final_res_) for a batch.
  void prepare_rows(int64_t batch);
  // The driver both relaxations share (see fixed_point.cpp); throws ConvergenceError via fail().
  template <class Compute, class Freeze, class Swap, class Update>
  RelaxationStats relax(const char* phase, int64_t batch, double tol, Compute&& compute,
                        Freeze&& freeze, Swap&& swap, Update&& update);
  [[noreturn]] void fail(const char* phase, double tol, int64_t sample, int64_t batch,
                         double residual, double first_residual, int64_t iterations,
                         int64_t unconverged) const;

  int64_t n_, out_, in_;
  FixedPointActivation act_;
  FixedPointOptions opt_;
  bool symmetric_, zero_diag_;
  double init_radius_;
  Tensor<T> w_, u_, b_, dw_, du_, db_;
  Tensor<T> w_eff_, g_;  // effective W; unconstrained dL/dW before the constraint's projection
  Tensor<T> s_, d_;      // s* and f'(a*) [B,N] of the latest forward, in sample order
  Tensor<T> delta_;      // δ = D·z [B,N] of the latest adjoint, in sample order
  // Work buffers [B,N] in work order: row r holds sample order_[r], rows [0, active) are the
  // samples still iterating. Forward: c = U·x + b, s, f(a). Adjoint: e, z, D, D·z, Wᵀ·D·z.
  Tensor<T> c_, sw_, f_, dw_work_, p_;
  std::vector<int64_t> order_;
  std::vector<double> res_;        // residual of each work row in the current iteration
  std::vector<int64_t> iters_;     // per sample: iterations until it converged
  std::vector<double> final_res_;  // per sample: residual when it converged
  std::vector<double> first_res_;  // per sample: residual at iteration 0
  std::vector<double> scale_;      // per sample: max|e|, the adjoint residual's unit
  int64_t batch_ = -1;             // batch of the latest training forward (-1: none)
  RelaxationStats fwd_stats_, adj_stats_;
};

const char* fixed_point_activation_name(FixedPointActivation a);
// "sigmoid" or "tanh"; throws ShapeError naming `context` otherwise.
FixedPointActivation parse_fixed_point_activation(const std::string& name,
                                                  const std::string& context);

}  // namespace bpkit
