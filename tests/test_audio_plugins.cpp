// The built-in audio plugin library (plugins/audio), loaded from the build's plugin directory as
// bpkit loads it: decoding of every sample format libsndfile writes, mixing down, anti-aliased
// resampling, hostile and broken files, endpointing, and the sequence stages. (The MFCC arithmetic
// against the reference front ends is in test_audio.cpp.)
#include <sndfile.h>
#include <sys/resource.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/pipeline.h"
#include "bpkit/plugin_host.h"
#include "bpkit/speech.h"
#include "bpkit/train.h"
#include "plugin_stage.h"
#include "temp_dir.h"

using bpkit::Kind;
using bpkit::Value;
using Catch::Matchers::Contains;

namespace {

constexpr double kPi = 3.14159265358979323846;
const std::string kPluginDir = BPKIT_AUDIO_PLUGIN_DIR;

const bpkit::PluginRegistry& registry() {
  static const bpkit::PluginRegistry reg = [] {
    bpkit::PluginRegistry r;
    r.load_library(kPluginDir + "/libbpkit_audio.so");
    return r;
  }();
  return reg;
}

using bpkit_test::file_value;
using bpkit_test::max_rss_kb;
using bpkit_test::Params;

std::shared_ptr<bpkit::FeaturePlugin> stage(const std::string& name, const Params& params = {}) {
  return bpkit_test::configured_stage(registry(), name, params);
}

Value audio_value(std::vector<float> samples, int rate) {
  Value v;
  v.kind = Kind::kAudio;
  v.path = "test";
  v.audio.sample_rate = rate;
  v.audio.samples = std::move(samples);
  return v;
}

std::vector<float> tone(double hz, double amplitude, int rate, int n) {
  std::vector<float> x(size_t(n), 0.f);
  for (int i = 0; i < n; ++i) x[size_t(i)] = float(amplitude * std::sin(2 * kPi * hz * i / rate));
  return x;
}

// Writes interleaved frames with libsndfile in `format`.
void write_sound(const std::string& path, const std::vector<float>& interleaved, int channels,
                 int rate, int format) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE(f != nullptr);
  REQUIRE(
      sf_writef_float(f, interleaved.data(), sf_count_t(interleaved.size() / size_t(channels))) ==
      sf_count_t(interleaved.size() / size_t(channels)));
  sf_close(f);
}

// The amplitude of the `hz` component of x (a single-bin DFT over whole periods' worth).
double amplitude_at(const std::vector<float>& x, double hz, int rate, size_t from = 0) {
  double re = 0, im = 0;
  const size_t n = x.size() - from;
  for (size_t i = 0; i < n; ++i) {
    re += x[from + i] * std::cos(2 * kPi * hz * double(i) / rate);
    im += x[from + i] * std::sin(2 * kPi * hz * double(i) / rate);
  }
  return 2 * std::sqrt(re * re + im * im) / double(n);
}

}  // namespace

