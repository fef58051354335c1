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
#include <ostream>
#include <set>
#include <sstream>

#include "bpkit/ctc.h"
#include "bpkit/error.h"
#include "bpkit/loss.h"
#include "bpkit/optimizer.h"
#include "bpkit/report.h"
#include "bpkit/suggest.h"
#include "bpkit/threading.h"
#include "bpkit/trainer.h"

namespace bpkit {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string>& layer_kinds() {
  static const std::vector<std::string> kinds{
      "dense",   "conv2d",  "maxpool2d", "avgpool2d", "pool2d", "dropout",    "batchnorm",
      "flatten", "reshape", "sigmoid",   "tanh",      "relu",   "leaky_relu", "softmax"};
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
    try {
      net.add(std::move(layer), l.name);
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

std::string config_hash(const PipelineConfig& c) {
  return FeatureCache::key(c.text, "pipeline").substr(0, 16);
}

// The checkpoint: the network, the optimizer's state, the best weights so far and the trainer's
// progress, in one model file (written atomically).
void save_checkpoint(const std::string& path, Network<float>& net, Optimizer<float>& opt,
                     const TrainProgress& p, const std::string& hash) {
  Metadata meta{{"checkpoint.config", hash},
                {"checkpoint.epochs_done", std::to_string(p.epochs_done)},
                {"checkpoint.best_val", num(p.best_val)},
                {"checkpoint.since_best", std::to_string(p.since_best)},
                {"checkpoint.best_epoch", std::to_string(p.result.best_epoch)},
                {"checkpoint.optimizer_steps", std::to_string(opt.steps())}};
  for (const EpochStats& s : p.result.history)
    meta.emplace_back("checkpoint.epoch." + std::to_string(s.epoch),
                      num(s.lr) + "," + num(s.train_loss) + "," + num(s.train_acc) + "," +
                          num(s.val_loss) + "," + num(s.val_acc) + "," + num(s.seconds) + "," +
                          num(s.samples_per_s));
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
                              const std::string& hash) {
  LoadedModel<float> ck = load_model<float>(path);
  if (meta_get(ck.meta, "checkpoint.config", path) != hash)
    throw FileError(path +
                    ": the pipeline file changed since this checkpoint was written; "
                    "resuming would mix two configurations (train without --resume to "
                    "start afresh)");
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
    double* fields[] = {&s.lr,      &s.train_loss, &s.train_acc,    &s.val_loss,
                        &s.val_acc, &s.seconds,    &s.samples_per_s};
    std::string tok;
    for (double* d : fields) {
      std::getline(f, tok, ',');
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

// The member number N of an ensemble's file name model.N.bpk (N >= 2, decimal, no leading zero,
// at most 4 digits); 0 for any other name.
size_t member_number(const std::string& name) {
  if (name.size() <= 10 || name.compare(0, 6, "model.") != 0 ||
      name.compare(name.size() - 4, 4, ".bpk") != 0)
    return 0;
  const std::string n = name.substr(6, name.size() - 10);
  if (n.size() > 4 || n[0] == '0' ||
      !std::all_of(n.begin(), n.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return 0;
  const size_t v = size_t(std::stoul(n));
  return v >= 2 ? v : 0;
}

// The class names a class model stores ("class.0", "class.1", ... metadata).
std::vector<std::string> class_names(const Metadata& meta) {
  std::vector<std::string> names;
  for (size_t i = 0;; ++i) {
    const auto it = std::find_if(meta.begin(), meta.end(), [&](const auto& kv) {
      return kv.first == "class." + std::to_string(i);
    });
    if (it == meta.end()) return names;
    names.push_back(it->second);
  }
}

bool is_transcript_model(const Metadata& meta) {
  return std::any_of(meta.begin(), meta.end(), [](const auto& kv) {
    return kv.first == "labels" && kv.second == "transcript";
  });
}

// training.init: the model file of a directory (its first member) or the file itself, loaded
// before any feature is computed; a problem with it is a ConfigError at the key.
LoadedModel<float> load_init_model(const PipelineConfig& c) {
  const std::string file =
      fs::is_directory(c.init) ? (fs::path(c.init) / kModelFile).string() : c.init;
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

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

}  // namespace

namespace {

// DIR/fitted.yaml: a list of {stage, plugin, state}, one per fit stage, in stage order.
void write_fit_states(const std::string& path, const Pipeline& p,
                      const std::vector<std::pair<size_t, std::string>>& states) {
  YAML::Emitter e;
  e << YAML::Comment(
      "statistics the pipeline's fit stages learned from the training set (bpkit train)");
  e << YAML::BeginSeq;
  for (const auto& [stage, state] : states)
    e << YAML::BeginMap << YAML::Key << "stage" << YAML::Value << stage + 1 << YAML::Key << "plugin"
      << YAML::Value << p.stages()[stage].plugin << YAML::Key << "state" << YAML::Value
      << YAML::Literal << state << YAML::EndMap;
  e << YAML::EndSeq;
  write_file_atomically(path, std::string(e.c_str()) + "\n");
}

// Gives the fit stages of `p` the states stored in DIR/fitted.yaml.
void read_fit_states(const std::string& dir, Pipeline& p) {
  const std::vector<size_t> fits = p.fit_stages();
  const std::string path = (fs::path(dir) / kFittedFile).string();
  if (fits.empty()) return;
  if (!fs::exists(path))
    throw FileError(path + ": missing; stage " + std::to_string(fits[0] + 1) + " ('" +
                    p.stages()[fits[0]].plugin +
                    "') learns from the training set and needs what bpkit train stored there");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw FileError(path + ": not a fit-state file: " + e.what());
  }
  if (!root.IsSequence() || root.size() != fits.size())
    throw FileError(path + ": expected " + std::to_string(fits.size()) +
                    " fit states (one per fit stage of the pipeline)");
  for (size_t i = 0; i < fits.size(); ++i) try {
      const YAML::Node n = root[i];
      const std::string want = p.stages()[fits[i]].plugin;
      if (!n.IsMap() || !n["stage"] || !n["plugin"] || !n["state"] ||
          n["stage"].as<std::string>() != std::to_string(fits[i] + 1) ||
          n["plugin"].as<std::string>() != want)
        throw FileError(path + ": entry " + std::to_string(i + 1) + " is not the state of stage " +
                        std::to_string(fits[i] + 1) + " ('" + want + "')");
      p.load_fit_state(fits[i], n["state"].as<std::string>());
    } catch (const YAML::Exception& e) {
      throw FileError(path + ": entry " + std::to_string(i + 1) + ": " + e.what());
    }
}

}  // namespace

TrainOutcome train_pipeline(const TrainRequest& r) {
  std::ostream* log = r.log;
  PipelineConfig c = load_pipeline_config(r.config);
  if (r.seed >= 0) {
    // The copy in the model directory says which seed made it (and the checkpoint's hash changes,
    // so that --resume never mixes two seeds).
    c.seed = uint64_t(r.seed);
    c.text += "\n# trained with 'bpkit train --seed " + std::to_string(r.seed) +
              "', which overrides training.seed above\n";
  }
  if (c.train_manifest.empty())
    throw ConfigError(c.file +
                      ": data.train is missing: training needs a manifest of "
                      "'PATH<TAB>LABEL' lines");
  PluginRegistry registry;
  load_plugins(registry, c.plugin_path, r.plugin_dirs);
  Pipeline pipeline(c, registry);
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
  // training.init is read now, before the features (unless a checkpoint will replace it).
  std::unique_ptr<LoadedModel<float>> init_model;
  if (!c.init.empty() && !(r.resume && fs::exists(fs::path(out) / kCheckpointFile)))
    init_model = std::make_unique<LoadedModel<float>>(load_init_model(c));
  const std::vector<ManifestEntry> train_entries = read_manifest(c.train_manifest);
  const std::vector<ManifestEntry> test_entries =
      c.test_manifest.empty() ? std::vector<ManifestEntry>{} : read_manifest(c.test_manifest);
  const bool transcripts = c.labels == "transcript";
  std::vector<std::string> classes = c.classes;
  if (transcripts) {
    classes.clear();
    for (char ch : c.alphabet) classes.emplace_back(1, ch);
  } else if (classes.empty()) {
    std::set<std::string> seen;
    for (const ManifestEntry& e : train_entries) seen.insert(e.label);
    classes.assign(seen.begin(), seen.end());
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
    fitted.emplace_back(k, pipeline.fit(k, files));
    if (log)
      *log << "fit: stage " << k + 1 << " '" << pipeline.stages()[k].plugin << "' learned from "
           << files.size() << " training samples in "
           << fmt_seconds(
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - f0).count())
           << "\n"
           << std::flush;
  }
  const FeatureSet train_set = extract(train_entries, "train");
  if (train_set.features.empty()) throw FileError(c.train_manifest + ": no sample could be used");
  // Fixed-shape features with class labels train as a Dataset; sequences (frames varying between
  // samples) or transcripts as a SequenceDataset, batches padded with valid lengths.
  const bool sequences = transcripts || pipeline.output_kind() == Kind::kSequence;
  Dataset train, test;
  SequenceDataset strain, stest;
  Shape input;
  if (sequences) {
    // Image features {C, H, W} with transcripts are text lines of any width (a `columns` layer
    // turns them into sequences); other sequences vary in their first dimension.
    const int varying = pipeline.output_kind() != Kind::kSequence && transcripts &&
                                train_set.features[0].rank() == 3
                            ? 2
                            : 0;
    strain = make_sequence_dataset(train_set, classes, transcripts, varying);
    if (!test_entries.empty())
      stest = make_sequence_dataset(extract(test_entries, "test"), classes, transcripts, varying);
    input = strain.x[0].shape();
    if (pipeline.output_kind() == Kind::kSequence || varying) input[size_t(varying)] = kDynamic;
  } else {
    train = make_dataset(train_set, classes);
    if (!test_entries.empty()) test = make_dataset(extract(test_entries, "test"), classes);
    input.assign(train.x.shape().begin() + 1, train.x.shape().end());
  }
  const int64_t n_train = sequences ? strain.size() : train.size();
  const int64_t n_test = sequences ? stest.size() : test.size();

  if (c.augment.enabled() && (sequences || input.size() != 3))
    throw ConfigError(
        c.augment_where + ": training.augment moves images, but the stages produce " +
        (sequences ? std::string("sequences") : "features of shape " + to_string(input)) +
        "; it needs image-shaped features {channels, height, width} (end the "
        "stages with image.features)");
  if (!c.input_shape.empty() && Shape(c.input_shape) != input)
    throw ConfigError(c.network_where + ": network.input is " + to_string(Shape(c.input_shape)) +
                      " but the stages produce features of shape " + to_string(input));
  Network<float> net(input, c.seed);
  build_network(c, net);
  const int64_t outputs = int64_t(classes.size()) + (transcripts ? 1 : 0);
  const Shape& got = net.output_shape();
  if (transcripts ? (got.size() != 2 || got[1] != outputs) : got != Shape{outputs})
    throw ConfigError(
        c.layers.back().where + ": the network ends with shape " + to_string(got) + ", but " +
        (transcripts
             ? "CTC over an alphabet of " + std::to_string(classes.size()) +
                   " symbols needs a sequence of " + std::to_string(outputs) +
                   " scores per frame (symbols + the blank; end with frame_dense: {units: " +
                   std::to_string(outputs) + "})"
             : "there are " + std::to_string(classes.size()) + " classes (the last layer needs " +
                   std::to_string(outputs) + " outputs)"));
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
  const std::string hash = config_hash(c);

  TrainOutcome outcome;
  outcome.model_dir = out;
  TrainProgress resumed;
  TrainOptions o;
  if (r.resume) {
    if (fs::exists(ckpt)) {
      resumed = load_checkpoint(ckpt, net, *opt, hash);
      outcome.resumed_from = resumed.epochs_done;
      o.resume = &resumed;
      if (log) *log << "resuming from " << ckpt << " after epoch " << resumed.epochs_done << "\n";
    } else if (log) {
      *log << "no checkpoint in " << out << "; starting from the first epoch\n";
    }
  }
  o.epochs = c.epochs;
  o.batch = c.batch;
  o.seed = c.seed;
  o.validation_split = c.validation_split;
  o.patience = c.patience;
  o.schedule = c.schedule;
  o.schedule.total_epochs = c.epochs;
  o.clip_norm = c.clip_norm;
  o.augment = c.augment;
  o.progress = log;
  o.progress_is_terminal = r.terminal;
  if (c.checkpoints)
    o.on_epoch_end = [&](const TrainProgress& p) { save_checkpoint(ckpt, net, *opt, p, hash); };
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
            strain.x[k] = std::move(v.tensor);
          } catch (const std::exception& ex) {
            if (eo.skip_errors) continue;  // the sample keeps its unaugmented features
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
    ConfusionMatrix* cmp = transcripts ? nullptr : &cm;
    te = sequences ? evaluate(net, *loss, stest, 64, cmp) : evaluate(net, *loss, test, 256, cmp);
    outcome.test_accuracy = te.accuracy;
    outcome.test_error_rate = te.error_rate;
    if (log) {
      char line[160];
      std::snprintf(line, sizeof line, "test: loss %.4f accuracy %.4f%s (%lld samples)\n", te.loss,
                    te.accuracy,
                    transcripts ? (" character_error_rate " + fmt_rate(te.error_rate)).c_str() : "",
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
  // Where the pipeline file was, seen from the model directory: relative paths in the copy (a
  // plugin_path next to the project's configs) keep resolving as they did when it was trained.
  {
    std::error_code rel_ec;
    const fs::path rel = fs::relative(fs::absolute(c.dir), fs::absolute(out), rel_ec);
    if (!rel_ec && !rel.empty()) meta.emplace_back("pipeline_dir", rel.generic_string());
  }
  if (transcripts)
    meta.emplace_back("alphabet", c.alphabet);
  else
    for (size_t i = 0; i < classes.size(); ++i)
      meta.emplace_back("class." + std::to_string(i), classes[i]);
  if (!c.init.empty()) {
    std::error_code rel_ec;
    const fs::path rel = fs::relative(fs::absolute(c.init), fs::absolute(out), rel_ec);
    meta.emplace_back("init", rel_ec ? fs::path(c.init).filename().string() : rel.generic_string());
  }
  if (n_test > 0) meta.emplace_back("test_accuracy", num(te.accuracy));
  if (n_test > 0 && transcripts) meta.emplace_back("test_character_error_rate", num(te.error_rate));
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
  rep.confusion = n_test > 0 && !transcripts ? &cm : nullptr;
  rep.class_names = classes;
  rep.test_loss = te.loss;
  rep.test_accuracy = te.accuracy;
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

namespace {

// The class of one row of logits, with the softmax probabilities of every class.
TrainedModel::Prediction classify(const float* row, const std::vector<std::string>& classes) {
  const int64_t k = int64_t(classes.size());
  const float mx = *std::max_element(row, row + k);
  TrainedModel::Prediction p;
  double z = 0;
  for (int64_t c = 0; c < k; ++c) z += std::exp(double(row[c] - mx));
  for (int64_t c = 0; c < k; ++c) p.probabilities.push_back(std::exp(double(row[c] - mx)) / z);
  p.label = int(std::max_element(row, row + k) - row);
  p.name = classes[size_t(p.label)];
  p.confidence = p.probabilities[size_t(p.label)];
  return p;
}

// Adds the softmax probabilities of `n` rows of `k` logits to `acc` (n x k).
void add_probabilities(const float* logits, size_t n, size_t k, std::vector<double>& acc) {
  for (size_t i = 0; i < n; ++i) {
    const float* row = logits + i * k;
    const float mx = *std::max_element(row, row + k);
    double z = 0;
    for (size_t c = 0; c < k; ++c) z += std::exp(double(row[c] - mx));
    for (size_t c = 0; c < k; ++c) acc[i * k + c] += std::exp(double(row[c] - mx)) / z;
  }
}

// The prediction from the sum of `members` probability rows (the first class of the highest mean
// wins a tie).
TrainedModel::Prediction from_probabilities(const double* sum, size_t members,
                                            const std::vector<std::string>& classes) {
  TrainedModel::Prediction p;
  for (size_t c = 0; c < classes.size(); ++c) p.probabilities.push_back(sum[c] / double(members));
  p.label = int(std::max_element(p.probabilities.begin(), p.probabilities.end()) -
                p.probabilities.begin());
  p.name = classes[size_t(p.label)];
  p.confidence = p.probabilities[size_t(p.label)];
  return p;
}

// Why member `other` (file `file`) cannot join an ensemble whose first network is `first` with
// `classes`; empty when it can.
std::string member_mismatch(const LoadedModel<float>& first, const LoadedModel<float>& other,
                            const std::vector<std::string>& classes) {
  if (is_transcript_model(other.meta))
    return "a transcript (CTC) model; an ensemble averages class probabilities";
  if (other.net.input_shape() != first.net.input_shape())
    return "its input " + to_string(other.net.input_shape()) + " differs from the first member's " +
           to_string(first.net.input_shape());
  if (other.net.output_shape() != first.net.output_shape())
    return "its output " + to_string(other.net.output_shape()) +
           " differs from the first member's " + to_string(first.net.output_shape());
  if (class_names(other.meta) != classes) return "its class names differ from the first member's";
  return "";
}

}  // namespace

LabelFsa dictionary_acceptor(const std::string& path, const std::vector<std::string>& alphabet,
                             size_t* words) {
  // Labels: k + 1 is alphabet[k] (0 is the blank).
  std::vector<int32_t> label_of(256, -1);
  for (size_t k = 0; k < alphabet.size(); ++k)
    if (alphabet[k].size() == 1)
      label_of[static_cast<unsigned char>(alphabet[k][0])] = int32_t(k + 1);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open the dictionary (" + std::strerror(errno) + ")");
  // Words are spelled in lower case, Capitalized or in UPPER case: a trie of the lower-case
  // spellings and one of the upper-case ones, and a start state whose lower-case arcs enter the
  // first and whose upper-case arcs enter, per first letter, a state that continues in either.
  LabelFsa acceptor;
  LabelFsa* const fsa = &acceptor;
  const int lower_root = fsa->add_state(), upper_root = fsa->add_state();
  // Adds the word spelled in one case to the trie at `root`; true when it was not there yet.
  auto insert = [&](int root, const std::string& word, bool upper) {
    int state = root;
    for (char ch : word) {
      const unsigned char u = static_cast<unsigned char>(ch);
      const int32_t label = label_of[size_t(upper ? std::toupper(u) : std::tolower(u))];
      if (label < 0) return false;  // the alphabet cannot spell it in this case
    }
    for (char ch : word) {
      const unsigned char u = static_cast<unsigned char>(ch);
      const int32_t label = label_of[size_t(upper ? std::toupper(u) : std::tolower(u))];
      int to = fsa->next(state, label);
      if (to < 0) {
        to = fsa->add_state();
        fsa->add_arc(state, label, to);
      }
      state = to;
    }
    const bool added = !fsa->is_final(state);
    fsa->set_final(state);
    return added;
  };
  size_t kept = 0, line_no = 0;
  std::string line;
  std::vector<std::string> as_written;
  // Bounds on what a word list may cost: lines, line length and trie states (each about 70
  // bytes; wamerican's 74 585 words take 341 317).
  constexpr size_t kMaxLines = 2000000, kMaxLine = 256, kMaxStates = 4000000;
  // getline on a file without newlines would read it whole: lines are read in bounded pieces.
  while (true) {
    line.clear();
    int c;
    while ((c = in.get()) != EOF && c != '\n') {
      if (line.size() >= kMaxLine)
        throw FileError(path + ":" + std::to_string(line_no + 1) + ": a line longer than " +
                        std::to_string(kMaxLine) + " bytes (expected one word per line)");
      line += char(c);
    }
    if (c == EOF && line.empty()) break;
    if (++line_no > kMaxLines)
      throw FileError(path + ": more than " + std::to_string(kMaxLines) +
                      " lines (expected a word list)");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 BOM
    if (fsa->num_states() > int(kMaxStates))
      throw FileError(path + ":" + std::to_string(line_no) + ": the word list is too large (over " +
                      std::to_string(kMaxStates) +
                      " trie states, about 700 000 words of English; expected a dictionary)");
    const bool letters = !line.empty() && std::all_of(line.begin(), line.end(), [](char ch) {
      const unsigned char u = static_cast<unsigned char>(ch);
      return u < 128 && std::isalpha(u);
    });
    if (!letters) continue;
    const bool in_lower = insert(lower_root, line, false);
    const bool in_upper = insert(upper_root, line, true);
    kept += in_lower || in_upper;
    // Spellings of their own ("MHz", "iPod") are added as written once the tries are joined.
    const bool capitalized = std::all_of(line.begin() + 1, line.end(), [](char ch) {
      return std::islower(static_cast<unsigned char>(ch));
    });
    const bool upper = std::all_of(line.begin(), line.end(), [](char ch) {
      return std::isupper(static_cast<unsigned char>(ch));
    });
    if (!capitalized && !upper) as_written.push_back(line);
  }
  if (in.bad()) throw FileError(path + ": cannot read the dictionary");
  if (kept == 0) throw FileError(path + ": no usable word (expected one word of letters per line)");
  for (const auto& [label, child] : fsa->arcs(lower_root)) fsa->add_arc(0, label, child);
  const std::vector<std::pair<int32_t, int>> upper_first = fsa->arcs(upper_root);
  for (const auto& [label, child] : upper_first) {
    // After an upper-case first letter: the rest in upper case, or in lower case (Capitalized).
    const int both = fsa->add_state(fsa->is_final(child));
    const std::vector<std::pair<int32_t, int>> up = fsa->arcs(child);
    for (const auto& [l, to] : up) fsa->add_arc(both, l, to);
    const unsigned char first = static_cast<unsigned char>(alphabet[size_t(label - 1)][0]);
    const int32_t lower_label = label_of[size_t(std::tolower(first))];
    const int lower = lower_label >= 0 ? fsa->next(lower_root, lower_label) : -1;
    if (lower >= 0) {
      const std::vector<std::pair<int32_t, int>> down = fsa->arcs(lower);
      for (const auto& [l, to] : down) fsa->add_arc(both, l, to);
      if (fsa->is_final(lower)) fsa->set_final(both);
    }
    fsa->add_arc(0, label, both);
  }
  for (const std::string& word : as_written) {
    int state = 0;
    bool spelled = true;
    for (size_t i = 0; spelled && i < word.size(); ++i) {
      const int32_t label = label_of[static_cast<unsigned char>(word[i])];
      if (label < 0) {
        spelled = false;
        break;
      }
      int to = fsa->next(state, label);
      if (to < 0) {
        to = fsa->add_state();
        fsa->add_arc(state, label, to);
      }
      state = to;
    }
    if (spelled) fsa->set_final(state);
  }
  if (words) *words = kept;
  return acceptor;
}

void TrainedModel::use_dictionary(const std::string& path, double max_cost) {
  if (!transcripts_)
    throw ConfigError(dir_ + ": a dictionary corrects text; this is a class model");
  if (!(max_cost >= 0) || !std::isfinite(max_cost))
    throw ConfigError("the dictionary cost must be a finite number >= 0, got " + num(max_cost));
  std::vector<uint8_t> word_label(classes_.size() + 1, 0);
  for (size_t k = 0; k < classes_.size(); ++k) {
    const unsigned char ch = static_cast<unsigned char>(classes_[k][0]);
    word_label[k + 1] = std::isalpha(ch)                ? 2
                        : std::isdigit(ch)              ? 1
                        : std::isspace(ch) || ch == '-' ? 3
                        : ch == '\''                    ? 4
                                                        : 0;
  }
  size_t kept = 0;
  auto fsa = std::make_unique<LabelFsa>(dictionary_acceptor(path, classes_, &kept));
  lexicon_ = std::move(fsa);
  word_label_ = std::move(word_label);
  lexicon_options_.max_cost = max_cost;
  dictionary_words_ = kept;
}

std::vector<std::string> member_files(const std::string& dir) {
  std::vector<std::string> files{(fs::path(dir) / kModelFile).string()};
  if (!fs::is_regular_file(files[0]))
    throw FileError(dir + ": not a model directory (no " + kModelFile + ")");
  size_t highest = 1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    highest = std::max(highest, member_number(e.path().filename().string()));
  if (ec) throw FileError(dir + ": cannot list the directory: " + ec.message());
  for (size_t i = 2; i <= highest; ++i) {
    const fs::path f = fs::path(dir) / ("model." + std::to_string(i) + ".bpk");
    if (!fs::is_regular_file(f))
      throw FileError(dir + ": ensemble member " + f.filename().string() +
                      " is missing (members are numbered 2, 3, ... up to the highest, model." +
                      std::to_string(highest) + ".bpk)");
    files.push_back(f.string());
  }
  return files;
}

void write_ensemble(const std::vector<std::string>& dirs, const std::string& out) {
  if (dirs.empty()) throw std::invalid_argument("an ensemble needs at least one model directory");
  for (size_t i = 0; i < dirs.size(); ++i) {
    std::error_code eq;
    for (size_t j = 0; j < i; ++j)
      if (fs::equivalent(dirs[i], dirs[j], eq))
        throw FileError(dirs[i] + ": named twice (as member " + std::to_string(j + 1) + " and " +
                        std::to_string(i + 1) + ")");
    // The output may be the first member's directory (its network stays model.bpk), no other.
    if (i > 0 && fs::equivalent(dirs[i], out, eq))
      throw FileError(
          out + ": the output is member " + std::to_string(i + 1) +
          "'s directory; it would lose that network (write elsewhere, or name it first)");
  }
  // Everything is read and checked before anything is written.
  std::vector<std::string> bytes;
  std::string pipeline_text;
  LoadedModel<float> first{Network<float>({1}, 0), {}, {}};
  std::vector<std::string> classes;
  PipelineConfig first_config;
  auto read_all = [](const std::string& path) {  // a model file's bytes, copied unchanged
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw FileError(path + ": cannot read the file");
    return text.str();
  };
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::vector<std::string> files = member_files(dirs[i]);
    if (files.size() > 1)
      throw FileError(dirs[i] + ": already an ensemble of " + std::to_string(files.size()) +
                      " networks; name the directories of its members instead");
    const std::string pfile = (fs::path(dirs[i]) / kPipelineFile).string();
    if (!fs::is_regular_file(pfile))
      throw FileError(dirs[i] + ": not a model directory (no " + kPipelineFile + ")");
    LoadedModel<float> m = load_model<float>(files[0]);
    const PipelineConfig config = load_pipeline_config(pfile);
    if (i == 0) {
      if (is_transcript_model(m.meta))
        throw FileError(dirs[i] +
                        ": a transcript (CTC) model; an ensemble averages class probabilities");
      classes = class_names(m.meta);
      if (classes.empty()) throw FileError(files[0] + ": a class model without its class names");
      first_config = config;
      pipeline_text = config.text;
      first = std::move(m);
    } else {
      const std::string why = member_mismatch(first, m, classes);
      if (!why.empty()) throw FileError(dirs[i] + ": cannot join the ensemble: " + why);
      bool same = config.stages.size() == first_config.stages.size();
      for (size_t s = 0; same && s < config.stages.size(); ++s)
        same = config.stages[s].plugin == first_config.stages[s].plugin &&
               config.stages[s].params == first_config.stages[s].params;
      if (!same)
        throw FileError(dirs[i] + ": cannot join the ensemble: its pipeline's stages differ from " +
                        dirs[0] + "'s (members must see the same features)");
    }
    bytes.push_back(read_all(files[0]));
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out))
    throw FileError(out + ": cannot create the directory" + (ec ? ": " + ec.message() : ""));
  // Stale members go first, so that no reader meets members of two ensembles.
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(out, ec))
    if (member_number(e.path().filename().string()) > dirs.size()) stale.push_back(e.path());
  if (ec) throw FileError(out + ": cannot list the directory: " + ec.message());
  // Highest first: a reader meanwhile sees members 2..N without a gap.
  std::sort(stale.begin(), stale.end(), [](const fs::path& x, const fs::path& y) {
    return member_number(x.filename().string()) > member_number(y.filename().string());
  });
  for (const fs::path& f : stale)
    if (!fs::remove(f, ec) && ec)
      throw FileError(f.string() + ": cannot remove a stale member: " + ec.message());
  for (size_t i = dirs.size(); i-- > 0;)
    write_file_atomically((fs::path(out) / (i == 0 ? std::string(kModelFile)
                                                   : "model." + std::to_string(i + 1) + ".bpk"))
                              .string(),
                          bytes[i]);
  write_file_atomically((fs::path(out) / kPipelineFile).string(), pipeline_text);
  // The first member's fit states go with its pipeline (members trained on other data would
  // have learned other statistics: give an ensemble members of one training set).
  const fs::path fitted = fs::path(dirs[0]) / kFittedFile;
  if (fs::exists(fitted)) {
    std::ifstream in(fitted, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw FileError(fitted.string() + ": cannot read");
    write_file_atomically((fs::path(out) / kFittedFile).string(), text.str());
  }
}

TrainedModel::TrainedModel(const std::string& dir, const std::vector<std::string>& plugin_dirs)
    : dir_(dir), model_{Network<float>({1}, 0), {}, {}} {
  const std::string pfile = (fs::path(dir) / kPipelineFile).string();
  const std::string mfile = (fs::path(dir) / kModelFile).string();
  if (!fs::is_directory(dir)) throw FileError(dir + ": not a model directory (no such directory)");
  if (!fs::exists(mfile)) throw FileError(dir + ": not a model directory (no " + kModelFile + ")");
  if (!fs::exists(pfile))
    throw FileError(dir + ": not a model directory (no " + kPipelineFile + ")");
  {
    // Relative paths in the copied pipeline resolve against the original file's directory when it
    // is still where it was relative to the model directory, else against the model directory.
    std::string base;
    model_ = load_model<float>(mfile);
    for (const auto& kv : model_.meta)
      if (kv.first == "pipeline_dir" && fs::is_directory(fs::path(dir) / kv.second))
        base = (fs::path(dir) / kv.second).lexically_normal().string();
    std::ifstream in(pfile, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw FileError(pfile + ": cannot read the pipeline file");
    config_ = parse_pipeline_config(text.str(), pfile, base);
  }
  auto meta = [&](const std::string& key) -> const std::string* {
    for (const auto& kv : model_.meta)
      if (kv.first == key) return &kv.second;
    return nullptr;
  };
  const std::string* labels = meta("labels");
  transcripts_ = labels && *labels == "transcript";
  if (transcripts_) {
    const std::string* alphabet = meta("alphabet");
    if (!alphabet || alphabet->empty())
      throw FileError(mfile + ": a transcript model without its alphabet");
    for (char ch : *alphabet) classes_.emplace_back(1, ch);
    if (config_.max_words > 0) {
      std::vector<int32_t> labels(classes_.size());
      for (size_t i = 0; i < labels.size(); ++i) labels[i] = int32_t(i + 1);
      grammar_ = std::make_unique<LabelFsa>(
          LabelFsa::repeat(labels, config_.min_words, config_.max_words));
    }
  } else {
    classes_ = class_names(model_.meta);
  }
  const Shape& out = model_.net.output_shape();
  const int64_t k = int64_t(classes_.size());
  if (classes_.empty() || (transcripts_ ? out.size() != 2 || out[1] != k + 1 : out != Shape{k}))
    throw FileError(mfile + ": the model's class names (or alphabet) do not match its output " +
                    to_string(out));
  const std::vector<std::string> files = member_files(dir);
  for (size_t i = 1; i < files.size(); ++i) {
    if (transcripts_)
      throw FileError(files[i] + ": an ensemble member beside a transcript (CTC) model; " +
                      "ensembles average class probabilities and take class models only");
    LoadedModel<float> m = load_model<float>(files[i]);
    const std::string why = member_mismatch(model_, m, classes_);
    if (!why.empty()) throw FileError(files[i] + ": not a member of this ensemble: " + why);
    more_.push_back(std::move(m));
  }
  load_plugins(registry_, config_.plugin_path, plugin_dirs);
  pipeline_ = std::make_unique<Pipeline>(config_, registry_);
  read_fit_states(dir, *pipeline_);
}

TrainedModel::Prediction TrainedModel::predict(const std::string& file) {
  Value v = pipeline_->run(file);
  std::vector<Tensor<float>> one;
  one.push_back(std::move(v.tensor));
  return predict(one)[0];
}

std::vector<TrainedModel::Prediction> TrainedModel::predict(
    const std::vector<Tensor<float>>& feats) {
  std::vector<Prediction> out;
  const Shape& in = model_.net.input_shape();
  if (transcripts_ || (!in.empty() && in[0] == kDynamic)) {
    // Sequences, one at a time (no padding); a kDynamic dimension takes any size.
    Tensor<float> x;
    for (const Tensor<float>& f : feats) {
      bool fits = f.rank() == int(in.size());
      for (size_t i = 0; fits && i < in.size(); ++i)
        fits = in[i] == kDynamic ? f.dim(int(i)) >= 1 : f.dim(int(i)) == in[i];
      if (!fits)
        throw ShapeError("features of shape " + to_string(f.shape()) + ", but the model takes " +
                         to_string(in));
      Shape s{1};
      s.insert(s.end(), f.shape().begin(), f.shape().end());
      x.resize(s);
      std::copy(f.data(), f.data() + f.size(), x.data());
      const Tensor<float>& y = model_.net.forward(x, Mode::kInfer);
      Prediction p;
      if (transcripts_) {
        const CtcResult r = decode(y);
        for (const CtcSymbol& sym : r.symbols) p.name += classes_[size_t(sym.label - 1)];
        p.confidence = r.confidence;
      } else if (more_.empty()) {
        p = classify(y.data(), classes_);
      } else {
        std::vector<double> sum(classes_.size());
        add_probabilities(y.data(), 1, classes_.size(), sum);
        for (LoadedModel<float>& m : more_)
          add_probabilities(m.net.forward(x, Mode::kInfer).data(), 1, classes_.size(), sum);
        p = from_probabilities(sum.data(), members(), classes_);
      }
      out.push_back(std::move(p));
    }
    return out;
  }
  const int64_t per = shape_size(in);
  const int64_t k = int64_t(classes_.size());
  Tensor<float> x;
  for (size_t i0 = 0; i0 < feats.size(); i0 += 256) {
    const size_t n = std::min<size_t>(256, feats.size() - i0);
    Shape s{int64_t(n)};
    s.insert(s.end(), in.begin(), in.end());
    x.resize(s);
    for (size_t i = 0; i < n; ++i) {
      const Tensor<float>& f = feats[i0 + i];
      if (f.shape() != in)
        throw ShapeError("features of shape " + to_string(f.shape()) + ", but the model takes " +
                         to_string(in));
      std::copy(f.data(), f.data() + per, x.data() + int64_t(i) * per);
    }
    const Tensor<float>& y = model_.net.forward(x, Mode::kInfer);
    if (more_.empty()) {
      for (size_t i = 0; i < n; ++i) out.push_back(classify(y.data() + int64_t(i) * k, classes_));
      continue;
    }
    std::vector<double> sum(n * size_t(k));
    add_probabilities(y.data(), n, size_t(k), sum);
    for (LoadedModel<float>& m : more_)
      add_probabilities(m.net.forward(x, Mode::kInfer).data(), n, size_t(k), sum);
    for (size_t i = 0; i < n; ++i)
      out.push_back(from_probabilities(sum.data() + i * size_t(k), members(), classes_));
  }
  return out;
}

CtcResult TrainedModel::decode(const Tensor<float>& y) {
  CtcResult r;
  if (grammar_) {
    CtcBeamOptions o;
    o.beam_width = config_.beam;
    o.constraint = grammar_.get();
    r = ctc_beam_decode(y, 0, -1, o);
  } else {
    r = ctc_greedy_decode(y, 0, -1, 0);
  }
  if (lexicon_ && !r.symbols.empty())
    r = ctc_lexicon_correct(y, 0, -1, r, *lexicon_, word_label_, lexicon_options_);
  return r;
}

CtcResult TrainedModel::transcribe(const Tensor<float>& f) {
  if (!transcripts_)
    throw ConfigError(dir_ + ": a class model; transcribe needs a transcript model");
  const Shape& in = model_.net.input_shape();
  bool fits = f.rank() == int(in.size());
  for (size_t i = 0; fits && i < in.size(); ++i)
    fits = in[i] == kDynamic ? f.dim(int(i)) >= 1 : f.dim(int(i)) == in[i];
  if (!fits)
    throw ShapeError("features of shape " + to_string(f.shape()) + ", but the model takes " +
                     to_string(in));
  Shape s{1};
  s.insert(s.end(), f.shape().begin(), f.shape().end());
  Tensor<float> x(s);
  std::copy(f.data(), f.data() + f.size(), x.data());
  return decode(model_.net.forward(x, Mode::kInfer));
}

std::string shipped_model_dir(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("BPKIT_MODEL_PATH")) {
    const std::string s = env;
    for (size_t start = 0; start <= s.size();) {
      const size_t end = std::min(s.find(':', start), s.size());
      if (end > start) dirs.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  dirs.push_back((fs::path(program_directory()) / ".." / "share" / "bpkit" / "models").string());
  for (const std::string& d : dirs) {
    const fs::path p = fs::path(d) / name;
    std::error_code ec;
    if (fs::is_regular_file(p / kModelFile, ec)) return p.lexically_normal().string();
  }
  return "";
}

}  // namespace bpkit
