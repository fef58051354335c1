#include "bpkit/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "bpkit/error.h"
#include "bpkit/suggest.h"

namespace bpkit {
namespace {

namespace fs = std::filesystem;

std::string position(const std::string& file, const YAML::Mark& m) {
  if (m.is_null()) return file;
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

// Refuses a mapping that names one key twice (yaml-cpp keeps both, and lookups would see only
// the first): the error names both places. Also bounds the nesting and the size a pipeline file
// may have, aliases expanded (a few hundred bytes of nested aliases name billions of values).
void check_unique_keys(const YAML::Node& n, const std::string& file, int depth, int64_t& nodes) {
  if (depth > 64) throw ConfigError(position(file, n.Mark()) + ": nested more than 64 levels deep");
  if (++nodes > 100000)
    throw ConfigError(position(file, n.Mark()) +
                      ": more than 100000 values (aliases expanded); not a pipeline file");
  if (n.IsMap()) {
    std::map<std::string, YAML::Mark> seen;
    for (const auto& kv : n) {
      if (kv.first.IsScalar()) {
        const auto [it, fresh] = seen.emplace(kv.first.Scalar(), kv.first.Mark());
        if (!fresh)
          throw ConfigError(position(file, kv.first.Mark()) + ": the key '" + kv.first.Scalar() +
                            "' appears twice in this mapping (first at " +
                            position(file, it->second) + ")");
      }
      check_unique_keys(kv.second, file, depth + 1, nodes);
    }
  } else if (n.IsSequence()) {
    for (const YAML::Node& item : n) check_unique_keys(item, file, depth + 1, nodes);
  }
}

const char* type_of(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "an undefined value";
  }
}

// Reads one YAML mapping whose keys must come from a fixed set.
class Section {
 public:
  Section(const YAML::Node& node, const std::string& file, std::string name,
          std::vector<std::string> allowed)
      : node_(node), file_(file), name_(std::move(name)) {
    if (!node.IsMap())
      fail(node, name_ + " must be a mapping (key: value lines), got " + type_of(node));
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
        fail(kv.first, "unknown key '" + key + "' in " + name_ + did_you_mean(key, allowed));
    }
  }

  [[noreturn]] void fail(const YAML::Node& at, const std::string& msg) const {
    throw ConfigError(position(file_, at.Mark()) + ": " + msg);
  }
  bool has(const std::string& key) const { return bool(node_[key]); }
  YAML::Node get(const std::string& key) const { return node_[key]; }
  std::string where(const std::string& key) const {
    for (const auto& kv : node_)
      if (kv.first.Scalar() == key) return position(file_, kv.first.Mark());
    return position(file_, node_.Mark());
  }
  std::string where() const { return position(file_, node_.Mark()); }

  std::string scalar(const std::string& key, const std::string& what) const {
    const YAML::Node v = node_[key];
    if (!v.IsScalar())
      fail(v.IsNull() ? key_node(key) : v,
           name_ + "." + key + " must be " + what + ", got " + type_of(v));
    return v.Scalar();
  }
  std::string str(const std::string& key, const std::string& fallback) const {
    return has(key) ? scalar(key, "a string") : fallback;
  }
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& choices) const {
    if (!has(key)) return fallback;
    const std::string v = scalar(key, "one of the names below");
    if (std::find(choices.begin(), choices.end(), v) == choices.end())
      fail(node_[key],
           name_ + "." + key + ": unknown value '" + v + "'" + did_you_mean(v, choices));
    return v;
  }
  double number(const std::string& key, double fallback, double lo, double hi) const {
    if (!has(key)) return fallback;
    const std::string s = scalar(key, "a number");
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end || errno || !std::isfinite(v))
      fail(node_[key], name_ + "." + key + " must be a number, got '" + s + "'");
    if (v < lo || v > hi)
      fail(node_[key],
           name_ + "." + key + " = " + s + " is out of range; expected " + describe_range(lo, hi));
    return v;
  }
  long long integer(const std::string& key, long long fallback, long long lo, long long hi) const {
    if (!has(key)) return fallback;
    const std::string s = scalar(key, "an integer");
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end || errno)
      fail(node_[key], name_ + "." + key + " must be an integer, got '" + s + "'");
    if (v < lo || v > hi)
      fail(node_[key], name_ + "." + key + " = " + s + " is out of range; expected " +
                           describe_range(double(lo), double(hi)));
    return v;
  }
  bool boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const std::string s = scalar(key, "true or false");
    if (s == "true") return true;  // one spelling, YAML 1.2's (not yes/no, on/off)
    if (s == "false") return false;
    fail(node_[key], name_ + "." + key + " must be true or false, got '" + s + "'");
  }
  std::string path(const std::string& key, const std::string& dir) const {
    if (!has(key)) return "";
    const std::string s = scalar(key, "a path");
    return fs::path(s).is_absolute() ? s : (fs::path(dir) / s).lexically_normal().string();
  }

 private:
  YAML::Node key_node(const std::string& key) const {
    for (const auto& kv : node_)
      if (kv.first.Scalar() == key) return kv.first;
    return node_;
  }
  YAML::Node node_;
  const std::string& file_;
  std::string name_;
};

