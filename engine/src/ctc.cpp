#include "bpkit/ctc.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "bpkit/threading.h"

namespace bpkit {
namespace {

// Frames the labels need: one per label plus a blank between each pair of equal neighbours.
int64_t frames_needed(const std::vector<int32_t>& labels) {
  int64_t n = int64_t(labels.size());
  for (size_t i = 1; i < labels.size(); ++i) n += labels[i] == labels[i - 1];
  return n;
}

// Per-sample workspace, in doubles: the emission table [T, C], alpha [T, S], two rows [2, S] for
// the backward recursion, and one value per frame.
int64_t workspace_size(int64_t T_max, int64_t C, int64_t S) {
  return T_max * C + T_max * S + 2 * S + T_max;
}

// A skip from state s−2 to s is allowed onto a label that differs from the label before the blank.
inline bool can_skip(const int32_t* ext, int64_t s) {
  return s >= 2 && (s & 1) && ext[s] != ext[s - 2];
}

// Both routines below take one sample: z, g [T, C] (logits, gradient rows), `frames` valid frames,
// ext [S] the blank-interleaved labels (blank, l1, blank, l2, …, blank), and scale = d(reduced
// loss)/d(this sample's loss). They write all T rows of g (zero beyond `frames`) and return
// −log p(labels | z). Sums run in double for either T.
//
// The fast routine runs Graves' rescaled recursions: alpha_t (emission at t included) and beta_t
// (emission at t excluded) are kept as probabilities, each frame's row normalized to sum 1 with
// the logs of the normalizers summed on the side, and the emissions taken relative to each frame's
// largest probability. The posterior of state s at t is alpha_t(s)·beta_t(s) / Σ_s' alpha_t(s')
// beta_t(s'). This needs no exp or log per state. Rows are normalized, so a state can only lose
// precision by underflowing when it is below 1e-300 of its row; such a state matters only if the
// overlap Σ_s alpha_t(s)·beta_t(s) of some frame is itself tiny, so the routine returns false when
// any frame's overlap falls below kMinOverlap (or a row vanishes), and the caller reruns the
// sample in log space. In practice that takes logit gaps of hundreds of nats against the labels.
constexpr double kMinOverlap = 1e-200;

template <class T>
bool ctc_sample_scaled(const T* z, T* g, int64_t T_max, int64_t C, int64_t frames,
                       const int32_t* ext, int64_t S, double* work, T scale, double& loss) {
  double* e = work;                  // [frames, C] exp(z − max z)
  double* alpha = e + T_max * C;     // [frames, S]
  double* beta = alpha + T_max * S;  // [S]
  double* emit = beta + S;           // [S]
  double* inv_sum = emit + S;        // [frames] 1 / Σ_k exp(z − max z)
  double log_z = 0;
  for (int64_t t = 0; t < frames; ++t) {
    const T* zt = z + t * C;
    double* et = e + t * C;
    const double m = double(*std::max_element(zt, zt + C));
    double sum = 0;
    for (int64_t k = 0; k < C; ++k) sum += (et[k] = std::exp(double(zt[k]) - m));
    inv_sum[t] = 1 / sum;
    log_z -= std::log(sum);  // e is the softmax times sum
  }
  std::fill(g + frames * C, g + T_max * C, T(0));

  for (int64_t s = 0; s < S; ++s) alpha[s] = s < 2 ? e[ext[s]] : 0;
  for (int64_t t = 0; t < frames; ++t) {
    double* cur = alpha + t * S;
    if (t > 0) {
      const double* prev = cur - S;
      const double* et = e + t * C;
      for (int64_t s = 0; s < S; ++s) {
        double sum = prev[s];
        if (s >= 1) sum += prev[s - 1];
        if (can_skip(ext, s)) sum += prev[s - 2];
        cur[s] = sum * et[ext[s]];
      }
    }
    double c = 0;
    for (int64_t s = 0; s < S; ++s) c += cur[s];
    if (!(c >= kMinOverlap)) return false;
    const double inv = 1 / c;
    for (int64_t s = 0; s < S; ++s) cur[s] *= inv;
    log_z += std::log(c);
  }
  const double* last = alpha + (frames - 1) * S;
  const double end = last[S - 1] + (S > 1 ? last[S - 2] : 0);
  if (!(end >= kMinOverlap)) return false;
  log_z += std::log(end);

  std::fill(beta, beta + S, 0.0);
  beta[S - 1] = 1;
  if (S > 1) beta[S - 2] = 1;
  for (int64_t t = frames - 1; t >= 0; --t) {
    if (t < frames - 1) {
      double d = 0;
      for (int64_t s = 0; s < S; ++s) {
        double sum = emit[s];
        if (s + 1 < S) sum += emit[s + 1];
        if (s + 2 < S && can_skip(ext, s + 2)) sum += emit[s + 2];
        d += (beta[s] = sum);
      }
      if (!(d >= kMinOverlap)) return false;
      const double inv = 1 / d;
      for (int64_t s = 0; s < S; ++s) beta[s] *= inv;
    }
    const double* at = alpha + t * S;
    const double* et = e + t * C;
    double overlap = 0;
    for (int64_t s = 0; s < S; ++s) overlap += at[s] * beta[s];
    if (!(overlap >= kMinOverlap)) return false;
    // Gradient of −log Z with respect to the logits: y_t(k) − Σ_{s: ext[s] = k} posterior(s).
    // Accumulated in double in the emission row, which is not needed after this frame.
    double* yt = e + t * C;
    const double inv = 1 / overlap;
    for (int64_t s = 0; s < S; ++s) emit[s] = beta[s] * et[ext[s]];
    for (int64_t k = 0; k < C; ++k) yt[k] *= inv_sum[t];
    for (int64_t s = 0; s < S; ++s) yt[ext[s]] -= at[s] * beta[s] * inv;
    T* gt = g + t * C;
    for (int64_t k = 0; k < C; ++k) gt[k] = T(yt[k] * double(scale));
  }
  loss = -log_z;
  return true;
}

// log(e^a + e^b + e^c), exact when some (or all) arguments are −∞.
inline double log_add3(double a, double b, double c) {
  const double m = std::max(a, std::max(b, c));
  if (m == -HUGE_VAL) return m;
  return m + std::log(std::exp(a - m) + std::exp(b - m) + std::exp(c - m));
}

// The same in log space, for the samples the fast routine declines: alpha_t(s) + beta_t(s) − log Z
// is the log posterior of state s at frame t.
template <class T>
double ctc_sample_log(const T* z, T* g, int64_t T_max, int64_t C, int64_t frames,
                      const int32_t* ext, int64_t S, double* work, T scale) {
  constexpr double kNegInf = -HUGE_VAL;
  double* lp = work;                 // [frames, C] log-softmax
  double* alpha = lp + T_max * C;    // [frames, S]
  double* beta = alpha + T_max * S;  // [S]
  double* emit = beta + S;           // [S] beta_{t+1}(s) + log y_{t+1}(ext[s])
  for (int64_t t = 0; t < frames; ++t) {
    const T* zt = z + t * C;
    double* lt = lp + t * C;
    const double m = double(*std::max_element(zt, zt + C));
    double sum = 0;
    for (int64_t k = 0; k < C; ++k) sum += std::exp(double(zt[k]) - m);
    const double log_norm = m + std::log(sum);
    for (int64_t k = 0; k < C; ++k) lt[k] = double(zt[k]) - log_norm;
  }
  std::fill(g + frames * C, g + T_max * C, T(0));

  for (int64_t s = 0; s < S; ++s) alpha[s] = s < 2 ? lp[ext[s]] : kNegInf;
  for (int64_t t = 1; t < frames; ++t) {
    const double* prev = alpha + (t - 1) * S;
    double* cur = alpha + t * S;
    const double* lt = lp + t * C;
    for (int64_t s = 0; s < S; ++s) {
      const double a = prev[s], b = s >= 1 ? prev[s - 1] : kNegInf;
      const double c = can_skip(ext, s) ? prev[s - 2] : kNegInf;
      cur[s] = log_add3(a, b, c) + lt[ext[s]];
    }
  }
  const double* last = alpha + (frames - 1) * S;
  const double log_z = log_add3(last[S - 1], S > 1 ? last[S - 2] : kNegInf, kNegInf);
  if (!std::isfinite(log_z)) {  // non-finite logits; the loss reports it
    std::fill(g, g + frames * C, std::numeric_limits<T>::quiet_NaN());
    return -log_z;
  }

  for (int64_t t = frames - 1; t >= 0; --t) {
    if (t == frames - 1) {
      std::fill(beta, beta + S, kNegInf);
      beta[S - 1] = 0;
      if (S > 1) beta[S - 2] = 0;
    } else {
      for (int64_t s = 0; s < S; ++s) {
        const double a = emit[s], b = s + 1 < S ? emit[s + 1] : kNegInf;
        const double c = s + 2 < S && can_skip(ext, s + 2) ? emit[s + 2] : kNegInf;
        beta[s] = log_add3(a, b, c);
      }
    }
    double* lt = lp + t * C;
    const double* at = alpha + t * S;
    for (int64_t s = 0; s < S; ++s) emit[s] = beta[s] + lt[ext[s]];
    for (int64_t k = 0; k < C; ++k) lt[k] = std::exp(lt[k]);
    for (int64_t s = 0; s < S; ++s) lt[ext[s]] -= std::exp(at[s] + beta[s] - log_z);
    T* gt = g + t * C;
    for (int64_t k = 0; k < C; ++k) gt[k] = T(lt[k] * double(scale));
  }
  return -log_z;
}

}  // namespace

template <class T>
CtcLoss<T>::CtcLoss(int blank, CtcReduction reduction, bool zero_infinity)
    : blank_(blank), reduction_(reduction), zero_infinity_(zero_infinity) {
  if (blank < 0)
    throw std::invalid_argument("ctc loss: blank index " + std::to_string(blank) + " must be >= 0");
}

template <class T>
double CtcLoss<T>::compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) {
  const std::string where = "ctc loss: ";
  if (out.rank() != 3)
    throw std::invalid_argument(where + "expects outputs [batch, frames, classes], got " +
                                to_string(out.shape()));
  const int64_t B = out.dim(0), T_max = out.dim(1), C = out.dim(2);
  if (B < 1 || T_max < 1 || C < 1)
    throw std::invalid_argument(where + "empty output " + to_string(out.shape()));
  if (blank_ >= C)
    throw std::invalid_argument(where + "blank index " + std::to_string(blank_) + " outside the " +
                                std::to_string(C) + " classes of the output");
  if (int64_t(target.sequences.size()) != B)
    throw std::invalid_argument(where + std::to_string(target.sequences.size()) +
                                " label sequences for a batch of " + std::to_string(B));
  if (!target.lengths.empty() && int64_t(target.lengths.size()) != B)
    throw std::invalid_argument(where + std::to_string(target.lengths.size()) +
                                " sequence lengths for a batch of " + std::to_string(B));

  // Validate everything before the parallel region, so that errors name the first bad sample.
  int64_t L_max = 0;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int32_t>& labels = target.sequences[size_t(b)];
    const std::string sample = where + "sample " + std::to_string(b) + ": ";
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] < 0 || labels[i] >= C || labels[i] == blank_)
        throw std::invalid_argument(
            sample + "label " + std::to_string(labels[i]) + " at position " + std::to_string(i) +
            (labels[i] == blank_ ? " is the blank index"
                                 : " outside [0, " + std::to_string(C) + ")"));
    }
    const int64_t frames = target.lengths.empty() ? T_max : target.lengths[size_t(b)];
    if (frames < 1 || frames > T_max)
      throw std::invalid_argument(sample + "length " + std::to_string(frames) + " outside [1, " +
                                  std::to_string(T_max) + "]");
    const int64_t needed = frames_needed(labels);
    if (needed > frames && !zero_infinity_)
      throw std::invalid_argument(sample + std::to_string(labels.size()) + " labels (" +
                                  std::to_string(needed - int64_t(labels.size())) +
                                  " repeats) need at least " + std::to_string(needed) +
                                  " frames, but the sample has " + std::to_string(frames));
    L_max = std::max(L_max, int64_t(labels.size()));
  }

  const int64_t S = 2 * L_max + 1;
  grad.resize(out.shape());
  losses_.resize(size_t(B));
  extended_.resize(size_t(B * S));
  const int64_t work_size = workspace_size(T_max, C, S);
  work_.resize(size_t(B * work_size));

  parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const std::vector<int32_t>& labels = target.sequences[size_t(b)];
      const int64_t L = int64_t(labels.size());
      const int64_t frames = target.lengths.empty() ? T_max : target.lengths[size_t(b)];
      T* g = grad.data() + b * T_max * C;
      if (frames_needed(labels) > frames) {  // only reached with zero_infinity
        std::fill(g, g + T_max * C, T(0));
        losses_[size_t(b)] = 0;
        continue;
      }
      int32_t* ext = extended_.data() + b * S;
      for (int64_t s = 0; s < 2 * L + 1; ++s)
        ext[s] = (s & 1) ? labels[size_t(s / 2)] : int32_t(blank_);
      double scale = 1;
      if (reduction_ == CtcReduction::kMeanPerLabel)
        scale = 1.0 / double(B * std::max<int64_t>(L, 1));
      if (reduction_ == CtcReduction::kMean) scale = 1.0 / double(B);
      const T* z = out.data() + b * T_max * C;
      double* work = work_.data() + b * work_size;
      double& loss = losses_[size_t(b)];
      if (!ctc_sample_scaled(z, g, T_max, C, frames, ext, 2 * L + 1, work, T(scale), loss))
        loss = ctc_sample_log(z, g, T_max, C, frames, ext, 2 * L + 1, work, T(scale));
    }
  });

  // Summed in sample order, so the result does not depend on the thread count.
  double total = 0;
  for (int64_t b = 0; b < B; ++b) {
    const double loss = losses_[size_t(b)];
    const int64_t L = int64_t(target.sequences[size_t(b)].size());
    total +=
        reduction_ == CtcReduction::kMeanPerLabel ? loss / double(std::max<int64_t>(L, 1)) : loss;
  }
  return reduction_ == CtcReduction::kSum ? total : total / double(B);
}

template class CtcLoss<float>;
template class CtcLoss<double>;

}  // namespace bpkit
