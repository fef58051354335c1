// MFCC and log-mel filterbanks; see mfcc.h. The arithmetic follows each reference tool's order of
// operations (double where Kaldi and Sphinx use double, float where they store float), so that the
// presets match their output to the tolerance stated in tests/test_audio.cpp.
#include "mfcc.h"

#include <kissfft/kiss_fftr.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace bpkit_audio {

namespace {

constexpr double kPi = 3.14159265358979323846;

double mel_of(MelScale s, double hz) {
  return s == MelScale::kHtk ? 1127.0 * std::log(1.0 + hz / 700.0)
                             : 2595.0 * std::log10(1.0 + hz / 700.0);
}
double hz_of(MelScale s, double mel) {
  return s == MelScale::kHtk ? 700.0 * (std::exp(mel / 1127.0) - 1.0)
                             : 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
}

bool power_of_two(int n) {
  return n > 0 && (n & (n - 1)) == 0;
}

}  // namespace

MfccOptions mfcc_preset(const std::string& name, int sample_rate) {
  if (sample_rate < 4000 || sample_rate > 192000)
    throw std::invalid_argument("sample rate " + std::to_string(sample_rate) +
                                " Hz is outside [4000, 192000]");
  MfccOptions o;
  o.sample_rate = sample_rate;
  auto next_pow2 = [](int n) {
    int p = 1;
    while (p < n) p *= 2;
    return p;
  };
  if (name == "kaldi") {
    o.frame_length = int(sample_rate * 0.025);
    o.frame_shift = int(sample_rate * 0.010);
    o.fft_size = next_pow2(o.frame_length);
    return o;  // the defaults are Kaldi's
  }
  if (name == "sphinx") {
    // sphinx_fe: -wlen 0.025625 -frate 100 -nfft 512 -nfilt 40 -lowerf 133.33334
    // -upperf 6855.4976 -alpha 0.97 -ncep 13 -transform legacy -lifter 0 -remove_dc no.
    o.frame_length = int(0.025625 * sample_rate + 0.5);
    o.frame_shift = int(sample_rate / 100.0 + 0.5);
    o.fft_size = next_pow2(o.frame_length);
    o.snip_edges = false;
    o.remove_dc = false;
    // sphinx_fe keeps -alpha in a float32, so the coefficient it multiplies by is 0.97f.
    o.preemphasis = 0.97f;
    o.stream_preemphasis = true;
    o.window = Window::kHamming;
    o.num_bins = 40;
    o.low_hz = 133.33334;
    o.high_hz = std::min(6855.4976, sample_rate / 2.0);
    o.filters = FilterShape::kSphinx;
    o.mel = MelScale::kSphinx;
    o.log_floor = 0;
    o.log_add = 1e-4;
    o.dct = Dct::kSphinxLegacy;
    o.lifter = 0;
    o.use_energy = false;
    return o;
  }
  throw std::invalid_argument("unknown MFCC preset '" + name + "' (expected kaldi or sphinx)");
}

void check_options(const MfccOptions& o) {
  auto bad = [](const std::string& why) { throw std::invalid_argument(why); };
  if (o.sample_rate < 1000) bad("sample_rate must be at least 1000 Hz");
  if (o.frame_length < 16) bad("the frame must hold at least 16 samples");
  if (o.frame_shift < 1) bad("the frame shift must be at least 1 sample");
  if (!power_of_two(o.fft_size) || o.fft_size < o.frame_length)
    bad("fft_size " + std::to_string(o.fft_size) +
        " must be a power of two at least the frame length (" + std::to_string(o.frame_length) +
        " samples)");
  if (o.num_bins < 2 || o.num_bins > o.fft_size / 2) bad("num_bins must be in [2, fft_size/2]");
  const double nyquist = o.sample_rate / 2.0;
  const double high = o.high_hz > 0 ? o.high_hz : nyquist + o.high_hz;
  if (o.low_hz < 0 || high > nyquist + 1e-6 || high <= o.low_hz)
    bad("the mel filters must span 0 <= low_hz < high_hz <= " + std::to_string(nyquist) +
        " Hz (low " + std::to_string(o.low_hz) + ", high " + std::to_string(high) + ")");
  if (!o.fbank && (o.num_ceps < 1 || o.num_ceps > o.num_bins))
    bad("num_ceps must be in [1, num_bins]");
  if (o.preemphasis < 0 || o.preemphasis > 1) bad("preemphasis must be in [0, 1]");
  if (o.lifter < 0) bad("lifter must be >= 0");
  if (!(o.sample_scale > 0)) bad("sample_scale must be > 0");
  if (o.log_add <= 0 && o.log_floor <= 0) bad("log_floor or log_add must be > 0");
}