// key: value pairs of a flat mapping of scalars (stage params, layer attributes).
void read_flat(const YAML::Node& map, const std::string& file, const std::string& what,
               std::vector<std::pair<std::string, std::string>>& out,
               std::map<std::string, std::string>& where, const std::vector<std::string>& skip) {
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
    if (!kv.second.IsScalar())
      throw ConfigError(position(file, kv.second.Mark()) + ": " + what + " '" + key +
                        "' must be a single value (number, word or true/false), got " +
                        type_of(kv.second));
    out.emplace_back(key, kv.second.Scalar());
    where[key] = position(file, kv.first.Mark());
  }
}

void read_stages(const YAML::Node& list, const std::string& file, PipelineConfig& c) {
  if (!list.IsSequence())
    throw ConfigError(position(file, list.Mark()) +
                      ": stages must be a list of '- plugin: NAME' "
                      "items, got " +
                      type_of(list));
  for (const YAML::Node& item : list) {
    StageConfig s;
    s.where = position(file, item.Mark());
    if (item.IsScalar()) {
      s.plugin = item.Scalar();
    } else {
      Section sec(item, file, "stage", {"plugin", "params"});
      if (!sec.has("plugin")) sec.fail(item, "a stage needs 'plugin: NAME'");
      s.plugin = sec.scalar("plugin", "a plugin name");
      if (sec.has("params")) {
        const YAML::Node p = sec.get("params");
        if (!p.IsMap() && !p.IsNull())
          sec.fail(p, "params of stage '" + s.plugin + "' must be a mapping, got " + type_of(p));
        if (p.IsMap()) read_flat(p, file, "parameter", s.params, s.param_where, {});
      }
    }
    c.stages.push_back(std::move(s));
  }
}

void read_layers(const YAML::Node& list, const std::string& file, PipelineConfig& c) {
  if (!list.IsSequence())
    throw ConfigError(position(file, list.Mark()) +
                      ": network.layers must be a list (e.g. '- dense: {units: 10}'), got " +
                      type_of(list));
  for (const YAML::Node& item : list) {
    LayerConfig l;
    l.where = position(file, item.Mark());
    if (item.IsScalar()) {
      l.kind = item.Scalar();
    } else if (item.IsMap() && item["type"]) {
      if (!item["type"].IsScalar())
        throw ConfigError(position(file, item["type"].Mark()) + ": a layer's type must be a name");
      l.kind = item["type"].Scalar();
      read_flat(item, file, "attribute", l.attrs, l.attr_where, {"type"});
    } else if (item.IsMap() && item.size() == 1) {
      const auto kv = *item.begin();
      l.kind = kv.first.Scalar();
      if (kv.second.IsMap())
        read_flat(kv.second, file, "attribute", l.attrs, l.attr_where, {});
      else if (!kv.second.IsNull())
        throw ConfigError(position(file, kv.second.Mark()) + ": the attributes of layer '" +
                          l.kind + "' must be a mapping, e.g. '- " + l.kind +
                          ": {units: 10}', got " + type_of(kv.second));
    } else {
      throw ConfigError(l.where +
                        ": a layer is a name ('- relu'), a one-key mapping ('- dense: "
                        "{units: 10}') or a mapping with 'type:'; got " +
                        type_of(item) + (item.IsMap() ? " with several keys and no 'type'" : ""));
    }
    for (auto it = l.attrs.begin(); it != l.attrs.end(); ++it)
      if (it->first == "name") {
        l.name = it->second;
        l.attrs.erase(it);
        break;
      }
    c.layers.push_back(std::move(l));
  }
}

