// Metric losses (forward value and gradient side by side) and verification error rates.
#include "bpkit/metric.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace bpkit {

template <class T>
MetricLoss<T>::MetricLoss(double margin) : margin_(margin) {
  if (!(margin > 0) || !std::isfinite(margin))
    throw std::invalid_argument("metric loss: margin must be a positive number, got " +
                                std::to_string(margin));
}

template <class T>
int64_t MetricLoss<T>::tuples(const Tensor<T>& out) const {
  const int64_t rows = out.rank() ? out.rows() : 0;
  if (rows == 0 || rows % arity() != 0)
    throw std::invalid_argument(this->kind() + " loss: the output has " + std::to_string(rows) +
                                " rows; expected a positive multiple of " +
                                std::to_string(arity()) + " (one row per member of each tuple)");
  return rows / arity();
}

namespace {
// ‖a − b‖² over D values, in double.
template <class T>
double sq_dist(const T* a, const T* b, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) {
    const double v = double(a[i]) - double(b[i]);
    s += v * v;
  }
  return s;
}
}  // namespace

template <class T>
double TripletLoss<T>::compute(const Tensor<T>& out, const Targets<T>&, Tensor<T>& grad) {
  const int64_t G = this->tuples(out), D = out.size() / out.rows();
  grad.resize(out.shape());
  std::fill(grad.begin(), grad.end(), T(0));
  double sum = 0;
  const T scale = T(2.0 / double(G));
  for (int64_t g = 0; g < G; ++g) {
    const T* a = out.data() + 3 * g * D;
    const T* p = a + D;
    const T* n = p + D;
    const double h = sq_dist(a, p, D) - sq_dist(a, n, D) + this->margin_;
    if (h <= 0) continue;
    sum += h;
    T* ga = grad.data() + 3 * g * D;
    T* gp = ga + D;
    T* gn = gp + D;
    for (int64_t i = 0; i < D; ++i) {
      ga[i] = scale * (n[i] - p[i]);
      gp[i] = -scale * (a[i] - p[i]);
      gn[i] = scale * (a[i] - n[i]);
    }
  }
  return sum / double(G);
}

template <class T>
int64_t TripletLoss<T>::count_right(const Tensor<T>& out, const Targets<T>&) const {
  const int64_t G = this->tuples(out), D = out.size() / out.rows();
  int64_t right = 0;
  for (int64_t g = 0; g < G; ++g) {
    const T* a = out.data() + 3 * g * D;
    right += sq_dist(a, a + D, D) < sq_dist(a, a + 2 * D, D);
  }
  return right;
}

template <class T>
double ContrastiveLoss<T>::compute(const Tensor<T>& out, const Targets<T>& t, Tensor<T>& grad) {
  const int64_t G = this->tuples(out), D = out.size() / out.rows();
  if (int64_t(t.labels.size()) != G)
    throw std::invalid_argument("contrastive loss: " + std::to_string(t.labels.size()) +
                                " labels for " + std::to_string(G) +
                                " pairs (1: same writer, 0: different)");
  grad.resize(out.shape());
  std::fill(grad.begin(), grad.end(), T(0));
  double sum = 0;
  const double m = this->margin_;
  for (int64_t g = 0; g < G; ++g) {
    const T* x1 = out.data() + 2 * g * D;
    const T* x2 = x1 + D;
    T* g1 = grad.data() + 2 * g * D;
    T* g2 = g1 + D;
    const double d2 = sq_dist(x1, x2, D);
    double k;  // ∂L/∂x1 = k·(x1 − x2)
    if (t.labels[size_t(g)] != 0) {
      sum += d2 / 2;
      k = 1;
    } else {
      const double d = std::sqrt(d2);
      if (d >= m) continue;
      sum += (m - d) * (m - d) / 2;
      k = -(m - d) / std::max(d, 1e-9);
    }
    const T s = T(k / double(G));
    for (int64_t i = 0; i < D; ++i) {
      g1[i] = s * (x1[i] - x2[i]);
      g2[i] = -g1[i];
    }
  }
  return sum / double(G);
}

