#include "bpkit/pipeline.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <ostream>
#include <sstream>

#include "bpkit/error.h"
#include "bpkit/suggest.h"
#include "bpkit/threading.h"

namespace bpkit {
namespace {

bool is_feature_kind(Kind k) {
  return k == Kind::kFeatures || k == Kind::kSequence;
}

}  // namespace

ParamValues validate_params(const PluginInfo& info,
                            const std::vector<std::pair<std::string, std::string>>& values,
                            const std::map<std::string, std::string>& where,
                            const std::string& stage_where) {
  ParamValues out;
  std::vector<std::string> names;
  for (const ParamSpec& p : info.params) names.push_back(p.name);
  for (const auto& kv : values) {
    const std::string &key = kv.first, &text = kv.second;  // named: lambdas capture them (clang)
    auto pos = where.count(key) ? where.at(key) : stage_where;
    auto it = std::find_if(info.params.begin(), info.params.end(),
                           [&](const ParamSpec& p) { return p.name == key; });
    if (it == info.params.end())
      throw ConfigError(
          pos + ": plugin '" + info.name + "' has no parameter '" + key + "'" +
          (names.empty() ? std::string("; it takes no parameters") : did_you_mean(key, names)));
    const std::string bad = check_param_value(*it, text);
    if (!bad.empty())
      throw ConfigError(pos + ": parameter '" + key + "' of plugin '" + info.name + "' (" +
                        param_type_name(it->type) + "): " + bad);
    out.set(key, text);
  }
  for (const ParamSpec& p : info.params)
    if (!out.all().count(p.name)) out.set(p.name, p.default_value);
  return out;
}

void load_plugins(PluginRegistry& registry, const std::vector<std::string>& pipeline_dirs,
                  const std::vector<std::string>& extra, const std::vector<std::string>* needed) {
  namespace fs = std::filesystem;
  // Directories the user named must exist: a mistyped one would otherwise only show as a plugin
  // that is not found, far from the cause. (BPKIT_PLUGIN_PATH may list absent ones, like PATH.)
  for (const auto& [list, what] : {std::pair{&extra, "--plugin-path"},
                                   std::pair{&pipeline_dirs, "plugin_path (the pipeline file's)"}})
    for (const std::string& d : *list) {
      std::error_code ec;
      if (!fs::exists(d, ec))
        throw PluginError(std::string(what) + " " + d + ": no such file or directory");
    }
  std::vector<std::string> dirs = PluginRegistry::default_directories();
  dirs.insert(dirs.end(), pipeline_dirs.begin(), pipeline_dirs.end());
  dirs.insert(dirs.end(), extra.begin(), extra.end());
  const std::function<bool()> done = [&] {
    return needed && std::all_of(needed->begin(), needed->end(),
                                 [&](const std::string& n) { return registry.find(n); });
  };
  std::vector<std::string> seen;
  for (const std::string& d : dirs) {
    if (done()) return;
    std::error_code ec;
    const std::string canon = fs::weakly_canonical(d, ec).string();
    if (std::find(seen.begin(), seen.end(), canon) != seen.end()) continue;
    seen.push_back(canon);
    if (fs::is_regular_file(d, ec))
      registry.load_library(d);
    else
      registry.add_directory(d, needed ? done : std::function<bool()>());
  }
}

std::vector<std::string> stage_plugins(const PipelineConfig& config) {
  std::vector<std::string> names;
  for (const StageConfig& st : config.stages) names.push_back(st.plugin);
  return names;
}

void load_model_plugins(PluginRegistry& registry, const PipelineConfig& config,
                        const std::vector<std::string>& extra, bool trust_plugin_path) {
  const std::vector<std::string> needed = stage_plugins(config);
  load_plugins(registry, trust_plugin_path ? config.plugin_path : std::vector<std::string>(), extra,
               &needed);
  if (trust_plugin_path || config.plugin_path.empty()) return;
  for (const StageConfig& st : config.stages) {
    if (registry.find(st.plugin)) continue;
    auto join = [](const std::vector<std::string>& dirs) {
      std::string s;
      for (const std::string& d : dirs) s += (s.empty() ? "" : ", ") + d;
      return s.empty() ? std::string("none found") : s;
    };
    std::string msg = st.where + ": no plugin named '" + st.plugin +
                      "' in the trusted plugin directories (built-in, $BPKIT_PLUGIN_PATH, "
                      "--plugin-path: " +
                      join(registry.directories()) +
                      "); the model's pipeline file asks for plugin libraries from " +
                      join(config.plugin_path) +
                      " (its plugin_path), which are not loaded for a model unless you allow it: "
                      "give --trust-model-plugins to run native code from there, or "
                      "--plugin-path DIR for a directory you trust (docs/security.md)";
    for (const std::string& p : registry.problems()) msg += "\n  skipped " + p;
    throw ConfigError(msg);
  }
}

Pipeline::Pipeline(const PipelineConfig& config, const PluginRegistry& registry,
                   bool network_input) {
  for (const StageConfig& sc : config.stages) {
    Stage st;
    st.plugin = sc.plugin;
    st.where = sc.where;
    const RegisteredPlugin* reg = registry.find(sc.plugin);
    if (!reg) {
      try {
        registry.get(sc.plugin);  // throws with suggestions and skipped libraries
      } catch (const PluginError& e) {
        throw ConfigError(sc.where + ": " + e.what());
      }
    }
    st.info = reg->info;
    st.file = reg->file;
    st.digest = reg->digest;
    st.params = validate_params(st.info, sc.params, sc.param_where, sc.where);
    st.object = registry.create(sc.plugin);
    try {
      st.object->configure(st.params);
    } catch (const ParamError& e) {
      const auto it = sc.param_where.find(e.key());
      throw ConfigError((it != sc.param_where.end() ? it->second : sc.where) + ": parameter '" +
                        e.key() + "' of plugin '" + sc.plugin + "': " + e.what());
    } catch (const std::exception& e) {
      throw ConfigError(sc.where + ": plugin '" + sc.plugin +
                        "' rejected its parameters: " + e.what());
    }
    // The first stage takes the inputs: files, or text (the manifest's first column itself).
    const bool first_ok =
        stages_.empty() && (st.info.consumes == Kind::kFile || st.info.consumes == Kind::kText);
    const Kind want = stages_.empty() ? Kind::kFile : stages_.back().info.produces;
    if (!first_ok && st.info.consumes != want) {
      if (stages_.empty())
        throw ConfigError(sc.where + ": the first stage reads the inputs, but plugin '" +
                          sc.plugin + "' consumes " + kind_name(st.info.consumes) +
                          "; start with a plugin that consumes file (a reader) or text");
      throw ConfigError(sc.where + ": stage '" + sc.plugin + "' consumes " +
                        kind_name(st.info.consumes) + ", but the stage before it ('" +
                        stages_.back().plugin + "') produces " + kind_name(want));
    }
    stages_.push_back(std::move(st));
  }
  if (stages_.empty()) throw ConfigError(config.file + ": the pipeline has no stages");
  if (network_input && !is_feature_kind(stages_.back().info.produces))
    throw ConfigError(stages_.back().where + ": the last stage ('" + stages_.back().plugin +
                      "') produces " + kind_name(stages_.back().info.produces) +
                      "; a network needs features or a sequence (add a stage that makes them)");
  for (const Stage& st : stages_) {
    signature_ += st.plugin + "@" + st.info.version + "#" + st.digest + "{";
    for (const auto& [k, v] : st.params.all()) signature_ += k + "=" + v + ";";
    signature_ += "}";
  }
}

Kind Pipeline::output_kind() const {
  return stages_.back().info.produces;
}

Value Pipeline::input_value(const std::string& input) const {
  Value v;
  v.kind = input_kind();
  v.path = input;
  if (v.kind == Kind::kText) v.text = input;
  return v;
}

Value Pipeline::run(const std::string& file, uint64_t seed) const {
  Value v = input_value(file);
  v.seed = seed;
  return run(std::move(v), 0);
}

std::vector<size_t> Pipeline::fit_stages() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < stages_.size(); ++i)
    if (stages_[i].object->fits()) out.push_back(i);
  return out;
}

