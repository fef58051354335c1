// The utterance recognizer; see speech.h.
#include "bpkit/speech.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/trainer.h"

namespace bpkit {

UtteranceRecognizer::UtteranceRecognizer(const std::string& dir,
                                         const std::vector<std::string>& plugin_dirs)
    : model_(dir, plugin_dirs) {
  const PipelineConfig& c = model_.config();
  if (!model_.transcripts() || c.symbol_words.empty())
    throw ConfigError(dir +
                      ": not a word recognizer (a transcript model whose pipeline names each "
                      "symbol's word in decoder.words)");
  std::map<char, std::string> by_symbol(c.symbol_words.begin(), c.symbol_words.end());
  for (const std::string& sym : model_.classes()) {
    const auto it = by_symbol.find(sym[0]);
    if (it == by_symbol.end())
      throw ConfigError(dir + ": decoder.words has no word for the symbol '" + sym + "'");
    words_.push_back(it->second);
  }
  const auto& stages = model_.pipeline().stages();
  for (size_t i = 0; i < stages.size(); ++i)
    if (stages[i].info.produces == Kind::kAudio) {
      audio_end_ = i + 1;
      if (read_end_ == 0) read_end_ = i + 1;
    }
}

Utterance UtteranceRecognizer::recognize(const std::string& file) {
  const Pipeline& p = model_.pipeline();
  if (audio_end_ == 0) {  // no audio stage: features straight from the file
    Value v = p.run(file);
    return recognize_features(v.tensor);
  }
  auto seconds_of = [](const Audio& a) {
    return a.sample_rate > 0 ? double(a.samples.size()) / a.sample_rate : 0.0;
  };
  // The file's duration as read (before the endpointer cuts anything), then the audio the
  // network hears: its duration over the network's frames is the frame period.
  Value audio = p.run(Value{Kind::kFile, file, {}, {}, {}, {}, {}}, 0, read_end_);
  const double duration = seconds_of(audio.audio);
  audio = p.run(std::move(audio), read_end_, audio_end_);
  const double heard = seconds_of(audio.audio), offset = audio.audio.offset;
  Value feats = p.run(std::move(audio), audio_end_);
  const int64_t frames = feats.tensor.rank() >= 1 ? feats.tensor.dim(0) : 0;
  Utterance u = recognize_features(feats.tensor, frames > 0 ? heard / double(frames) : 0, offset);
  u.seconds = duration;
  return u;
}

Utterance UtteranceRecognizer::recognize_features(const Tensor<float>& features,
                                                  double frame_seconds, double offset) {
  const CtcResult r = model_.transcribe(features);
  Utterance u;
  u.confidence = r.confidence;
  for (const CtcSymbol& s : r.symbols) {
    RecognizedWord w;
    w.word = words_[size_t(s.label - 1)];
    w.start = offset + s.start * frame_seconds;
    w.end = offset + (s.end + 1) * frame_seconds;
    w.confidence = s.confidence;
    u.symbols += model_.classes()[size_t(s.label - 1)];
    if (!u.text.empty()) u.text += ' ';
    u.text += w.word;
    u.words.push_back(std::move(w));
  }
  return u;
}

Utterance UtteranceRecognizer::recognize_feature_file(const std::string& file, double frame_shift) {
  const Pipeline& p = model_.pipeline();
  const size_t first = p.first_consuming(Kind::kSequence);
  if (first >= p.size())
    throw ConfigError(model_.config().file +
                      ": the model's pipeline has no stage that takes a feature sequence, so it "
                      "cannot start from a feature file");
  if (!feature_reader_) {
    const PipelineConfig c = parse_pipeline_config("stages: [{plugin: sequence.read}]\n",
                                                   "(feature file reader)", "", false);
    feature_reader_ = std::make_unique<Pipeline>(c, model_.registry());
  }
  Value v = feature_reader_->run(file);
  const int64_t in_frames = v.tensor.rank() == 2 ? v.tensor.dim(0) : 0;
  Value feats = p.run(std::move(v), first);
  const int64_t frames = feats.tensor.rank() >= 1 ? feats.tensor.dim(0) : 0;
  const double seconds = double(in_frames) * frame_shift;
  Utterance u = recognize_features(feats.tensor, frames > 0 ? seconds / double(frames) : 0);
  u.seconds = seconds;
  return u;
}

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

void WordErrors::add(const std::vector<std::string>& hyp, const std::vector<std::string>& ref) {
  std::map<std::string, int32_t> ids;
  auto to_ids = [&](const std::vector<std::string>& ws) {
    std::vector<int32_t> v;
    for (const std::string& w : ws) v.push_back(ids.emplace(w, int32_t(ids.size())).first->second);
    return v;
  };
  const std::vector<int32_t> h = to_ids(hyp), r = to_ids(ref);
  const int64_t e = edit_distance(h, r);
  edits += e;
  words += int64_t(ref.size());
  ++sentences;
  sentences_right += e == 0;
}

}  // namespace bpkit
