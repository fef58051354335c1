// Attrs: a layer's configuration as ordered key=value pairs. The model file stores a network's
// architecture as one line per layer ("dense name=fc1 units=256"), and the layer factory rebuilds a
// layer from the same pairs, so saving and loading share one description.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace bpkit {

class Attrs {
 public:
  Attrs() = default;
  Attrs& set(const std::string& key, const std::string& value);
  Attrs& set(const std::string& key, double value);
  Attrs& set(const std::string& key, long long value);
  Attrs& set(const std::string& key, int value) { return set(key, static_cast<long long>(value)); }

  bool has(const std::string& key) const;
  // Typed getters. A missing key returns the fallback; a value of the wrong type throws ShapeError
  // naming `context`, the key and the value.
  std::string get_string(const std::string& key, const std::string& fallback) const;
  double get_double(const std::string& key, double fallback) const;
  long long get_int(const std::string& key, long long fallback) const;

  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  // "key=value key=value"; values never hold spaces.
  std::string to_string() const;
  // Parses to_string()'s output. Throws ShapeError on a token without '='.
  static Attrs parse(const std::string& text);

  std::string context;  // used in error messages, e.g. "layer 'fc1' (dense)"

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

}  // namespace bpkit
