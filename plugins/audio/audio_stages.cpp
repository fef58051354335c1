// The audio and sequence stages; see audio_stages.h.
#include "audio_stages.h"

#include <samplerate.h>
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "augment_dsp.h"
#include "bpkit/error.h"

namespace bpkit_audio {

using bpkit::Audio;
using bpkit::Kind;
using bpkit::ParamType;
using bpkit::PluginInfo;
using bpkit::Value;

namespace {

// A {T, F} sequence value carrying the input's path.
Value sequence(const Value& in, std::vector<float> data, int64_t frames, int64_t features) {
  Value v;
  v.kind = Kind::kSequence;
  v.path = in.path;
  v.tensor.resize({frames, features});
  std::copy(data.begin(), data.end(), v.tensor.data());
  return v;
}

void need_sequence(const Value& in) {
  if (in.tensor.rank() != 2 || in.tensor.dim(0) < 1 || in.tensor.dim(1) < 1)
    throw std::runtime_error("expected a sequence {frames, features}, got shape " +
                             bpkit::to_string(in.tensor.shape()));
}

struct SndFile {
  SNDFILE* f = nullptr;
  ~SndFile() {
    if (f) sf_close(f);
  }
};

}  // namespace

Audio read_audio(const std::string& path, double max_seconds, const bpkit::ReadWindow& window,
                 double margin, int out_rate, size_t* before, size_t* after) {
  SF_INFO info{};
  SndFile file;
  {
    // libsndfile reports a failed open through one process-wide error: read it under a lock, so
    // that threads opening bad files at once report their own.
    static std::mutex open_lock;
    std::lock_guard<std::mutex> lock(open_lock);
    if (::access(path.c_str(), R_OK) != 0)  // missing or not readable: the system's reason
      throw std::runtime_error("cannot open the file (" + bpkit::open_failure(path, errno) + ")");
    file.f = sf_open(path.c_str(), SFM_READ, &info);
    if (!file.f)
      throw std::runtime_error(
          std::string("not an audio file that libsndfile reads (WAV, FLAC, OGG, AIFF, ...): ") +
          sf_strerror(nullptr));
  }
  if (info.channels < 1 || info.channels > 64)
    throw std::runtime_error("the header says " + std::to_string(info.channels) +
                             " channels (expected 1 to 64)");
  if (info.samplerate < 1000 || info.samplerate > 384000)
    throw std::runtime_error("the header says " + std::to_string(info.samplerate) +
                             " Hz (expected 1000 to 384000)");
  if (info.frames <= 0) throw std::runtime_error("the file holds no audio samples");
  const double seconds = double(info.frames) / info.samplerate;
  const bool windowed = window.length > 0;
  // A window is bounded by max_seconds where it holds audio (the last one of a file may be asked
  // for longer than what is left).
  if (windowed && !(window.start >= 0 && std::isfinite(window.start) &&
                    std::min(window.length, std::max(0.0, seconds - window.start)) <= max_seconds))
    throw std::runtime_error("a read window of " + std::to_string(window.length) + " s from " +
                             std::to_string(window.start) +
                             " s (expected a start >= 0 and at "
                             "most max_seconds, " +
                             std::to_string(max_seconds) + " s)");
  if (!windowed && seconds > max_seconds)
    throw std::runtime_error("the header says " + std::to_string(seconds) +
                             " s of audio, more than max_seconds (" + std::to_string(max_seconds) +
                             "); raise max_seconds or split the recording");
  // The frames to read: [first, last) of the file's, clamped to what the header declares.
  sf_count_t first = 0, last = info.frames;
  size_t pre = 0, post = 0;
  if (windowed) {
    const auto at = [&](double t) {
      return sf_count_t(std::min(double(info.frames), std::llround(t * info.samplerate) * 1.0));
    };
    // The margin: a whole number of the resampler's periods (in_rate / gcd samples, which make a
    // whole number of output samples), so that every window starts on the output's sample grid.
    const sf_count_t period =
        out_rate > 0 ? info.samplerate / std::gcd(info.samplerate, out_rate) : 1;
    const sf_count_t from = at(window.start), to = at(window.start + window.length),
                     m = (sf_count_t(std::ceil(std::max(0.0, margin) * info.samplerate)) + period -
                          1) /
                         period * period;
    first = std::max<sf_count_t>(0, from - m);
    last = std::min(info.frames, to + m);
    pre = size_t(from - first);
    post = size_t(last - to);
    // A file holding less than its header claims (FLAC, MP3): no seek past its data, the end.
    if (first > 0 && sf_seek(file.f, first, SEEK_SET) != first) {
      Audio none;
      none.sample_rate = info.samplerate;
      none.source_seconds = seconds;
      none.offset = window.start;
      if (before) *before = 0;
      if (after) *after = 0;
      return none;
    }
  }
  Audio a;
  a.sample_rate = info.samplerate;
  a.source_seconds = seconds;
  a.offset = windowed ? window.start : 0;
  if (before) *before = pre;
  if (after) *after = post;
  if (last <= first) return a;  // a window past the end: no samples
  const size_t want = size_t(last - first);
  a.samples.reserve(want);
  std::vector<float> chunk(size_t(4096) * size_t(info.channels));
  sf_count_t got;
  while (a.samples.size() < want &&
         (got = sf_readf_float(file.f, chunk.data(),
                               std::min<sf_count_t>(4096, sf_count_t(want - a.samples.size())))) >
             0) {
    for (sf_count_t i = 0; i < got; ++i) {
      float s = 0;
      for (int c = 0; c < info.channels; ++c)
        s += chunk[size_t(i) * size_t(info.channels) + size_t(c)];
      a.samples.push_back(s / float(info.channels));
    }
  }
  // A window that reaches past the data a damaged file holds ends with what could be decoded.
  if (sf_error(file.f) != SF_ERR_NO_ERROR && !windowed)
    throw std::runtime_error(std::string("cannot decode the audio: ") + sf_strerror(file.f));
  if (a.samples.empty() && !windowed)
    throw std::runtime_error("the file holds no audio samples (truncated?)");
  if (windowed && a.samples.size() < want) {  // a truncated file: the margin after is what is lost
    const size_t lost = want - a.samples.size();
    if (after) *after = lost >= post ? 0 : post - lost;
  }
  for (float& s : a.samples)
    if (!std::isfinite(s)) s = 0;  // a float file's NaN/inf would poison every later frame
  return a;
}

Audio resample(const Audio& in, int rate, int quality) {
  if (rate == in.sample_rate || in.samples.empty()) return in;
  const double ratio = double(rate) / in.sample_rate;
  Audio out;
  out.sample_rate = rate;
  out.offset = in.offset;
  out.source_seconds = in.source_seconds;
  out.samples.resize(size_t(std::ceil(double(in.samples.size()) * ratio)) + 16);
  SRC_DATA d{};
  d.data_in = in.samples.data();
  d.input_frames = long(in.samples.size());
  d.data_out = out.samples.data();
  d.output_frames = long(out.samples.size());
  d.src_ratio = ratio;
  const int types[] = {SRC_SINC_BEST_QUALITY, SRC_SINC_MEDIUM_QUALITY, SRC_SINC_FASTEST};
  if (int err = src_simple(&d, types[std::clamp(quality, 0, 2)], 1))
    throw std::runtime_error(std::string("cannot resample: ") + src_strerror(err));
  out.samples.resize(size_t(d.output_frames_gen));
  return out;
}

// ---- audio.read -----------------------------------------------------------------------------

PluginInfo Read::info() {
  return {"audio.read",
          "1.0",
          "decodes an audio file with libsndfile (WAV PCM 8/16/24/32-bit and float, FLAC, OGG, "
          "AIFF, ...) to mono samples in [-1, 1] (channels averaged), resampled to `rate` with "
          "libsamplerate's band-limited sinc. The header is checked before any sample is read. "
          "Reads a long recording window by window when the caller asks (speech_app does)",
          Kind::kFile,
          Kind::kAudio,
          {{"rate", ParamType::kInt, "16000", "sample rate of the output (0: the file's own)", 0,
            384000},
           {"max_seconds", ParamType::kFloat, "600",
            "refuse longer files, or longer windows of a recording read window by window (a memory "
            "bound)",
            0.01, 86400},
           {"quality", {"best", "medium", "fastest"}, "medium", "resampler quality"}}};
}

void Read::configure(const bpkit::ParamValues& p) {
  rate_ = int(p.get_int("rate"));
  if (rate_ != 0 && rate_ < 1000) throw bpkit::ParamError("rate", "rate must be 0 or >= 1000 Hz");
  max_seconds_ = p.get_float("max_seconds");
  const std::string q = p.get_string("quality");
  quality_ = q == "best" ? 0 : q == "medium" ? 1 : 2;
}

Value Read::process(const Value& in) const {
  Value v;
  v.kind = Kind::kAudio;
  v.path = in.path;
  if (in.window.length <= 0) {
    v.audio = read_audio(in.path, max_seconds_);
    if (rate_ > 0) v.audio = resample(v.audio, rate_, quality_);
    return v;
  }
  // A window: read it with 50 ms on each side, resample, and cut those margins off again, so that
  // consecutive windows join as one read of the whole file would (the resampler's filter reaches
  // a few milliseconds past each sample).
  size_t before = 0, after = 0;
  Audio a = read_audio(in.path, max_seconds_, in.window, 0.05, rate_, &before, &after);
  const int from_rate = a.sample_rate;
  const size_t inside = a.samples.size() - std::min(a.samples.size(), before + after);
  if (rate_ > 0 && rate_ != from_rate && !a.samples.empty()) {
    a = resample(a, rate_, quality_);
    const double r = double(rate_) / from_rate;
    before = size_t(std::llround(double(before) * r));
    const size_t keep = size_t(std::llround(double(inside) * r));
    const size_t end = std::min(a.samples.size(), before + keep);
    a.samples.assign(a.samples.begin() + long(std::min(before, end)),
                     a.samples.begin() + long(end));
  } else {
    a.samples.assign(a.samples.begin() + long(std::min(before, a.samples.size())),
                     a.samples.begin() + long(std::min(a.samples.size(), before + inside)));
  }
  v.audio = std::move(a);
  return v;
}

// ---- audio.trim -----------------------------------------------------------------------------

PluginInfo Trim::info() {
  return {
      "audio.trim",
      "1.0",
      "endpointing: removes leading and trailing silence, i.e. the 10 ms frames whose energy is "
      "more than threshold_db below the loudest frame's, keeping `margin` seconds on each side",
      Kind::kAudio,
      Kind::kAudio,
      {{"threshold_db", ParamType::kFloat, "-40", "silence: this far below the loudest frame", -120,
        -1},
       {"margin", ParamType::kFloat, "0.1", "seconds kept around the speech", 0, 10}}};
}

void Trim::configure(const bpkit::ParamValues& p) {
  threshold_db_ = p.get_float("threshold_db");
  margin_ = p.get_float("margin");
}

Value Trim::process(const Value& in) const {
  const Audio& a = in.audio;
  const size_t hop = size_t(std::max(1, a.sample_rate / 100));
  const size_t n = a.samples.size(), frames = (n + hop - 1) / hop;
  std::vector<double> energy(frames, 0.0);
  double peak = 0;
  for (size_t f = 0; f < frames; ++f) {
    double e = 0;
    const size_t end = std::min(n, (f + 1) * hop);
    for (size_t i = f * hop; i < end; ++i) e += double(a.samples[i]) * a.samples[i];
    energy[f] = e / double(end - f * hop);
    peak = std::max(peak, energy[f]);
  }
  Value v = in;
  if (peak <= 0) return v;  // all zeros: nothing to find, left for the next stage to judge
  const double floor = peak * std::pow(10.0, threshold_db_ / 10.0);
  size_t first = 0, last = frames;
  while (first < frames && energy[first] < floor) ++first;
  while (last > first && energy[last - 1] < floor) --last;
  const size_t margin = size_t(margin_ * a.sample_rate);
  const size_t from = first * hop > margin ? first * hop - margin : 0;
  const size_t to = std::min(n, last * hop + margin);
  v.audio.samples.assign(a.samples.begin() + long(from), a.samples.begin() + long(to));
  v.audio.offset += double(from) / a.sample_rate;
  return v;
}

// ---- audio.mfcc -----------------------------------------------------------------------------

PluginInfo Mfcc::info() {
  return {"audio.mfcc",
          "1.0",
          "mel-frequency cepstral coefficients (or log-mel filterbank energies) per frame, "
          "{frames, features}. preset kaldi reproduces Kaldi's compute-mfcc-feats defaults "
          "(25 ms Povey windows every 10 ms, 23 filters from 20 Hz, 13 cepstra, lifter 22, C0 "
          "replaced by the log energy); preset sphinx reproduces sphinx_fe's (25.625 ms Hamming "
          "windows, 40 filters 133-6855 Hz, legacy DCT, 13 cepstra). Parameters at -1 keep the "
          "preset's value",
          Kind::kAudio,
          Kind::kSequence,
          {{"preset", {"kaldi", "sphinx"}, "kaldi", "the reference front end"},
           {"output", {"mfcc", "fbank"}, "mfcc", "cepstra, or the log-mel energies"},
           {"sample_rate", ParamType::kInt, "16000",
            "the audio's rate (audio.read's `rate` makes sure of it)", 4000, 192000},
           {"num_ceps", ParamType::kInt, "-1", "cepstra per frame", -1, 128},
           {"num_bins", ParamType::kInt, "-1", "mel filters", -1, 256},
           {"low_hz", ParamType::kFloat, "-1", "lowest filter edge", -1, 96000},
           {"high_hz", ParamType::kFloat, "-1",
            "highest filter edge (Hz; -1: the preset's, capped at Nyquist)", -1, 96000},
           {"lifter", ParamType::kFloat, "-1", "cepstral lifter Q (0: none)", -1, 1000},
           {"energy",
            {"preset", "log_energy", "c0"},
            "preset",
            "the first coefficient: the frame's log energy or C0"},
           {"window",
            {"preset", "povey", "hamming", "hann", "rectangular"},
            "preset",
            "the analysis window"},
           {"vtlp", ParamType::kFloat, "0",
            "training-time vocal-tract-length perturbation: the filters move by a factor drawn "
            "from [1 - vtlp, 1 + vtlp] per sample and epoch (0: none; makes the stage random)",
            0, 0.3},
           {"mel_masks", ParamType::kInt, "0",
            "training-time frequency masks before the DCT: this many bands of mel filters, each "
            "flattened to the line between its neighbours in every frame, drawn per sample and "
            "epoch (0: none; makes the stage random)",
            0, 8},
           {"mel_mask_width", ParamType::kInt, "6", "a mask's widest band, in filters", 1, 64}}};
}

void Mfcc::configure(const bpkit::ParamValues& p) {
  MfccOptions o = mfcc_preset(p.get_string("preset"), int(p.get_int("sample_rate")));
  o.fbank = p.get_string("output") == "fbank";
  if (p.get_int("num_ceps") >= 0) o.num_ceps = int(p.get_int("num_ceps"));
  if (p.get_int("num_bins") >= 0) o.num_bins = int(p.get_int("num_bins"));
  if (p.get_float("low_hz") >= 0) o.low_hz = p.get_float("low_hz");
  if (p.get_float("high_hz") >= 0) o.high_hz = p.get_float("high_hz");
  if (o.high_hz > o.sample_rate / 2.0) o.high_hz = o.sample_rate / 2.0;
  if (p.get_float("lifter") >= 0) o.lifter = p.get_float("lifter");
  const std::string e = p.get_string("energy"), w = p.get_string("window");
  if (e != "preset") o.use_energy = e == "log_energy";
  if (w == "povey") o.window = Window::kPovey;
  if (w == "hamming") o.window = Window::kHamming;
  if (w == "hann") o.window = Window::kHann;
  if (w == "rectangular") o.window = Window::kRectangular;
  vtlp_ = p.get_float("vtlp");
  mel_masks_ = int(p.get_int("mel_masks"));
  mel_mask_width_ = int(p.get_int("mel_mask_width"));
  if (mel_masks_ > 0 && mel_mask_width_ >= o.num_bins)
    throw bpkit::ParamError("mel_mask_width", "a mask of " + std::to_string(mel_mask_width_) +
                                                  " filters would cover all " +
                                                  std::to_string(o.num_bins));
  try {
    mfcc_ = std::make_unique<MfccComputer>(o);
  } catch (const std::invalid_argument& err) {
    // Blame the parameter the message is about, else the one most likely set.
    const std::string why = err.what();
    std::string key = "preset";
    for (const char* k : {"num_ceps", "num_bins", "low_hz", "high_hz", "lifter", "sample_rate"})
      if (why.find(k) != std::string::npos) {
        key = k;
        break;
      }
    if (key == "preset" && why.find("filter") != std::string::npos)
      key = p.get_int("num_bins") >= 0 ? "num_bins" : "sample_rate";
    throw bpkit::ParamError(key, why);
  }
}

Value Mfcc::process(const Value& in) const {
  const MfccOptions& o = mfcc_->options();
  if (in.audio.sample_rate != o.sample_rate)
    throw std::runtime_error("audio at " + std::to_string(in.audio.sample_rate) +
                             " Hz, but audio.mfcc is set for sample_rate " +
                             std::to_string(o.sample_rate) + " (give audio.read the same `rate`)");
  const long long n = (long long)in.audio.samples.size();
  const int frames = mfcc_frames(o, n);
  if (frames < 1)
    throw std::runtime_error("the audio is " + std::to_string(n) +
                             " samples long, shorter than one frame (" +
                             std::to_string(o.frame_length) + " samples)");
  double warp = 1.0;
  std::vector<std::pair<int, int>> masks;
  if (in.seed) {
    std::mt19937_64 rng(in.seed);
    if (vtlp_ > 0) warp = std::uniform_real_distribution<double>(1 - vtlp_, 1 + vtlp_)(rng);
    for (int m = 0; m < mel_masks_; ++m) {  // SpecAugment's frequency masks: width 0..W
      const int w = std::uniform_int_distribution<int>(0, mel_mask_width_)(rng);
      if (w == 0) continue;
      const int a = std::uniform_int_distribution<int>(0, o.num_bins - w)(rng);
      masks.emplace_back(a, a + w);
    }
  }
  return sequence(in, mfcc_->compute(in.audio.samples.data(), n, warp, masks), frames,
                  mfcc_->features());
}

// ---- sequence.deltas ------------------------------------------------------------------------

PluginInfo Deltas::info() {
  return {"sequence.deltas",
          "1.0",
          "appends deltas (order 1) and delta-deltas (order 2) over `window` frames on each side, "
          "as Kaldi's add-deltas: {T, F} -> {T, F (order + 1)}",
          Kind::kSequence,
          Kind::kSequence,
          {{"order", ParamType::kInt, "2", "1: deltas, 2: also delta-deltas", 1, 4},
           {"window", ParamType::kInt, "2", "frames on each side", 1, 10}}};
}

void Deltas::configure(const bpkit::ParamValues& p) {
  order_ = int(p.get_int("order"));
  window_ = int(p.get_int("window"));
}

Value Deltas::process(const Value& in) const {
  need_sequence(in);
  const int t = int(in.tensor.dim(0)), f = int(in.tensor.dim(1));
  std::vector<float> x(in.tensor.data(), in.tensor.data() + in.tensor.size());
  return sequence(in, add_deltas(x, t, f, order_, window_), t, int64_t(f) * (order_ + 1));
}

// ---- sequence.cmvn --------------------------------------------------------------------------

PluginInfo Cmvn::info() {
  return {"sequence.cmvn",
          "1.0",
          "per-utterance cepstral mean (and variance) normalization: each feature minus its mean "
          "over the utterance's frames (divided by its standard deviation with variance: true)",
          Kind::kSequence,
          Kind::kSequence,
          {{"variance", ParamType::kBool, "true", "also scale to unit variance"}}};
}

void Cmvn::configure(const bpkit::ParamValues& p) {
  variance_ = p.get_bool("variance");
}

Value Cmvn::process(const Value& in) const {
  need_sequence(in);
  const int64_t t = in.tensor.dim(0), f = in.tensor.dim(1);
  Value v = in;
  float* x = v.tensor.data();
  for (int64_t c = 0; c < f; ++c) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < t; ++i) s += x[i * f + c];
    const double mean = s / double(t);
    for (int64_t i = 0; i < t; ++i) {
      const double d = x[i * f + c] - mean;
      s2 += d * d;
    }
    // A constant feature (or one frame) keeps scale 1: normalizing it would divide by ~0.
    const double sd = std::sqrt(s2 / double(t));
    const double inv = variance_ && sd > 1e-5 ? 1.0 / sd : 1.0;
    for (int64_t i = 0; i < t; ++i) x[i * f + c] = float((x[i * f + c] - mean) * inv);
  }
  return v;
}

