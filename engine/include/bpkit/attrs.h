// Attrs: a layer's configuration as ordered key=value pairs. The model file stores a network's
// architecture as one line per layer ("dense name=fc1 units=256"), and the layer factory rebuilds a
// layer from the same pairs, so saving and loading share one description.
#pragma once

#include <memory>
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
  // An integer outside long long's range throws too (never clamped).
  long long get_int(const std::string& key, long long fallback) const;
  // The same, required to lie in [lo, hi]: any other value throws ShapeError naming `context`, the
  // key, the range and the value.
  long long get_int(const std::string& key, long long fallback, long long lo, long long hi) const;

  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  // Every key a getter or has() asked for so far: after a layer factory has read its
  // configuration, a key of items() missing here is one the layer does not know.
  // Copies share the record, so a factory that copies its Attrs still reports its reads.
  const std::vector<std::string>& keys_read() const { return *read_; }
  // "key=value key=value"; values never hold spaces.
  std::string to_string() const;
  // Parses to_string()'s output. Throws ShapeError on a token without '='.
  static Attrs parse(const std::string& text);

  std::string context;  // used in error messages, e.g. "layer 'fc1' (dense)"

 private:
  void note_read(const std::string& key) const;
  std::vector<std::pair<std::string, std::string>> items_;
  std::shared_ptr<std::vector<std::string>> read_ = std::make_shared<std::vector<std::string>>();
};

}  // namespace bpkit
