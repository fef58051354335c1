// Losses map a batch of network outputs and targets to a scalar (the mean over the batch) and its
// gradient with respect to the outputs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpkit/tensor.h"

namespace bpkit {

// Targets: class indices (softmax cross-entropy), a tensor shaped like the output (MSE, BCE), or
// label sequences with per-sample valid frame counts (CTC, see ctc.h; empty lengths = all frames).
template <class T>
struct Targets {
  std::vector<int32_t> labels;
  Tensor<T> values;
  std::vector<std::vector<int32_t>> sequences;
  std::vector<int32_t> lengths;
};

template <class T>
class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string kind() const = 0;
  // Requires out [B, F] (any per-sample shape, read as F values) and matching targets. Writes
  // grad (resized like out) and returns the loss averaged over the batch. Throws
  // std::invalid_argument naming the loss and the shapes when targets do not match.
  virtual double compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) = 0;
};

// Mean over the batch of Σ_f (out − target)² / F: the mean over all elements, as in torch's
// MSELoss.
template <class T>
class MeanSquaredError : public Loss<T> {
 public:
  std::string kind() const override { return "mse"; }
  double compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) override;
};

// Softmax cross-entropy on logits: −log softmax(out)[label], computed with the log-sum-exp shift
// so that large logits neither overflow nor lose precision.
template <class T>
class SoftmaxCrossEntropy : public Loss<T> {
 public:
  std::string kind() const override { return "softmax_cross_entropy"; }
  double compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) override;
};

// Binary cross-entropy, mean over all elements, targets in [0, 1]. With from_logits (the default)
// the outputs are logits and the loss is computed stably as max(z,0) − z·t + log(1 + e^−|z|);
// otherwise outputs are probabilities, clamped to [1e-7, 1 − 1e-7].
template <class T>
class BinaryCrossEntropy : public Loss<T> {
 public:
  explicit BinaryCrossEntropy(bool from_logits = true) : from_logits_(from_logits) {}
  std::string kind() const override { return from_logits_ ? "bce_logits" : "bce"; }
  double compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) override;

 private:
  bool from_logits_;
};

// Sequence labelling: a class for every frame. Requires out [B, T, C] logits, target.sequences
// with B label sequences, sequence b holding exactly one label in [0, C) per valid frame
// (lengths[b] of them, or T when target.lengths is empty), and lengths (when given) B values in [1,
// T]. The loss is −log softmax(out[b, t])[label] averaged over every valid frame of the batch
// (padded frames count for nothing and get zero gradient), as torch's cross_entropy with padding
// ignored. Throws std::invalid_argument naming the sample for a count that does not match its
// frames.
template <class T>
class FrameCrossEntropy : public Loss<T> {
 public:
  std::string kind() const override { return "frame_cross_entropy"; }
  double compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) override;
};

// "mse", "softmax_cross_entropy" (alias "cross_entropy"), "bce", "bce_logits", "ctc" (blank 0,
// torch's 'mean' reduction; see ctc.h), "frame_cross_entropy", "triplet" (margin 0.2) and
// "contrastive" (margin 1; see metric.h).
template <class T>
std::unique_ptr<Loss<T>> make_loss(const std::string& kind);

}  // namespace bpkit
