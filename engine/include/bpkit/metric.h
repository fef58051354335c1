// Metric learning and verification: losses over pairs and triplets of embeddings, and the error
// rates of a verifier (FAR, FRR, EER, DET curve).
//
// Twin networks: one network embeds every member of a tuple with the same weights. The trainer
// (fit with a TupleDataset, trainer.h) stacks the members of each tuple as consecutive rows of one
// batch, so one forward pass embeds them all and one backward pass sums each member's gradient
// into the one set of parameters: exactly the gradient of the loss with the weights shared.
// Shapes: G tuples, k members each (2: pairs, 3: triplets), D embedding values; the network output
// is [G·k, D], rows g·k .. g·k + k − 1 holding tuple g.
#pragma once

#include <string>
#include <vector>

#include "bpkit/loss.h"

namespace bpkit {

// A loss over tuples of embeddings.
template <class T>
class MetricLoss : public Loss<T> {
 public:
  // Members per tuple (rows of the output per tuple).
  virtual int arity() const = 0;
  double margin() const { return margin_; }
  // Tuples in out [G·k, D] that the embedding already orders right: triplets whose positive is
  // nearer the anchor than the negative; pairs whose distance is on the right side of margin / 2.
  virtual int64_t count_right(const Tensor<T>& out, const Targets<T>& target) const = 0;

 protected:
  explicit MetricLoss(double margin);
  // Requires out's rows to be a multiple of arity(); returns G. Throws std::invalid_argument.
  int64_t tuples(const Tensor<T>& out) const;
  double margin_;
};

// Triplet loss (Schroff et al., FaceNet): rows (anchor a, positive p, negative n),
//   L = mean_g max(0, ‖a − p‖² − ‖a − n‖² + margin).
// Gradients where the hinge is active: ∂L/∂a = 2(n − p)/G, ∂L/∂p = −2(a − p)/G, ∂L/∂n = 2(a − n)/G.
// Targets: none.
template <class T>
class TripletLoss : public MetricLoss<T> {
 public:
  explicit TripletLoss(double margin = 0.2) : MetricLoss<T>(margin) {}
  std::string kind() const override { return "triplet"; }
  int arity() const override { return 3; }
  double compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) override;
  int64_t count_right(const Tensor<T>& out, const Targets<T>& target) const override;
};

// Contrastive loss (Hadsell, Chopra and LeCun, 2006): rows (x1, x2), labels[g] 1 for a pair of
// the same class (writer), 0 otherwise; with d = ‖x1 − x2‖,
//   L = mean_g [ y·d² + (1 − y)·max(0, margin − d)² ] / 2.
// Gradients: same pairs ∂L/∂x1 = (x1 − x2)/G; different pairs closer than the margin
// ∂L/∂x1 = −(margin − d)(x1 − x2)/(d·G) (d floored at 1e-9: two equal embeddings have no
// direction to move apart in); x2 gets the opposite.
template <class T>
class ContrastiveLoss : public MetricLoss<T> {
 public:
  explicit ContrastiveLoss(double margin = 1.0) : MetricLoss<T>(margin) {}
  std::string kind() const override { return "contrastive"; }
  int arity() const override { return 2; }
  double compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) override;
  int64_t count_right(const Tensor<T>& out, const Targets<T>& target) const override;
};

// "triplet" or "contrastive" with the given margin (> 0). Throws std::invalid_argument.
template <class T>
std::unique_ptr<MetricLoss<T>> make_metric_loss(const std::string& kind, double margin);

// ---- Verification error rates ----
// A trial compares a query with a claimed writer's references and gives a score, higher meaning
// more likely genuine; the verifier accepts a score >= its threshold.
//   FAR(t) = impostor scores >= t / impostor trials   (forgeries accepted)
//   FRR(t) = genuine scores < t / genuine trials      (genuine signatures rejected)

struct ErrorRates {
  double far = 0, frr = 0;
};
// Requires both lists non-empty (std::invalid_argument otherwise).
ErrorRates error_rates(const std::vector<double>& genuine, const std::vector<double>& impostor,
                       double threshold);

// The equal error rate: where FAR and FRR meet as the threshold sweeps the scores. Between two
// consecutive scores the rates are joined linearly (the DET curve's segment), and the EER is
// where that segment crosses FAR = FRR; `threshold` is the score there (interpolated between the
// two scores), the threshold a verifier calibrated for equal errors uses.
struct Eer {
  double eer = 0;
  double threshold = 0;
};
Eer equal_error_rate(const std::vector<double>& genuine, const std::vector<double>& impostor);

// The DET curve: (FAR, FRR) at every distinct score used as the threshold, from the lowest
// threshold (FAR 1, FRR 0) to above the highest (FAR 0, FRR 1).
struct DetPoint {
  double threshold, far, frr;
};
std::vector<DetPoint> det_curve(const std::vector<double>& genuine,
                                const std::vector<double>& impostor);

}  // namespace bpkit