int mfcc_frames(const MfccOptions& o, long long n) {
  const long long full = n < o.frame_length ? 0 : 1 + (n - o.frame_length) / o.frame_shift;
  if (o.snip_edges) return int(full);
  // sphinx_fe's fe_end_utt adds a frame over the samples from one shift after the last full
  // frame's start to the end. Frames overlap, so there always are some: even a signal ending
  // exactly where its last full frame does gets that extra frame.
  return int(full + (n > full * o.frame_shift ? 1 : 0));
}

MfccComputer::MfccComputer(const MfccOptions& options) : o_(options) {
  check_options(o_);
  const int n = o_.frame_length;
  window_.resize(size_t(n));
  // Every window here is symmetric: compute the first half (and the middle sample of an odd
  // length) in double and mirror it, as sphinx_fe does (fe_create_hamming stores half a Hamming
  // window in double precision), so both halves are bit-identical.
  for (int i = 0; i < (n + 1) / 2; ++i) {
    const double a = 2 * kPi * i / (n - 1);
    switch (o_.window) {
      case Window::kPovey:
        window_[size_t(i)] = std::pow(0.5 - 0.5 * std::cos(a), 0.85);
        break;
      case Window::kHamming:
        window_[size_t(i)] = 0.54 - 0.46 * std::cos(a);
        break;
      case Window::kHann:
        window_[size_t(i)] = 0.5 - 0.5 * std::cos(a);
        break;
      case Window::kRectangular:
        window_[size_t(i)] = 1;
        break;
    }
    window_[size_t(n - 1 - i)] = window_[size_t(i)];
  }

  build_filters(1.0, first_bin_, weights_);

  if (!o_.fbank) {
    const int nb = o_.num_bins, nc = o_.num_ceps;
    dct_.assign(size_t(nc) * size_t(nb), 0);
    for (int i = 0; i < nc; ++i)
      for (int j = 0; j < nb; ++j) {
        double v;
        if (o_.dct == Dct::kOrthonormal) {
          v = (i == 0 ? std::sqrt(1.0 / nb) : std::sqrt(2.0 / nb)) *
              std::cos(kPi * i * (j + 0.5) / nb);
        } else if (i == 0) {
          v = j == 0 ? 0.5 : 1.0;  // C0: the first filter weighted 1/2; compute() divides by N
        } else {
          // fe_compute_melcosine keeps the cosines in float32 (mfcc_t); fe_spec2cep weights the
          // first filter 1 and the others 2; compute() divides by 2N.
          v = (j == 0 ? 1.0 : 2.0) * double(float(std::cos(kPi / nb * i * (j + 0.5))));
        }
        dct_[size_t(i) * size_t(nb) + size_t(j)] = v;
      }
    lifter_.assign(size_t(nc), 1.0);
    if (o_.lifter > 0)
      for (int i = 0; i < nc; ++i)
        lifter_[size_t(i)] = 1.0 + 0.5 * o_.lifter * std::sin(kPi * i / o_.lifter);
  }
}

// Vocal-tract-length perturbation (Jaitly and Hinton 2013): frequencies below a boundary scale
// by `warp`, those above map linearly so that Nyquist stays Nyquist; the filters' edges move
// accordingly, so a filterbank of a warped voice sees what this one would.
double MfccComputer::warp_hz(double hz, double warp) const {
  const double nyquist = o_.sample_rate / 2.0;
  const double boundary = 0.85 * nyquist * std::min(warp, 1.0) / warp;
  if (hz <= boundary) return hz * warp;
  return boundary * warp + (hz - boundary) * (nyquist - boundary * warp) / (nyquist - boundary);
}

