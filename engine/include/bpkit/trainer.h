// The training loop for classifiers: mini-batches, shuffling, validation split, early stopping,
// learning-rate schedule, gradient clipping, progress display, and divergence detection.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "bpkit/data.h"
#include "bpkit/loss.h"
#include "bpkit/metrics.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"

namespace bpkit {

struct TrainOptions {
  int epochs = 1;
  int64_t batch = 64;
  bool shuffle = true;
  uint64_t seed = 1;            // shuffling order
  double validation_split = 0;  // fraction of the training data held out (0 = none)
  int patience = 0;             // early stopping: epochs without validation improvement (0 = off)
  Schedule schedule;            // per-epoch learning rate, from the optimizer's initial lr
  double clip_norm = 0;         // global gradient-norm clip (0 = off)
  // Progress: a bar redrawn in place when `progress` is a terminal, one line per epoch otherwise.
  std::ostream* progress = nullptr;
  bool progress_is_terminal = false;
};

struct EpochStats {
  int epoch;  // from 1
  double lr;
  double train_loss;
  double train_acc;
  double val_loss;  // NaN without validation data
  double val_acc;
  double seconds;
  double samples_per_s;
};

struct TrainResult {
  std::vector<EpochStats> history;
  int best_epoch = 0;  // by validation accuracy, or the last epoch without validation
  bool stopped_early = false;
};

// Trains `net` (output [B, classes] logits) on `data`. With validation and patience, the weights of
// the best epoch are restored at the end. Throws DivergenceError when a loss or gradient becomes
// non-finite; the step that produced it is not applied, so `net` holds the last good weights.
TrainResult fit(Network<float>& net, Loss<float>& loss, Optimizer<float>& opt, const Dataset& data,
                const TrainOptions& options);

// Loss and accuracy (and confusion matrix when cm is given) on `data` in inference mode.
struct EvalResult {
  double loss;
  double accuracy;
};
EvalResult evaluate(Network<float>& net, Loss<float>& loss, const Dataset& data, int64_t batch,
                    ConfusionMatrix* cm = nullptr);

}  // namespace bpkit