// ---- sequence.global_cmvn -------------------------------------------------------------------

PluginInfo GlobalCmvn::info() {
  return {"sequence.global_cmvn",
          "1.0",
          "global mean (and variance) normalization, a fit stage: bpkit train computes each "
          "feature's mean and standard deviation over every frame of the training set once and "
          "stores them in the model directory (fitted.yaml); every use of the model subtracts "
          "and divides by them. Unlike sequence.cmvn it keeps differences between utterances",
          Kind::kSequence,
          Kind::kSequence,
          {{"variance", ParamType::kBool, "true", "also scale to unit variance"}}};
}

void GlobalCmvn::configure(const bpkit::ParamValues& p) {
  variance_ = p.get_bool("variance");
}

void GlobalCmvn::fit_add(const Value& in) {
  need_sequence(in);
  const int64_t t = in.tensor.dim(0), f = in.tensor.dim(1);
  if (sum_.empty()) {
    sum_.assign(size_t(f), 0.0);
    sum2_.assign(size_t(f), 0.0);
  }
  if (size_t(f) != sum_.size())
    throw std::runtime_error(in.path + ": " + std::to_string(f) + " features per frame, but " +
                             "the first training sample has " + std::to_string(sum_.size()));
  const float* x = in.tensor.data();
  for (int64_t i = 0; i < t; ++i)
    for (int64_t c = 0; c < f; ++c) {
      sum_[size_t(c)] += x[i * f + c];
      sum2_[size_t(c)] += double(x[i * f + c]) * x[i * f + c];
    }
  frames_ += double(t);
}

