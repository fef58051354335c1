// The training report: what a training run leaves in its output directory for a person to read
// (summary.txt, curves.png, confusion.png) and for a program to read (metrics.json).
#pragma once

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "bpkit/metrics.h"
#include "bpkit/signature.h"
#include "bpkit/trainer.h"

namespace bpkit {

struct ReportInput {
  std::string title;   // model or pipeline name, shown on every file
  TrainResult result;  // per-epoch history, best epoch, early stop
  // On the test (or validation) set; may be null (then no confusion.png and no per-class table).
  const ConfusionMatrix* confusion = nullptr;
  // Labels for the confusion matrix's classes: empty (then "0", "1", ...) or exactly one per class.
  std::vector<std::string> class_names;
  double test_loss = std::numeric_limits<double>::quiet_NaN();      // NaN when there is no test set
  double test_accuracy = std::numeric_limits<double>::quiet_NaN();  // a fraction in [0, 1]
  // Label sequences: the test data's character error rate (NaN otherwise). When the history has
  // error rates, curves.png's second panel draws them instead of the accuracy.
  double test_cer = std::numeric_limits<double>::quiet_NaN();
  // What that error rate counts, in words and abbreviated: characters of transcripts, or frames
  // of frame labels (a letter's sound: "frame error rate", "FER").
  std::string error_name = "character error rate", error_abbrev = "CER";
  // Extra key/values for the summary and the JSON (dataset sizes, parameter count, command, ...),
  // kept in this order. Keys must be distinct.
  std::vector<std::pair<std::string, std::string>> facts;
};

// Sizes of the images, in pixels, whatever the number of epochs or classes.
constexpr int kCurvesPngWidth = 1400, kCurvesPngHeight = 560;
constexpr int kConfusionPngWidth = 1100, kConfusionPngHeight = 1100;

// Writes into `dir`, which must exist:
//   metrics.json  format "bpkit-training-report" version 1: title, epochs, best epoch, early stop,
//                 final/best/test metrics, per-epoch arrays (epoch, lr, train/val loss and
//                 accuracy, seconds, samples/s), the confusion matrix with per-class precision,
//                 recall and F1, and the facts. Keys in a fixed order; NaN and infinities as null.
//   curves.png    loss and accuracy per epoch, train and validation, side by side.
//   confusion.png the matrix as a heat map (shade = share of the true class), counts in the cells,
//                 per-class recall and precision. Only when `in.confusion` is set.
//   summary.txt   final and best epoch, test metrics, per-class table, confusion counts, the facts.
// Each file is written atomically (temporary file, fsync, rename), so a reader sees the old file
// or the new one, never a part. Requires: class_names empty or one per class, distinct fact keys
// (else std::invalid_argument, before anything is written). Throws FileError naming the path when
// a file cannot be written. Not thread-safe for two calls on one directory.
void write_training_report(const std::string& dir, const ReportInput& in);

// The contents of metrics.json and summary.txt, for callers that print or send them elsewhere.
std::string training_report_json(const ReportInput& in);
std::string training_report_summary(const ReportInput& in);

// The DET curves of a verifier (FRR against FAR on normal-deviate axes, 0.1% to 60%): one for
// skilled and one for random forgeries, with their EERs and a dot where `threshold` puts each.
// Written atomically as a kDetPngSize-pixel square PNG.
constexpr int kDetPngSize = 900;
void write_det_png(const std::string& path, const std::string& title, const VerificationTrials& t,
                   double threshold);

}  // namespace bpkit
