// The MFCC / log-mel front end (plugins/audio/mfcc.h) against the reference tools' own output:
// the kaldi preset against torchaudio.compliance.kaldi (Kaldi's compute-mfcc-feats and
// compute-fbank-feats), the sphinx preset against sphinxbase's sphinx_fe. The signals and the
// reference features are in tests/data/audio (made by its make_reference.sh); deltas are checked
// against values worked out by hand, and check_options against impossible settings.
#include <sndfile.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mfcc.h"

using namespace bpkit_audio;

namespace {

const std::string kData = BPKIT_AUDIO_TEST_DATA;

struct Wav {
  int rate = 0;
  std::vector<float> samples;  // in [-1, 1): libsndfile scales 16-bit PCM by 1/32768
};

Wav read_wav(const std::string& name) {
  const std::string path = kData + "/" + name;
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) throw std::runtime_error("cannot open " + path + ": " + sf_strerror(nullptr));
  Wav w;
  w.rate = info.samplerate;
  w.samples.resize(size_t(info.frames));
  const sf_count_t got = sf_read_float(f, w.samples.data(), info.frames);
  sf_close(f);
  if (info.channels != 1 || got != info.frames) throw std::runtime_error(path + ": not mono");
  return w;
}

// A reference file: one frame per line, values separated by spaces.
std::vector<std::vector<double>> read_table(const std::string& name) {
  std::ifstream in(kData + "/" + name);
  if (!in) throw std::runtime_error("cannot open " + kData + "/" + name);
  std::vector<std::vector<double>> rows;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    rows.emplace_back();
    for (double v; fields >> v;) rows.back().push_back(v);
  }
  return rows;
}

// |ours - ref| <= abs + rel |ref|, for every value.
struct Tolerance {
  double abs, rel;
};

// Sphinx: its own front end is double precision but for the float32 cepstrum (which the preset
// reproduces), so the differences are KissFFT's float rounding: ~1e-7 of a frame's strongest bins,
// which is a larger share of its weakest. The log spectra show it in the weakest filters (up to
// 8e-5 in the log); the cepstra, averages over 40 filters, stay within 4e-6.
const Tolerance kSphinxCepstra{1e-4, 1e-5};
const Tolerance kSphinxLogSpectra{2e-4, 1e-5};
// Kaldi computes in float (and torchaudio's DCT and filters are float32 even on float64 input),
// so both sides round: up to ~3e-4 in the log of a weak filter. The cepstra add 23 of those and
// the lifter multiplies C1..C12 by up to 12, so they get a wider absolute tolerance.
const Tolerance kKaldiLogMel{1e-3, 1e-4};
const Tolerance kKaldiCepstra{2e-3, 1e-4};

void check_against(const std::vector<float>& ours, int features,
                   const std::vector<std::vector<double>>& ref, Tolerance tol) {
  REQUIRE(ours.size() % size_t(features) == 0);
  REQUIRE(ours.size() / size_t(features) == ref.size());  // the frame count
  int bad = 0;
  double worst = 0;  // the largest |ours - ref| / tolerance
  std::string where;
  for (size_t t = 0; t < ref.size(); ++t) {
    REQUIRE(ref[t].size() == size_t(features));
    for (size_t i = 0; i < ref[t].size(); ++i) {
      const double r = ref[t][i], o = ours[t * size_t(features) + i];
      const double ratio = std::abs(o - r) / (tol.abs + tol.rel * std::abs(r));
      if (ratio > 1) ++bad;
      if (ratio > worst) {
        worst = ratio;
        where = "frame " + std::to_string(t) + " value " + std::to_string(i) + ": ours " +
                std::to_string(o) + ", reference " + std::to_string(r);
      }
    }
  }
  INFO("worst difference / tolerance " << worst << " at " << where);
  CHECK(bad == 0);
}

// Features of a WAV with a preset, as cepstra or as log-mel energies.
std::vector<float> features_of(const Wav& w, const std::string& preset, bool fbank, int* width) {
  MfccOptions o = mfcc_preset(preset, w.rate);
  o.fbank = fbank;
  MfccComputer c(o);
  *width = c.features();
  return c.compute(w.samples.data(), (long long)w.samples.size());
}

