// Pipeline files: one YAML file per model (stages, network, loss, optimizer, training, data,
// outputs). The format is documented in docs/pipeline.md.
//
// load_pipeline_config() checks the file's syntax and schema: unknown keys (with a "did you mean"),
// wrong types, out-of-range numbers, missing required keys. Checks that need the plugins (do they
// exist, are their parameters valid, do the stages' kinds connect) and the layer factory happen
// when a Pipeline is built from the config (pipeline.h). Every error quotes file:line:column.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bpkit/augment.h"
#include "bpkit/optimizer.h"

namespace bpkit {

// A configuration mistake; the message starts with "file:line:column: ".
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct StageConfig {
  std::string plugin;
  std::string where;                                        // "file:line:col" of the stage
  std::vector<std::pair<std::string, std::string>> params;  // as written, in file order
  std::map<std::string, std::string> param_where;           // key → "file:line:col"
};

struct LayerConfig {
  std::string kind;
  std::string name;  // optional
  std::string where;
  std::vector<std::pair<std::string, std::string>> attrs;
  std::map<std::string, std::string> attr_where;
};

struct PipelineConfig {
  std::string file;  // the YAML file
  std::string dir;   // its directory: relative paths in the file are resolved against it
  std::string text;  // the file's content (copied into model directories)
  std::string name;
  std::vector<std::string> plugin_path;  // resolved
  std::vector<StageConfig> stages;
  std::string stages_where;

  // data
  std::string train_manifest, test_manifest;  // resolved; empty when absent
  std::string train_where, test_where;
  double validation_split = 0;
  std::vector<std::string> classes;  // empty: the sorted labels of the training manifest
  std::string classes_where;
  // "class": a manifest's second column names a class. "transcript": it is a symbol sequence over
  // `alphabet` (one symbol per byte), learned with the CTC loss (label k+1 is alphabet[k]; 0 is
  // the blank). "frames": it is a class per frame of the features, names separated by spaces
  // (sequence labelling, e.g. a phoneme per letter of a word), learned with frame_cross_entropy;
  // the classes are data.classes, else every name the training labels use, sorted.
  std::string labels = "class";
  std::string alphabet;
  // data.alphabet: auto: the alphabet is every byte the training transcripts use, in byte order
  // (resolve_alphabet, when training starts; the model stores it).
  bool alphabet_auto = false;
  std::string alphabet_where;
  std::string labels_where;

  // data.layout "writers" (a verifier learned from tuples, metric.h): train and test name dataset
  // directories, one subdirectory per writer holding genuine/ and forgeries/ (skilled forgeries)
  // images; "manifest" (default): train and test are manifests.
  // "pairs" / "triplets": train and test are manifests of tuples (read_tuple_manifest in
  // signature.h), for data that comes as pairs or triplets rather than as writers.
  std::string layout = "manifest";
  // An embedding model (a verifier): learned from writers, pairs or triplets.
  bool verifier() const { return layout == "writers" || layout == "pairs" || layout == "triplets"; }
  int64_t tuples = 20000;          // data.tuples: pairs or triplets drawn per epoch
  double skilled_negatives = 0.5;  // data.skilled_negatives: share of negatives that are skilled
                                   // forgeries of the anchor's writer (the rest: other writers)
  int mining = 4;      // data.mining: candidates per negative, the hardest kept (1: none)
  int references = 5;  // data.references: references per writer when measuring EER

  // network
  std::vector<int64_t> input_shape;  // optional: checked against the features when given
  std::vector<LayerConfig> layers;
  std::string network_where;
  std::string loss = "softmax_cross_entropy";
  std::string loss_where;
  double margin = 0;  // metric losses (loss: {type: triplet, margin: 0.2}); 0: the loss's default

  // optimizer
  std::string optimizer = "sgd";  // sgd | nesterov | adam | adamw | rprop
  double lr = 0.01, momentum = 0.9, weight_decay = 0, beta1 = 0.9, beta2 = 0.999;
  std::string optimizer_where;

  // training
  int epochs = 10;
  int64_t batch = 32;
  uint64_t seed = 1;
  int threads = 0;  // 0: all cores (or BPKIT_NUM_THREADS)
  Schedule schedule;
  double clip_norm = 0;
  int patience = 0;
  bool checkpoints = true;
  std::string on_error = "stop";  // stop | skip: a sample a stage cannot process
  // training.init: a model directory or model file whose weights start the training (fine-tuning)
  // instead of the initializers; resolved; empty: none.
  std::string init, init_where;
  // training.members: verifiers (data.layout: writers) train this many networks, seeds seed,
  // seed + 1, ..., whose embeddings the model concatenates (an ensemble).
  int members = 1;
  std::string members_where;
  Augment augment;  // training.augment: random shifts/rotations/scales ({C,H,W} only)
  std::string augment_where;

  // decoder (transcript models): how recognizers read the network's output.
  // words: each alphabet symbol's word (a word-level model, e.g. '7' -> "seven"); empty: the
  // symbols are characters. min_words..max_words: the grammar of the decoded sequence (a string of
  // that many symbols; max_words 0: none, greedy decoding). beam: the beam search's width.
  std::vector<std::pair<char, std::string>> symbol_words;
  int min_words = 0, max_words = 0, beam = 16;
  std::string decoder_where;

  // cache and outputs
  bool cache = true;
  std::string
      cache_dir;  // resolved; empty: $BPKIT_CACHE_DIR, $XDG_CACHE_HOME/bpkit, ~/.cache/bpkit
  std::string output_dir;  // resolved; empty: runs/<name> next to the file
};

// Reads and checks `path`. Throws ConfigError ("file:line:col: what; expected ...") or FileError.
// With `need_network` false the file may hold stages alone (e.g. a page layout for ocr_app).
PipelineConfig load_pipeline_config(const std::string& path, bool need_network = true);
// Same, from text (for model directories and tests); `path` is used in messages and, unless
// `base_dir` is given, its directory resolves relative paths.
PipelineConfig parse_pipeline_config(const std::string& text, const std::string& path,
                                     const std::string& base_dir = "", bool need_network = true);

// `bpkit train --set KEY=VALUE`: the pipeline file's text with each override applied, in order.
// KEY is a dotted path of mapping keys and sequence indices (training.epochs,
// network.layers.1.dense.units); missing mapping keys are created; VALUE is YAML (5, adam,
// [1, 28, 28], {units: 64}, an empty VALUE is null). The result is the file re-emitted (its
// comments dropped) under a comment naming the file and the overrides. Throws ConfigError naming
// the override: no '=', an empty key, a key through a scalar, an index out of range, a VALUE that
// is not YAML, or a file that is not YAML.
std::string apply_overrides(const std::string& text, const std::string& path,
                            const std::vector<std::string>& overrides);
// load_pipeline_config with overrides (none: the file as it is); a mistake the overrides made is
// reported as "PATH with --set ...: ...".
PipelineConfig load_pipeline_config(const std::string& path,
                                    const std::vector<std::string>& overrides);

}  // namespace bpkit