std::string GlobalCmvn::fit_finish() {
  if (frames_ < 1) throw std::runtime_error("no training frames to learn from");
  std::ostringstream out;
  out.precision(9);
  out << "frames " << frames_ << "\nmean";
  std::vector<double> sd(sum_.size());
  for (size_t c = 0; c < sum_.size(); ++c) out << ' ' << sum_[c] / frames_;
  out << "\nstddev";
  for (size_t c = 0; c < sum_.size(); ++c) {
    const double m = sum_[c] / frames_;
    out << ' ' << std::sqrt(std::max(0.0, sum2_[c] / frames_ - m * m));
  }
  out << "\n";
  sum_.clear();
  sum2_.clear();
  frames_ = 0;
  const std::string state = out.str();
  fit_load(state);
  return state;
}

void GlobalCmvn::fit_load(const std::string& state) {
  std::istringstream in(state);
  std::string word, line;
  double frames = 0;
  std::vector<float> mean, sd;
  if (!(in >> word >> frames) || word != "frames" || !(frames >= 1))
    throw std::runtime_error("expected 'frames N' first");
  std::getline(in, line);
  for (auto* v : {&mean, &sd}) {
    if (!std::getline(in, line)) throw std::runtime_error("expected the mean and stddev lines");
    std::istringstream ls(line);
    ls >> word;
    if (word != (v == &mean ? "mean" : "stddev"))
      throw std::runtime_error("expected a '" + std::string(v == &mean ? "mean" : "stddev") +
                               "' line, got '" + word + "'");
    double d;
    while (ls >> d) {
      if (!std::isfinite(d) || (v == &sd && d < 0)) throw std::runtime_error("a bad statistic");
      v->push_back(float(d));
    }
    if (!ls.eof()) throw std::runtime_error("a value that is not a number");
  }
  if (mean.empty() || mean.size() != sd.size())
    throw std::runtime_error("the mean and stddev lines differ in length");
  mean_ = std::move(mean);
  inv_std_.resize(sd.size());
  // A feature constant over the training set keeps scale 1 (dividing by ~0 would blow it up).
  for (size_t c = 0; c < sd.size(); ++c)
    inv_std_[c] = variance_ && sd[c] > 1e-5f ? 1.f / sd[c] : 1.f;
}

