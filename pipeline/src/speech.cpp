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
                                         const std::vector<std::string>& plugin_dirs,
                                         bool trust_model_plugins)
    : model_(dir, plugin_dirs, trust_model_plugins) {
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

namespace {

double seconds_of(const Audio& a) {
  return a.sample_rate > 0 ? double(a.samples.size()) / a.sample_rate : 0.0;
}

// Cuts a stream of audio into utterances at pauses (UtteranceRecognizer::recognize_stream):
// holds the audio not yet handed out, in 10 ms frames, and their energies.
class Segmenter {
 public:
  Segmenter(int rate, const SegmentOptions& o)
      : o_(o), rate_(rate), hop_(size_t(std::max(1, rate / 100))) {}

  // Appends audio that starts where the last ended; calls cut(samples, offset) for each
  // utterance that is complete. `last`: the end of the recording.
  template <class Cut>
  void add(const std::vector<float>& x, bool last, Cut&& cut) {
    pending_.insert(pending_.end(), x.begin(), x.end());
    double peak = 0;
    for (size_t f = energy_.size(); (f + 1) * hop_ <= pending_.size(); ++f) {
      double e = 0;
      for (size_t i = f * hop_; i < (f + 1) * hop_; ++i) e += double(pending_[i]) * pending_[i];
      e /= double(hop_);
      energy_.push_back(e);
      peak = std::max(peak, e);
      floor_.push_back(e);
    }
    // The loudest frame of the last few chunks (a click long ago does not silence what follows),
    // the noise floor over the last minutes.
    peaks_.push_back(peak);
    if (peaks_.size() > 4) peaks_.erase(peaks_.begin());
    if (floor_.size() > 60000) floor_.erase(floor_.begin(), floor_.begin() + 30000);
    const size_t frames = energy_.size();
    if (frames == 0) {
      if (last) pending_.clear();
      return;
    }
    const double thr = threshold();
    const size_t min_pause = size_t(std::max(1.0, o_.min_pause * 100));
    const size_t max_frames = size_t(std::max(1.0, o_.max_utterance * 100));
    size_t start = 0;  // the current utterance's first frame
    size_t f = 0;
    while (f < frames) {
      if (energy_[f] > thr) {
        ++f;
        if (f - start >= max_frames) {  // too long without a pause: cut at its quietest 100 ms
          const size_t from = start + max_frames / 2;
          size_t best = f - 1;
          double best_e = 1e300;
          for (size_t g = from; g + 10 <= f; ++g) {
            double s = 0;
            for (size_t k = g; k < g + 10; ++k) s += energy_[k];
            if (s < best_e) best_e = s, best = g + 5;
          }
          emit(start, best, thr, cut);
          start = best;
          f = best;
        }
        continue;
      }
      size_t run = f;
      while (run < frames && energy_[run] <= thr) ++run;
      // A pause long enough ends the utterance: it keeps half the pause's minimum after its last
      // frame of speech, the next one as much before its first (the rest is nobody's).
      if (run == frames && last) {
        emit(start, std::min(frames, f + min_pause / 2), thr, cut);
        start = frames;
      } else if (run - f >= min_pause) {
        emit(start, f + min_pause / 2, thr, cut);
        start = run - min_pause / 2;
      }
      if (run == frames) break;  // a pause still going on: wait for more audio
      f = run;
    }
    if (last) {
      emit(start, frames, thr, cut);
      start = frames;
    }
    // Keep what is not handed out yet.
    const size_t drop = std::min(start * hop_, pending_.size());
    pending_.erase(pending_.begin(), pending_.begin() + long(drop));
    energy_.erase(energy_.begin(), energy_.begin() + long(start));
    offset_ += double(drop) / rate_;
    if (last) pending_.clear(), energy_.clear();
  }

 private:
  // Silence: at or below this mean power. Never below -90 dB full scale, so that digital silence
  // (all zeros: a peak and a floor of 0) is silence.
  double threshold() const {
    std::vector<double> e = floor_;
    const size_t k = e.size() / 10;
    std::nth_element(e.begin(), e.begin() + long(k), e.end());
    const double floor = e[k], peak = *std::max_element(peaks_.begin(), peaks_.end());
    return std::max({peak * std::pow(10.0, o_.silence_db / 10), floor * std::pow(10.0, 0.6), 1e-9});
  }
  // Hands out frames [a, b) when they hold speech (at least 50 ms above the threshold).
  template <class Cut>
  void emit(size_t a, size_t b, double thr, Cut&& cut) {
    size_t speech = 0;
    for (size_t f = a; f < b && f < energy_.size(); ++f) speech += energy_[f] > thr;
    if (speech < 5) return;
    const size_t from = a * hop_, to = std::min(pending_.size(), b * hop_);
    cut(std::vector<float>(pending_.begin() + long(from), pending_.begin() + long(to)),
        offset_ + double(from) / rate_);
  }

  SegmentOptions o_;
  int rate_;
  size_t hop_;
  std::vector<float> pending_;  // audio from offset_ on, not handed out yet
  std::vector<double> energy_;  // its 10 ms frames' mean power
  std::vector<double> floor_;   // recent frames' power, for the noise floor
  std::vector<double> peaks_;   // the loudest frame's power in each of the last chunks
  double offset_ = 0;
};

// Whether a recording holds speech as the segmenter hears it: at least 50 ms louder than 6 dB
// above its noise floor and within 35 dB of its loudest frame. Silence and steady noise do not.
bool holds_speech(const Audio& a) {
  if (a.samples.empty() || a.sample_rate <= 0) return false;
  bool any = false;
  Segmenter(a.sample_rate, SegmentOptions{}).add(a.samples, true, [&](std::vector<float>, double) {
    any = true;
  });
  return any;
}

}  // namespace

Utterance UtteranceRecognizer::recognize(const std::string& file) {
  const Pipeline& p = model_.pipeline();
  if (audio_end_ == 0) {  // no audio stage: features straight from the file
    Value v = p.run(file);
    return recognize_features(v.tensor);
  }
  Value in;
  in.path = file;
  Value audio = p.run(std::move(in), 0, read_end_);
  const double duration = seconds_of(audio.audio);
  return recognize_whole(std::move(audio), duration);
}

Utterance UtteranceRecognizer::recognize_whole(Value audio, double duration) {
  // No speech, no words (the grammar would otherwise force its fewest words out of silence).
  // Utterances cut from a longer recording passed the same test when they were cut.
  if (!holds_speech(audio.audio)) {
    Utterance none;
    none.confidence = 1;
    none.seconds = duration;
    return none;
  }
  return recognize_audio(std::move(audio), duration);
}

Utterance UtteranceRecognizer::recognize_audio(Value audio, double duration) {
  // The audio the network hears (after the endpointer): its duration over the network's frames
  // is the frame period.
  const Pipeline& p = model_.pipeline();
  audio = p.run(std::move(audio), read_end_, audio_end_);
  const double heard = seconds_of(audio.audio), offset = audio.audio.offset;
  Value feats = p.run(std::move(audio), audio_end_);
  const int64_t frames = feats.tensor.rank() >= 1 ? feats.tensor.dim(0) : 0;
  Utterance u = recognize_features(feats.tensor, frames > 0 ? heard / double(frames) : 0, offset);
  u.seconds = duration;
  return u;
}

double UtteranceRecognizer::recognize_stream(const std::string& file,
                                             const std::function<void(const Utterance&)>& emit,
                                             const SegmentOptions& o) {
  const Pipeline& p = model_.pipeline();
  if (audio_end_ == 0) {
    const Utterance u = recognize(file);
    emit(u);
    return u.seconds;
  }
  if (!(o.chunk_seconds >= 1 && o.max_utterance >= 1 && o.min_pause >= 0.05 &&
        o.min_pause < o.max_utterance))
    throw ConfigError(
        "segmenting: chunk_seconds and max_utterance must be at least 1 s, min_pause at least "
        "0.05 s and less than max_utterance");
  std::unique_ptr<Segmenter> seg;
  double duration = 0;
  int rate = 0;
  for (int64_t k = 0;; ++k) {
    Value in;
    in.path = file;
    in.window = {double(k) * o.chunk_seconds, o.chunk_seconds};
    Value chunk = p.run(std::move(in), 0, read_end_);
    const Audio& a = chunk.audio;
    if (k == 0) {
      // A reader that ignores windows gave the whole file (source_seconds unset): one utterance.
      const bool windowed = a.source_seconds > 0;
      duration = windowed ? a.source_seconds : seconds_of(a);
      if (!windowed || (duration <= o.chunk_seconds && !o.always)) {  // as recognize() would
        Utterance u = recognize_whole(std::move(chunk), duration);
        emit(u);
        return duration;
      }
      rate = a.sample_rate;
      seg = std::make_unique<Segmenter>(rate, o);
    }
    // The end: the header's length, or the first window without samples (a file that holds less
    // than its header claims).
    const bool last = double(k + 1) * o.chunk_seconds >= duration || a.samples.empty();
    if (!a.samples.empty() && a.sample_rate != rate)
      throw StageError(file + ": the reading stage gave " + std::to_string(a.sample_rate) +
                           " Hz in one window and " + std::to_string(rate) + " Hz in the first",
                       file);
    seg->add(a.samples, last, [&](std::vector<float> x, double offset) {
      Value v;
      v.kind = Kind::kAudio;
      v.path = file;
      v.audio.sample_rate = rate;
      v.audio.samples = std::move(x);
      v.audio.offset = offset;
      v.audio.source_seconds = duration;
      const double end = offset + seconds_of(v.audio);
      Utterance u;
      try {
        u = recognize_audio(std::move(v), duration);
      } catch (const StageError& e) {
        // One utterance the stages cannot take (e.g. a click too short to make a frame) does not
        // stop the rest of a long recording: it is handed out with its error and no words.
        u = Utterance{};
        u.seconds = duration;
        u.error = e.what();
      }
      u.start = offset;
      u.end = end;
      emit(u);
    });
    if (last) break;
  }
  return duration;
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
