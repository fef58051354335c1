#include "bpkit/train.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <ostream>
#include <set>
#include <sstream>

#include "bpkit/ctc.h"
#include "bpkit/digest.h"
#include "bpkit/error.h"
#include "bpkit/loss.h"
#include "bpkit/optimizer.h"
#include "bpkit/report.h"
#include "bpkit/signature.h"
#include "bpkit/suggest.h"
#include "bpkit/threading.h"
#include "bpkit/trainer.h"
#include "model_dir.h"
#include "train_detail.h"

namespace bpkit {
using namespace model_dir;
namespace train_detail {

namespace fs = std::filesystem;

const std::vector<std::string>& layer_kinds() {
  // Every kind the layer factory makes (engine/src/layers/factory.cpp).
  static const std::vector<std::string> kinds{
      "dense",   "conv2d",  "maxpool2d", "avgpool2d",   "dropout",     "batchnorm",   "flatten",
      "reshape", "sigmoid", "tanh",      "relu",        "leaky_relu",  "softmax",     "rnn",
      "lstm",    "gru",     "columns",   "frame_dense", "fixed_point", "l2_normalize"};
  return kinds;
}

// Makes one configured layer; every problem becomes a ConfigError at the layer (or attribute).
std::unique_ptr<Layer<float>> make_configured_layer(const LayerConfig& l) {
  Attrs attrs;
  for (const auto& [k, v] : l.attrs) attrs.set(k, v);
  std::unique_ptr<Layer<float>> layer;
  std::string error;
  try {
    layer = make_layer<float>(l.kind, attrs);
  } catch (const std::exception& e) {
    error = e.what();
    if (error.find("unknown layer kind") != std::string::npos)
      throw ConfigError(l.where + ": unknown layer '" + l.kind + "'" +
                        did_you_mean(l.kind, layer_kinds()));
  }
  // The factory asked for every attribute it knows: any other key is a mistake, and a likelier
  // cause of a failure than the value the factory complained about.
  const std::vector<std::string>& known = attrs.keys_read();
  for (const auto& [k, v] : l.attrs)
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      const auto w = l.attr_where.find(k);
      throw ConfigError((w != l.attr_where.end() ? w->second : l.where) + ": layer '" + l.kind +
                        "' has no attribute '" + k + "'" +
                        (known.empty() ? std::string("; it takes none") : did_you_mean(k, known)));
    }
  if (!layer) throw ConfigError(l.where + ": " + error);
  return layer;
}

// Builds the configured layers on `net`.
void build_network(const PipelineConfig& c, Network<float>& net) {
  for (const LayerConfig& l : c.layers) {
    std::unique_ptr<Layer<float>> layer = make_configured_layer(l);
    int64_t values = 0;  // what the layer will store: parameters and buffers
    try {
      for (const auto& stored : layer->stored_shapes(net.output_shape()))
        values += shape_size(stored.second);
      net.add(std::move(layer), l.name);
    } catch (const std::bad_alloc&) {
      throw ConfigError(l.where + ": layer '" + l.kind + "' is too large: its " +
                        std::to_string(values) +
                        " parameters (and their gradients) do not fit in memory");
    } catch (const std::exception& e) {
      throw ConfigError(l.where + ": " + e.what());
    }
  }
}

std::unique_ptr<Optimizer<float>> make_optimizer(const PipelineConfig& c, Network<float>& net) {
  if (c.optimizer == "sgd" || c.optimizer == "nesterov")
    return std::make_unique<Sgd<float>>(net.params(), c.lr, c.momentum, c.optimizer == "nesterov",
                                        c.weight_decay);
  if (c.optimizer == "adam" || c.optimizer == "adamw")
    return std::make_unique<Adam<float>>(net.params(), c.lr, c.beta1, c.beta2, 1e-8, c.weight_decay,
                                         c.optimizer == "adamw");
  return std::make_unique<Rprop<float>>(net.params(), c.lr);
}

std::string num(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

namespace {

// A dataset directory of writers: the path (relative, in the order the layout reads them) and
// size of every scan the layout reads (read_writer_dataset), so that other files in the directory
// do not matter. Reading every scan's bytes would cost as much as a feature pass; a changed,
// added or removed scan changes the digest (one rewritten in place to the same size does not).
std::string writers_digest(const std::string& dir) {
  const WriterDataset data = read_writer_dataset(dir);
  Digest d;
  std::error_code ec;
  auto add = [&](const std::string& file) {
    const uintmax_t size = fs::file_size(file, ec);
    if (ec) throw FileError(file + ": cannot read its size: " + ec.message());
    d.update(fs::relative(file, dir, ec).generic_string() + '\0' + std::to_string(size) + '\n');
  };
  for (const WriterSamples& w : data.writers) {
    for (const std::string& f : w.genuine) add(f);
    for (const std::string& f : w.forgeries) add(f);
  }
  return d.hex();
}

}  // namespace

RunDigests run_digests(const PipelineConfig& c, const Pipeline& pipeline) {
  RunDigests d;
  d.config = digest_of(c.text);
  d.plugins = digest_of(pipeline.signature());
  d.data_source = c.train_manifest;
  std::error_code ec;
  d.data = c.train_manifest.empty()                 ? std::string()
           : fs::is_directory(c.train_manifest, ec) ? writers_digest(c.train_manifest)
                                                    : file_digest(c.train_manifest);
  return d;
}

// The checkpoint: the network, the optimizer's state, the best weights so far and the trainer's
// progress, in one model file (written atomically).
void save_checkpoint(const std::string& path, Network<float>& net, Optimizer<float>& opt,
                     const TrainProgress& p, const RunDigests& digests) {
  Metadata meta{{"checkpoint.config", digests.config},
                {"checkpoint.plugins", digests.plugins},
                {"checkpoint.data", digests.data},
                {"checkpoint.epochs_done", std::to_string(p.epochs_done)},
                {"checkpoint.best_val", num(p.best_val)},
                {"checkpoint.since_best", std::to_string(p.since_best)},
                {"checkpoint.best_epoch", std::to_string(p.result.best_epoch)},
                {"checkpoint.optimizer_steps", std::to_string(opt.steps())}};
  for (const EpochStats& s : p.result.history)
    meta.emplace_back("checkpoint.epoch." + std::to_string(s.epoch),
                      num(s.lr) + "," + num(s.train_loss) + "," + num(s.train_acc) + "," +
                          num(s.val_loss) + "," + num(s.val_acc) + "," + num(s.seconds) + "," +
                          num(s.samples_per_s) + "," + num(s.train_cer) + "," + num(s.val_cer));
  ExtraTensors<float> extra;
  char name[32];
  const auto state = opt.state();
  for (size_t i = 0; i < state.size(); ++i) {
    std::snprintf(name, sizeof name, "opt.%06zu", i);
    extra.emplace_back(name, *state[i]);
  }
  for (size_t i = 0; i < p.best.size(); ++i) {
    std::snprintf(name, sizeof name, "best.%06zu", i);
    extra.emplace_back(name, p.best[i]);
  }
  save_model(net, path, meta, extra);
}

std::string meta_get(const Metadata& m, const std::string& key, const std::string& file) {
  for (const auto& kv : m)
    if (kv.first == key) return kv.second;
  throw FileError(file + ": not a training checkpoint (no '" + key + "')");
}

// Loads a checkpoint into net and opt; returns the trainer's progress.
TrainProgress load_checkpoint(const std::string& path, Network<float>& net, Optimizer<float>& opt,
                              const RunDigests& digests) {
  LoadedModel<float> ck = load_model<float>(path);
  const auto changed = [&](const std::string& key, const std::string& now, const std::string& what,
                           const std::string& mix) {
    bool found = false;
    for (const auto& kv : ck.meta)
      if (kv.first == key) {
        found = true;
        if (kv.second == now) return;
      }
    throw FileError(path + ": " +
                    (found ? what +
                                 " changed since this checkpoint was written; resuming "
                                 "would mix " +
                                 mix
                           : "written by an older bpkit that does not record " + what +
                                 "; it cannot be checked") +
                    " (train without --resume to start afresh)");
  };
  changed("checkpoint.config", digests.config, "the pipeline file", "two configurations");
  changed("checkpoint.plugins", digests.plugins,
          "the feature stages (a plugin library rebuilt or replaced, or its parameters)",
          "features of two versions");
  changed("checkpoint.data", digests.data, "the training data (" + digests.data_source + ")",
          "two training sets");
  auto a = net.params(), b = ck.net.params();
  if (a.size() != b.size() || ck.net.size() != net.size())
    throw FileError(path + ": the checkpoint's network differs from the pipeline's");
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].value->shape() != b[i].value->shape())
      throw FileError(path + ": tensor '" + b[i].name + "' has another shape than the pipeline's");
    *a[i].value = *b[i].value;
  }
  for (size_t i = 0; i < net.size(); ++i) {
    auto x = net.layer(i).buffers(), y = ck.net.layer(i).buffers();
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) *x[k].second = *y[k].second;
  }
  TrainProgress p;
  const auto state = opt.state();
  size_t opt_i = 0;
  for (auto& [name, t] : ck.extra) {
    if (name.rfind("opt.", 0) == 0) {
      if (opt_i >= state.size() || state[opt_i]->shape() != t.shape())
        throw FileError(path + ": the optimizer state does not fit the configured optimizer");
      *state[opt_i++] = t;
    } else if (name.rfind("best.", 0) == 0) {
      p.best.push_back(t);
    }
  }
  if (opt_i != state.size())
    throw FileError(path + ": the checkpoint lacks optimizer state for the configured optimizer");
  opt.set_steps(std::stoll(meta_get(ck.meta, "checkpoint.optimizer_steps", path)));
  p.epochs_done = std::stoi(meta_get(ck.meta, "checkpoint.epochs_done", path));
  p.best_val = std::strtod(meta_get(ck.meta, "checkpoint.best_val", path).c_str(), nullptr);
  p.since_best = std::stoi(meta_get(ck.meta, "checkpoint.since_best", path));
  p.result.best_epoch = std::stoi(meta_get(ck.meta, "checkpoint.best_epoch", path));
  for (int e = 1; e <= p.epochs_done; ++e) {
    std::istringstream f(meta_get(ck.meta, "checkpoint.epoch." + std::to_string(e), path));
    EpochStats s{};
    s.epoch = e;
    // Checkpoints written before the error rates were kept end after samples_per_s.
    double* fields[] = {&s.lr,      &s.train_loss,    &s.train_acc, &s.val_loss, &s.val_acc,
                        &s.seconds, &s.samples_per_s, &s.train_cer, &s.val_cer};
    std::string tok;
    for (double* d : fields) {
      if (!std::getline(f, tok, ',')) break;
      *d = std::strtod(tok.c_str(), nullptr);
    }
    p.result.history.push_back(s);
  }
  return p;
}