Value GlobalCmvn::process(const Value& in) const {
  need_sequence(in);
  if (mean_.empty())
    throw std::runtime_error(
        "sequence.global_cmvn has no statistics: it learns them in bpkit train, and a model "
        "directory keeps them in fitted.yaml");
  const int64_t t = in.tensor.dim(0), f = in.tensor.dim(1);
  if (size_t(f) != mean_.size())
    throw std::runtime_error(std::to_string(f) +
                             " features per frame, but the statistics are "
                             "for " +
                             std::to_string(mean_.size()));
  Value v = in;
  float* x = v.tensor.data();
  for (int64_t i = 0; i < t; ++i)
    for (int64_t c = 0; c < f; ++c)
      x[i * f + c] = (x[i * f + c] - mean_[size_t(c)]) * inv_std_[size_t(c)];
  return v;
}

// ---- sequence.splice ------------------------------------------------------------------------

PluginInfo Splice::info() {
  return {"sequence.splice",
          "1.0",
          "frame stacking and subsampling (as low-frame-rate acoustic models): each kept frame "
          "becomes its `left` predecessors, itself and its `right` successors side by side (edge "
          "frames repeat), and only every `every`-th frame is kept: {T, F} -> {ceil(T / every), F "
          "(left + 1 + right)}",
          Kind::kSequence,
          Kind::kSequence,
          {{"left", ParamType::kInt, "1", "frames before", 0, 20},
           {"right", ParamType::kInt, "1", "frames after", 0, 20},
           {"every", ParamType::kInt, "3", "keep one frame in this many", 1, 20}}};
}

