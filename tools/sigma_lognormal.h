// The sigma-lognormal model of handwriting (Plamondon's kinematic theory of rapid human movements).
//
// A pen movement is a vector sum of overlapping strokes. Stroke i, commanded at time t0_i, moves
// the pen a distance D_i with a log-normal speed profile
//
//   |v_i(t)| = D_i / (sigma_i sqrt(2 pi) (t - t0_i)) exp(-(ln(t - t0_i) - mu_i)^2 / (2 sigma_i^2))
//
// for t > t0_i (0 before), and its direction turns linearly with the distance travelled, from
// theta_s at the start to theta_e at the end:
//
//   phi_i(t) = theta_s_i + (theta_e_i - theta_s_i) / D_i * s_i(t),
//   s_i(t)   = integral of |v_i| from t0_i to t = D_i / 2 (1 + erf((ln(t - t0_i) - mu_i) / (sigma_i
//   sqrt 2))).
//
// Constant turning per distance means every stroke traces an arc of a circle (a straight segment
// when theta_s = theta_e), so a stroke's displacement at any time has a closed form, and so does
// the pen position of a component (the sum of its strokes' displacements). Units: lengths in any
// unit (the generator uses mm), times in seconds, angles in radians, counter-clockwise with y up.
#pragma once

#include <vector>

namespace bpkit_sigma {

constexpr double kPi = 3.14159265358979323846;

struct Vec2 {
  double x = 0, y = 0;
};

struct Stroke {
  double D = 1;        // distance travelled along the arc, > 0
  double t0 = 0;       // time of the motor command; the pen moves for t > t0
  double mu = -1.8;    // log time delay: the speed profile's median is at t0 + exp(mu)
  double sigma = 0.3;  // log response time, > 0: larger is slower and more asymmetric
  double theta_s = 0;  // direction of motion at the start
  double theta_e = 0;  // direction at the end
};

// The stroke's speed at time t (0 for t <= t0).
double speed(const Stroke& s, double t);
// The distance travelled by time t, in closed form (the log-normal's CDF times D): in [0, D).
double distance(const Stroke& s, double t);
// The direction of motion at time t: theta_s + (theta_e - theta_s) distance(t) / D.
double direction(const Stroke& s, double t);
// The velocity vector at time t: speed(t) (cos direction(t), sin direction(t)).
Vec2 velocity(const Stroke& s, double t);
// The displacement after travelling `along` (0..D) on the stroke's arc.
Vec2 displacement_along(const Stroke& s, double along);
// The displacement by time t, in closed form: displacement_along(s, distance(s, t)).
Vec2 displacement(const Stroke& s, double t);
// The whole stroke's displacement (its chord): displacement_along(s, D).
Vec2 displacement(const Stroke& s);
// The time of the speed peak, t0 + exp(mu - sigma^2).
double peak_time(const Stroke& s);
// The times between which the stroke travels all but a fraction of its distance: t0 + exp(mu -
// k sigma) and t0 + exp(mu + k sigma) (k = 3.5 leaves 0.02% of D on each side).
double onset_time(const Stroke& s, double k = 3.5);
double end_time(const Stroke& s, double k = 3.5);

// The stroke that moves from `from` to `to` along an arc of a circle turning by `bend` radians
// (positive: counter-clockwise), with the given timing: the inverse problem for one virtual target.
// Requires from != to and |bend| < 2 pi; ensures displacement(result) == to - from (to rounding).
Stroke arc_stroke(Vec2 from, Vec2 to, double bend, double t0, double mu, double sigma);

// One pen-down component: the pen starts at `start` at rest and moves by the sum of its strokes.
struct Component {
  Vec2 start;
  std::vector<Stroke> strokes;
};

// A sample of the pen: time, position and speed (the norm of the summed velocity).
struct PenSample {
  double t = 0, x = 0, y = 0, speed = 0;
};

// The component's movement from its first stroke's onset to its last stroke's end (onset_time and
// end_time with k = 3.5), sampled at `rate_hz`: positions in closed form (sum of displacements).
// Requires rate_hz > 0 and at least one stroke; the last sample is at the end time.
std::vector<PenSample> trajectory(const Component& c, double rate_hz);
// The same movement by numerical integration of the summed velocity (classical Runge-Kutta at
// `rate_hz`, which for a velocity independent of position is Simpson's rule); for checking the
// closed form, which the generator uses.
std::vector<PenSample> integrate(const Component& c, double rate_hz);

}  // namespace bpkit_sigma