std::string fmt_rate(double r) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", r);
  return b;
}

std::string fmt_seconds(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1fs", s);
  return b;
}

// training.init: the model file of a directory (its first member) or the file itself, loaded
// before any feature is computed; a problem with it is a ConfigError at the key.
LoadedModel<float> load_init_model(const PipelineConfig& c, int member) {
  std::string file = c.init;
  // A directory, or a directory's model.bpk (which stands for the directory, as elsewhere).
  std::error_code ec;
  const fs::path given(c.init);
  const fs::path dir =
      fs::is_directory(given, ec) ? given
      : given.filename() == kModelFile && fs::exists(given.parent_path() / kPipelineFile, ec)
          ? given.parent_path()
          : fs::path();
  if (!dir.empty()) {
    const fs::path m = dir / ("model." + std::to_string(member + 1) + ".bpk");
    file = member > 0 && fs::exists(m, ec) ? m.string() : (dir / kModelFile).string();
  }
  try {
    return load_model<float>(file);
  } catch (const FileError& e) {
    throw ConfigError(c.init_where + ": training.init: " + e.what());
  }
}

// training.init: copies every parameter and buffer of the trained model `m` into `net`, which
// must have the same layers with the same shapes, and whose classes (or alphabet) `m` must share
// when it records them. Throws ConfigError (at `where`) naming the first difference.
void init_weights(Network<float>& net, LoadedModel<float>& m, const std::string& file,
                  const std::string& where, const std::vector<std::string>& classes,
                  const std::string& alphabet) {
  const std::string head = where + ": training.init " + file + ": ";
  std::string m_alphabet;
  for (const auto& kv : m.meta)
    if (kv.first == "alphabet") m_alphabet = kv.second;
  const std::vector<std::string> m_classes = class_names(m.meta);
  if (!alphabet.empty() && !m_alphabet.empty() && m_alphabet != alphabet)
    throw ConfigError(head + "its alphabet differs from data.alphabet");
  if (alphabet.empty() && !m_classes.empty() && m_classes != classes)
    throw ConfigError(head + "its classes differ from this pipeline's");
  if (m.net.size() != net.size())
    throw ConfigError(head + "it has " + std::to_string(m.net.size()) + " layers, the network " +
                      std::to_string(net.size()));
  for (size_t i = 0; i < net.size(); ++i) {
    Layer<float>& to = net.layer(i);
    Layer<float>& from = m.net.layer(i);
    const std::string layer = "layer " + std::to_string(i + 1) + " (" + to.kind() + ")";
    if (from.kind() != to.kind())
      throw ConfigError(head + layer + " is a " + from.kind() + " there");
    std::vector<Tensor<float>*> a, b;
    for (auto& p : to.params()) a.push_back(p.value);
    for (auto& p : from.params()) b.push_back(p.value);
    for (auto& kv : to.buffers()) a.push_back(kv.second);
    for (auto& kv : from.buffers()) b.push_back(kv.second);
    if (a.size() != b.size())
      throw ConfigError(head + layer + " has " + std::to_string(b.size()) +
                        " tensors there, here " + std::to_string(a.size()));
    for (size_t k = 0; k < a.size(); ++k)
      if (a[k]->shape() != b[k]->shape())
        throw ConfigError(head + layer + ": a tensor of shape " + to_string(b[k]->shape()) +
                          " there, " + to_string(a[k]->shape()) + " here");
  }
  for (size_t i = 0; i < net.size(); ++i) {
    auto to = net.layer(i).params();
    auto from = m.net.layer(i).params();
    for (size_t k = 0; k < to.size(); ++k)
      std::copy(from[k].value->data(), from[k].value->data() + from[k].value->size(),
                to[k].value->data());
    auto tb = net.layer(i).buffers();
    auto fb = m.net.layer(i).buffers();
    for (size_t k = 0; k < tb.size(); ++k)
      std::copy(fb[k].second->data(), fb[k].second->data() + fb[k].second->size(),
                tb[k].second->data());
  }
}