void Splice::configure(const bpkit::ParamValues& p) {
  left_ = int(p.get_int("left"));
  right_ = int(p.get_int("right"));
  every_ = int(p.get_int("every"));
}

Value Splice::process(const Value& in) const {
  need_sequence(in);
  const int64_t t = in.tensor.dim(0), f = in.tensor.dim(1), w = left_ + 1 + right_;
  const int64_t out_t = (t + every_ - 1) / every_;
  std::vector<float> y(size_t(out_t * f * w));
  const float* x = in.tensor.data();
  for (int64_t o = 0; o < out_t; ++o)
    for (int64_t k = -left_; k <= right_; ++k) {
      const int64_t src = std::clamp<int64_t>(o * every_ + k, 0, t - 1);
      std::copy(x + src * f, x + (src + 1) * f, y.data() + (o * w + k + left_) * f);
    }
  return sequence(in, std::move(y), out_t, f * w);
}

// ---- augmentation ---------------------------------------------------------------------------

namespace {

// The mean power of the speech: over the 10 ms frames within 30 dB of the loudest one, so that
// the silence around an utterance does not lower its power (and raise the noise's SNR).
double active_power(const std::vector<float>& x, int rate) {
  const size_t hop = size_t(std::max(1, rate / 100));
  std::vector<double> e;
  for (size_t i = 0; i < x.size(); i += hop) {
    double s = 0;
    const size_t end = std::min(x.size(), i + hop);
    for (size_t k = i; k < end; ++k) s += double(x[k]) * x[k];
    e.push_back(s / double(end - i));
  }
  const double peak = e.empty() ? 0 : *std::max_element(e.begin(), e.end());
  double sum = 0;
  size_t n = 0;
  for (double v : e)
    if (v >= peak * 1e-3) sum += v, ++n;
  return n ? sum / double(n) : 0;
}

double draw(std::mt19937_64& rng, double lo, double hi) {
  return lo < hi ? std::uniform_real_distribution<double>(lo, hi)(rng) : lo;
}

void range_params(const bpkit::ParamValues& p, const char* lo_key, const char* hi_key, double& lo,
                  double& hi) {
  lo = p.get_float(lo_key);
  hi = p.get_float(hi_key);
  if (hi < lo) throw bpkit::ParamError(hi_key, std::string(hi_key) + " is below " + lo_key);
}

}  // namespace