std::vector<std::string> string_list(const YAML::Node& n, const std::string& file,
                                     const std::string& what) {
  std::vector<std::string> out;
  if (n.IsScalar()) return {n.Scalar()};
  if (!n.IsSequence())
    throw ConfigError(position(file, n.Mark()) + ": " + what + " must be a list, got " +
                      type_of(n));
  for (const YAML::Node& item : n) {
    if (!item.IsScalar())
      throw ConfigError(position(file, item.Mark()) + ": " + what + " entries must be names, got " +
                        type_of(item));
    out.push_back(item.Scalar());
  }
  return out;
}

}  // namespace

PipelineConfig parse_pipeline_config(const std::string& text, const std::string& path,
                                     const std::string& base_dir, bool need_network) {
  PipelineConfig c;
  c.file = path;
  c.dir = base_dir.empty() ? fs::path(path).parent_path().string() : base_dir;
  if (c.dir.empty()) c.dir = ".";
  c.text = text;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(position(path, e.mark) + ": not valid YAML: " + e.msg);
  }
  if (root.IsNull()) throw ConfigError(path + ": the pipeline file is empty");
  int64_t nodes = 0;
  check_unique_keys(root, path, 0, nodes);
  const std::string& f = c.file;
  Section top(root, f, "the pipeline",
              {"name", "plugin_path", "stages", "data", "network", "loss", "optimizer", "training",
               "decoder", "cache", "output"});
  c.name = top.str("name", fs::path(path).stem().string());
  if (top.has("plugin_path"))
    for (const std::string& p : string_list(top.get("plugin_path"), f, "plugin_path"))
      c.plugin_path.push_back(
          fs::path(p).is_absolute() ? p : (fs::path(c.dir) / p).lexically_normal().string());
  if (!top.has("stages"))
    top.fail(root, "the pipeline has no 'stages' (the plugins that make features)");
  c.stages_where = top.where("stages");
  read_stages(top.get("stages"), f, c);
  if (c.stages.empty())
    top.fail(top.get("stages"), "stages is empty; expected at least one plugin");

  if (top.has("data")) {
    Section d(top.get("data"), f, "data",
              {"train", "test", "validation_split", "classes", "labels", "alphabet", "layout",
               "tuples", "skilled_negatives", "mining", "references"});
    c.layout = d.choice("layout", "manifest", {"manifest", "writers", "pairs", "triplets"});
    if (c.verifier()) {
      for (const char* k : {"labels", "alphabet", "classes"})
        if (d.has(k))
          d.fail(d.get(k), std::string("data.") + k +
                               " is for class and transcript manifests; data.layout: " + c.layout +
                               " learns an embedding (a verifier)");
      if (c.layout != "writers")
        for (const char* k : {"tuples", "skilled_negatives", "mining", "references"})
          if (d.has(k))
            d.fail(d.get(k), std::string("data.") + k + " is for data.layout: writers (data." +
                                 "layout: " + c.layout + " trains on the manifest's tuples)");
      c.tuples = d.integer("tuples", c.tuples, 1, 100000000);
      c.skilled_negatives = d.number("skilled_negatives", c.skilled_negatives, 0, 1);
      c.mining = int(d.integer("mining", c.mining, 1, 64));
      c.references = int(d.integer("references", c.layout == "writers" ? c.references : 1, 1, 100));
    } else {
      for (const char* k : {"tuples", "skilled_negatives", "mining", "references"})
        if (d.has(k)) d.fail(d.get(k), std::string("data.") + k + " is for data.layout: writers");
    }
    c.labels = d.choice("labels", "class", {"class", "transcript", "frames"});
    c.labels_where = d.where("labels");
    c.alphabet = d.str("alphabet", "");
    c.alphabet_where = d.where("alphabet");
    if (c.alphabet == "auto" && c.labels == "transcript") {
      // The symbols of the training transcripts, found when training starts.
      c.alphabet_auto = true;
      c.alphabet.clear();
      if (d.has("classes"))
        d.fail(d.get("classes"), "data.classes is for class labels; transcripts use data.alphabet");
    } else if (c.labels == "transcript") {
      if (c.alphabet.empty())
        d.fail(d.has("alphabet") ? d.get("alphabet") : top.get("data"),
               "data.labels: transcript needs data.alphabet, the symbols the transcripts use");
      for (size_t i = 0; i < c.alphabet.size(); ++i)
        if (c.alphabet.find(c.alphabet[i]) != i || c.alphabet[i] == '\n' || c.alphabet[i] == '\t')
          d.fail(d.get("alphabet"), std::string("data.alphabet holds '") + c.alphabet[i] +
                                        "' twice (or a tab or newline)");
      if (d.has("classes"))
        d.fail(d.get("classes"), "data.classes is for class labels; transcripts use data.alphabet");
    } else if (d.has("alphabet")) {
      d.fail(d.get("alphabet"),
             "data.alphabet is for transcripts (data.labels: transcript); " +
                 std::string(c.labels == "frames" ? "frame labels name their classes in "
                                                    "data.classes (or find them in the manifest)"
                                                  : "class labels use data.classes"));
    }
    c.train_manifest = d.path("train", c.dir);
    c.test_manifest = d.path("test", c.dir);
    c.train_where = d.where("train");
    c.test_where = d.where("test");
    c.validation_split = d.number("validation_split", 0, 0, 0.9);
    if (d.has("classes")) {
      c.classes = string_list(d.get("classes"), f, "data.classes");
      c.classes_where = d.where("classes");
      for (size_t i = 0; i < c.classes.size(); ++i)
        for (size_t j = 0; j < i; ++j)
          if (c.classes[i] == c.classes[j])
            d.fail(d.get("classes"), "data.classes lists '" + c.classes[i] + "' twice");
    }
  }

  if (!top.has("network") && need_network) top.fail(root, "the pipeline has no 'network' section");
  if (top.has("network")) {
    Section n(top.get("network"), f, "network", {"input", "layers"});
    c.network_where = n.where();
    if (n.has("input"))
      for (const std::string& d : string_list(n.get("input"), f, "network.input")) {
        char* end = nullptr;
        const long long v = std::strtoll(d.c_str(), &end, 10);
        if (d.empty() || *end || v < 1)
          n.fail(n.get("input"), "network.input must list positive integers, got '" + d + "'");
        c.input_shape.push_back(v);
      }
    if (!n.has("layers")) n.fail(top.get("network"), "network has no 'layers' list");
    read_layers(n.get("layers"), f, c);
    if (c.layers.empty()) n.fail(n.get("layers"), "network.layers is empty");
  }

  const std::vector<std::string> losses{
      "softmax_cross_entropy", "cross_entropy", "mse",        "bce", "bce_logits", "ctc",
      "frame_cross_entropy",   "triplet",       "contrastive"};
  const std::string default_loss = c.labels == "transcript" ? "ctc"
                                   : c.labels == "frames"   ? "frame_cross_entropy"
                                   : c.layout == "writers" || c.layout == "triplets" ? "triplet"
                                   : c.layout == "pairs"                             ? "contrastive"
                                                                                     : c.loss;
  if (top.has("loss") && top.get("loss").IsMap()) {
    Section l(top.get("loss"), f, "loss", {"type", "margin"});
    c.loss = l.choice("type", default_loss, losses);
    if (l.has("margin")) {
      if (c.loss != "triplet" && c.loss != "contrastive")
        l.fail(l.get("margin"), "loss.margin is for the triplet and contrastive losses");
      c.margin = l.number("margin", 0, 1e-6, 100);
    }
  } else {
    c.loss = top.choice("loss", default_loss, losses);
  }
  c.loss_where = top.where("loss");
  const bool metric = c.loss == "triplet" || c.loss == "contrastive";
  if (metric != c.verifier())
    top.fail(top.has("loss") ? top.get("loss") : root,
             metric ? "loss: " + c.loss +
                          " learns an embedding from pairs or triplets; set data.layout: writers "
                          "(dataset directories of writers), pairs or triplets (tuple manifests)"
                    : "data.layout: " + c.layout +
                          " trains a verifier: loss must be triplet or contrastive");
  if ((c.layout == "pairs" && c.loss != "contrastive") ||
      (c.layout == "triplets" && c.loss != "triplet"))
    top.fail(top.has("loss") ? top.get("loss") : root,
             "data.layout: " + c.layout + " trains with loss: " +
                 (c.layout == "pairs" ? "contrastive" : "triplet") + ", not " + c.loss);
  if ((c.loss == "frame_cross_entropy") != (c.labels == "frames"))
    top.fail(top.has("loss") ? top.get("loss") : root,
             c.loss == "frame_cross_entropy"
                 ? "loss: frame_cross_entropy learns a class per frame; set data.labels: frames"
                 : "frame labels (data.labels: frames) are learned with loss: "
                   "frame_cross_entropy");
  if ((c.loss == "ctc") != (c.labels == "transcript"))
    top.fail(top.has("loss") ? top.get("loss") : root,
             c.loss == "ctc" ? "loss: ctc learns transcripts; set data.labels: transcript and "
                               "data.alphabet"
                             : "transcripts (data.labels: transcript) are learned with loss: ctc");

  if (top.has("optimizer")) {
    Section o(top.get("optimizer"), f, "optimizer",
              {"type", "lr", "momentum", "weight_decay", "beta1", "beta2"});
    c.optimizer_where = o.where();
    c.optimizer = o.choice("type", c.optimizer, {"sgd", "nesterov", "adam", "adamw", "rprop"});
    c.lr = o.number("lr", c.optimizer == "adam" || c.optimizer == "adamw" ? 1e-3 : 0.01, 1e-12, 10);
    c.momentum = o.number("momentum", c.momentum, 0, 0.999999);
    c.weight_decay = o.number("weight_decay", 0, 0, 1);
    c.beta1 = o.number("beta1", c.beta1, 0, 0.999999);
    c.beta2 = o.number("beta2", c.beta2, 0, 0.999999999);
  }

  if (top.has("training")) {
    Section t(top.get("training"), f, "training",
              {"epochs", "batch", "seed", "threads", "schedule", "clip_norm", "patience",
               "checkpoints", "on_error", "augment", "init", "members"});
    c.epochs = int(t.integer("epochs", c.epochs, 1, 100000));
    c.batch = t.integer("batch", c.batch, 1, 1 << 20);
    c.seed = uint64_t(t.integer("seed", 1, 0, (1LL << 62)));
    c.threads = int(t.integer("threads", 0, 0, 1024));
    c.clip_norm = t.number("clip_norm", 0, 0, 1e300);
    c.patience = int(t.integer("patience", 0, 0, 100000));
    c.checkpoints = t.boolean("checkpoints", true);
    c.on_error = t.choice("on_error", "stop", {"stop", "skip"});
    if (t.has("members")) {
      c.members = int(t.integer("members", 1, 1, 64));
      c.members_where = t.where("members");
      if (!c.verifier() && c.members > 1)
        t.fail(t.get("members"),
               "training.members is for verifiers (data.layout: writers, pairs or triplets); "
               "class models become "
               "ensembles with bpkit ensemble");
    }
    if (t.has("init")) {
      c.init = t.path("init", c.dir);
      c.init_where = t.where("init");
    }
    if (t.has("schedule")) {
      const YAML::Node s = t.get("schedule");
      std::string kind;
      if (s.IsScalar()) {
        kind = t.choice("schedule", "constant", {"constant", "step", "cosine"});
      } else {
        Section ss(s, f, "training.schedule", {"type", "step_size", "gamma", "min_lr"});
        kind = ss.choice("type", "constant", {"constant", "step", "cosine"});
        c.schedule.step_size = int(ss.integer("step_size", 1, 1, 100000));
        c.schedule.gamma = ss.number("gamma", 0.1, 0, 1);
        c.schedule.min_lr = ss.number("min_lr", 0, 0, 10);
      }
      c.schedule.kind = kind == "cosine" ? Schedule::kCosine
                        : kind == "step" ? Schedule::kStep
                                         : Schedule::kConstant;
    }
    c.schedule.total_epochs = c.epochs;
    if (t.has("augment")) {
      Section a(t.get("augment"), f, "training.augment",
                {"shift", "rotate", "scale", "erase", "fill"});
      c.augment_where = t.where("augment");
      c.augment.shift = a.number("shift", 0, 0, 1000);
      c.augment.rotate = a.number("rotate", 0, 0, 180);
      c.augment.scale = a.number("scale", 0, 0, 0.9);
      c.augment.erase = a.integer("erase", 0, 0, 100000);
      c.augment.fill = float(a.number("fill", 0, -1e30, 1e30));
    }
  }

  if (top.has("decoder")) {
    Section d(top.get("decoder"), f, "decoder", {"words", "min_words", "max_words", "beam"});
    c.decoder_where = top.where("decoder");
    if (c.labels != "transcript")
      d.fail(top.get("decoder"), "decoder is for transcript models (data.labels: transcript)");
    if (d.has("words") && c.alphabet_auto)
      d.fail(d.get("words"),
             "decoder.words maps each symbol of data.alphabet to a word: give the alphabet "
             "explicitly, not auto");
    if (d.has("words")) {
      const YAML::Node w = d.get("words");
      if (!w.IsMap())
        d.fail(w, "decoder.words must map each symbol to its word, got " + std::string(type_of(w)));
      for (const auto& kv : w) {
        const std::string sym = kv.first.Scalar();
        if (sym.size() != 1 || c.alphabet.find(sym[0]) == std::string::npos)
          d.fail(kv.first, "decoder.words: '" + sym + "' is not a symbol of data.alphabet (\"" +
                               c.alphabet + "\")");
        if (!kv.second.IsScalar() || kv.second.Scalar().empty())
          d.fail(kv.second, "decoder.words." + sym + " must be a word");
        for (const auto& seen : c.symbol_words)
          if (seen.first == sym[0]) d.fail(kv.first, "decoder.words lists '" + sym + "' twice");
        c.symbol_words.emplace_back(sym[0], kv.second.Scalar());
      }
      for (char ch : c.alphabet) {
        bool found = false;
        for (const auto& sw : c.symbol_words) found = found || sw.first == ch;
        if (!found)
          d.fail(w, std::string("decoder.words has no word for the symbol '") + ch +
                        "' of data.alphabet");
      }
    }
    if (d.has("min_words") && !d.has("max_words"))
      d.fail(d.get("min_words"),
             "decoder.min_words needs decoder.max_words (the grammar is min..max words)");
    c.min_words = int(d.integer("min_words", 0, 0, 1000));
    c.max_words = int(d.integer("max_words", 0, 0, 1000));
    if (c.max_words > 0 && c.max_words < c.min_words)
      d.fail(d.get("max_words"), "decoder.max_words is below decoder.min_words");
    c.beam = int(d.integer("beam", 16, 1, 1024));
  }
  if (top.has("cache")) {
    const YAML::Node cn = top.get("cache");
    if (cn.IsScalar()) {
      c.cache = top.boolean("cache", true);
    } else {
      Section cs(cn, f, "cache", {"enabled", "dir"});
      c.cache = cs.boolean("enabled", true);
      c.cache_dir = cs.path("dir", c.dir);
    }
  }
  if (top.has("output")) {
    Section o(top.get("output"), f, "output", {"dir"});
    c.output_dir = o.path("dir", c.dir);
  }
  if (c.output_dir.empty()) c.output_dir = (fs::path(c.dir) / "runs" / c.name).lexically_normal();
  return c;
}