std::string init_reference(const PipelineConfig& c, const std::string& out) {
  std::error_code ec;
  const fs::path rel = fs::relative(fs::absolute(c.init), fs::absolute(out), ec);
  return ec ? fs::path(c.init).filename().string() : rel.generic_string();
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

std::string prepare_run(const TrainRequest& r, const PipelineConfig& c) {
  {  // Layer kinds and attributes are checked before any feature is computed.
    Network<float> probe(c.input_shape.empty() ? Shape{1} : Shape(c.input_shape), 0);
    if (c.input_shape.empty())
      for (const LayerConfig& l : c.layers) make_configured_layer(l);
    else
      build_network(c, probe);
  }
  if (r.threads > 0)
    set_num_threads(r.threads);
  else if (c.threads > 0)
    set_num_threads(c.threads);
  const std::string out = r.out_dir.empty() ? c.output_dir : r.out_dir;
  // Nothing the user has is trained over unasked: a finished model or an interrupted run.
  if (!r.resume && !r.overwrite) {
    if (fs::exists(fs::path(out) / kCheckpointFile))
      throw ConfigError(out + ": an interrupted run is there (" + kCheckpointFile +
                        "): --resume continues it, --force starts over, or train into another "
                        "directory (--out)");
    if (fs::exists(fs::path(out) / kModelFile))
      throw ConfigError(out + ": a trained model is there (" + kModelFile +
                        "): --force trains over it, or train into another directory (--out)");
  }
  // --resume needs a checkpoint: said before any feature is computed. A finished run (its model,
  // no checkpoint) is never trained over by --resume.
  if (r.resume && !fs::exists(fs::path(out) / kCheckpointFile)) {
    if (fs::exists(fs::path(out) / kModelFile))
      throw FileError(out + ": training there has finished (" + kModelFile + ", no " +
                      kCheckpointFile +
                      "): nothing to resume; --force trains again over the finished model");
    throw FileError(out + ": no " + kCheckpointFile +
                    " to resume from (a run writes one after each epoch); train without --resume "
                    "to start");
  }
  return out;
}

void set_train_options(TrainOptions& o, const PipelineConfig& c, const TrainRequest& r) {
  o.epochs = c.epochs;
  o.batch = c.batch;
  o.seed = c.seed;
  o.patience = c.patience;
  o.schedule = c.schedule;
  o.schedule.total_epochs = c.epochs;
  o.clip_norm = c.clip_norm;
  o.progress = r.log;
  o.progress_is_terminal = r.terminal;
}

void add_pipeline_dir(Metadata& meta, const PipelineConfig& c, const std::string& out) {
  std::error_code ec;
  const fs::path rel = fs::relative(fs::absolute(c.dir), fs::absolute(out), ec);
  if (!ec && !rel.empty()) meta.emplace_back("pipeline_dir", rel.generic_string());
}

void load_training_plugins(PluginRegistry& registry, const PipelineConfig& c,
                           const TrainRequest& r) {
  const std::vector<std::string> needed = stage_plugins(c);
  load_plugins(registry, c.plugin_path, r.plugin_dirs, &needed);
}

}  // namespace train_detail
using namespace train_detail;
namespace fs = std::filesystem;