void MfccComputer::build_filters(double warp, std::vector<int>& first,
                                 std::vector<std::vector<float>>& weights) const {
  auto warp_hz = [&](double hz) { return this->warp_hz(hz, warp); };
  auto warp_mel = [&](double mel) {
    return warp == 1.0 ? mel : mel_of(o_.mel, warp_hz(hz_of(o_.mel, mel)));
  };
  const int bins = o_.fft_size / 2 + 1;
  const double nyquist = o_.sample_rate / 2.0;
  const double high = o_.high_hz > 0 ? o_.high_hz : nyquist + o_.high_hz;
  const double bin_hz = double(o_.sample_rate) / o_.fft_size;
  first.assign(size_t(o_.num_bins), 0);
  weights.assign(size_t(o_.num_bins), {});
  if (o_.filters == FilterShape::kKaldi) {
    // Kaldi computes these in float; computing in double and storing float moves a weight by less
    // than the float FFT's rounding does.
    const double mlo = mel_of(o_.mel, o_.low_hz), mhi = mel_of(o_.mel, high);
    const double step = (mhi - mlo) / (o_.num_bins + 1);
    for (int b = 0; b < o_.num_bins; ++b) {
      const double left = warp_mel(mlo + b * step), centre = warp_mel(mlo + (b + 1) * step),
                   right = warp_mel(mlo + (b + 2) * step);
      int lo_bin = -1;
      std::vector<float> w;
      for (int k = 0; k < o_.fft_size / 2; ++k) {  // Kaldi leaves out the Nyquist bin
        const double m = mel_of(o_.mel, bin_hz * k);
        if (m > left && m < right) {
          if (lo_bin < 0) lo_bin = k;
          w.resize(size_t(k - lo_bin + 1), 0.f);
          w.back() =
              float(m <= centre ? (m - left) / (centre - left) : (right - m) / (right - centre));
        }
      }
      if (lo_bin < 0 && warp != 1.0) {
        // A warped narrow filter may fall between two bins: it takes the bin nearest its centre
        // (configure() checked that every unwarped filter covers one).
        lo_bin = std::clamp(int(std::lround(hz_of(o_.mel, centre) / bin_hz)), 0, bins - 2);
        w.assign(1, 1.f);
      }
      if (lo_bin < 0)
        throw std::invalid_argument("mel filter " + std::to_string(b) +
                                    " covers no FFT bin: use fewer num_bins or a larger fft_size");
      first[size_t(b)] = lo_bin;
      weights[size_t(b)] = std::move(w);
    }
  } else {
    // sphinx_fe's fe_build_melfilters, in its float arithmetic.
    const float fftfreq = float(o_.sample_rate) / float(o_.fft_size);
    const float melmin = float(mel_of(o_.mel, float(o_.low_hz)));
    const float melmax = float(mel_of(o_.mel, float(high)));
    const float melbw = (melmax - melmin) / float(o_.num_bins + 1);
    for (int b = 0; b < o_.num_bins; ++b) {
      float f[3];
      for (int j = 0; j < 3; ++j) {
        f[j] = float(hz_of(o_.mel, float(b + j) * melbw + melmin));
        if (warp != 1.0) f[j] = float(warp_hz(f[j]));
        // Rounded to the nearest FFT bin: a float quotient plus a double 0.5, truncated.
        f[j] = float(int(double(f[j] / fftfreq) + 0.5)) * fftfreq;
      }
      int lo_bin = -1, width = 0;
      for (int k = 0; k < bins; ++k) {
        const float hz = float(k) * fftfreq;
        if (hz < f[0]) continue;
        if (hz > f[2] || k == o_.fft_size / 2) {
          width = k - lo_bin;
          break;
        }
        if (lo_bin < 0) lo_bin = k;
      }
      if ((lo_bin < 0 || width <= 0 || f[1] <= f[0] || f[2] <= f[1]) && warp != 1.0) {
        // As above: a warped filter too narrow for the bins takes the one nearest its centre.
        first[size_t(b)] = std::clamp(int(f[1] / fftfreq + 0.5f), 0, bins - 1);
        weights[size_t(b)].assign(1, 1.f);
        continue;
      }
      if (lo_bin < 0 || width <= 0 || f[1] <= f[0] || f[2] <= f[1])
        throw std::invalid_argument("mel filter " + std::to_string(b) +
                                    " covers no FFT bin: use fewer num_bins or a larger fft_size");
      std::vector<float> w(static_cast<size_t>(width));
      for (int j = 0; j < width; ++j) {
        const float hz = float(lo_bin + j) * fftfreq;
        float lo = (hz - f[0]) / (f[1] - f[0]);
        float hi = (f[2] - hz) / (f[2] - f[1]);
        lo *= 2 / (f[2] - f[0]);
        hi *= 2 / (f[2] - f[0]);
        w[size_t(j)] = lo < hi ? lo : hi;
      }
      first[size_t(b)] = lo_bin;
      weights[size_t(b)] = std::move(w);
    }
  }
}