void check_file(const std::string& wav, const std::string& preset, bool fbank,
                const std::string& reference, Tolerance tol) {
  INFO(wav << " with the " << preset << " preset against " << reference);
  int width = 0;
  const std::vector<float> ours = features_of(read_wav(wav), preset, fbank, &width);
  check_against(ours, width, read_table(reference), tol);
}

}  // namespace

TEST_CASE("kaldi preset matches torchaudio.compliance.kaldi mfcc and fbank", "[audio]") {
  for (const std::string& name : std::vector<std::string>{"speech", "synthetic"}) {
    check_file(name + ".wav", "kaldi", false, name + ".kaldi.mfcc.txt", kKaldiCepstra);
    check_file(name + ".wav", "kaldi", true, name + ".kaldi.fbank.txt", kKaldiLogMel);
  }
}

TEST_CASE("sphinx preset matches sphinx_fe cepstra and log spectra", "[audio]") {
  check_file("speech.wav", "sphinx", false, "speech.sphinx.mfcc.txt", kSphinxCepstra);
  // synthetic.wav has digital silence (the log floor) and ends on a loud sample exactly at a frame
  // boundary (sphinx_fe's extra, zero-padded frame).
  check_file("synthetic.wav", "sphinx", false, "synthetic.sphinx.mfcc.txt", kSphinxCepstra);
  check_file("synthetic.wav", "sphinx", true, "synthetic.sphinx.fbank.txt", kSphinxLogSpectra);
}

TEST_CASE("presets scale to 8 kHz like both tools", "[audio]") {
  check_file("speech8k.wav", "kaldi", false, "speech8k.kaldi.mfcc.txt", kKaldiCepstra);
  check_file("speech8k.wav", "sphinx", false, "speech8k.sphinx.mfcc.txt", kSphinxCepstra);
}

TEST_CASE("frame counts: Kaldi's frames that fit, sphinx_fe's one more", "[audio]") {
  const MfccOptions kaldi = mfcc_preset("kaldi", 16000);    // 400 samples, shift 160
  const MfccOptions sphinx = mfcc_preset("sphinx", 16000);  // 410 samples, shift 160
  CHECK(mfcc_frames(kaldi, 0) == 0);
  CHECK(mfcc_frames(kaldi, 399) == 0);
  CHECK(mfcc_frames(kaldi, 400) == 1);
  CHECK(mfcc_frames(kaldi, 559) == 1);
  CHECK(mfcc_frames(kaldi, 560) == 2);
  CHECK(mfcc_frames(sphinx, 0) == 0);
  CHECK(mfcc_frames(sphinx, 300) == 1);  // shorter than a frame: one padded frame
  CHECK(mfcc_frames(sphinx, 410) == 2);  // one full frame, then its last 250 samples
  CHECK(mfcc_frames(sphinx, 410 + 11 * 160) == 13);
  CHECK(mfcc_frames(sphinx, 410 + 11 * 160 + 1) == 13);
  CHECK(mfcc_frames(sphinx, 410 + 12 * 160 - 1) == 13);
  // compute() returns that many frames, the last one over the zero-padded tail.
  const std::vector<float> tone = [] {
    std::vector<float> x(300);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f * float(std::sin(0.3 * double(i)));
    return x;
  }();
  MfccComputer c(sphinx);
  CHECK(c.compute(tone.data(), (long long)tone.size()).size() == size_t(c.features()));
}

