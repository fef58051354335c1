// Text stages: words and sentences as letter sequences, for models that read text (letters to
// sounds, plugins/text).
#pragma once

#include <bpkit/plugin.h>

#include <array>
#include <string>

namespace bpkit_text {

// text.letters: a word (or a line of words) → a sequence [T, window · (S + 1)], one frame per
// letter: the one-hot codes of the `window` letters centred on it (S symbols of the alphabet and
// one for "no letter", before the first and after the last), as NETtalk read its text through a
// window of seven letters. window 1 is the letter alone.
class Letters : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  std::string alphabet_;
  std::array<int, 256> index_{};  // byte → symbol + 1 (0: not in the alphabet)
  int window_ = 1;
  bool lowercase_ = true;
  long long max_letters_ = 256;
};

}  // namespace bpkit_text
