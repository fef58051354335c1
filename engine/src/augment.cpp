#include "bpkit/augment.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "bpkit/threading.h"

namespace bpkit {

AffineDraw draw_affine(const Augment& a, Rng& rng) {
  // Always six draws, so that changing one range leaves the others' streams where they were.
  double u[6];
  for (double& v : u) v = rng.uniform();
  constexpr double kPi = 3.14159265358979323846;
  AffineDraw d;
  d.dx = a.shift * (2 * u[0] - 1);
  d.dy = a.shift * (2 * u[1] - 1);
  d.angle = a.rotate * (2 * u[2] - 1) * kPi / 180;
  d.zoom = 1 + a.scale * (2 * u[3] - 1);
  d.erase_x = u[4];
  d.erase_y = u[5];
  return d;
}

void affine_image(const float* in, float* out, int64_t channels, int64_t height, int64_t width,
                  const AffineDraw& d, float fill) {
  // Inverse mapping: for each output pixel, where it comes from in the input, so every output
  // pixel is written exactly once and no holes appear.
  const double cx = 0.5 * double(width - 1), cy = 0.5 * double(height - 1);
  const double c = std::cos(d.angle) / d.zoom, s = std::sin(d.angle) / d.zoom;
  const int64_t plane = height * width;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      const double px = double(x) - cx - d.dx, py = double(y) - cy - d.dy;
      const double sx = c * px + s * py + cx, sy = -s * px + c * py + cy;
      const double fx = std::floor(sx), fy = std::floor(sy);
      const int64_t x0 = int64_t(fx), y0 = int64_t(fy);
      const double ax = sx - fx, ay = sy - fy;
      const double w[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
      const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
      for (int64_t ch = 0; ch < channels; ++ch) {
        const float* src = in + ch * plane;
        double v = 0;
        for (int k = 0; k < 4; ++k) {
          const bool inside = xs[k] >= 0 && xs[k] < width && ys[k] >= 0 && ys[k] < height;
          v += w[k] * (inside ? double(src[ys[k] * width + xs[k]]) : double(fill));
        }
        out[ch * plane + y * width + x] = float(v);
      }
    }
}

void erase_square(float* im, int64_t channels, int64_t height, int64_t width, const AffineDraw& d,
                  int64_t side, float fill) {
  if (side <= 0) return;
  const int64_t x0 = int64_t(std::floor(d.erase_x * double(width))) - side / 2;
  const int64_t y0 = int64_t(std::floor(d.erase_y * double(height))) - side / 2;
  const int64_t xb = std::max<int64_t>(x0, 0), xe = std::min(x0 + side, width);
  const int64_t yb = std::max<int64_t>(y0, 0), ye = std::min(y0 + side, height);
  for (int64_t ch = 0; ch < channels; ++ch)
    for (int64_t y = yb; y < ye; ++y)
      for (int64_t x = xb; x < xe; ++x) im[(ch * height + y) * width + x] = fill;
}

void augment_batch(Tensor<float>& x, const Augment& a, Rng& rng) {
  if (!a.enabled()) return;
  if (x.rank() != 4)
    throw std::invalid_argument("augmentation needs image-shaped samples [B, C, H, W], got rank " +
                                std::to_string(x.rank()));
  const int64_t b = x.dim(0), ch = x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t per = ch * h * w;
  // Draws first, in sample order, so the transforms do not depend on how threads split the batch.
  std::vector<AffineDraw> draws;
  draws.reserve(size_t(b));
  for (int64_t i = 0; i < b; ++i) draws.push_back(draw_affine(a, rng));
  std::vector<float> in(x.data(), x.data() + x.size());
  parallel_for(b, 8, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      affine_image(in.data() + i * per, x.data() + i * per, ch, h, w, draws[size_t(i)], a.fill);
      erase_square(x.data() + i * per, ch, h, w, draws[size_t(i)], a.erase, a.fill);
    }
  });
}

}  // namespace bpkit