TrainOutcome train_pipeline(const TrainRequest& r) {
  std::ostream* log = r.log;
  PipelineConfig c = load_pipeline_config(r.config, r.overrides);
  if (r.seed >= 0) {
    // The copy in the model directory says which seed made it (and the checkpoint's hash changes,
    // so that --resume never mixes two seeds).
    c.seed = uint64_t(r.seed);
    c.text += "\n# trained with 'bpkit train --seed " + std::to_string(r.seed) +
              "', which overrides training.seed above\n";
  }
  if (c.verifier()) return train_verifier(r, std::move(c));
  if (c.train_manifest.empty())
    throw ConfigError(c.file +
                      ": data.train is missing: training needs a manifest of "
                      "'PATH<TAB>LABEL' lines");
  PluginRegistry registry;
  load_training_plugins(registry, c, r);
  Pipeline pipeline(c, registry);
  const std::string out = prepare_run(r, c);
  // training.init is read now, before the features (unless a checkpoint will replace it).
  std::unique_ptr<LoadedModel<float>> init_model;
  if (!c.init.empty() && !(r.resume && fs::exists(fs::path(out) / kCheckpointFile)))
    init_model = std::make_unique<LoadedModel<float>>(load_init_model(c));
  const bool text_inputs = pipeline.input_kind() == Kind::kText;
  const std::vector<ManifestEntry> train_entries = read_manifest(c.train_manifest, text_inputs);
  const std::vector<ManifestEntry> test_entries = c.test_manifest.empty()
                                                      ? std::vector<ManifestEntry>{}
                                                      : read_manifest(c.test_manifest, text_inputs);
  const bool transcripts = c.labels == "transcript";
  const bool frames = c.labels == "frames";
  if (transcripts) {
    // data.alphabet: auto is every byte of the training transcripts. Either way every transcript
    // is checked now, before a feature is computed.
    if (c.alphabet_auto) {
      std::set<unsigned char> used;
      for (const ManifestEntry& e : train_entries)
        for (char ch : e.label) used.insert(static_cast<unsigned char>(ch));
      c.alphabet.assign(used.begin(), used.end());
      if (c.alphabet.empty())
        throw FileError(c.train_manifest +
                        ": every transcript is empty, so data.alphabet: auto finds no symbol");
      if (log)
        *log << "alphabet (auto, " << c.alphabet.size() << " symbols): " << c.alphabet << "\n";
    }
    for (const auto* entries : {&train_entries, &test_entries})
      for (const ManifestEntry& e : *entries)
        for (char ch : e.label)
          if (c.alphabet.find(ch) == std::string::npos)
            throw FileError(e.where + ": the transcript '" + e.label + "' holds '" +
                            std::string(1, ch) + "', which is not in " +
                            (c.alphabet_auto ? "the alphabet of the training transcripts "
                                               "(data.alphabet: auto)"
                                             : "data.alphabet (" + c.alphabet_where + ")"));
  }
  std::vector<std::string> classes = c.classes;
  if (transcripts) {
    classes.clear();
    for (char ch : c.alphabet) classes.emplace_back(1, ch);
  } else if (classes.empty()) {
    std::set<std::string> seen;
    for (const ManifestEntry& e : train_entries)
      if (frames) {
        for (std::string& n : split_frame_labels(e.label)) seen.insert(std::move(n));
      } else {
        seen.insert(e.label);
      }
    classes.assign(seen.begin(), seen.end());
  }
  if (frames) {  // every frame label is checked now, before a feature is computed
    const std::set<std::string> known(classes.begin(), classes.end());
    for (const auto* entries : {&train_entries, &test_entries})
      for (const ManifestEntry& e : *entries)
        for (const std::string& n : split_frame_labels(e.label))
          if (!known.count(n))
            throw FileError(e.where + ": frame label '" + n + "' is not one of the classes (" +
                            (c.classes.empty() ? "those the training manifest uses"
                                               : "data.classes, " + c.classes_where) +
                            ")");
  }
  if (classes.size() < 2 && !transcripts)
    throw FileError(c.train_manifest + ": needs at least two classes, found " +
                    std::to_string(classes.size()));

  FeatureCache cache(c.cache_dir.empty() ? FeatureCache::default_dir() : c.cache_dir);
  ExtractOptions eo;
  eo.cache = (c.cache && r.use_cache) ? &cache : nullptr;
  eo.skip_errors = c.on_error == "skip";
  eo.log = log;
  auto extract = [&](const std::vector<ManifestEntry>& entries, const char* what) {
    FeatureSet fs = extract_features(pipeline, entries, eo);
    if (log)
      *log << "features: " << what << " " << fs.features.size() << " samples (" << fs.cache_hits
           << " from the cache, " << fs.computed << " computed, " << fs.skipped.size()
           << " skipped) in " << fmt_seconds(fs.seconds) << "\n"
           << std::flush;
    return fs;
  };
  // Fit stages learn their statistics from the training files first (their features, and the
  // cache keys of everything after them, depend on what they learn).
  std::vector<std::pair<size_t, std::string>> fitted;
  for (size_t k : pipeline.fit_stages()) {
    std::vector<std::string> files;
    for (const ManifestEntry& e : train_entries) files.push_back(e.path);
    const auto f0 = std::chrono::steady_clock::now();
    fitted.emplace_back(k, pipeline.fit(k, files, eo.skip_errors ? log : nullptr));
    if (log)
      *log << "fit: stage " << k + 1 << " '" << pipeline.stages()[k].plugin << "' learned from "
           << files.size() << " training samples in "
           << fmt_seconds(
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - f0).count())
           << "\n"
           << std::flush;
  }
  // Fixed-shape features with class labels train as a Dataset; sequences (frames varying between
  // samples) or transcripts as a SequenceDataset, batches padded with valid lengths.
  const bool sequences = transcripts || frames || pipeline.output_kind() == Kind::kSequence;
  const SequenceLabels label_kind = transcripts ? SequenceLabels::kTranscript
                                    : frames    ? SequenceLabels::kFrames
                                                : SequenceLabels::kClass;
  // Image features {C, H, W} with transcripts are text lines of any width (a `columns` layer
  // turns them into sequences); other sequences vary in their first dimension.
  auto varying_of = [&](const Shape& first) {
    return pipeline.output_kind() != Kind::kSequence && transcripts && first.size() == 3 ? 2 : 0;
  };
  // The network's input for a sample's feature shape, and the network built on it and checked.
  auto input_of = [&](const Shape& first) {
    Shape in = first;
    const int varying = varying_of(first);
    if (sequences && (pipeline.output_kind() == Kind::kSequence || varying))
      in[size_t(varying)] = kDynamic;
    return in;
  };
  const int64_t outputs = int64_t(classes.size()) + (transcripts ? 1 : 0);
  auto build_checked = [&](const Shape& input, Network<float>& net) {
    if (c.augment.enabled() && (sequences || input.size() != 3))
      throw ConfigError(
          c.augment_where + ": training.augment moves images, but the stages produce " +
          (sequences ? std::string("sequences") : "features of shape " + to_string(input)) +
          "; it needs image-shaped features {channels, height, width} (end the "
          "stages with image.features)");
    if (!c.input_shape.empty() && Shape(c.input_shape) != input)
      throw ConfigError(c.network_where + ": network.input is " + to_string(Shape(c.input_shape)) +
                        " but the stages produce features of shape " + to_string(input));
    build_network(c, net);
    const Shape& got = net.output_shape();
    if (transcripts || frames ? (got.size() != 2 || got[1] != outputs) : got != Shape{outputs})
      throw ConfigError(
          c.layers.back().where + ": the network ends with shape " + to_string(got) + ", but " +
          (frames ? "a class per frame of " + std::to_string(classes.size()) +
                        " classes needs a sequence of " + std::to_string(outputs) +
                        " scores per frame (end with frame_dense: {units: " +
                        std::to_string(outputs) + "})"
           : transcripts
               ? "CTC over an alphabet of " + std::to_string(classes.size()) +
                     " symbols needs a sequence of " + std::to_string(outputs) +
                     " scores per frame (symbols + the blank; end with frame_dense: {units: " +
                     std::to_string(outputs) + "})"
               : "there are " + std::to_string(classes.size()) + " classes (the last layer needs " +
                     std::to_string(outputs) + " outputs)"));
  };
  // The network is checked on the first training sample's features before the whole pass: a
  // layer that does not fit its input (conv2d on flat features, an LSTM on an image without a
  // columns layer) or a last layer of the wrong width is reported in a moment, not after every
  // feature is computed. A first sample that fails leaves the checks to the pass.
  {
    Value v;
    bool probed = false;
    try {
      v = pipeline.run(train_entries.at(0).path);
      probed = v.kind == Kind::kFeatures || v.kind == Kind::kSequence;
    } catch (const StageError&) {
    }
    if (probed) {
      Network<float> probe(input_of(v.tensor.shape()), c.seed);
      build_checked(input_of(v.tensor.shape()), probe);
    }
  }
  const FeatureSet train_set = extract(train_entries, "train");
  if (train_set.features.empty()) throw FileError(c.train_manifest + ": no sample could be used");
  Dataset train, test;
  SequenceDataset strain, stest;
  Shape input;
  if (sequences) {
    const int varying = varying_of(train_set.features[0].shape());
    strain = make_sequence_dataset(train_set, classes, label_kind, varying);
    if (!test_entries.empty())
      stest = make_sequence_dataset(extract(test_entries, "test"), classes, label_kind, varying);
    input = input_of(strain.x[0].shape());
  } else {
    train = make_dataset(train_set, classes);
    if (!test_entries.empty()) test = make_dataset(extract(test_entries, "test"), classes);
    input.assign(train.x.shape().begin() + 1, train.x.shape().end());
  }
  const int64_t n_train = sequences ? strain.size() : train.size();
  const int64_t n_test = sequences ? stest.size() : test.size();

  Network<float> net(input, c.seed);
  build_checked(input, net);
  if (init_model) {
    init_weights(net, *init_model, c.init, c.init_where, classes, transcripts ? c.alphabet : "");
    init_model.reset();
    if (log) *log << "weights from " << c.init << " (training.init)\n";
  }
  std::unique_ptr<Loss<float>> loss = make_loss<float>(c.loss);
  std::unique_ptr<Optimizer<float>> opt = make_optimizer(c, net);

  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw FileError(out + ": cannot create the output directory: " + ec.message());
  const std::string ckpt = (fs::path(out) / kCheckpointFile).string();
  const RunDigests digests = run_digests(c, pipeline);

  TrainOutcome outcome;
  outcome.model_dir = out;
  TrainProgress resumed;
  TrainOptions o;
  if (r.resume) {
    if (fs::exists(ckpt)) {
      resumed = load_checkpoint(ckpt, net, *opt, digests);
      outcome.resumed_from = resumed.epochs_done;
      o.resume = &resumed;
      if (log) *log << "resuming from " << ckpt << " after epoch " << resumed.epochs_done << "\n";
    } else {
      throw FileError(out + ": the checkpoint is gone since training began");
    }
  }
  set_train_options(o, c, r);
  o.validation_split = c.validation_split;
  o.augment = c.augment;
  if (c.checkpoints)
    o.on_epoch_end = [&](const TrainProgress& p) { save_checkpoint(ckpt, net, *opt, p, digests); };
  // Random stages (augmentation): every epoch, each training sample's features are made again
  // from its file with a seed of its own, never cached. Validation and test samples keep the
  // features made with seed 0 (no augmentation).
  const int varying_dim = strain.x.empty() || strain.x[0].rank() != 3 ? 0 : 2;
  if (pipeline.has_random_stages()) {
    if (!sequences)
      throw ConfigError(c.stages_where +
                        ": augmentation stages (random) need sequence or transcript data; "
                        "fixed-shape image features use training.augment");
    o.before_epoch = [&](int epoch, const std::vector<int64_t>& ids) {
      std::atomic<bool> failed{false};
      std::mutex m;
      std::string error;
      parallel_for(int64_t(ids.size()), 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e && !failed.load(std::memory_order_relaxed); ++i) {
          const size_t k = size_t(ids[size_t(i)]);
          const ManifestEntry& entry = train_set.entries[k];
          uint64_t z = c.seed * 0x9e3779b97f4a7c15ULL ^ (uint64_t(epoch + 1) << 40) ^ uint64_t(k);
          z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ULL;
          z ^= z >> 29;
          try {
            Value v = pipeline.run(entry.path, z | 1);
            const Tensor<float>& old = strain.x[k];
            bool same = v.tensor.rank() == old.rank() && v.tensor.size() > 0;
            for (int d = 0; same && d < old.rank(); ++d)
              same = d == varying_dim ? v.tensor.dim(d) >= 1 : v.tensor.dim(d) == old.dim(d);
            if (!same)
              throw StageError(entry.path + ": augmented features of shape " +
                                   to_string(v.tensor.shape()) + ", but without augmentation " +
                                   to_string(old.shape()),
                               entry.path);
            // A transcript needs a frame per label and a blank between repeats: a draw that
            // leaves fewer frames (a fast speed) keeps the unaugmented features this epoch.
            if (transcripts && varying_dim == 0) {
              const std::vector<int32_t>& labels = strain.sequences[k];
              int64_t need = int64_t(labels.size());
              for (size_t j = 1; j < labels.size(); ++j) need += labels[j] == labels[j - 1];
              if (v.tensor.dim(0) < need) {
                strain.x[k] = train_set.features[k];
                continue;
              }
            }
            strain.x[k] = std::move(v.tensor);
          } catch (const std::exception& ex) {
            if (eo.skip_errors) {  // the sample keeps its unaugmented features this epoch
              strain.x[k] = train_set.features[k];
              continue;
            }
            std::lock_guard<std::mutex> lock(m);
            if (!failed.exchange(true))
              error = std::string(ex.what()) + " (listed at " + entry.where + ")";
          }
        }
      });
      if (failed) throw StageError(error, "");
    };
  }

  const auto t0 = std::chrono::steady_clock::now();
  TrainResult result =
      sequences ? fit(net, *loss, *opt, strain, o) : fit(net, *loss, *opt, train, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  outcome.epochs_run = int(result.history.size());

  ConfusionMatrix cm(int(classes.size()));
  EvalResult te{std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  if (n_test > 0) {
    ConfusionMatrix* cmp = transcripts || frames ? nullptr : &cm;
    te = sequences ? evaluate(net, *loss, stest, 64, cmp) : evaluate(net, *loss, test, 256, cmp);
    outcome.test_accuracy = te.accuracy;
    outcome.test_error_rate = te.error_rate;
    if (log) {
      char line[160];
      std::snprintf(line, sizeof line, "test: loss %.4f accuracy %.4f%s (%lld samples)\n", te.loss,
                    te.accuracy,
                    transcripts ? (" character_error_rate " + fmt_rate(te.error_rate)).c_str()
                    : frames    ? (" frame_error_rate " + fmt_rate(te.error_rate)).c_str()
                                : "",
                    static_cast<long long>(n_test));
      *log << line;
    }
  }

  Metadata meta{{"name", c.name},
                {"classes", std::to_string(classes.size())},
                {"trained", now_utc()},
                {"epochs", std::to_string(result.history.size())},
                {"train_samples", std::to_string(n_train)},
                {"test_samples", std::to_string(n_test)},
                {"labels", c.labels}};
  add_pipeline_dir(meta, c, out);
  if (transcripts)
    meta.emplace_back("alphabet", c.alphabet);
  else
    for (size_t i = 0; i < classes.size(); ++i)
      meta.emplace_back("class." + std::to_string(i), classes[i]);
  if (!c.init.empty()) meta.emplace_back("init", init_reference(c, out));
  if (n_test > 0) meta.emplace_back("test_accuracy", num(te.accuracy));
  if (n_test > 0 && transcripts) meta.emplace_back("test_character_error_rate", num(te.error_rate));
  if (n_test > 0 && frames) meta.emplace_back("test_frame_error_rate", num(te.error_rate));
  // An ensemble's members left in the directory would join the new network: they go first.
  {
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(out, ec))
      if (member_number(e.path().filename().string())) stale.push_back(e.path());
    for (const fs::path& f : stale) {
      if (!fs::remove(f, ec) && ec)
        throw FileError(f.string() + ": cannot remove an old ensemble member: " + ec.message());
      if (r.log) *r.log << "removed the old ensemble member " << f.string() << "\n";
    }
  }
  save_model(net, (fs::path(out) / kModelFile).string(), meta);
  write_file_atomically((fs::path(out) / kPipelineFile).string(), c.text);
  if (!fitted.empty()) {
    write_fit_states((fs::path(out) / kFittedFile).string(), pipeline, fitted);
  } else {
    fs::remove(fs::path(out) / kFittedFile, ec);  // a stale one would be refused later
  }

  ReportInput rep;
  rep.title = c.name;
  rep.result = result;
  rep.confusion = n_test > 0 && !transcripts && !frames ? &cm : nullptr;
  rep.class_names = classes;
  rep.test_loss = te.loss;
  rep.test_accuracy = te.accuracy;
  rep.test_cer = te.error_rate;
  if (frames) {
    rep.error_name = "frame error rate";
    rep.error_abbrev = "FER";
  }
  rep.facts = {{"pipeline", fs::path(c.file).filename().string()},
               {"train_samples", std::to_string(n_train)},
               {"test_samples", std::to_string(n_test)},
               {"parameters", std::to_string(net.param_count())},
               {"training_seconds", num(secs)},
               {"resumed_after_epoch", std::to_string(outcome.resumed_from)},
               {"skipped_samples", std::to_string(train_set.skipped.size())}};
  if (transcripts) {
    rep.class_names.clear();
    rep.facts.emplace_back("alphabet", c.alphabet);
    if (n_test > 0) rep.facts.emplace_back("test_character_error_rate", num(te.error_rate));
  }
  write_training_report(out, rep);
  fs::remove(ckpt, ec);
  return outcome;
}

}  // namespace bpkit
