#include "text_stages.h"

#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace bpkit_text {

using bpkit::Kind;
using bpkit::ParamType;
using bpkit::Value;

namespace {

// A character of a message: printable ASCII as itself, other bytes as \xHH.
std::string shown(unsigned char c) {
  if (c >= 0x20 && c < 0x7f) return std::string(1, char(c));
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02X", c);
  return buf;
}

}  // namespace

bpkit::PluginInfo Letters::info() {
  return {
      "text.letters",
      "1.0",
      "one frame per letter of the text: the one-hot codes of the `window` letters centred on "
      "it (the alphabet's symbols and one for 'no letter' beyond the text's ends), as NETtalk "
      "read words through a 7-letter window; a character outside the alphabet is refused, "
      "naming it",
      Kind::kText,
      Kind::kSequence,
      {{"alphabet", ParamType::kString, "abcdefghijklmnopqrstuvwxyz'-.",
        "the symbols, one byte each (ASCII)", 0, 0},
       {"window", ParamType::kInt, "1",
        "letters seen per frame (odd): 1 the letter alone, 7 "
        "NETtalk's window",
        1, 31},
       {"lowercase", ParamType::kBool, "true", "fold A-Z to a-z first", 0, 0},
       {"max_letters", ParamType::kInt, "256", "refuse longer texts (memory bound)", 1, 1000000}}};
}

void Letters::configure(const bpkit::ParamValues& p) {
  alphabet_ = p.get_string("alphabet");
  window_ = int(p.get_int("window"));
  lowercase_ = p.get_bool("lowercase");
  max_letters_ = p.get_int("max_letters");
  if (alphabet_.empty()) throw bpkit::ParamError("alphabet", "the alphabet is empty");
  if (window_ % 2 == 0)
    throw bpkit::ParamError("window", "must be odd (the letter and as many on each side), got " +
                                          std::to_string(window_));
  index_.fill(0);
  for (size_t i = 0; i < alphabet_.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(alphabet_[i]);
    if (c < 0x21 || c > 0x7e)
      throw bpkit::ParamError(
          "alphabet", "holds '" + shown(c) + "': symbols are printable ASCII other than space");
    if (index_[c]) throw bpkit::ParamError("alphabet", "holds '" + shown(c) + "' twice");
    index_[c] = int(i) + 1;
  }
}

Value Letters::process(const Value& in) const {
  const std::string& text = in.text;
  if (text.empty()) throw std::runtime_error("the text is empty");
  if (int64_t(text.size()) > max_letters_)
    throw std::runtime_error("the text has " + std::to_string(text.size()) +
                             " characters, over max_letters (" + std::to_string(max_letters_) +
                             ")");
  std::vector<int> symbols;
  symbols.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (lowercase_ && c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    if (!index_[c])
      throw std::runtime_error(
          "the text '" + text + "' holds '" + shown(c) + "' at byte " + std::to_string(i + 1) +
          ", which is not in the alphabet '" + alphabet_ + "'" +
          (c >= 0x80 ? " (a non-ASCII character: the alphabet is ASCII)" : ""));
    symbols.push_back(index_[c] - 1);
  }
  const int64_t T = int64_t(symbols.size());
  const int64_t S = int64_t(alphabet_.size()) + 1;  // + "no letter"
  const int half = window_ / 2;
  Value out;
  out.kind = Kind::kSequence;
  out.path = in.path;
  out.tensor.resize({T, int64_t(window_) * S});
  out.tensor.zero();
  for (int64_t t = 0; t < T; ++t)
    for (int w = 0; w < window_; ++w) {
      const int64_t k = t + w - half;
      const int64_t symbol = k < 0 || k >= T ? S - 1 : symbols[size_t(k)];
      out.tensor[t * window_ * S + w * S + symbol] = 1.0f;
    }
  return out;
}

}  // namespace bpkit_text
