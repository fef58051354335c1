// The training loop for classifiers: mini-batches, shuffling, validation split, early stopping,
// learning-rate schedule, gradient clipping, progress display, and divergence detection.
#pragma once

#include <functional>
#include <iosfwd>
#include <limits>
#include <string>
#include <vector>

#include "bpkit/augment.h"
#include "bpkit/data.h"
#include "bpkit/loss.h"
#include "bpkit/metric.h"
#include "bpkit/metrics.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"

namespace bpkit {

struct EpochStats {
  int epoch;  // from 1
  double lr;
  double train_loss;
  double train_acc;
  double val_loss;  // NaN without validation data
  double val_acc;
  double seconds;
  double samples_per_s;
  // Label sequences (CTC): the greedy decodings' edit distance over the labels' total length
  // (the character error rate of text), on the epoch's training batches and the validation data;
  // NaN for class labels.
  double train_cer = std::numeric_limits<double>::quiet_NaN();
  double val_cer = std::numeric_limits<double>::quiet_NaN();
};

struct TrainResult {
  std::vector<EpochStats> history;
  int best_epoch = 0;  // by validation accuracy, or the last epoch without validation
  bool stopped_early = false;
};

// Everything, besides the network's weights and the optimizer's state, that training needs to
// continue after an epoch as if it had not stopped. The shuffling order, the dropout draws and the
// augmentation draws of epoch e depend only on (seed, e), so a resumed run ends with the same model
// as an uninterrupted one at the same thread count.
struct TrainProgress {
  int epochs_done = 0;
  TrainResult result;
  double best_val = -1;  // best validation accuracy so far (-1: none)
  int since_best = 0;
  std::vector<Tensor<float>> best;  // parameters then buffers of the best epoch (early stopping)
};

struct TrainOptions {
  int epochs = 1;
  int64_t batch = 64;
  bool shuffle = true;
  uint64_t seed = 1;            // shuffling order and dropout draws
  double validation_split = 0;  // fraction of the training data held out (0 = none)
  int patience = 0;             // early stopping: epochs without validation improvement (0 = off)
  Schedule schedule;            // per-epoch learning rate, from the optimizer's initial lr
  double clip_norm = 0;         // global gradient-norm clip (0 = off)
  // Random shifts/rotations/scales of each training sample (image-shaped data [N, C, H, W] only;
  // validation and test data are never augmented). Epoch e's draws depend only on (seed, e).
  Augment augment;
  // Variable-length samples only: called before each training epoch e (0-based) with the dataset
  // indices of that epoch's training samples (never the validation samples). It may replace those
  // samples' inputs in the SequenceDataset that fit() reads (same rank, any length): inputs drawn
  // anew every epoch, e.g. features of audio augmented by a pipeline. For a resumable run its
  // draws depend only on (seed, e, sample).
  std::function<void(int epoch, const std::vector<int64_t>& samples)> before_epoch;
  // Tuple data (metric learning) only: called before each training epoch e (0-based) with the
  // training tuples, which it may replace (any number of them): pairs or triplets drawn anew every
  // epoch, e.g. mined with the current network. For a resumable run its draws depend only on
  // (seed, e) and the network's weights.
  std::function<void(int epoch, TupleDataset& train)> draw_tuples;
  // Progress: a bar redrawn in place when `progress` is a terminal, one line per epoch otherwise.
  std::ostream* progress = nullptr;
  bool progress_is_terminal = false;
  // Called after every epoch (for checkpoints), with the weights and optimizer state of that epoch.
  std::function<void(const TrainProgress&)> on_epoch_end;
  // Continue from a checkpoint: the network and optimizer already hold its weights and state.
  const TrainProgress* resume = nullptr;
};

// Trains `net` (output [B, classes] logits) on `data`. With validation and patience, the weights of
// the best epoch are restored at the end. Throws DivergenceError when a loss or gradient becomes
// non-finite; the step that produced it is not applied, so `net` holds the last good weights.
TrainResult fit(Network<float>& net, Loss<float>& loss, Optimizer<float>& opt, const Dataset& data,
                const TrainOptions& options);
// The same for variable-length samples: each batch is padded to its longest sample and the valid
// lengths go to the network (Network::forward with lengths). Samples are padded (with zeros, at
// the end) in the dimension that the network's input shape declares kDynamic (the width of line
// images {C, H, -1}), or in the first one when none is. With label sequences the loss is CTC
// (Targets::sequences, Targets::lengths = the network's output lengths) and accuracy counts
// sequences whose greedy (best-path) decoding equals the labels exactly.
TrainResult fit(Network<float>& net, Loss<float>& loss, Optimizer<float>& opt,
                const SequenceDataset& data, const TrainOptions& options);

// Loss and accuracy (and confusion matrix when cm is given) on `data` in inference mode.
struct EvalResult {
  double loss;
  double accuracy;
  // Label sequences: edit distance of the greedy decoding to the labels over the labels' total
  // length (the character error rate for text); NaN for class labels.
  double error_rate = std::numeric_limits<double>::quiet_NaN();
};
EvalResult evaluate(Network<float>& net, Loss<float>& loss, const Dataset& data, int64_t batch,
                    ConfusionMatrix* cm = nullptr);
EvalResult evaluate(Network<float>& net, Loss<float>& loss, const SequenceDataset& data,
                    int64_t batch, ConfusionMatrix* cm = nullptr);

// Metric learning with twin networks (metric.h): each batch stacks `batch` tuples of `train`, their
// members as consecutive rows, and the one network embeds them all with shared weights. Accuracy
// counts the tuples the embedding orders right (MetricLoss::count_right). `validation` (optional,
// fixed tuples of samples never trained on) is evaluated after every epoch; validation_split is
// not used (split tuple data by writer or class, never by tuple). Throws as the other fit()s do,
// and std::invalid_argument when a tuple's index is outside x or the arities differ.
TrainResult fit(Network<float>& net, MetricLoss<float>& loss, Optimizer<float>& opt,
                TupleDataset train, const TupleDataset* validation, const TrainOptions& options);
EvalResult evaluate(Network<float>& net, MetricLoss<float>& loss, const TupleDataset& data,
                    int64_t batch);

// Levenshtein distance between two label sequences.
int64_t edit_distance(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

}  // namespace bpkit
