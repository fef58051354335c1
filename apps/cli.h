// Command-line helpers shared by the apps: options, numbers, usage errors.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bpkit::cli {

// A mistake in the command line (exit code 2 in the apps).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The model named on the command line cannot be used: missing, not a model directory, damaged, or
// of the wrong kind for the input. Exit code 2 everywhere, like a usage mistake: the model is part
// of how the program was asked to run, not the data it was asked to process.
struct ModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Loads a model (TrainedModel, SignatureVerifier, ...) so that a failure is a ModelError.
template <class Model, class... Args>
std::unique_ptr<Model> open_model(Args&&... args) {
  try {
    return std::make_unique<Model>(std::forward<Args>(args)...);
  } catch (const ModelError&) {
    throw;
  } catch (const std::exception& e) {
    throw ModelError(e.what());
  }
}

// Parses --key value pairs (options in `known`) and --flag switches (in `flags`; -h stands for
// --help when "help" is one). A repeated option keeps every value (see all_values); lookups
// through the map see the last one. "--" ends the options: what follows is positional, even if it
// starts with '-'; any other argument starting with '-' (but "-" itself) is an unknown option.
inline std::map<std::string, std::string> parse_options(
    int argc, char** argv, int first, const std::vector<std::string>& known,
    std::vector<std::string>& positional, const std::vector<std::string>& flags = {},
    std::multimap<std::string, std::string>* all = nullptr) {
  std::map<std::string, std::string> opts;
  bool options = true;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (options && a == "--") {
      options = false;
      continue;
    }
    if (options && a == "-h" && std::find(flags.begin(), flags.end(), "help") != flags.end()) {
      opts["help"] = "1";
      continue;
    }
    if (options && a.size() > 1 && a[0] == '-' && a.rfind("--", 0) != 0)
      throw UsageError("unknown option '" + a + "'");
    if (options && a.rfind("--", 0) == 0) {
      const std::string key = a.substr(2);
      if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
        opts[key] = "1";
        continue;
      }
      if (std::find(known.begin(), known.end(), key) == known.end())
        throw UsageError("unknown option '" + a + "'");
      if (i + 1 >= argc) throw UsageError("option '" + a + "' needs a value");
      opts[key] = argv[++i];
      if (all) all->emplace(key, opts[key]);
    } else {
      positional.push_back(a);
    }
  }
  return opts;
}

inline std::vector<std::string> all_values(const std::multimap<std::string, std::string>& all,
                                           const std::string& key) {
  std::vector<std::string> out;
  for (auto [it, end] = all.equal_range(key); it != end; ++it) out.push_back(it->second);
  return out;
}

inline double number(const std::map<std::string, std::string>& o, const std::string& key,
                     double def) {
  auto it = o.find(key);
  if (it == o.end()) return def;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0')
    throw UsageError("--" + key + " expects a number, got '" + it->second + "'");
  return v;
}

inline long long integer(const std::map<std::string, std::string>& o, const std::string& key,
                         long long def, long long min, long long max = 1LL << 53) {
  const double v = number(o, key, double(def));
  // Range first: casting a value outside long long's range (or NaN) is undefined.
  if (!(v >= double(min) && v <= double(max)) || v != std::floor(v))
    throw UsageError("--" + key + " expects an integer in [" + std::to_string(min) + ", " +
                     std::to_string(max) + "], got '" + o.at(key) + "'");
  return static_cast<long long>(v);
}

}  // namespace bpkit::cli