TEST_CASE("audio.read decodes every sample format and mixes channels down", "[audio]") {
  bpkit_test::TempDir dir("audio-read");
  const int rate = 16000, n = 8000;
  const std::vector<float> left = tone(440, 0.5, rate, n);
  std::vector<float> stereo(size_t(2 * n));
  for (int i = 0; i < n; ++i) {
    stereo[size_t(2 * i)] = left[size_t(i)];
    stereo[size_t(2 * i + 1)] = 0.5f * left[size_t(i)];
  }
  struct Case {
    const char* name;
    int format;
    double tolerance;  // max |error| of a sample: the format's quantization step
  };
  const Case cases[] = {
      {"u8.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1.0 / 64},
      {"s16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1.0 / 16384},
      {"s24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1e-6},
      {"s32.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 1e-7},
      {"f32.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1e-7},
      {"s16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1.0 / 16384},
      {"s16.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 1.0 / 16384},
  };
  auto read = stage("audio.read", {{"rate", "0"}});
  for (const Case& c : cases) {
    INFO(c.name);
    write_sound(dir.file(c.name), stereo, 2, rate, c.format);
    const Value v = read->process(file_value(dir.file(c.name)));
    REQUIRE(v.kind == Kind::kAudio);
    REQUIRE(v.audio.sample_rate == rate);
    REQUIRE(v.audio.samples.size() == size_t(n));
    double worst = 0;
    for (int i = 0; i < n; ++i)
      worst =
          std::max(worst, std::fabs(double(v.audio.samples[size_t(i)]) - 0.75 * left[size_t(i)]));
    CHECK(worst <= c.tolerance);
  }
  // Ogg Vorbis is lossy: the tone survives, at its amplitude.
  write_sound(dir.file("v.ogg"), stereo, 2, rate, SF_FORMAT_OGG | SF_FORMAT_VORBIS);
  const Value v = read->process(file_value(dir.file("v.ogg")));
  REQUIRE(v.audio.samples.size() == size_t(n));
  CHECK(amplitude_at(v.audio.samples, 440, rate, 1000) == Approx(0.375).epsilon(0.05));
}

TEST_CASE("audio.read resamples to the pipeline's rate without aliasing", "[audio]") {
  bpkit_test::TempDir dir("audio-resample");
  const int in_rate = 44100, n = 44100;
  // 1 kHz belongs in the output; 12 kHz is above the 8 kHz Nyquist of 16 kHz and would fold to
  // 4 kHz without the anti-aliasing filter.
  std::vector<float> x = tone(1000, 0.4, in_rate, n);
  const std::vector<float> high = tone(12000, 0.4, in_rate, n);
  for (int i = 0; i < n; ++i) x[size_t(i)] += high[size_t(i)];
  write_sound(dir.file("a.wav"), x, 1, in_rate, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  for (const char* quality : {"best", "medium", "fastest"}) {
    INFO(quality);
    const Value v = stage("audio.read", {{"rate", "16000"}, {"quality", quality}})
                        ->process(file_value(dir.file("a.wav")));
    REQUIRE(v.audio.sample_rate == 16000);
    REQUIRE(std::abs(long(v.audio.samples.size()) - 16000) <= 1);
    CHECK(amplitude_at(v.audio.samples, 1000, 16000, 400) == Approx(0.4).epsilon(0.01));
    CHECK(amplitude_at(v.audio.samples, 4000, 16000, 400) < 0.4 * 1e-3);  // -60 dB
  }
}

TEST_CASE("audio.read reads a recording window by window as one read of the whole file",
          "[audio]") {
  bpkit_test::TempDir dir("audio-window");
  // 7.03 s, stereo: a sweep and a tone; at 22.05 and 11.025 kHz the resampler's period to 16 kHz
  // (441 input samples) does not divide 50 ms, the reader's margin.
  for (const int in_rate : {44100, 22050, 11025})
    for (const char* rate : {"16000", "0"}) {
      INFO("from " << in_rate << " Hz to rate " << rate);
      const int n = in_rate * 7 + 1234;
      std::vector<float> x(size_t(n) * 2);
      for (int i = 0; i < n; ++i) {
        const double t = double(i) / in_rate;
        x[size_t(2 * i)] = float(0.3 * std::sin(2 * M_PI * (200 * t + 300 * t * t)));
        x[size_t(2 * i + 1)] = float(0.2 * std::sin(2 * M_PI * 3000 * t));
      }
      write_sound(dir.file("a.wav"), x, 2, in_rate, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
      auto read = stage("audio.read", {{"rate", rate}, {"max_seconds", "3"}});
      CHECK_THROWS_WITH(read->process(file_value(dir.file("a.wav"))), Contains("max_seconds"));
      auto whole_reader = stage("audio.read", {{"rate", rate}});
      const Value whole = whole_reader->process(file_value(dir.file("a.wav")));
      std::vector<float> joined;
      for (int k = 0;; ++k) {
        Value in = file_value(dir.file("a.wav"));
        in.window = {2.0 * k, 2.0};
        const Value v = read->process(in);
        CHECK(v.audio.offset == 2.0 * k);
        CHECK(v.audio.source_seconds == Approx(double(n) / in_rate));
        CHECK(v.audio.sample_rate == whole.audio.sample_rate);
        if (v.audio.samples.empty()) break;
        if (k < 3) CHECK(v.audio.samples.size() == size_t(2 * v.audio.sample_rate));
        joined.insert(joined.end(), v.audio.samples.begin(), v.audio.samples.end());
        REQUIRE(k < 10);
      }
      REQUIRE(std::abs(long(joined.size()) - long(whole.audio.samples.size())) <= 1);
      double worst = 0;
      for (size_t i = 0; i < std::min(joined.size(), whole.audio.samples.size()); ++i)
        worst = std::max(worst, double(std::fabs(joined[i] - whole.audio.samples[i])));
      CHECK(worst < 2e-4);  // the joins are seamless: the resampler saw the margins
      // A window longer than max_seconds is refused; a negative start too.
      Value big = file_value(dir.file("a.wav"));
      big.window = {0, 4};
      CHECK_THROWS_WITH(read->process(big), Contains("read window") && Contains("max_seconds"));
      big.window = {-1, 2};
      CHECK_THROWS_WITH(read->process(big), Contains("read window"));
      // The last window may be asked for longer than max_seconds when less than that is left.
      big.window = {6, 5};
      CHECK(read->process(big).audio.samples.size() > 0);
    }
}

TEST_CASE("audio.read refuses what is not audio, empty, too long or damaged", "[audio]") {
  bpkit_test::TempDir dir("audio-bad");
  auto read = stage("audio.read", {{"max_seconds", "1"}});
  auto fails_with = [&](const std::string& path, const std::string& what) {
    INFO(path);
    CHECK_THROWS_WITH(read->process(file_value(path)), Contains(what));
  };
  std::ofstream(dir.file("text.wav")) << "this is not a sound file\n";
  fails_with(dir.file("text.wav"), "not an audio file");
  std::ofstream(dir.file("empty.wav")).close();
  fails_with(dir.file("empty.wav"), "not an audio file");
  fails_with(dir.file("missing.wav"), "cannot open the file (No such file or directory)");
  write_sound(dir.file("silent.wav"), {}, 1, 16000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  fails_with(dir.file("silent.wav"), "no audio samples");
  write_sound(dir.file("long.wav"), std::vector<float>(2 * 16000, 0.f), 1, 16000,
              SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  fails_with(dir.file("long.wav"), "more than max_seconds");

  // A header claiming 4 GB of data over a few samples: read as the samples there are, without
  // allocating for the claim.
  {
    write_sound(dir.file("claim.wav"), tone(440, 0.5, 16000, 1600), 1, 16000,
                SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    std::fstream f(dir.file("claim.wav"), std::ios::in | std::ios::out | std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto at = std::search(bytes.begin(), bytes.end(), "data", "data" + 4) - bytes.begin();
    REQUIRE(at + 8 < long(bytes.size()));
    const uint32_t claim = 0xfffffff0u;
    f.seekp(at + 4);
    f.write(reinterpret_cast<const char*>(&claim), 4);  // little-endian hosts (x86-64, arm64)
    f.close();
    const long before = max_rss_kb();
    auto lenient = stage("audio.read", {{"max_seconds", "86400"}});
    try {
      const Value v = lenient->process(file_value(dir.file("claim.wav")));
      CHECK(v.audio.samples.size() <= 1600);
    } catch (const std::runtime_error& e) {
      CHECK_THAT(e.what(), Contains("audio"));
    }
    CHECK(max_rss_kb() - before < 64 * 1024);
  }
  // Truncated in the middle of the samples: the samples that are there.
  {
    write_sound(dir.file("cut.wav"), tone(440, 0.5, 16000, 16000), 1, 16000,
                SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    std::filesystem::resize_file(dir.file("cut.wav"), 44 + 2 * 4000);
    const Value v = read->process(file_value(dir.file("cut.wav")));
    CHECK(v.audio.samples.size() == 4000);
  }
}

TEST_CASE("audio.trim cuts leading and trailing silence and records the offset", "[audio]") {
  const int rate = 16000;
  std::vector<float> x(size_t(rate / 2), 0.f);                       // 0.5 s silence
  const std::vector<float> t = tone(300, 0.5, rate, rate * 3 / 10);  // 0.3 s tone
  x.insert(x.end(), t.begin(), t.end());
  x.insert(x.end(), size_t(rate * 4 / 10), 0.f);  // 0.4 s silence
  for (size_t i = 0; i < x.size(); ++i) x[i] += 1e-4f * float((i * 7919) % 13) / 13.f;  // a floor
  const Value v = stage("audio.trim", {{"margin", "0.1"}})->process(audio_value(x, rate));
  CHECK(double(v.audio.samples.size()) / rate == Approx(0.5).margin(0.011));
  CHECK(v.audio.offset == Approx(0.4).margin(0.011));
  // All silence: left as it is.
  const Value z = stage("audio.trim")->process(audio_value(std::vector<float>(800, 0.f), rate));
  CHECK(z.audio.samples.size() == 800);
}

TEST_CASE("audio.mfcc makes frames of the audio at its rate and refuses another", "[audio]") {
  const int rate = 16000;
  const Value a = audio_value(tone(500, 0.3, rate, 16000), rate);
  const Value k = stage("audio.mfcc")->process(a);
  REQUIRE(k.kind == Kind::kSequence);
  CHECK(k.tensor.shape() == bpkit::Shape{1 + (16000 - 400) / 160, 13});
  const Value s = stage("audio.mfcc", {{"preset", "sphinx"}})->process(a);
  CHECK(s.tensor.dim(1) == 13);
  const Value f = stage("audio.mfcc", {{"output", "fbank"}, {"num_bins", "40"}})->process(a);
  CHECK(f.tensor.dim(1) == 40);
  CHECK_THROWS_WITH(stage("audio.mfcc")->process(audio_value(tone(500, 0.3, 8000, 8000), 8000)),
                    Contains("sample_rate 16000"));
  CHECK_THROWS_WITH(stage("audio.mfcc")->process(audio_value(std::vector<float>(100, 0.f), rate)),
                    Contains("shorter than one frame"));
  // 64 filters cannot fit under 4 kHz with a 256-point FFT: refused when configured.
  CHECK_THROWS_WITH(stage("audio.mfcc", {{"sample_rate", "8000"}, {"num_bins", "120"}}),
                    Contains("num_bins"));
}

TEST_CASE("sequence stages: deltas, normalization, splicing", "[audio]") {
  Value v;
  v.kind = Kind::kSequence;
  v.tensor.resize({7, 2});
  for (int t = 0; t < 7; ++t) {
    v.tensor.data()[2 * t] = float(t);  // a ramp: delta 1 inside, less at the edges
    v.tensor.data()[2 * t + 1] = float(t * t);
  }
  const Value d = stage("sequence.deltas", {{"order", "1"}, {"window", "1"}})->process(v);
  REQUIRE(d.tensor.shape() == bpkit::Shape{7, 4});
  CHECK(d.tensor.data()[3 * 4 + 2] == Approx(1.0));  // (4 - 2) / 2
  CHECK(d.tensor.data()[0 * 4 + 2] == Approx(0.5));  // (1 - 0) / 2, frame -1 repeats frame 0
  CHECK(d.tensor.data()[3 * 4 + 3] == Approx((16 - 4) / 2.0));

  const Value c = stage("sequence.cmvn")->process(v);
  for (int f = 0; f < 2; ++f) {
    double s = 0, s2 = 0;
    for (int t = 0; t < 7; ++t) s += c.tensor.data()[2 * t + f];
    for (int t = 0; t < 7; ++t) s2 += std::pow(c.tensor.data()[2 * t + f] - s / 7, 2);
    CHECK(s / 7 == Approx(0).margin(1e-6));
    CHECK(s2 / 7 == Approx(1).epsilon(1e-5));
  }
  const Value m = stage("sequence.cmvn", {{"variance", "false"}})->process(v);
  CHECK(m.tensor.data()[2 * 6] == Approx(3.0));  // 6 - mean 3

  const Value s =
      stage("sequence.splice", {{"left", "1"}, {"right", "1"}, {"every", "3"}})->process(v);
  REQUIRE(s.tensor.shape() == bpkit::Shape{3, 6});  // frames 0, 3, 6
  const float want0[] = {0, 0, 0, 0, 1, 1};         // frame -1 repeats frame 0
  const float want2[] = {5, 25, 6, 36, 6, 36};      // frame 7 repeats frame 6
  for (int i = 0; i < 6; ++i) {
    CHECK(s.tensor.data()[i] == want0[i]);
    CHECK(s.tensor.data()[12 + i] == want2[i]);
  }
  Value flat;
  flat.kind = Kind::kSequence;
  flat.tensor.resize({5});
  CHECK_THROWS_WITH(stage("sequence.cmvn")->process(flat), Contains("expected a sequence"));
}

TEST_CASE("a speech pipeline file runs from a WAV file to spliced frames", "[audio]") {
  bpkit_test::TempDir dir("audio-pipeline");
  const std::vector<float> t = tone(700, 0.5, 22050, 22050);
  write_sound(dir.file("a.wav"), t, 1, 22050, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  const std::string yaml =
      "stages:\n"
      "  - plugin: audio.read\n"
      "  - plugin: audio.trim\n"
      "  - plugin: audio.mfcc\n"
      "  - plugin: sequence.deltas\n"
      "  - plugin: sequence.cmvn\n"
      "  - plugin: sequence.splice\n"
      "network:\n"
      "  layers: [{lstm: {units: 4}}]\n";
  const bpkit::PipelineConfig c = bpkit::parse_pipeline_config(yaml, dir.file("p.yaml"));
  const bpkit::Pipeline p(c, registry());
  const Value v = p.run(dir.file("a.wav"));
  REQUIRE(v.kind == Kind::kSequence);
  CHECK(v.tensor.shape() == bpkit::Shape{(98 + 2) / 3, 117});  // 1 s at 16 kHz: 98 frames
}

TEST_CASE("random stages pass their input through at seed 0 and augment anew for each seed",
          "[audio]") {
  const int rate = 16000;
  Value a = audio_value(tone(440, 0.5, rate, rate), rate);
  struct Case {
    const char* name;
    Params params;
  };
  const Case audio_cases[] = {
      {"audio.noise", {{"probability", "1"}, {"snr_min", "10"}, {"snr_max", "10"}}},
      {"audio.speed", {{"probability", "1"}, {"min", "0.8"}, {"max", "0.9"}}},
      {"audio.reverb", {{"probability", "1"}}},
      {"audio.eq", {{"probability", "1"}}},
  };
  for (const Case& c : audio_cases) {
    INFO(c.name);
    auto st = stage(c.name, c.params);
    REQUIRE(st->random());
    a.seed = 0;
    CHECK(st->process(a).audio.samples == a.audio.samples);
    a.seed = 17;
    const Value x = st->process(a), y = st->process(a);
    CHECK(x.audio.samples == y.audio.samples);  // a seed's draw is reproducible
    CHECK(x.audio.samples != a.audio.samples);
    a.seed = 18;
    CHECK(st->process(a).audio.samples != x.audio.samples);
  }
  // Noise at 10 dB: the added power is a tenth of the signal's.
  {
    a.seed = 5;
    const Value n = stage("audio.noise", audio_cases[0].params)->process(a);
    double ps = 0, pn = 0;
    for (size_t i = 0; i < a.audio.samples.size(); ++i) {
      ps += double(a.audio.samples[i]) * a.audio.samples[i];
      pn += std::pow(double(n.audio.samples[i]) - a.audio.samples[i], 2);
    }
    CHECK(10 * std::log10(ps / pn) == Approx(10).margin(0.01));
  }
  // Speed 0.8-0.9: slower, so 1/0.9-1/0.8 times as many samples, the tone lower by the factor.
  {
    a.seed = 9;
    const Value s = stage("audio.speed", audio_cases[1].params)->process(a);
    const double factor = double(a.audio.samples.size()) / double(s.audio.samples.size());
    REQUIRE(factor >= 0.8 - 1e-3);
    REQUIRE(factor <= 0.9 + 1e-3);
    CHECK(amplitude_at(s.audio.samples, 440 * factor, rate, 200) == Approx(0.5).epsilon(0.02));
  }
  // VTLP: audio.mfcc with vtlp is random; seed 0 gives exactly the plain MFCCs.
  {
    auto plain = stage("audio.mfcc");
    auto warped = stage("audio.mfcc", {{"vtlp", "0.1"}});
    CHECK_FALSE(plain->random());
    REQUIRE(warped->random());
    a.seed = 0;
    const Value p = plain->process(a), w0 = warped->process(a);
    CHECK(std::equal(p.tensor.data(), p.tensor.data() + p.tensor.size(), w0.tensor.data()));
    a.seed = 3;
    const Value w = warped->process(a);
    REQUIRE(w.tensor.shape() == p.tensor.shape());
    CHECK_FALSE(std::equal(p.tensor.data(), p.tensor.data() + p.tensor.size(), w.tensor.data()));
  }
  // Mel masks: bands of filters flattened to the line between their neighbours, in every frame
  // (seen in the filterbank output), a different band for another seed, none at seed 0.
  {
    auto plain = stage("audio.mfcc", {{"output", "fbank"}});
    auto masked =
        stage("audio.mfcc", {{"output", "fbank"}, {"mel_masks", "1"}, {"mel_mask_width", "8"}});
    REQUIRE(masked->random());
    a.seed = 0;
    const Value p = plain->process(a), m0 = masked->process(a);
    CHECK(std::equal(p.tensor.data(), p.tensor.data() + p.tensor.size(), m0.tensor.data()));
    const int64_t frames = p.tensor.dim(0), bins = p.tensor.dim(1);
    std::set<std::pair<int, int>> bands;
    for (uint64_t seed = 1; seed <= 12; ++seed) {
      a.seed = seed;
      const Value m = masked->process(a);
      REQUIRE(m.tensor.shape() == p.tensor.shape());
      // The bins that differ from the plain filterbank: one run [lo, hi), the same in every frame.
      int lo = -1, hi = -1;
      for (int b = 0; b < bins; ++b)
        if (m.tensor.data()[b] != p.tensor.data()[b]) {
          if (lo < 0) lo = b;
          hi = b + 1;
        }
      if (lo < 0) continue;  // a band of width 0 was drawn
      CHECK(hi - lo <= 8);
      bands.emplace(lo, hi);
      for (int64_t t = 0; t < frames; ++t) {
        const float* pr = p.tensor.data() + t * bins;
        const float* mr = m.tensor.data() + t * bins;
        for (int b = 0; b < bins; ++b)
          if (b < lo || b >= hi) CHECK(mr[b] == pr[b]);
        // Inside: on the line from the left neighbour to the right one (or flat at an edge).
        const double left = lo > 0 ? pr[lo - 1] : pr[hi], right = hi < bins ? pr[hi] : pr[lo - 1];
        for (int b = lo; b < hi; ++b)
          CHECK(mr[b] ==
                Approx(left + (right - left) * (b - lo + 1) / double(hi - lo + 1)).margin(1e-4));
      }
    }
    CHECK(bands.size() >= 4);
  }
  // SpecAugment: masks of zeros, never more than asked for.
  {
    Value s;
    s.kind = Kind::kSequence;
    s.tensor.resize({100, 20});
    std::fill(s.tensor.data(), s.tensor.data() + s.tensor.size(), 1.f);
    auto sa = stage("sequence.specaugment", {{"time_masks", "1"},
                                             {"time_width", "0.1"},
                                             {"feature_masks", "1"},
                                             {"feature_width", "3"}});
    CHECK(sa->process(s).tensor.data()[0] == 1.f);
    int zero_rows = 0, zero_cols = 0;
    for (uint64_t seed = 1; seed < 50; ++seed) {
      s.seed = seed;
      const Value m = sa->process(s);
      int rows = 0, cols = 0;
      for (int t = 0; t < 100; ++t)
        rows += std::all_of(m.tensor.data() + t * 20, m.tensor.data() + t * 20 + 20,
                            [](float v) { return v == 0.f; });
      for (int f = 0; f < 20; ++f) {
        bool all = true;
        for (int t = 0; t < 100; ++t) all = all && m.tensor.data()[t * 20 + f] == 0.f;
        cols += all;
      }
      CHECK(rows <= 10);
      CHECK(cols <= 3);
      zero_rows += rows;
      zero_cols += cols;
    }
    CHECK(zero_rows > 0);
    CHECK(zero_cols > 0);
  }
}

TEST_CASE("a speech pipeline with random stages trains, and the recognizer times its words",
          "[audio][learning]") {
  // Two "words", a low and a high tone of 0.25 s, 1-3 of them with 0.15 s gaps after 0.2-0.5 s of
  // silence: the utterance recognizer must name them and place them in the file (the endpointer
  // cuts the silence; the offset brings the times back).
  bpkit_test::TempDir dir("speech-train");
  const int rate = 16000;
  struct Truth {
    std::string label;
    std::vector<std::pair<double, double>> spans;
    std::vector<float> samples;
  };
  std::map<std::string, Truth> truth;
  auto make_set = [&](const std::string& name, int count, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::ofstream m(dir.file(name + ".tsv"));
    for (int i = 0; i < count; ++i) {
      Truth t;
      std::vector<float> x(size_t(std::uniform_int_distribution<int>(3200, 8000)(rng)), 0.f);
      const int words = std::uniform_int_distribution<int>(1, 3)(rng);
      for (int w = 0; w < words; ++w) {
        const bool high = std::uniform_int_distribution<int>(0, 1)(rng);
        const double start = double(x.size()) / rate;
        const std::vector<float> s = tone(high ? 1200 : 400, 0.4, rate, rate / 4);
        x.insert(x.end(), s.begin(), s.end());
        t.spans.emplace_back(start, double(x.size()) / rate);
        t.label += high ? 'b' : 'a';
        x.insert(x.end(), size_t(rate * 15 / 100), 0.f);
      }
      std::normal_distribution<float> g(0.f, 0.002f);
      for (float& v : x) v += g(rng);
      const std::string f = dir.file(name + std::to_string(i) + ".wav");
      write_sound(f, x, 1, rate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
      m << f << "\t" << t.label << "\n";
      t.samples = std::move(x);
      truth[f] = t;
    }
  };
  make_set("train", 160, 1);
  make_set("test", 20, 2);
  std::ofstream(dir.file("p.yaml"))
      << "name: tones\n"
         "plugin_path: ["
      << kPluginDir
      << "]\n"
         "stages:\n"
         "  - plugin: audio.read\n"
         "  - plugin: audio.noise\n"
         "    params: {probability: 0.5, snr_min: 15, snr_max: 30}\n"
         "  - plugin: audio.trim\n"
         "  - plugin: audio.mfcc\n"
         "    params: {vtlp: 0.05}\n"
         "  - plugin: sequence.global_cmvn\n"
         "  - plugin: sequence.specaugment\n"
         "    params: {time_masks: 1, feature_masks: 1, feature_width: 2}\n"
         "  - plugin: sequence.splice\n"
         "data: {train: train.tsv, test: test.tsv, labels: transcript, alphabet: ab}\n"
         "network:\n  layers:\n"
         "    - lstm: {units: 16, bidirectional: 1}\n"
         "    - frame_dense: {units: 3}\n"
         "decoder: {words: {a: low, b: high}, min_words: 1, max_words: 3}\n"
         "optimizer: {type: adam, lr: 0.01}\n"
         "training: {epochs: 40, batch: 16, seed: 1, threads: 2}\n"
         "cache: false\n";
  bpkit::TrainRequest r;
  r.config = dir.file("p.yaml");
  r.out_dir = dir.file("model");
  r.log = &std::cerr;
  const bpkit::TrainOutcome out = bpkit::train_pipeline(r);
  CHECK(out.test_error_rate < 0.1);

  bpkit::UtteranceRecognizer rec(dir.file("model"));
  bpkit::WordErrors errors;
  int placed = 0, words = 0;
  for (const auto& [file, t] : truth) {
    if (std::filesystem::path(file).filename().string().rfind("test", 0) != 0) continue;
    const bpkit::Utterance u = rec.recognize(file);
    std::vector<std::string> ref;
    for (char c : t.label) ref.push_back(c == 'a' ? "low" : "high");
    errors.add(bpkit::split_words(u.text), ref);
    CHECK(u.words.size() <= 3);  // the grammar
    CHECK(u.seconds == Approx(0.0).margin(1e9));
    if (u.words.size() != t.spans.size()) continue;
    for (size_t w = 0; w < u.words.size(); ++w, ++words) {
      // The word's frames overlap its tone (CTC emits a word on a frame or two inside it).
      const bool overlap =
          u.words[w].start < t.spans[w].second + 0.05 && u.words[w].end > t.spans[w].first - 0.05;
      placed += overlap;
      CHECK(u.words[w].confidence > 0);
    }
  }
  CHECK(errors.wer() < 0.1);
  CHECK(words > 20);
  CHECK(placed >= words * 9 / 10);

  // A recording of all the test utterances, one after the other with 0.5 s of faint noise
  // between them, read 4 s at a time: cut into the same utterances, at the pauses (the words of
  // one utterance are 0.15 s apart), each recognized with its words at their times in the file.
  {
    std::vector<float> all;
    std::vector<std::pair<double, double>> spans;  // every word's, in the recording
    std::vector<std::pair<double, double>> utts;   // every utterance's
    std::vector<std::string> ref;
    std::mt19937_64 rng(7);
    std::normal_distribution<float> g(0.f, 0.002f);
    all.assign(size_t(rate) * 25, 0.f);  // digital silence first (> max_utterance): none there
    for (const auto& [file, t] : truth) {
      if (std::filesystem::path(file).filename().string().rfind("test", 0) != 0) continue;
      const double at = double(all.size()) / rate;
      all.insert(all.end(), t.samples.begin(), t.samples.end());
      for (const auto& sp : t.spans) spans.emplace_back(at + sp.first, at + sp.second);
      utts.emplace_back(at + t.spans.front().first, at + t.spans.back().second);
      for (char c : t.label) ref.push_back(c == 'a' ? "low" : "high");
      for (int k = 0; k < rate / 2; ++k) all.push_back(g(rng));
    }
    write_sound(dir.file("long.wav"), all, 1, rate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    bpkit::SegmentOptions o;
    o.chunk_seconds = 4;
    std::vector<bpkit::Utterance> got;
    const double seconds = rec.recognize_stream(
        dir.file("long.wav"), [&](const bpkit::Utterance& u) { got.push_back(u); }, o);
    CHECK(seconds == Approx(double(all.size()) / rate));
    CHECK(got.size() == utts.size());
    std::vector<std::string> hyp;
    size_t inside = 0, found = 0;
    double last_end = 0;
    for (const bpkit::Utterance& u : got) {
      CHECK(u.start >= last_end - 1e-9);  // in order, not overlapping
      CHECK(u.end > u.start);
      last_end = u.end;
      // One whole utterance, with little of the pauses around it.
      for (const auto& [a, b] : utts)
        found += a >= u.start && b <= u.end && a - u.start < 0.5 && u.end - b < 0.5;
      for (const bpkit::RecognizedWord& w : u.words) {
        hyp.push_back(w.word);
        CHECK(w.start >= u.start - 1e-9);
        CHECK(w.end <= u.end + 1e-9);
        for (const auto& [a, b] : spans) inside += w.start < b + 0.05 && w.end > a - 0.05;
      }
    }
    CHECK(found == utts.size());
    bpkit::WordErrors long_errors;
    long_errors.add(hyp, ref);
    CHECK(long_errors.wer() < 0.1);
    CHECK(inside >= hyp.size() * 9 / 10);
    // Utterances the stages refuse (here a model whose MFCC stage expects 8 kHz audio): each is
    // handed out with its error and no words, and the rest of the recording still follows.
    {
      namespace fs = std::filesystem;
      fs::copy(dir.file("model"), dir.file("model8k"), fs::copy_options::recursive);
      std::ifstream in(dir.file("model8k/pipeline.yaml"));
      std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const std::string from = "params: {vtlp: 0.05}";
      REQUIRE(yaml.find(from) != std::string::npos);
      yaml.replace(yaml.find(from), from.size(), "params: {vtlp: 0.05, sample_rate: 8000}");
      std::ofstream(dir.file("model8k/pipeline.yaml")) << yaml;
      bpkit::UtteranceRecognizer refusing(dir.file("model8k"));
      std::vector<bpkit::Utterance> failed;
      CHECK(refusing.recognize_stream(
                dir.file("long.wav"), [&](const bpkit::Utterance& u) { failed.push_back(u); }, o) ==
            Approx(seconds));
      REQUIRE(failed.size() == got.size());
      for (size_t i = 0; i < failed.size(); ++i) {
        CHECK_THAT(failed[i].error, Contains("audio.mfcc") && Contains("8000"));
        CHECK(failed[i].words.empty());
        CHECK(failed[i].start == Approx(got[i].start));
        CHECK(failed[i].end == Approx(got[i].end));
      }
    }
    // Silence and steady noise hold no speech: no words, although the grammar asks for at least
    // one (it would otherwise force one out of nothing).
    {
      std::mt19937_64 nrng(11);
      std::normal_distribution<float> loud(0.f, 0.05f);
      std::vector<float> noise(static_cast<size_t>(rate)), quiet(static_cast<size_t>(rate), 0.f);
      for (float& v : noise) v = loud(nrng);
      write_sound(dir.file("silence.wav"), quiet, 1, rate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
      write_sound(dir.file("noise.wav"), noise, 1, rate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
      for (const char* f : {"silence.wav", "noise.wav"}) {
        const bpkit::Utterance none = rec.recognize(dir.file(f));
        CHECK(none.words.empty());
        CHECK(none.text.empty());
        CHECK(none.seconds == Approx(1.0));
        got.clear();
        rec.recognize_stream(dir.file(f), [&](const bpkit::Utterance& u) { got.push_back(u); });
        REQUIRE(got.size() == 1);
        CHECK(got[0].words.empty());
      }
    }
    // A recording that fits in one chunk is one utterance, exactly as recognize() hears it.
    const std::string one = truth.begin()->first;
    got.clear();
    rec.recognize_stream(one, [&](const bpkit::Utterance& u) { got.push_back(u); });
    REQUIRE(got.size() == 1);
    const bpkit::Utterance direct = rec.recognize(one);
    CHECK(got[0].text == direct.text);
    CHECK(got[0].end == 0);
    REQUIRE(got[0].words.size() == direct.words.size());
    for (size_t w = 0; w < direct.words.size(); ++w)
      CHECK(got[0].words[w].start == direct.words[w].start);
  }

  // The fit stage's statistics: learned from the training files, stored with the model, and
  // what makes the training features zero-mean.
  {
    bpkit::TrainedModel m(dir.file("model"));
    const size_t k = 4;  // audio.read, audio.noise, audio.trim, audio.mfcc, then global_cmvn
    REQUIRE(m.pipeline().fit_stages() == std::vector<size_t>{k});
    std::vector<double> sum(13, 0.0);
    double frames = 0;
    for (const auto& [file, t] : truth) {
      if (std::filesystem::path(file).filename().string().rfind("train", 0) != 0) continue;
      const Value v = m.pipeline().run(bpkit_test::file_value(file), 0, k + 1);
      for (int64_t i = 0; i < v.tensor.dim(0); ++i, ++frames)
        for (int c = 0; c < 13; ++c) sum[size_t(c)] += v.tensor.data()[i * 13 + c];
    }
    for (double s : sum) CHECK(s / frames == Approx(0).margin(1e-3));
  }
  const std::string fitted = dir.file("model/fitted.yaml");
  REQUIRE(std::filesystem::exists(fitted));
  std::filesystem::rename(fitted, dir.file("fitted.yaml"));
  CHECK_THROWS_WITH(bpkit::UtteranceRecognizer(dir.file("model")),
                    Contains("fitted.yaml: missing") && Contains("sequence.global_cmvn"));
  std::ofstream(fitted) << "- {stage: 5, plugin: sequence.global_cmvn, state: 'frames 3'}\n";
  CHECK_THROWS_WITH(bpkit::UtteranceRecognizer(dir.file("model")),
                    Contains("cannot use the statistics"));
  std::ofstream(fitted) << "- {stage: 4, plugin: audio.mfcc, state: x}\n";
  CHECK_THROWS_WITH(bpkit::UtteranceRecognizer(dir.file("model")),
                    Contains("no state for stage 5"));
  // Without its statistics the stage refuses to run.
  Value seq;
  seq.kind = Kind::kSequence;
  seq.tensor.resize({3, 13});
  CHECK_THROWS_WITH(stage("sequence.global_cmvn")->process(seq), Contains("has no statistics"));
}
