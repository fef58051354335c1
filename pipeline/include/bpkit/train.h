// Training, evaluating and predicting with pipelines; model directories.
//
// A model directory holds everything predict and the apps need:
//   model.bpk      the network (with the class names and training facts as metadata)
//   model.2.bpk, model.3.bpk, ...   more networks for the same classes and features: an ensemble
//                  (bpkit ensemble, or a verifier's training.members); predictions average the
//                  members' class probabilities, a verifier's embedding concatenates theirs
//   pipeline.yaml  the pipeline file that made its features (stages and parameters)
//   fitted.yaml    what the pipeline's fit stages learned from the training set (when it has any)
//   checkpoint.bpk the latest epoch's state while training runs (removed at the end)
//   metrics.json, curves.png, confusion.png, summary.txt   the training report
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "bpkit/ctc.h"
#include "bpkit/features.h"
#include "bpkit/model_file.h"
#include "bpkit/pipeline.h"

namespace bpkit {

struct TrainRequest {
  std::string config;   // the pipeline file
  std::string out_dir;  // empty: the file's output.dir
  bool resume = false;  // continue from out_dir/checkpoint.bpk
  // Without resume: train over a finished model or an interrupted run's checkpoint in out_dir
  // (false: refuse them with a ConfigError; bpkit train without --force).
  bool overwrite = true;
  std::vector<std::string> plugin_dirs;  // --plugin-path
  bool use_cache = true;
  int threads = 0;                     // > 0: overrides training.threads
  int64_t seed = -1;                   // >= 0: overrides training.seed
  std::vector<std::string> overrides;  // --set KEY=VALUE, applied to the file (apply_overrides)
  std::ostream* log = nullptr;         // progress and messages
  bool terminal = false;               // draw a progress bar
};

struct TrainOutcome {
  std::string model_dir;
  double test_accuracy = -1;    // -1 without test data
  double test_error_rate = -1;  // transcripts: character error rate on the test data
  int epochs_run = 0;
  int resumed_from = 0;  // epochs already done by the checkpoint (0: a fresh start)
  // Verifiers (data.layout: writers) with a test dataset: equal error rates there (-1: none).
  double test_eer_skilled = -1, test_eer_random = -1;
};

// Throws ConfigError (configuration), FileError/StageError (data), DivergenceError (training).
TrainOutcome train_pipeline(const TrainRequest& request);

// A trained model, ready to run.
class TrainedModel {
 public:
  // Loads DIR/model.bpk (and an ensemble's further members) and DIR/pipeline.yaml and builds the
  // pipeline (DIR may also be given as DIR/model.bpk: resolve_model_dir); the
  // pipeline's plugins come from the default directories and `plugin_dirs` (--plugin-path); the
  // pipeline file's plugin_path only with `trust_model_plugins` (--trust-model-plugins; see
  // load_model_plugins). Throws FileError/ConfigError, also for members that do not match the
  // first network's input shape and classes, or that are not numbered 2, 3, ... without gaps.
  explicit TrainedModel(const std::string& dir, const std::vector<std::string>& plugin_dirs = {},
                        bool trust_model_plugins = false);

  struct Prediction {
    int label = -1;
    std::string name;
    double confidence = 0;              // softmax probability of the label
    std::vector<double> probabilities;  // per class (an ensemble: the members' mean)
  };
  // Runs the pipeline and the network on one file. Throws StageError/FileError.
  Prediction predict(const std::string& file);
  // Features for many files at once (on all threads), then the network in batches.
  std::vector<Prediction> predict(const std::vector<Tensor<float>>& features);

  // Frame-labelling models (data.labels: frames): a class per frame of one sequence of features
  // (without the batch dimension): the most probable class of each frame, its probability, and
  // every class's probability (an ensemble: the members' mean). Throws ConfigError for other
  // models, ShapeError for features the network does not take.
  struct FrameLabels {
    std::vector<int32_t> labels;
    std::vector<double> confidence;
    std::vector<std::vector<double>> probabilities;  // [frame][class]
  };
  FrameLabels label_frames(const Tensor<float>& features);
  // Many sequences at once: batches of up to `batch` sequences of similar lengths, padded, in one
  // forward pass each (much faster than one at a time on one thread); results in input order, the
  // same as label_frames of each up to the kernels' summation order.
  std::vector<FrameLabels> label_frames(const std::vector<Tensor<float>>& features,
                                        size_t batch = 64);
  // True for a frame-labelling model; classes() names its frame classes.
  bool frames() const { return frames_; }

  // Transcript models: the decoded symbols of one sequence of features (without the batch
  // dimension), with positions and confidences: CTC prefix beam search constrained to the
  // pipeline's decoder.min_words..max_words symbols when max_words is set (a result with no
  // symbols and confidence 0 when nothing fits the frames), else the best path; then the
  // dictionary, if any. Throws ShapeError for features the network does not take, ConfigError for
  // a class model.
  CtcResult transcribe(const Tensor<float>& features);

  // Transcript models: corrects every decoded line with a word list from here on
  // (ctc_lexicon_correct): a word that is not in the list is replaced by the most probable word of
  // the list over the same frames when that is at most `max_cost` nats less probable. The file
  // holds one word per line; words of ASCII letters are kept and match in lower case, Capitalized,
  // in UPPER case, or as written when that is none of these ("MHz") (lines with other characters,
  // e.g. "don't", and words the alphabet cannot spell are skipped). Throws FileError (unreadable,
  // no usable word, more than 2 000 000 lines, a line longer than 256 bytes, or
  // words enough for more than 4 000 000 trie states, about 300 MB) or ConfigError (a
  // class model, max_cost negative or not finite).
  void use_dictionary(const std::string& path, double max_cost = kDefaultDictionaryCost);
  static constexpr double kDefaultDictionaryCost = 3;
  // Words kept from the dictionary file (0: none in use).
  size_t dictionary_words() const { return dictionary_words_; }

