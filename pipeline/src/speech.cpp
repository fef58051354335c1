// The utterance recognizer; see speech.h.
#include "bpkit/speech.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/model_file.h"
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
    if (stages[i].info.produces == Kind::kAudio) audio_end_ = i + 1;
}

Utterance UtteranceRecognizer::recognize(const std::string& file) {
  const Pipeline& p = model_.pipeline();
  if (audio_end_ == 0) {  // no audio stage: features straight from the file
    Value v = p.run(file);
    return recognize_features(v.tensor);
  }
  Value audio = p.run(Value{Kind::kFile, file, {}, {}, {}, {}, {}}, 0, audio_end_);
  const double seconds = audio.audio.sample_rate > 0
                             ? double(audio.audio.samples.size()) / audio.audio.sample_rate
                             : 0;
  const double offset = audio.audio.offset;
  Value feats = p.run(std::move(audio), audio_end_);
  const int64_t frames = feats.tensor.rank() >= 1 ? feats.tensor.dim(0) : 0;
  Utterance u = recognize_features(feats.tensor, frames > 0 ? seconds / double(frames) : 0, offset);
  u.seconds = seconds;
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

void UtteranceRecognizer::write_spectrogram(const std::string& file, const Utterance& u,
                                            const std::string& png) const {
  // The file's audio through the model's reading stages (decoding, resampling; not the
  // endpointer, so that the picture covers the whole file), then 64 log-mel filters.
  const Pipeline& p = model_.pipeline();
  size_t read_end = 0;
  while (read_end < p.size() && p.stages()[read_end].info.consumes == Kind::kFile) ++read_end;
  if (read_end == 0 || p.stages()[read_end - 1].info.produces != Kind::kAudio)
    throw ConfigError(model_.config().file + ": the model's pipeline does not start with audio");
  const Value audio = p.run(Value{Kind::kFile, file, {}, {}, {}, {}, {}}, 0, read_end);
  // A pipeline's first stage reads files: audio.read, then the filterbank run from stage 1.
  const PipelineConfig c = parse_pipeline_config(
      "stages:\n  - plugin: audio.read\n  - plugin: audio.mfcc\n    params: {output: fbank, "
      "num_bins: 64, sample_rate: " +
          std::to_string(audio.audio.sample_rate) + "}\n",
      "(spectrogram)", "", false);
  const Pipeline fbank(c, model_.registry());
  const Value mel = fbank.run(audio, 1);
  const int t = int(mel.tensor.dim(0)), b = int(mel.tensor.dim(1));
  float top = -1e30f;
  for (int64_t i = 0; i < mel.tensor.size(); ++i) top = std::max(top, mel.tensor.data()[i]);
  const float range = float(std::log(1e8));  // 80 dB of power
  const int scale = 3, label_h = 40;
  cv::Mat gray(b, t, CV_8U);
  for (int x = 0; x < t; ++x)
    for (int y = 0; y < b; ++y) {
      const float v = (mel.tensor.data()[int64_t(x) * b + y] - (top - range)) / range;
      gray.at<uint8_t>(b - 1 - y, x) = uint8_t(std::clamp(v, 0.f, 1.f) * 255);
    }
  cv::Mat color, big;
  cv::applyColorMap(gray, color, cv::COLORMAP_INFERNO);
  cv::resize(color, big, cv::Size(t * scale, b * scale), 0, 0, cv::INTER_NEAREST);
  cv::Mat out(big.rows + label_h, big.cols, CV_8UC3, cv::Scalar(255, 255, 255));
  big.copyTo(out(cv::Rect(0, 0, big.cols, big.rows)));
  const double px_per_s = double(big.cols) / (double(t) * 0.01);
  for (const RecognizedWord& w : u.words) {
    const int x0 = int(w.start * px_per_s), x1 = std::max(x0 + 1, int(w.end * px_per_s));
    cv::rectangle(out, cv::Point(x0, 0), cv::Point(x1, big.rows - 1), cv::Scalar(255, 255, 255), 1);
    cv::putText(out, w.word, cv::Point(x0, big.rows + 26), cv::FONT_HERSHEY_SIMPLEX, 0.6,
                cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  std::vector<uchar> bytes;
  if (!cv::imencode(".png", out, bytes)) throw FileError(png + ": cannot encode the PNG");
  write_file_atomically(png, std::string(bytes.begin(), bytes.end()));
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
