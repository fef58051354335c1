// Wording shared by error messages: "did you mean" suggestions for misspelled names (keys,
// plugins, layer kinds) and allowed ranges.
#pragma once

#include <string>
#include <vector>

namespace bpkit {

// Levenshtein distance (insertions, deletions, substitutions, each cost 1).
size_t edit_distance(const std::string& a, const std::string& b);
// "; did you mean 'x'?" for the closest candidate within a distance of about a third of the word
// (at least 2), else "; expected one of: a, b, c" (at most 12 listed), or "" without candidates.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
// "between LO and HI", "at least LO", "at most HI" or "any number"; a bound beyond ±1e300
// counts as none.
std::string describe_range(double lo, double hi);

}  // namespace bpkit