  const std::vector<std::string>& classes() const { return classes_; }
  // True when the model reads transcripts (CTC over classes() as the alphabet).
  bool transcripts() const { return transcripts_; }
  // True for an embedding model (a verifier trained on writers, data.layout: writers): the
  // network maps features to a vector compared by distance; no classes (signature.h).
  bool embeddings() const { return embeddings_; }
  // Embedding models: the embeddings of a batch x [N, input...] as out [N, embedding_dim()]. An
  // ensemble concatenates its members' embeddings, each scaled by 1/sqrt(members()), so that
  // unit embeddings stay unit vectors and a cosine is the mean of the members' cosines. Throws
  // ConfigError for other models.
  void embed(const Tensor<float>& x, Tensor<float>& out);
  int64_t embedding_dim() const;
  Network<float>& network() { return model_.net; }
  // Networks in the directory: 1, or an ensemble's member count.
  size_t members() const { return 1 + more_.size(); }
  const Metadata& metadata() const { return model_.meta; }
  const std::string& dir() const { return dir_; }  // the model directory
  const Pipeline& pipeline() const { return *pipeline_; }
  // The plugins the pipeline was built from (for further pipelines of the same plugins).
  const PluginRegistry& registry() const { return registry_; }
  const PipelineConfig& config() const { return config_; }

 private:
  std::string dir_;
  PipelineConfig config_;
  PluginRegistry registry_;
  std::unique_ptr<Pipeline> pipeline_;
  LoadedModel<float> model_;
  std::vector<LoadedModel<float>> more_;  // an ensemble's members 2, 3, ...
  std::vector<std::string> classes_;
  bool transcripts_ = false;
  bool embeddings_ = false;
  bool frames_ = false;
  std::vector<FrameLabels> batch_frames(const Tensor<float>& x,
                                        const std::vector<int32_t>& lengths);
  void check_frame_input(const Tensor<float>& features) const;
  std::unique_ptr<LabelFsa> lexicon_;  // the dictionary in three spellings (null: none)
  std::unique_ptr<LabelFsa> grammar_;  // decoder.min_words..max_words symbols (null: none)
  CtcResult decode(const Tensor<float>& y);
  std::vector<uint8_t> word_label_;  // per class: ctc_lexicon_correct's kinds
  CtcLexiconOptions lexicon_options_;
  size_t dictionary_words_ = 0;
};

// The embeddings of a batch x [N, input...] by an ensemble of embedding networks (one or more):
// out [N, sum of their widths], each member's embedding scaled by 1/sqrt(K) (unscaled for one).
void ensemble_embed(const std::vector<Network<float>*>& nets, const Tensor<float>& x,
                    Tensor<float>& out);

// A model directory named by the user: the directory itself, or, for a directory's model.bpk, the
// directory. Throws FileError for any other file (a checkpoint, a member, a pipeline file).
std::string resolve_model_dir(const std::string& path);

// Gives the fit stages of `pipeline` (made from DIR/pipeline.yaml, possibly cut short) what they
// learned in training, from DIR/fitted.yaml. Throws FileError (missing, damaged, not this
// pipeline's states) or ConfigError (a state a stage refuses). TrainedModel does this itself.
void load_fit_states(const std::string& model_dir, Pipeline& pipeline);

// The directory of a model shipped with bpkit (models/NAME in the sources): NAME under
// $BPKIT_MODEL_PATH (directories separated by ':'), then <program dir>/../share/bpkit/models
// (installed, and in the build tree a link to the sources' models/). Empty when none holds it.
std::string shipped_model_dir(const std::string& name);

// The acceptor of the words of a word list (one per line) for a transcript alphabet (label k + 1
// is alphabet[k], 0 the blank), as TrainedModel::use_dictionary uses it: every word of ASCII
// letters the alphabet can spell, in lower case, Capitalized, in UPPER case, and as written when
// that is none of these. `words` (optional) gets the number of words kept. Throws FileError as
// use_dictionary does.
LabelFsa dictionary_acceptor(const std::string& path, const std::vector<std::string>& alphabet,
                             size_t* words = nullptr);

// The model files of a directory, in member order: model.bpk, then model.2.bpk, model.3.bpk, ...
// Throws FileError when a member number is missing below the highest, or there is no model.bpk.
std::vector<std::string> member_files(const std::string& dir);

// Writes an ensemble into `out_dir` (created when missing) from trained class-model directories:
// their networks as members 1..K in the given order (copied byte for byte) and the first
// directory's pipeline.yaml. Every directory must hold one network (not an ensemble) with the same
// input shape, output and class names as the first, and a pipeline with the same stages and
// parameters. Stale members numbered above K in `out_dir` are removed; other files are kept.
// Every file is written atomically. Throws FileError/ConfigError naming the directory at fault.
void write_ensemble(const std::vector<std::string>& model_dirs, const std::string& out_dir);

// Model directory file names.
constexpr const char* kModelFile = "model.bpk";
constexpr const char* kPipelineFile = "pipeline.yaml";
constexpr const char* kCheckpointFile = "checkpoint.bpk";
constexpr const char* kFittedFile = "fitted.yaml";

}  // namespace bpkit
