// What the training drivers share (internal to the pipeline library): building the configured
// network and optimizer, checkpoints, and formatting. train.cpp trains classifiers and transcript
// models; verifier_train.cpp trains embedding models (verifiers) on writers.
#pragma once

#include <memory>
#include <string>

#include "bpkit/config.h"
#include "bpkit/model_file.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"
#include "bpkit/pipeline.h"
#include "bpkit/train.h"
#include "bpkit/trainer.h"

namespace bpkit::train_detail {

// One configured layer; every problem becomes a ConfigError at the layer (or attribute).
std::unique_ptr<Layer<float>> make_configured_layer(const LayerConfig& l);
// Builds the configured layers on `net`.
void build_network(const PipelineConfig& c, Network<float>& net);
std::unique_ptr<Optimizer<float>> make_optimizer(const PipelineConfig& c, Network<float>& net);
// What a checkpoint is resumed only with: digests of the pipeline file's text, of the feature
// stages (plugin libraries, versions, parameters and fitted statistics: Pipeline::signature())
// and of the training data (the manifest's bytes, or the names and sizes of the scans a dataset
// directory of writers holds).
struct RunDigests {
  std::string config, plugins, data;
  std::string data_source;  // the manifest or directory (for messages; not stored)
};
RunDigests run_digests(const PipelineConfig& c, const Pipeline& pipeline);
// The checkpoint (network, optimizer state, best weights, trainer progress), written atomically.
void save_checkpoint(const std::string& path, Network<float>& net, Optimizer<float>& opt,
                     const TrainProgress& p, const RunDigests& digests);
// Throws FileError naming what changed when `digests` differ from the checkpoint's.
TrainProgress load_checkpoint(const std::string& path, Network<float>& net, Optimizer<float>& opt,
                              const RunDigests& digests);
// Loads the plugins the pipeline's stages need from the built-in directories, the request's
// --plugin-path and the pipeline file's plugin_path: the user named this pipeline file, so its
// plugin_path is theirs (docs/security.md).
void load_training_plugins(PluginRegistry& registry, const PipelineConfig& c,
                           const TrainRequest& r);
std::string num(double v);          // %.17g
std::string fmt_seconds(double s);  // "12.3s"
std::string now_utc();              // ISO 8601
// training.init: the model file of the directory (member `member` of an ensemble when it has one,
// else its first), or the file itself. A problem with it is a ConfigError at the key.
LoadedModel<float> load_init_model(const PipelineConfig& c, int member = 0);
// training.init: copies every parameter and buffer of `m` into `net` (same layers, same shapes;
// the same classes or alphabet when `m` records them). Throws ConfigError at `where`.
void init_weights(Network<float>& net, LoadedModel<float>& m, const std::string& file,
                  const std::string& where, const std::vector<std::string>& classes,
                  const std::string& alphabet);
// The metadata value "init": `c.init` relative to the model directory `out`.
std::string init_reference(const PipelineConfig& c, const std::string& out);

// What every run does before computing features: checks the configured layers (and builds them
// on network.input when given), sets the thread count, and refuses --resume without a
// checkpoint. Returns the output directory. Throws ConfigError/FileError.
std::string prepare_run(const TrainRequest& r, const PipelineConfig& c);

// The trainer's options every run takes from the pipeline file and the request: epochs, batch,
// seed, patience, schedule, clipping, progress output.
void set_train_options(TrainOptions& o, const PipelineConfig& c, const TrainRequest& r);
// Metadata "pipeline_dir": the pipeline file's directory seen from the model directory `out`, so
// that relative paths in the model's copy of the file keep resolving.
void add_pipeline_dir(Metadata& meta, const PipelineConfig& c, const std::string& out);

// Embedding models (data.layout: writers), in verifier_train.cpp.
TrainOutcome train_verifier(const TrainRequest& r, PipelineConfig c);

}  // namespace bpkit::train_detail