template <class T>
int64_t ContrastiveLoss<T>::count_right(const Tensor<T>& out, const Targets<T>& t) const {
  const int64_t G = this->tuples(out), D = out.size() / out.rows();
  int64_t right = 0;
  const double half = this->margin_ / 2;
  for (int64_t g = 0; g < G && size_t(g) < t.labels.size(); ++g) {
    const T* x1 = out.data() + 2 * g * D;
    const bool near = std::sqrt(sq_dist(x1, x1 + D, D)) < half;
    right += near == (t.labels[size_t(g)] != 0);
  }
  return right;
}

template <class T>
std::unique_ptr<MetricLoss<T>> make_metric_loss(const std::string& kind, double margin) {
  if (kind == "triplet") return std::make_unique<TripletLoss<T>>(margin);
  if (kind == "contrastive") return std::make_unique<ContrastiveLoss<T>>(margin);
  throw std::invalid_argument("unknown metric loss '" + kind + "' (triplet or contrastive)");
}

#define BPKIT_METRIC(T)              \
  template class MetricLoss<T>;      \
  template class TripletLoss<T>;     \
  template class ContrastiveLoss<T>; \
  template std::unique_ptr<MetricLoss<T>> make_metric_loss<T>(const std::string&, double);
BPKIT_METRIC(float)
BPKIT_METRIC(double)
#undef BPKIT_METRIC

// ---- Verification error rates ----

namespace {
void require_trials(const std::vector<double>& genuine, const std::vector<double>& impostor) {
  if (genuine.empty() || impostor.empty())
    throw std::invalid_argument("verification error rates need genuine and impostor trials (got " +
                                std::to_string(genuine.size()) + " and " +
                                std::to_string(impostor.size()) + ")");
  for (const auto* v : {&genuine, &impostor})
    for (double s : *v)
      if (std::isnan(s)) throw std::invalid_argument("a verification score is NaN");
}
}  // namespace

ErrorRates error_rates(const std::vector<double>& genuine, const std::vector<double>& impostor,
                       double threshold) {
  require_trials(genuine, impostor);
  int64_t fa = 0, fr = 0;
  for (double s : impostor) fa += s >= threshold;
  for (double s : genuine) fr += s < threshold;
  return {double(fa) / double(impostor.size()), double(fr) / double(genuine.size())};
}

std::vector<DetPoint> det_curve(const std::vector<double>& genuine,
                                const std::vector<double>& impostor) {
  require_trials(genuine, impostor);
  std::vector<double> g = genuine, im = impostor;
  std::sort(g.begin(), g.end());
  std::sort(im.begin(), im.end());
  std::vector<double> all = g;
  all.insert(all.end(), im.begin(), im.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<DetPoint> curve;
  curve.reserve(all.size() + 1);
  size_t gi = 0, ii = 0;  // scores below the threshold
  const double ng = double(g.size()), ni = double(im.size());
  for (double t : all) {
    while (gi < g.size() && g[gi] < t) ++gi;
    while (ii < im.size() && im[ii] < t) ++ii;
    curve.push_back({t, double(im.size() - ii) / ni, double(gi) / ng});
  }
  curve.push_back({std::numeric_limits<double>::infinity(), 0.0, 1.0});
  return curve;
}

Eer equal_error_rate(const std::vector<double>& genuine, const std::vector<double>& impostor) {
  const std::vector<DetPoint> c = det_curve(genuine, impostor);
  // FAR − FRR falls from 1 (lowest threshold) to −1 (above every score).
  for (size_t j = 0; j < c.size(); ++j) {
    const double dj = c[j].far - c[j].frr;
    if (dj > 0) continue;
    if (dj == 0 || j == 0) return {c[j].far, c[j].threshold};
    const double dp = c[j - 1].far - c[j - 1].frr;
    const double a = dp / (dp - dj);
    const double eer = c[j - 1].far + a * (c[j].far - c[j - 1].far);
    const double t = std::isinf(c[j].threshold)
                         ? std::nextafter(c[j - 1].threshold, std::numeric_limits<double>::max())
                         : c[j - 1].threshold + a * (c[j].threshold - c[j - 1].threshold);
    return {eer, t};
  }
  return {0, c.back().threshold};  // not reached: the last point has FAR − FRR = −1
}

}  // namespace bpkit
