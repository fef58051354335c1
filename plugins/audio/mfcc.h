// Mel-frequency cepstra and log-mel filterbanks (Davis and Mermelstein, 1980), computed frame by
// frame with KissFFT. Two presets reproduce the reference front ends numerically:
//   kaldi   Kaldi's compute-mfcc-feats defaults (and torchaudio.compliance.kaldi.mfcc), dither off
//   sphinx  sphinxbase's sphinx_fe defaults (-transform legacy) with -dither no -remove_silence no
//           -remove_noise no; fbank output as its -logspec yes
// Shapes: N samples in, T frames of F features out ({T, F}, row-major).
//
// Two sphinx_fe behaviours are not reproduced, being artefacts of its voice-activity buffering
// and of reading in blocks rather than part of the features: its VAD holds back the first 10
// frames whatever -remove_silence says, so an utterance of fewer than 10 frames gives nothing and
// one of 10 only its last; and when its reader's block ends exactly on a frame boundary it drops
// the final partial frame (at 16 kHz with the default -blocksize 2048, e.g. for 2010 or 3770
// samples).
//
// Samples are scaled by `sample_scale` first: both reference tools read 16-bit files as integers,
// so their presets multiply samples in [-1, 1] by 32768 and the log energies come out as theirs.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace bpkit_audio {

enum class Window { kPovey, kHamming, kHann, kRectangular };
// kKaldi: triangles in the mel domain, evaluated at each FFT bin's mel value (bins below Nyquist),
// height 1. kSphinx: triangles in Hz between mel-spaced edges rounded to FFT bins, each of unit
// area (sphinx_fe -round_filters yes -unit_area yes).
enum class FilterShape { kKaldi, kSphinx };
// kHtk: mel = 1127 ln(1 + f/700) (Kaldi). kSphinx: mel = 2595 log10(1 + f/700) (the same curve,
// up to float rounding; kept apart so each preset reproduces its tool's arithmetic).
enum class MelScale { kHtk, kSphinx };
// kOrthonormal: the DCT-II with sqrt(1/N), sqrt(2/N) row scales (Kaldi). kSphinxLegacy: sphinx_fe's
// -transform legacy (the first filter weighted 1/2, every row divided by N), with its float32
// cosines and float32 sums.
enum class Dct { kOrthonormal, kSphinxLegacy };

struct MfccOptions {
  int sample_rate = 16000;      // the rate the samples are at
  double sample_scale = 32768;  // multiplies the samples first
  int frame_length = 400;       // samples per frame (25 ms at 16 kHz)
  int frame_shift = 160;        // samples between frame starts (10 ms)
  // Frames: true, only frames that fit in the signal (Kaldi's snip_edges); false, Sphinx's: the
  // frames that fit, then one more starting one shift after the last of them, padded with zeros
  // (frames overlap, so it always has samples); a signal shorter than a frame gives that padded
  // frame alone. Not Kaldi's snip_edges=false (centred frames, reflected edges).
  bool snip_edges = true;
  // Subtract each frame's mean before pre-emphasis (Kaldi; sphinx_fe's -remove_dc yes subtracts it
  // after pre-emphasis, which is not reproduced).
  bool remove_dc = true;
  // y[i] = x[i] - a x[i-1], over the frame's signal samples (zero padding stays zero).
  double preemphasis = 0.97;
  // Kaldi pre-emphasizes inside each frame (x[-1] taken as x[0]); Sphinx over the stream (x[-1] is
  // the sample before the frame, 0 before the first).
  bool stream_preemphasis = false;
  Window window = Window::kPovey;  // symmetric over frame_length samples, in double
  int fft_size = 512;              // a power of two >= frame_length
  int num_bins = 23;               // mel filters
  double low_hz = 20;              // lowest filter edge
  double high_hz = 0;              // highest filter edge; <= 0: Nyquist + high_hz
  FilterShape filters = FilterShape::kKaldi;
  MelScale mel = MelScale::kHtk;
  // Each filter's energy e becomes log(max(e, log_floor)); with log_add > 0, log(e + log_add)
  // instead.
  double log_floor = 1.1920928955078125e-07;  // float epsilon, as Kaldi
  double log_add = 0;
  int num_ceps = 13;
  Dct dct = Dct::kOrthonormal;
  double lifter = 22;  // 0: none; Q: c[i] *= 1 + Q/2 sin(pi i / Q)
  // C0 replaced by the frame's log energy, taken after DC removal and before pre-emphasis and the
  // window (Kaldi's use_energy with raw_energy), floored at log(energy_floor) when that is > 0.
  bool use_energy = true;
  double energy_floor = 0;
  bool fbank = false;  // output the log-mel energies (num_bins values) instead of cepstra
};

// The presets: "kaldi" or "sphinx" (for 16 kHz; other rates scale the frame length and shift by
// time, keep the FFT at the next power of two and the filters at the preset's frequencies).
// Throws std::invalid_argument for another name.
MfccOptions mfcc_preset(const std::string& name, int sample_rate);

// Checks the options (sizes, ranges, filter edges inside (0, Nyquist], each filter covering at
// least one FFT bin); throws std::invalid_argument saying what is wrong.
void check_options(const MfccOptions& o);

// Frame count for n samples.
int mfcc_frames(const MfccOptions& o, long long n);

class MfccComputer {
 public:
  explicit MfccComputer(const MfccOptions& options);  // checks the options
  ~MfccComputer();
  MfccComputer(const MfccComputer&) = delete;
  MfccComputer& operator=(const MfccComputer&) = delete;

  const MfccOptions& options() const { return o_; }
  int features() const { return o_.fbank ? o_.num_bins : o_.num_ceps; }
  // Features of `n` samples: mfcc_frames(n) rows of features() values. `warp` != 1 moves the
  // filters as vocal-tract-length perturbation does (augmentation; in [0.5, 2]). `masks`: bands
  // of mel filters [first, last) whose log energies are replaced, in every frame, by the line
  // between the filters on either side (augmentation: the band's detail is gone, before the DCT
  // spreads it over the cepstra). Thread-safe (scratch is per call).
  std::vector<float> compute(const float* samples, long long n, double warp = 1.0,
                             const std::vector<std::pair<int, int>>& masks = {}) const;

  // The filterbank as [num_bins][fft_size/2 + 1] weights (for tests and plots).
  std::vector<std::vector<float>> filter_matrix() const;

 private:
  MfccOptions o_;
  std::vector<double> window_;
  std::vector<int> first_bin_;               // per filter: its first FFT bin
  std::vector<std::vector<float>> weights_;  // per filter: weights from first_bin_
  std::vector<double> dct_;                  // num_ceps x num_bins
  std::vector<double> lifter_;               // num_ceps

  double warp_hz(double hz, double warp) const;
  // The filters (each one's first FFT bin and weights) with edges warped by `warp`.
  void build_filters(double warp, std::vector<int>& first,
                     std::vector<std::vector<float>>& weights) const;
};

// Deltas over time as Kaldi's add-deltas computes them: the order-1 filter is
// k / (2 sum_{k=1..N} k^2) for k in [-N, N]; order j's filter is order j-1's convolved with it;
// each is applied to the input with frame indices clamped to [0, T-1] (edge frames repeat).
// `order` 1 appends deltas, 2 also delta-deltas. In: {T, F}; out: {T, F (order + 1)}.
std::vector<float> add_deltas(const std::vector<float>& x, int frames, int features, int order,
                              int window);

}  // namespace bpkit_audio