TEST_CASE("add_deltas follows Kaldi's add-deltas, edge frames included", "[audio]") {
  // Order 2, window 2: the delta filter is k / 10 for k = -2..2 (10 = 2 (1 + 4)); the delta-delta
  // filter is its self-convolution, (4, 4, 1, -4, -10, -4, 1, 4, 4) / 100 for k = -4..4. Frame
  // indices are clamped to [0, T-1]. Feature 0 is x = 1, 4, 9, 16, 25; feature 1 is constant.
  const std::vector<float> x = {1, 7, 4, 7, 9, 7, 16, 7, 25, 7};  // {T = 5, F = 2}
  const std::vector<float> y = add_deltas(x, 5, 2, 2, 2);
  REQUIRE(y.size() == 5 * 6);
  // By hand, e.g. frame 0's delta: (-2 x[0] - x[0] + x[1] + 2 x[2]) / 10 = (-2 - 1 + 4 + 18) / 10;
  // its delta-delta: (4 + 4 + 1 - 4 - 10) x[0] - 4 x[1] + x[2] + 4 x[3] + 4 x[4], over 100.
  const double delta[5] = {1.9, 3.8, 6.0, 5.8, 4.1};
  const double delta2[5] = {1.52, 1.45, 0.64, -0.59, -1.6};
  for (int t = 0; t < 5; ++t) {
    INFO("frame " << t);
    const float* row = y.data() + 6 * t;
    CHECK(row[0] == x[size_t(2 * t)]);  // the features themselves come first
    CHECK(row[1] == 7);
    CHECK(row[2] == Approx(delta[t]).margin(1e-6));
    CHECK(row[3] == Approx(0).margin(1e-6));  // a constant has no slope
    CHECK(row[4] == Approx(delta2[t]).margin(1e-6));
    CHECK(row[5] == Approx(0).margin(1e-6));
  }
  // Away from the edges the filters are exact derivatives of a quadratic x = (t + 1)^2: delta
  // 2 (t + 1), delta-delta 2 (frames 4 and 5 of 10 reach no edge with half-width 4).
  std::vector<float> q(10);
  for (int t = 0; t < 10; ++t) q[size_t(t)] = float((t + 1) * (t + 1));
  const std::vector<float> dq = add_deltas(q, 10, 1, 2, 2);
  for (int t = 4; t <= 5; ++t) {
    CHECK(dq[size_t(3 * t + 1)] == Approx(2 * (t + 1)).margin(1e-5));
    CHECK(dq[size_t(3 * t + 2)] == Approx(2).margin(1e-5));
  }
}

TEST_CASE("check_options rejects impossible front ends", "[audio]") {
  using Catch::Matchers::Contains;
  MfccOptions o = mfcc_preset("kaldi", 16000);
  CHECK_NOTHROW(check_options(o));

  MfccOptions small_fft = o;  // 256 points for a 400-sample frame
  small_fft.fft_size = 256;
  CHECK_THROWS_AS(check_options(small_fft), std::invalid_argument);
  CHECK_THROWS_WITH(check_options(small_fft), Contains("fft_size 256"));
  CHECK_THROWS_AS(MfccComputer(small_fft), std::invalid_argument);

  MfccOptions above_nyquist = o;
  above_nyquist.high_hz = 9000;
  CHECK_THROWS_WITH(check_options(above_nyquist), Contains("high 9000"));
  MfccOptions sphinx_at_8k = mfcc_preset("sphinx", 16000);  // its 6855 Hz edge is past 4 kHz
  sphinx_at_8k.sample_rate = 8000;
  CHECK_THROWS_WITH(check_options(sphinx_at_8k), Contains("high_hz"));

  MfccOptions too_many_ceps = o;  // 24 cepstra from 23 filters
  too_many_ceps.num_ceps = 24;
  CHECK_THROWS_WITH(check_options(too_many_ceps), Contains("num_ceps"));
  too_many_ceps.fbank = true;  // no cepstra: fine
  CHECK_NOTHROW(check_options(too_many_ceps));

  CHECK_THROWS_WITH(mfcc_preset("htk", 16000), Contains("unknown MFCC preset 'htk'"));
}

TEST_CASE("one MfccComputer serves several threads at once", "[audio]") {
  // The pipeline runs samples on every core through one configured stage: concurrent compute()
  // calls must not share scratch (KissFFT's real-FFT state has its own buffer).
  const Wav w = read_wav("speech.wav");
  for (const char* preset : {"kaldi", "sphinx"}) {
    INFO(preset);
    const bpkit_audio::MfccComputer m(bpkit_audio::mfcc_preset(preset, w.rate));
    const std::vector<float> want = m.compute(w.samples.data(), (long long)w.samples.size());
    std::vector<std::vector<float>> got(4);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < got.size(); ++t)
      threads.emplace_back([&, t] {
        for (int rep = 0; rep < 20; ++rep) {
          got[t] = m.compute(w.samples.data(), (long long)w.samples.size());
          if (got[t] != want) return;
        }
      });
    for (std::thread& t : threads) t.join();
    for (const auto& g : got) CHECK(g == want);
  }
}