void Pipeline::load_fit_state(size_t stage, const std::string& state) {
  Stage& st = stages_.at(stage);
  try {
    st.object->fit_load(state);
  } catch (const std::exception& e) {
    throw ConfigError(st.where + ": stage '" + st.plugin +
                      "' cannot use the statistics it was given: " + e.what());
  }
  signature_ += " fit" + std::to_string(stage) + "=" + std::to_string(state.size()) + ":" + state;
}

std::string Pipeline::fit(size_t stage, const std::vector<std::string>& files,
                          std::ostream* skipped) {
  Stage& st = stages_.at(stage);
  // Chunks keep memory bounded (a chunk's values at a time) and the order fixed.
  const size_t chunk = 512;
  for (size_t c0 = 0; c0 < files.size(); c0 += chunk) {
    const size_t n = std::min(chunk, files.size() - c0);
    std::vector<Value> values(n);
    std::vector<std::string> errors(n);
    parallel_for(int64_t(n), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        try {
          values[size_t(i)] = run(input_value(files[c0 + size_t(i)]), 0, stage);
        } catch (const std::exception& ex) {
          errors[size_t(i)] = ex.what();
        }
      }
    });
    for (size_t i = 0; i < n; ++i) {
      const std::string& file = files[c0 + i];
      if (errors[i].empty()) try {
          st.object->fit_add(values[i]);
        } catch (const std::exception& e) {
          errors[i] = file + ": stage '" + st.plugin + "' cannot learn from it: " + e.what();
        }
      if (errors[i].empty()) continue;
      if (!skipped) throw StageError(errors[i], file);
      *skipped << "skipped " << errors[i] << " (while fitting stage '" << st.plugin << "')\n";
    }
  }
  std::string state;
  try {
    state = st.object->fit_finish();
  } catch (const std::exception& e) {
    throw ConfigError(st.where + ": stage '" + st.plugin + "' could not learn from the " +
                      std::to_string(files.size()) + " training samples: " + e.what());
  }
  load_fit_state(stage, state);
  return state;
}

