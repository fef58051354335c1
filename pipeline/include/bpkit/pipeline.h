// A pipeline's feature stages at run time: the configured plugin objects, chained.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/plugin_host.h"

namespace bpkit {

// A stage failed on one sample. what() names the file, the stage and the plugin's message.
struct StageError : std::runtime_error {
  StageError(const std::string& msg, std::string file)
      : std::runtime_error(msg), file(std::move(file)) {}
  std::string file;
};

class Pipeline {
 public:
  // Creates and configures every stage. Throws ConfigError quoting file:line:col when a plugin is
  // missing, a parameter is unknown (with a suggestion), of the wrong type or out of range, a
  // plugin's configure() rejects a value, or two stages do not connect (what one produces is not
  // what the next consumes; the first consumes files; the last produces features or a sequence).
  // With `network_input` false the last stage may produce any kind (e.g. a page layout that ends
  // in text lines, image_list).
  Pipeline(const PipelineConfig& config, const PluginRegistry& registry, bool network_input = true);

  // What the pipeline reads: Kind::kFile (files named by path), or Kind::kText when its first
  // stage consumes text: then run(input) takes the text itself, and manifests list texts, not
  // paths (read_manifest with text_inputs).
  Kind input_kind() const;
  // The value a run starts from for one input: a file's path, or the text (input_kind).
  Value input_value(const std::string& input) const;
  // Runs every stage on one input file (or text, see input_kind). `seed` reaches random stages
  // (augmentation, see FeaturePlugin::random), each stage its own stream of it: 0 (inference,
  // cached features) leaves them deterministic; training passes a new seed per sample and epoch.
  // Throws StageError (or FileError for an unreadable file).
  Value run(const std::string& file, uint64_t seed = 0) const;
  // True when a stage augments at random during training.
  bool has_random_stages() const;
  // The indices of the fit stages (FeaturePlugin::fits), in order.
  std::vector<size_t> fit_stages() const;
  // Gives fit stage `stage` its learned state (FeaturePlugin::fit_load) and makes the state part
  // of signature(), so that cached features never outlive the statistics they were made with.
  // Throws ConfigError naming the stage when the plugin refuses the state.
  void load_fit_state(size_t stage, const std::string& state);
  // Fits stage `stage` on the given files: runs the stages before it on each (all threads, in
  // chunks), hands the values to fit_add in the files' order, and loads what fit_finish returns,
  // which it also returns. Throws StageError naming the file when the earlier stages or fit_add
  // fail on one, unless `skipped` is given: then the file is reported there and left out.
  std::string fit(size_t stage, const std::vector<std::string>& files,
                  std::ostream* skipped = nullptr);
  // Runs stages [first, last) on `input` (with input.seed as above), which must be of the kind
  // stage `first` consumes (e.g. a text line cut from a page, fed to a recognizer's pipeline after
  // its reading stages). Throws StageError naming input.path.
  Value run(Value input, size_t first, size_t last = size_t(-1)) const;
  // The index of the first stage that consumes `kind`, or size() when none does.
  size_t first_consuming(Kind kind) const;
  Kind output_kind() const;
  // The stages, their versions, libraries (a digest of each file) and parameters as one
  // canonical line: part of the feature-cache key, so that changing a parameter or rebuilding a
  // plugin invalidates cached features.
  const std::string& signature() const { return signature_; }
  size_t size() const { return stages_.size(); }

  struct Stage {
    std::string plugin, where, file, digest;
    PluginInfo info;
    ParamValues params;
    std::shared_ptr<FeaturePlugin> object;
  };
  const std::vector<Stage>& stages() const { return stages_; }

 private:
  std::vector<Stage> stages_;
  std::string signature_;
};

// Checks `values` (key → text, with key → "file:line:col") against the plugin's declared
// parameters and returns them with defaults filled in. Throws ConfigError.
ParamValues validate_params(const PluginInfo& info,
                            const std::vector<std::pair<std::string, std::string>>& values,
                            const std::map<std::string, std::string>& where,
                            const std::string& stage_where);

// The registry for a pipeline: built-in plugins, $BPKIT_PLUGIN_PATH, `pipeline_dirs` and `extra`
// directories (e.g. --plugin-path), in that order. Pass a pipeline's plugin_path as
// `pipeline_dirs` only for a pipeline file the user named (bpkit train CONFIG); a model
// directory's goes through load_model_plugins. With `needed`, libraries are loaded in that order
// only until every named plugin is found (the libraries a pipeline does not use, and what they
// link, stay unloaded — a library after the last one needed is never opened; a name found twice
// is then not reported, the first one found is used).
void load_plugins(PluginRegistry& registry, const std::vector<std::string>& pipeline_dirs,
                  const std::vector<std::string>& extra,
                  const std::vector<std::string>* needed = nullptr);

// The plugins a pipeline's stages name, in stage order (repeats kept).
std::vector<std::string> stage_plugins(const PipelineConfig& config);

// The registry for a model directory's pipeline file (TrainedModel, ocr_app's page.yaml):
// built-in plugins, $BPKIT_PLUGIN_PATH and `extra` (--plugin-path), loaded only until every
// stage's plugin is found. The pipeline's own plugin_path is searched (before `extra`) only with
// `trust_plugin_path`, the user's --trust-model-plugins: a model directory is data that may come
// from anyone, and must not choose which native code runs (docs/security.md). Throws ConfigError
// at the stage when a plugin is missing and the pipeline names a plugin_path that was not
// searched, naming those directories and the flag that allows them.
void load_model_plugins(PluginRegistry& registry, const PipelineConfig& config,
                        const std::vector<std::string>& extra, bool trust_plugin_path);

}  // namespace bpkit