MfccComputer::~MfccComputer() = default;

std::vector<std::vector<float>> MfccComputer::filter_matrix() const {
  std::vector<std::vector<float>> m(size_t(o_.num_bins),
                                    std::vector<float>(size_t(o_.fft_size / 2 + 1), 0.f));
  for (size_t b = 0; b < weights_.size(); ++b)
    for (size_t j = 0; j < weights_[b].size(); ++j)
      m[b][size_t(first_bin_[b]) + j] = weights_[b][j];
  return m;
}

std::vector<float> MfccComputer::compute(const float* samples, long long n, double warp,
                                         const std::vector<std::pair<int, int>>& masks) const {
  for (const auto& [a, b] : masks)
    if (a < 0 || b > o_.num_bins || a >= b)
      throw std::invalid_argument("a mel mask [" + std::to_string(a) + ", " + std::to_string(b) +
                                  ") outside the " + std::to_string(o_.num_bins) + " filters");
  if (!(warp >= 0.5 && warp <= 2.0))
    throw std::invalid_argument("a warp factor must be in [0.5, 2], got " + std::to_string(warp));
  std::vector<int> warped_first;
  std::vector<std::vector<float>> warped;
  if (warp != 1.0) build_filters(warp, warped_first, warped);
  const std::vector<int>& first_bin = warp != 1.0 ? warped_first : first_bin_;
  const std::vector<std::vector<float>>& weights = warp != 1.0 ? warped : weights_;
  const int frames = mfcc_frames(o_, n);
  const int nf = features(), len = o_.frame_length, nfft = o_.fft_size;
  std::vector<float> out(size_t(frames) * size_t(nf));
  std::vector<double> frame(static_cast<size_t>(len));
  std::vector<kiss_fft_scalar> buf(static_cast<size_t>(nfft));
  std::vector<kiss_fft_cpx> spec(size_t(nfft / 2 + 1));
  // kiss_fftr keeps scratch space in its state: concurrent calls (the pipeline runs samples on
  // several threads) each need their own, or they overwrite each other's spectra.
  struct Fft {
    kiss_fftr_cfg cfg;
    ~Fft() { kiss_fftr_free(cfg); }
  } fft{kiss_fftr_alloc(nfft, 0, nullptr, nullptr)};
  if (!fft.cfg) throw std::runtime_error("cannot allocate the FFT");
  std::vector<double> power(size_t(nfft / 2 + 1)), logmel(size_t(o_.num_bins));
  const double scale = o_.sample_scale;
  for (int t = 0; t < frames; ++t) {
    const long long start = (long long)t * o_.frame_shift;
    // The last frames may run past the signal (snip_edges false): `valid` samples, then zeros.
    const int valid = int(std::min<long long>(len, n - start));
    for (int i = 0; i < len; ++i)
      frame[size_t(i)] = i < valid ? double(samples[start + i]) * scale : 0.0;
    if (o_.remove_dc) {
      double mean = 0;
      for (double v : frame) mean += v;
      mean /= len;
      for (double& v : frame) v -= mean;
    }
    double log_energy = 0;
    if (o_.use_energy && !o_.fbank) {
      double e = 0;
      for (double v : frame) e += v * v;
      log_energy = std::log(std::max(e, double(std::numeric_limits<float>::epsilon())));
      if (o_.energy_floor > 0) log_energy = std::max(log_energy, std::log(o_.energy_floor));
    }
    if (o_.preemphasis > 0) {
      // Over the signal's samples only: the zero padding stays zero (sphinx_fe pre-emphasizes the
      // samples it has, then pads; otherwise the first padded sample would get -a x[n-1]).
      const double a = o_.preemphasis;
      for (int i = valid - 1; i > 0; --i) frame[size_t(i)] -= a * frame[size_t(i - 1)];
      if (o_.stream_preemphasis)
        frame[0] -= a * (start > 0 ? double(samples[start - 1]) * scale : 0.0);
      else
        frame[0] -= a * frame[0];
    }
    for (int i = 0; i < len; ++i)
      buf[size_t(i)] = kiss_fft_scalar(frame[size_t(i)] * window_[size_t(i)]);
    std::fill(buf.begin() + len, buf.end(), kiss_fft_scalar(0));
    kiss_fftr(fft.cfg, buf.data(), spec.data());
    for (size_t k = 0; k < spec.size(); ++k)
      power[k] = double(spec[k].r) * spec[k].r + double(spec[k].i) * spec[k].i;
    for (int b = 0; b < o_.num_bins; ++b) {
      const std::vector<float>& w = weights[size_t(b)];
      const double* p = power.data() + first_bin[size_t(b)];
      double e = 0;
      for (size_t j = 0; j < w.size(); ++j) e += double(w[j]) * p[j];
      logmel[size_t(b)] =
          o_.log_add > 0 ? std::log(e + o_.log_add) : std::log(std::max(e, o_.log_floor));
    }
    for (const auto& [a, b] : masks) {  // the line from filter a - 1 to filter b
      const bool left = a > 0, right = b < o_.num_bins;
      if (!left && !right) {
        double mean = 0;
        for (double v : logmel) mean += v;
        std::fill(logmel.begin(), logmel.end(), mean / double(logmel.size()));
        continue;
      }
      const double lo = left ? logmel[size_t(a - 1)] : logmel[size_t(b)],
                   hi = right ? logmel[size_t(b)] : logmel[size_t(a - 1)];
      for (int k = a; k < b; ++k)
        logmel[size_t(k)] = lo + (hi - lo) * double(k - a + 1) / double(b - a + 1);
    }
    float* row = out.data() + size_t(t) * size_t(nf);
    if (o_.fbank) {
      for (int b = 0; b < nf; ++b) row[b] = float(logmel[size_t(b)]);
      continue;
    }
    const int nb = o_.num_bins;
    for (int i = 0; i < nf; ++i) {
      const double* d = dct_.data() + size_t(i) * size_t(nb);
      double c = 0;
      if (o_.dct == Dct::kSphinxLegacy) {
        // fe_spec2cep accumulates into the float32 cepstrum and divides at the end; its rounding
        // (a few 1e-6 on C0) is reproduced rather than added to the FFT's.
        float sum = 0;
        for (int j = 0; j < nb; ++j) sum = float(sum + d[j] * logmel[size_t(j)]);
        c = float(sum / (i == 0 ? nb : 2.0 * nb));
      } else {
        for (int j = 0; j < nb; ++j) c += d[j] * logmel[size_t(j)];
      }
      row[i] = float(c * lifter_[size_t(i)]);
    }
    if (o_.use_energy) row[0] = float(log_energy);
  }
  return out;
}

