// Augmentation signals; see augment_dsp.h.
#include "augment_dsp.h"

#include <kissfft/kiss_fftr.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace bpkit_audio {

namespace {
constexpr double kPi = 3.14159265358979323846;
}

double mean_power(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += double(v) * v;
  return x.empty() ? 0 : s / double(x.size());
}

void biquad(std::vector<float>& x, double b0, double b1, double b2, double a1, double a2) {
  double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  for (float& s : x) {
    const double y = b0 * s + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1;
    x1 = s;
    y2 = y1;
    y1 = y;
    s = float(y);
  }
}

std::vector<float> colored_noise(const std::string& color, size_t n, int rate,
                                 std::mt19937_64& rng) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(n);
  if (color == "white") {
    for (float& v : x) v = g(rng);
  } else if (color == "pink") {  // Paul Kellet's economical three-pole approximation
    double b0 = 0, b1 = 0, b2 = 0;
    for (float& v : x) {
      const double w = g(rng);
      b0 = 0.99765 * b0 + w * 0.0990460;
      b1 = 0.96300 * b1 + w * 0.2965164;
      b2 = 0.57000 * b2 + w * 1.0526913;
      v = float(b0 + b1 + b2 + w * 0.1848);
    }
  } else if (color == "brown") {
    double s = 0;
    for (float& v : x) {
      s = 0.995 * s + 0.1 * g(rng);  // leaky, so that it never drifts off
      v = float(s);
    }
  } else if (color == "hum") {
    const double f0 = std::uniform_int_distribution<int>(0, 1)(rng) ? 50 : 60;
    for (size_t i = 0; i < n; ++i) {
      double v = 0;
      for (int h = 1; h <= 5; ++h) v += std::sin(2 * kPi * f0 * h * double(i) / rate) / h;
      x[i] = float(v + 0.05 * g(rng));
    }
  } else {
    throw std::invalid_argument("unknown noise colour '" + color +
                                "' (expected white, pink, brown or hum)");
  }
  const double p = mean_power(x);
  if (p > 0)
    for (float& v : x) v = float(v / std::sqrt(p));
  return x;
}

std::vector<float> room_response(double rt60, int rate, std::mt19937_64& rng) {
  std::vector<float> h(std::max<size_t>(1, size_t(rt60 * rate * 0.5)));
  std::normal_distribution<float> g(0.f, 1.f);
  const double decay = std::log(1000.0) / (rt60 * rate);  // amplitude -60 dB at rt60
  for (size_t k = 0; k < h.size(); ++k) h[k] = float(g(rng) * std::exp(-decay * double(k)) * 0.3);
  h[0] = 1;
  return h;
}

std::vector<float> fft_convolve(const std::vector<float>& x, const std::vector<float>& h) {
  if (x.empty() || h.empty()) return {};
  size_t n = 1;
  while (n < x.size() + h.size()) n *= 2;
  kiss_fftr_cfg fwd = kiss_fftr_alloc(int(n), 0, nullptr, nullptr);
  kiss_fftr_cfg inv = kiss_fftr_alloc(int(n), 1, nullptr, nullptr);
  if (!fwd || !inv) {
    kiss_fftr_free(fwd);
    kiss_fftr_free(inv);
    throw std::runtime_error("cannot allocate an FFT of " + std::to_string(n) + " points");
  }
  std::vector<float> a(n, 0.f), b(n, 0.f);
  std::copy(x.begin(), x.end(), a.begin());
  std::copy(h.begin(), h.end(), b.begin());
  std::vector<kiss_fft_cpx> fa(n / 2 + 1), fb(n / 2 + 1);
  kiss_fftr(fwd, a.data(), fa.data());
  kiss_fftr(fwd, b.data(), fb.data());
  for (size_t k = 0; k < fa.size(); ++k) {  // product, with the inverse FFT's 1/n folded in
    const float r = fa[k].r * fb[k].r - fa[k].i * fb[k].i;
    const float i = fa[k].r * fb[k].i + fa[k].i * fb[k].r;
    fa[k].r = r / float(n);
    fa[k].i = i / float(n);
  }
  kiss_fftri(inv, fa.data(), a.data());
  kiss_fftr_free(fwd);
  kiss_fftr_free(inv);
  a.resize(x.size() + h.size() - 1);
  return a;
}

}  // namespace bpkit_audio