std::string apply_overrides(const std::string& text, const std::string& path,
                            const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(position(path, e.mark) + ": not valid YAML: " + e.msg);
  }
  if (!root.IsMap()) throw ConfigError(path + ": the pipeline file is not a mapping of keys");
  std::string applied;
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    auto fail = [&](const std::string& what) { throw ConfigError("--set " + o + ": " + what); };
    if (eq == std::string::npos) fail("expected KEY=VALUE (e.g. training.epochs=5)");
    const std::string key = o.substr(0, eq), value = o.substr(eq + 1);
    std::vector<std::string> parts;
    for (size_t at = 0;;) {
      const size_t dot = key.find('.', at);
      parts.push_back(key.substr(at, dot == std::string::npos ? std::string::npos : dot - at));
      if (dot == std::string::npos) break;
      at = dot + 1;
    }
    for (const std::string& p : parts)
      if (p.empty()) fail("the key '" + key + "' has an empty part");
    YAML::Node v;
    try {
      v = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      fail("the value is not valid YAML: " + e.msg);
    }
    // Nodes are handles: walking with copies of them edits the tree.
    YAML::Node node = root;
    std::string walked;
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string& p = parts[i];
      const bool last = i + 1 == parts.size();
      if (node.IsSequence()) {
        char* end = nullptr;
        const long k = std::strtol(p.c_str(), &end, 10);
        if (*end != '\0' || k < 0 || size_t(k) >= node.size())
          fail("'" + walked + "' is a list of " + std::to_string(node.size()) + " item(s); '" + p +
               "' is not an index 0.." + std::to_string(node.size() ? node.size() - 1 : 0));
        if (last) {
          node[size_t(k)] = v;
        } else {
          YAML::Node next = node[size_t(k)];
          node.reset(next);
        }
      } else if (node.IsMap() || node.IsNull()) {
        if (last) {
          node[p] = v;
        } else {
          if (!node[p] || node[p].IsNull()) node[p] = YAML::Node(YAML::NodeType::Map);
          YAML::Node next = node[p];
          node.reset(next);
        }
      } else {
        fail("'" + walked + "' is a value (" + node.Scalar() + "), not a mapping or a list");
      }
      walked += (walked.empty() ? "" : ".") + p;
    }
    applied += " --set " + o;
  }
  YAML::Emitter out;
  out << root;
  if (!out.good())
    throw ConfigError(path + ": cannot write the file with the overrides: " + out.GetLastError());
  return "# " + fs::path(path).filename().string() + " with" + applied +
         " (bpkit train; the file's comments are not kept)\n" + out.c_str() + "\n";
}

