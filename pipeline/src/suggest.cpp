#include "bpkit/suggest.h"

#include <algorithm>
#include <numeric>
#include <sstream>

namespace bpkit {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t(0));
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  if (candidates.empty()) return "";
  // The closest by edit distance; among equals, the one sharing the longest prefix ("unit" is
  // "units" rather than "init").
  const std::string* best = nullptr;
  size_t best_d = size_t(-1), best_prefix = 0;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    size_t prefix = 0;
    while (prefix < word.size() && prefix < c.size() && word[prefix] == c[prefix]) ++prefix;
    if (d < best_d || (d == best_d && prefix > best_prefix))
      best_d = d, best = &c, best_prefix = prefix;
  }
  if (best && best_d <= std::max<size_t>(2, word.size() / 3))
    return "; did you mean '" + *best + "'?";
  std::string list;
  for (size_t i = 0; i < candidates.size() && i < 12; ++i) list += (i ? ", " : "") + candidates[i];
  if (candidates.size() > 12) list += ", ...";
  return "; expected one of: " + list;
}

std::string describe_range(double lo, double hi) {
  std::ostringstream os;
  if (lo <= -1e300 && hi >= 1e300) return "any number";
  if (lo <= -1e300)
    os << "at most " << hi;
  else if (hi >= 1e300)
    os << "at least " << lo;
  else
    os << "between " << lo << " and " << hi;
  return os.str();
}

}  // namespace bpkit
