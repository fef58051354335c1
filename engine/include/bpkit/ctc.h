// Connectionist temporal classification (Graves et al., 2006): the CTC loss for training sequence
// networks on unsegmented label sequences, and decoders that turn the network's per-frame scores
// back into label sequences with frame positions and confidences.
//
// Shapes: B sequences, T frames (padded to the longest; each sample has its own valid length),
// C classes, one of which is the blank. Network outputs are batch-first [B, T, C] logits.
// A label sequence of length L aligns to T frames by a path of T symbols that collapses to it
// (merge repeats, then drop blanks); repeated labels need a blank between them, so a sequence
// needs at least L + (number of adjacent equal pairs) frames.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpkit/loss.h"
#include "bpkit/tensor.h"

namespace bpkit {

// How per-sequence losses −log p(labels | x) become the returned scalar.
enum class CtcReduction {
  kMeanPerLabel,  // Σ_b loss_b / max(L_b, 1) / B: torch's ctc_loss 'mean' (the default)
  kMean,          // Σ_b loss_b / B: the mean per sequence, like the engine's other losses
  kSum,           // Σ_b loss_b
};

// CTC loss on logits. compute() requires out [B, T, C] (any finite logits; the log-softmax over C
// is taken inside, stably), target.sequences with B label sequences (values in [0, C), never the
// blank; empty allowed) and target.lengths either empty (every sample has T frames) or B values in
// [1, T]. It writes grad [B, T, C], the gradient of the reduced loss with respect to the logits
// (softmax minus the posterior occupancy of each class, zero on padded frames), and returns the
// reduced loss. Computed in double for either T: the forward-backward recursions run rescaled per
// frame (Graves 2006), and any sample whose rescaled recursion could lose precision to underflow
// (logit gaps of hundreds of nats against its labels) is recomputed in log space, so the result is
// as accurate as a log-space computation everywhere.
//
// Errors (std::invalid_argument naming the sample): wrong shapes or counts, a label out of range or
// equal to the blank, a valid length out of range, and a label sequence too long for its frames —
// unless zero_infinity is set, in which case such a sample (whose loss is +∞) contributes loss 0
// and gradient 0, as torch's zero_infinity does. Never returns NaN for finite logits.
//
// Samples run in parallel on the engine's thread pool; buffers are kept between calls, so
// batches no larger than an earlier one allocate nothing. Not thread-safe (one object per thread).
template <class T>
class CtcLoss : public Loss<T> {
 public:
  explicit CtcLoss(int blank = 0, CtcReduction reduction = CtcReduction::kMeanPerLabel,
                   bool zero_infinity = false);
  std::string kind() const override { return "ctc"; }
  double compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) override;

  int blank() const { return blank_; }
  CtcReduction reduction() const { return reduction_; }
  // −log p(labels_b | x_b) of each sample in the latest compute() (0 for a skipped infeasible one).
  const std::vector<double>& sample_losses() const { return losses_; }

 private:
  int blank_;
  CtcReduction reduction_;
  bool zero_infinity_;
  std::vector<double> losses_;
  std::vector<int32_t> extended_;  // [B, S] blank-interleaved labels, S = 2·L_max + 1
  std::vector<double> work_;       // per sample: emissions, forward and backward variables
};

}  // namespace bpkit