PluginInfo Noise::info() {
  return {"audio.noise",
          "1.0",
          "training-time augmentation (random stage): adds noise at an SNR drawn from [snr_min, "
          "snr_max] dB (against the speech's power: frames within 30 dB of the loudest) to a "
          "`probability` share of the samples, drawn anew every epoch. The noise "
          "comes from the audio files in `pool` (a directory; looped from a random position) or, "
          "without a pool, is white, pink or brown. At inference it passes audio through",
          Kind::kAudio,
          Kind::kAudio,
          {{"probability", ParamType::kFloat, "0.7", "share of samples that get noise", 0, 1},
           {"snr_min", ParamType::kFloat, "5", "lowest SNR (dB)", -10, 100},
           {"snr_max", ParamType::kFloat, "30", "highest SNR (dB)", -10, 100},
           {"pool", ParamType::kString, "", "directory of noise recordings (empty: synthetic)"},
           {"rate", ParamType::kInt, "16000", "the audio's rate (the pool is resampled to it)",
            1000, 384000}}};
}

void Noise::configure(const bpkit::ParamValues& p) {
  p_ = p.get_float("probability");
  range_params(p, "snr_min", "snr_max", snr_lo_, snr_hi_);
  pool_rate_ = int(p.get_int("rate"));
  pool_dir_ = p.get_string("pool");
}

const std::vector<std::vector<float>>& Noise::pool() const {
  std::call_once(pool_once_, [&] {
    if (pool_dir_.empty()) return;
    std::error_code ec;
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(pool_dir_, ec))
      if (e.is_regular_file()) files.push_back(e.path().string());
    if (ec) {
      pool_error_ = "cannot list the noise pool '" + pool_dir_ + "': " + ec.message();
      return;
    }
    std::sort(files.begin(), files.end());
    double seconds = 0;
    for (const std::string& f : files) {
      try {
        bpkit::Audio a = resample(read_audio(f, 3600), pool_rate_, 2);
        if (a.samples.empty() || mean_power(a.samples) <= 0) continue;  // nothing to add
        seconds += double(a.samples.size()) / pool_rate_;
        if (seconds > 3600) {
          pool_error_ = "the noise pool '" + pool_dir_ + "' holds more than an hour of audio";
          return;
        }
        pool_.push_back(std::move(a.samples));
      } catch (const std::exception& e) {
        pool_error_ = "noise pool file " + f + ": " + e.what();
        return;
      }
    }
    if (pool_.empty()) pool_error_ = "the noise pool '" + pool_dir_ + "' holds no usable audio";
  });
  if (!pool_error_.empty()) throw std::runtime_error(pool_error_);
  return pool_;
}