namespace {

// The pipeline file's bytes. Throws FileError saying why it cannot be read.
std::string read_pipeline_file(const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || fs::is_directory(path, ec))
    throw FileError(path + ": cannot open the pipeline file (" + open_failure(path, errno) + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw FileError(path + ": cannot read the pipeline file");
  return ss.str();
}

}  // namespace

PipelineConfig load_pipeline_config(const std::string& path,
                                    const std::vector<std::string>& overrides) {
  if (overrides.empty()) return load_pipeline_config(path);
  const std::string text = apply_overrides(read_pipeline_file(path), path, overrides);
  try {
    return parse_pipeline_config(text, path);
  } catch (const ConfigError& e) {
    // The same mistake in the file itself is reported at its place in the file; another (the
    // overrides made it, or left it after fixing the file's own) with its place in the file as
    // modified, which the model directory would have kept.
    auto what = [&](const std::string& m) {  // the message without "PATH:LINE:COL: "
      if (m.rfind(path + ":", 0) != 0) return m;
      const size_t at = m.find(": ", path.size());
      return at == std::string::npos ? m : m.substr(at + 2);
    };
    try {
      load_pipeline_config(path);
    } catch (const ConfigError& own) {
      if (what(own.what()) == what(e.what())) throw;
    }
    std::string sets;
    for (const std::string& o : overrides) sets += " --set " + o;
    throw ConfigError(std::string(e.what()) + " (line and column of the file as modified by" +
                      sets + ")");
  }
}

PipelineConfig load_pipeline_config(const std::string& path, bool need_network) {
  return parse_pipeline_config(read_pipeline_file(path), path, "", need_network);
}

}  // namespace bpkit
