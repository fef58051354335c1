#include "bpkit/attrs.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "bpkit/error.h"

namespace bpkit {

Attrs& Attrs::set(const std::string& key, const std::string& value) {
  for (auto& kv : items_)
    if (kv.first == key) {
      kv.second = value;
      return *this;
    }
  items_.emplace_back(key, value);
  return *this;
}

Attrs& Attrs::set(const std::string& key, double value) {
  // The shortest precision that reads back exactly: "0.1", not "0.10000000000000001".
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return set(key, std::string(buf));
}

Attrs& Attrs::set(const std::string& key, long long value) {
  return set(key, std::to_string(value));
}

void Attrs::note_read(const std::string& key) const {
  if (std::find(read_->begin(), read_->end(), key) == read_->end()) read_->push_back(key);
}

bool Attrs::has(const std::string& key) const {
  note_read(key);
  for (const auto& kv : items_)
    if (kv.first == key) return true;
  return false;
}

std::string Attrs::get_string(const std::string& key, const std::string& fallback) const {
  note_read(key);
  for (const auto& kv : items_)
    if (kv.first == key) return kv.second;
  return fallback;
}

double Attrs::get_double(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  const std::string v = get_string(key, "");
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0')
    throw ShapeError(context + ": attribute '" + key + "' must be a number, got '" + v + "'");
  return d;
}

long long Attrs::get_int(const std::string& key, long long fallback) const {
  if (!has(key)) return fallback;
  const std::string v = get_string(key, "");
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0')
    throw ShapeError(context + ": attribute '" + key + "' must be an integer, got '" + v + "'");
  if (errno == ERANGE)
    throw ShapeError(context + ": attribute '" + key + "' is out of range, got '" + v + "'");
  return i;
}

long long Attrs::get_int(const std::string& key, long long fallback, long long lo,
                         long long hi) const {
  const long long i = get_int(key, fallback);
  if (i < lo || i > hi)
    throw ShapeError(context + ": attribute '" + key + "' must be an integer in " +
                     std::to_string(lo) + ".." + std::to_string(hi) + ", got '" +
                     get_string(key, std::to_string(i)) + "'");
  return i;
}

std::string Attrs::to_string() const {
  std::string s;
  for (const auto& kv : items_) {
    if (!s.empty()) s += ' ';
    s += kv.first + '=' + kv.second;
  }
  return s;
}

Attrs Attrs::parse(const std::string& text) {
  Attrs a;
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    const size_t eq = tok.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ShapeError("malformed layer attribute '" + tok + "' (expected key=value)");
    a.set(tok.substr(0, eq), tok.substr(eq + 1));
  }
  return a;
}

}  // namespace bpkit