Value Noise::process(const Value& in) const {
  if (!in.seed) return in;
  std::mt19937_64 rng(in.seed);
  if (draw(rng, 0, 1) >= p_ || in.audio.samples.empty()) return in;
  const std::vector<std::vector<float>>& noises = pool();
  if (!noises.empty() && in.audio.sample_rate != pool_rate_)
    throw std::runtime_error("audio at " + std::to_string(in.audio.sample_rate) +
                             " Hz, but audio.noise's pool is at rate " +
                             std::to_string(pool_rate_));
  const size_t n = in.audio.samples.size();
  std::vector<float> noise;
  if (noises.empty()) {
    static const char* const colors[] = {"white", "pink", "brown"};
    noise = colored_noise(colors[std::uniform_int_distribution<int>(0, 2)(rng)], n,
                          in.audio.sample_rate, rng);
  } else {
    const std::vector<float>& src =
        noises[std::uniform_int_distribution<size_t>(0, noises.size() - 1)(rng)];
    const size_t off = std::uniform_int_distribution<size_t>(0, src.size() - 1)(rng);
    noise.resize(n);
    for (size_t i = 0; i < n; ++i) noise[i] = src[(off + i) % src.size()];
  }
  const double pn = mean_power(noise), ps = active_power(in.audio.samples, in.audio.sample_rate);
  Value v = in;
  if (pn <= 0 || ps <= 0) return v;
  const double snr = draw(rng, snr_lo_, snr_hi_);
  const float a = float(std::sqrt(ps / pn / std::pow(10.0, snr / 10)));
  for (size_t i = 0; i < n; ++i) v.audio.samples[i] += a * noise[i];
  return v;
}

PluginInfo Speed::info() {
  return {"audio.speed",
          "1.0",
          "training-time augmentation (random stage): speed perturbation of a `probability` share "
          "of the samples by a factor drawn from [min, max] (tempo and pitch together, as "
          "resampling does; Ko et al. 2015), drawn anew every epoch. At inference it passes audio "
          "through",
          Kind::kAudio,
          Kind::kAudio,
          {{"probability", ParamType::kFloat, "0.5", "share of samples perturbed", 0, 1},
           {"min", ParamType::kFloat, "0.9", "slowest factor", 0.5, 2},
           {"max", ParamType::kFloat, "1.1", "fastest factor", 0.5, 2}}};
}

void Speed::configure(const bpkit::ParamValues& p) {
  p_ = p.get_float("probability");
  range_params(p, "min", "max", lo_, hi_);
}

Value Speed::process(const Value& in) const {
  if (!in.seed) return in;
  std::mt19937_64 rng(in.seed);
  if (draw(rng, 0, 1) >= p_) return in;
  const double factor = draw(rng, lo_, hi_);
  Value v = in;
  // Played `factor` times faster: 1/factor as many samples, read back at the same rate.
  bpkit::Audio a = in.audio;
  a.sample_rate = int(std::lround(in.audio.sample_rate * factor));
  v.audio = resample(a, in.audio.sample_rate, 2);
  v.audio.offset = in.audio.offset;
  return v;
}

PluginInfo Reverb::info() {
  return {
      "audio.reverb",
      "1.0",
      "training-time augmentation (random stage): reverberation of a `probability` share of the "
      "samples by a random room response (Gaussian noise decaying 60 dB over an RT60 drawn "
      "from [rt60_min, rt60_max] seconds), drawn anew every epoch; the length stays. At "
      "inference it passes audio through",
      Kind::kAudio,
      Kind::kAudio,
      {{"probability", ParamType::kFloat, "0.3", "share of samples reverberated", 0, 1},
       {"rt60_min", ParamType::kFloat, "0.1", "shortest reverberation time (s)", 0.01, 5},
       {"rt60_max", ParamType::kFloat, "0.6", "longest reverberation time (s)", 0.01, 5}}};
}

void Reverb::configure(const bpkit::ParamValues& p) {
  p_ = p.get_float("probability");
  range_params(p, "rt60_min", "rt60_max", lo_, hi_);
}

Value Reverb::process(const Value& in) const {
  if (!in.seed) return in;
  std::mt19937_64 rng(in.seed);
  if (draw(rng, 0, 1) >= p_ || in.audio.samples.empty()) return in;
  const std::vector<float> h = room_response(draw(rng, lo_, hi_), in.audio.sample_rate, rng);
  Value v = in;
  v.audio.samples = fft_convolve(in.audio.samples, h);
  v.audio.samples.resize(in.audio.samples.size());
  // The same loudness as before: the response adds energy.
  const double before = mean_power(in.audio.samples), after = mean_power(v.audio.samples);
  if (after > 0)
    for (float& s : v.audio.samples) s = float(s * std::sqrt(before / after));
  return v;
}