bool Pipeline::has_random_stages() const {
  for (const Stage& st : stages_)
    if (st.object->random()) return true;
  return false;
}

Value Pipeline::run(Value v, size_t first, size_t last) const {
  const std::string file = v.path;
  std::error_code ec;
  if (v.kind == Kind::kFile && std::filesystem::is_directory(file, ec))
    throw StageError(file + ": a directory, not a file (name the files in it)", file);
  if (first < stages_.size() && v.kind != stages_[first].info.consumes)
    throw StageError(file + ": stage '" + stages_[first].plugin + "' consumes " +
                         kind_name(stages_[first].info.consumes) + ", but was given " +
                         kind_name(v.kind),
                     file);
  const uint64_t seed = v.seed;
  for (size_t i = first; i < std::min(last, stages_.size()); ++i) {
    const Stage& st = stages_[i];
    // Each stage its own stream (splitmix64 of seed and position); 0 stays 0: no augmentation.
    if (seed) {
      uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (i + 1);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      v.seed = (z ^ (z >> 31)) | 1;
    } else {
      v.seed = 0;
    }
    try {
      Value next = st.object->process(v);
      if (next.kind != st.info.produces)
        throw std::runtime_error(std::string("returned ") + kind_name(next.kind) +
                                 " but declares that it produces " + kind_name(st.info.produces));
      if (next.path.empty()) next.path = file;
      v = std::move(next);
    } catch (const StageError&) {
      throw;
    } catch (const std::exception& e) {
      throw StageError(file + ": stage '" + st.plugin + "' failed: " + e.what(), file);
    }
  }
  return v;
}

Kind Pipeline::input_kind() const {
  return !stages_.empty() && stages_[0].info.consumes == Kind::kText ? Kind::kText : Kind::kFile;
}

size_t Pipeline::first_consuming(Kind kind) const {
  for (size_t i = 0; i < stages_.size(); ++i)
    if (stages_[i].info.consumes == kind) return i;
  return stages_.size();
}

}  // namespace bpkit
