// Training, evaluating and predicting with pipelines; model directories.
//
// A model directory holds everything predict and the apps need:
//   model.bpk      the network (with the class names and training facts as metadata)
//   pipeline.yaml  the pipeline file that made its features (stages and parameters)
//   checkpoint.bpk the latest epoch's state while training runs (removed at the end)
//   metrics.json, curves.png, confusion.png, summary.txt   the training report
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "bpkit/features.h"
#include "bpkit/model_file.h"
#include "bpkit/pipeline.h"

namespace bpkit {

struct TrainRequest {
  std::string config;                    // the pipeline file
  std::string out_dir;                   // empty: the file's output.dir
  bool resume = false;                   // continue from out_dir/checkpoint.bpk
  std::vector<std::string> plugin_dirs;  // --plugin-path
  bool use_cache = true;
  int threads = 0;              // > 0: overrides training.threads
  std::ostream* log = nullptr;  // progress and messages
  bool terminal = false;        // draw a progress bar
};

struct TrainOutcome {
  std::string model_dir;
  double test_accuracy = -1;    // -1 without test data
  double test_error_rate = -1;  // transcripts: character error rate on the test data
  int epochs_run = 0;
  int resumed_from = 0;  // epochs already done by the checkpoint (0: a fresh start)
};

// Throws ConfigError (configuration), FileError/StageError (data), DivergenceError (training).
TrainOutcome train_pipeline(const TrainRequest& request);

// A trained model, ready to run.
class TrainedModel {
 public:
  // Loads DIR/model.bpk and DIR/pipeline.yaml and builds the pipeline (plugins from the default
  // directories, the pipeline's plugin_path and `plugin_dirs`). Throws FileError/ConfigError.
  explicit TrainedModel(const std::string& dir, const std::vector<std::string>& plugin_dirs = {});

  struct Prediction {
    int label = -1;
    std::string name;
    double confidence = 0;              // softmax probability of the label
    std::vector<double> probabilities;  // per class
  };
  // Runs the pipeline and the network on one file. Throws StageError/FileError.
  Prediction predict(const std::string& file);
  // Features for many files at once (on all threads), then the network in batches.
  std::vector<Prediction> predict(const std::vector<Tensor<float>>& features);

  const std::vector<std::string>& classes() const { return classes_; }
  // True when the model reads transcripts (CTC over classes() as the alphabet).
  bool transcripts() const { return transcripts_; }
  Network<float>& network() { return model_.net; }
  const Metadata& metadata() const { return model_.meta; }
  const Pipeline& pipeline() const { return *pipeline_; }
  const PipelineConfig& config() const { return config_; }

 private:
  std::string dir_;
  PipelineConfig config_;
  PluginRegistry registry_;
  std::unique_ptr<Pipeline> pipeline_;
  LoadedModel<float> model_;
  std::vector<std::string> classes_;
  bool transcripts_ = false;
};

// The directory of a model shipped with bpkit (models/NAME in the sources): NAME under
// $BPKIT_MODEL_PATH (directories separated by ':'), then <program dir>/../share/bpkit/models
// (installed, and in the build tree a link to the sources' models/). Empty when none holds it.
std::string shipped_model_dir(const std::string& name);

// Model directory file names.
constexpr const char* kModelFile = "model.bpk";
constexpr const char* kPipelineFile = "pipeline.yaml";
constexpr const char* kCheckpointFile = "checkpoint.bpk";

}  // namespace bpkit