PluginInfo Equalizer::info() {
  return {"audio.eq",
          "1.0",
          "training-time augmentation (random stage): a random channel for a `probability` share "
          "of the samples, drawn anew every epoch: a first-order spectral tilt y[n] = x[n] - a "
          "x[n-1] with a in [-tilt, tilt] (brighter or duller voices and microphones), then "
          "`bands` peaking filters at 150-6000 Hz of up to +-gain_db (resonances of other vocal "
          "tracts and rooms); the loudness stays. At inference it passes audio through",
          Kind::kAudio,
          Kind::kAudio,
          {{"probability", ParamType::kFloat, "0.5", "share of samples equalized", 0, 1},
           {"tilt", ParamType::kFloat, "0.5", "largest tilt coefficient", 0, 0.95},
           {"bands", ParamType::kInt, "2", "peaking filters", 0, 8},
           {"gain_db", ParamType::kFloat, "10", "largest boost or cut of a band (dB)", 0, 30}}};
}

void Equalizer::configure(const bpkit::ParamValues& p) {
  p_ = p.get_float("probability");
  tilt_ = p.get_float("tilt");
  bands_ = int(p.get_int("bands"));
  gain_db_ = p.get_float("gain_db");
}

Value Equalizer::process(const Value& in) const {
  if (!in.seed) return in;
  std::mt19937_64 rng(in.seed);
  if (draw(rng, 0, 1) >= p_ || in.audio.samples.empty()) return in;
  Value v = in;
  std::vector<float>& x = v.audio.samples;
  const double before = mean_power(x);
  const double a = draw(rng, -tilt_, tilt_);
  for (size_t i = x.size(); i-- > 1;) x[i] = float(x[i] - a * x[i - 1]);
  x[0] = float(x[0] * (1 - a));
  const double nyquist = in.audio.sample_rate / 2.0;
  for (int b = 0; b < bands_; ++b) {
    // An RBJ peaking biquad (Audio EQ Cookbook) at a log-uniform frequency.
    const double f =
        std::exp(draw(rng, std::log(150.0), std::log(std::min(6000.0, 0.9 * nyquist))));
    const double gain = draw(rng, -gain_db_, gain_db_), q = draw(rng, 0.7, 2.5);
    const double A = std::pow(10.0, gain / 40),
                 w = 2 * 3.14159265358979323846 * f / in.audio.sample_rate;
    const double alpha = std::sin(w) / (2 * q), c = std::cos(w);
    const double a0 = 1 + alpha / A;
    const double b0 = (1 + alpha * A) / a0, b1 = -2 * c / a0, b2 = (1 - alpha * A) / a0,
                 a1 = -2 * c / a0, a2 = (1 - alpha / A) / a0;
    biquad(x, b0, b1, b2, a1, a2);
  }
  const double after = mean_power(x);
  if (after > 0)
    for (float& s : x) s = float(s * std::sqrt(before / after));
  return v;
}

PluginInfo SpecAugment::info() {
  return {
      "sequence.specaugment",
      "1.0",
      "training-time augmentation (random stage): SpecAugment's masks (Park et al. 2019), drawn "
      "anew every epoch: `time_masks` runs of up to time_width x T frames and `feature_masks` "
      "runs of up to feature_width features set to 0 (the mean after normalization). At "
      "inference it passes sequences through",
      Kind::kSequence,
      Kind::kSequence,
      {{"time_masks", ParamType::kInt, "2", "masks over time", 0, 100},
       {"time_width", ParamType::kFloat, "0.05", "longest time mask, share of the frames", 0, 0.5},
       {"feature_masks", ParamType::kInt, "2", "masks over features", 0, 100},
       {"feature_width", ParamType::kInt, "4", "widest feature mask", 0, 1000}}};
}

void SpecAugment::configure(const bpkit::ParamValues& p) {
  time_masks_ = int(p.get_int("time_masks"));
  time_width_ = p.get_float("time_width");
  feature_masks_ = int(p.get_int("feature_masks"));
  feature_width_ = int(p.get_int("feature_width"));
}

Value SpecAugment::process(const Value& in) const {
  if (!in.seed) return in;
  need_sequence(in);
  std::mt19937_64 rng(in.seed);
  Value v = in;
  const int64_t t = v.tensor.dim(0), f = v.tensor.dim(1);
  float* x = v.tensor.data();
  const int64_t tw = int64_t(time_width_ * double(t));
  for (int m = 0; m < time_masks_ && tw > 0; ++m) {
    const int64_t w = std::uniform_int_distribution<int64_t>(0, tw)(rng);
    const int64_t s = std::uniform_int_distribution<int64_t>(0, t - w)(rng);
    std::fill(x + s * f, x + (s + w) * f, 0.f);
  }
  const int64_t fw = std::min<int64_t>(feature_width_, f);
  for (int m = 0; m < feature_masks_ && fw > 0; ++m) {
    const int64_t w = std::uniform_int_distribution<int64_t>(0, fw)(rng);
    const int64_t s = std::uniform_int_distribution<int64_t>(0, f - w)(rng);
    for (int64_t i = 0; i < t; ++i) std::fill(x + i * f + s, x + i * f + s + w, 0.f);
  }
  return v;
}

}  // namespace bpkit_audio
