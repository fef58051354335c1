#include "sigma_lognormal.h"

#include <algorithm>
#include <cmath>

namespace bpkit_sigma {

double speed(const Stroke& s, double t) {
  const double dt = t - s.t0;
  if (dt <= 0) return 0;
  const double z = (std::log(dt) - s.mu) / s.sigma;
  return s.D / (s.sigma * std::sqrt(2 * kPi) * dt) * std::exp(-0.5 * z * z);
}

double distance(const Stroke& s, double t) {
  const double dt = t - s.t0;
  if (dt <= 0) return 0;
  return 0.5 * s.D * (1 + std::erf((std::log(dt) - s.mu) / (s.sigma * std::sqrt(2.0))));
}

double direction(const Stroke& s, double t) {
  return s.theta_s + (s.theta_e - s.theta_s) * distance(s, t) / s.D;
}

Vec2 velocity(const Stroke& s, double t) {
  const double v = speed(s, t), phi = direction(s, t);
  return {v * std::cos(phi), v * std::sin(phi)};
}

Vec2 displacement_along(const Stroke& s, double along) {
  const double k = (s.theta_e - s.theta_s) / s.D;  // curvature: turning per unit distance
  // Below this turning the arc formula loses precision to cancellation; the chord is exact enough.
  if (std::fabs(k * s.D) < 1e-9) return {along * std::cos(s.theta_s), along * std::sin(s.theta_s)};
  return {(std::sin(s.theta_s + k * along) - std::sin(s.theta_s)) / k,
          (std::cos(s.theta_s) - std::cos(s.theta_s + k * along)) / k};
}

Vec2 displacement(const Stroke& s, double t) {
  return displacement_along(s, distance(s, t));
}
Vec2 displacement(const Stroke& s) {
  return displacement_along(s, s.D);
}

double peak_time(const Stroke& s) {
  return s.t0 + std::exp(s.mu - s.sigma * s.sigma);
}
double onset_time(const Stroke& s, double k) {
  return s.t0 + std::exp(s.mu - k * s.sigma);
}
double end_time(const Stroke& s, double k) {
  return s.t0 + std::exp(s.mu + k * s.sigma);
}

Stroke arc_stroke(Vec2 from, Vec2 to, double bend, double t0, double mu, double sigma) {
  const double dx = to.x - from.x, dy = to.y - from.y;
  const double chord = std::hypot(dx, dy), phi = std::atan2(dy, dx);
  Stroke s;
  // An arc turning by b with radius R has length R b and chord 2 R sin(b / 2).
  s.D = std::fabs(bend) < 1e-9 ? chord : chord * (bend / 2) / std::sin(bend / 2);
  s.t0 = t0;
  s.mu = mu;
  s.sigma = sigma;
  s.theta_s = phi - bend / 2;
  s.theta_e = phi + bend / 2;
  return s;
}

namespace {

void time_span(const Component& c, double& begin, double& end) {
  begin = onset_time(c.strokes[0]);
  end = end_time(c.strokes[0]);
  for (const Stroke& s : c.strokes) {
    begin = std::min(begin, onset_time(s));
    end = std::max(end, end_time(s));
  }
}

Vec2 summed_velocity(const Component& c, double t) {
  Vec2 v;
  for (const Stroke& s : c.strokes) {
    const Vec2 w = velocity(s, t);
    v.x += w.x;
    v.y += w.y;
  }
  return v;
}

}  // namespace

std::vector<PenSample> trajectory(const Component& c, double rate_hz) {
  std::vector<PenSample> out;
  if (c.strokes.empty() || !(rate_hz > 0)) return out;
  double begin, end;
  time_span(c, begin, end);
  const long n = std::max(1L, long(std::ceil((end - begin) * rate_hz)));
  out.reserve(size_t(n) + 1);
  // Beyond 6 sigma a stroke has travelled all but 1e-9 of D and no longer moves: from then on it
  // contributes its chord, added once to `done` (time only grows).
  const size_t m = c.strokes.size();
  std::vector<double> finish(m);
  std::vector<char> finished(m, 0);
  for (size_t k = 0; k < m; ++k)
    finish[k] = c.strokes[k].t0 + std::exp(c.strokes[k].mu + 6 * c.strokes[k].sigma);
  Vec2 done = c.start;
  for (long i = 0; i <= n; ++i) {
    const double t = i == n ? end : begin + double(i) / rate_hz;
    PenSample p{t, 0, 0, 0};
    Vec2 v;
    for (size_t k = 0; k < m; ++k) {
      const Stroke& s = c.strokes[k];
      if (finished[k] || t <= s.t0) continue;
      if (t > finish[k]) {
        const Vec2 d = displacement(s);
        done.x += d.x;
        done.y += d.y;
        finished[k] = 1;
        continue;
      }
      // Both from one distance: the position and the direction of the arc at time t.
      const double along = distance(s, t), sp = speed(s, t);
      const Vec2 d = displacement_along(s, along);
      const double phi = s.theta_s + (s.theta_e - s.theta_s) * along / s.D;
      p.x += d.x;
      p.y += d.y;
      v.x += sp * std::cos(phi);
      v.y += sp * std::sin(phi);
    }
    p.x += done.x;
    p.y += done.y;
    p.speed = std::hypot(v.x, v.y);
    out.push_back(p);
  }
  return out;
}

std::vector<PenSample> integrate(const Component& c, double rate_hz) {
  std::vector<PenSample> out;
  if (c.strokes.empty() || !(rate_hz > 0)) return out;
  double begin, end;
  time_span(c, begin, end);
  // Starting the integration at the first command (not at the onset) includes the tiny distance
  // travelled before the onset, as the closed form does.
  double t0 = begin;
  for (const Stroke& s : c.strokes) t0 = std::min(t0, s.t0);
  const long n = std::max(1L, long(std::ceil((end - t0) * rate_hz)));
  const double h = (end - t0) / double(n);
  Vec2 p = c.start;
  for (long i = 0; i <= n; ++i) {
    const double t = t0 + double(i) * h;
    const Vec2 v = summed_velocity(c, t);
    if (t >= begin || i == n) out.push_back({t, p.x, p.y, std::hypot(v.x, v.y)});
    if (i == n) break;
    const Vec2 vm = summed_velocity(c, t + h / 2), ve = summed_velocity(c, t + h);
    p.x += h / 6 * (v.x + 4 * vm.x + ve.x);
    p.y += h / 6 * (v.y + 4 * vm.y + ve.y);
  }
  return out;
}

}  // namespace bpkit_sigma