std::vector<float> add_deltas(const std::vector<float>& x, int frames, int features, int order,
                              int window) {
  if (order < 0 || window < 1) throw std::invalid_argument("deltas need order >= 0, window >= 1");
  // Filters per order, centred: order j has half-width j * window.
  std::vector<std::vector<double>> filt(size_t(order + 1));
  filt[0] = {1.0};
  double norm = 0;
  for (int k = 1; k <= window; ++k) norm += 2.0 * k * k;
  for (int j = 1; j <= order; ++j) {
    const std::vector<double>& prev = filt[size_t(j - 1)];
    std::vector<double> cur(prev.size() + size_t(2 * window), 0.0);
    for (size_t p = 0; p < prev.size(); ++p)
      for (int k = -window; k <= window; ++k) cur[p + size_t(k + window)] += prev[p] * k / norm;
    filt[size_t(j)] = std::move(cur);
  }
  const int out_f = features * (order + 1);
  std::vector<float> y(size_t(frames) * size_t(out_f));
  for (int t = 0; t < frames; ++t)
    for (int j = 0; j <= order; ++j) {
      const std::vector<double>& f = filt[size_t(j)];
      const int half = int(f.size() / 2);
      float* dst = y.data() + size_t(t) * size_t(out_f) + size_t(j) * size_t(features);
      for (int c = 0; c < features; ++c) {
        double s = 0;
        for (int k = -half; k <= half; ++k) {
          const int tt = std::clamp(t + k, 0, frames - 1);
          s += f[size_t(k + half)] * x[size_t(tt) * size_t(features) + size_t(c)];
        }
        dst[c] = float(s);
      }
    }
  return y;
}

}  // namespace bpkit_audio
