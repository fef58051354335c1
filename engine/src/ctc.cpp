#include "bpkit/ctc.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "bpkit/threading.h"

namespace bpkit {
namespace {

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// log(e^a + e^b + e^c), exact when some (or all) arguments are −∞.
template <class T>
inline T log_add3(T a, T b, T c) {
  const T m = std::max(a, std::max(b, c));
  if (m == kNegInf<T>) return m;
  return m + std::log(std::exp(a - m) + std::exp(b - m) + std::exp(c - m));
}

// Frames the labels need: one per label plus a blank between each pair of equal neighbours.
int64_t frames_needed(const std::vector<int32_t>& labels) {
  int64_t n = int64_t(labels.size());
  for (size_t i = 1; i < labels.size(); ++i) n += labels[i] == labels[i - 1];
  return n;
}

// Shapes for one sample: z, g [T, C] (z the logits, g the gradient rows), `frames` valid frames,
// ext [S] the blank-interleaved labels (blank, l1, blank, l2, …, blank), alpha [frames, S],
// rolling [2, S].
//
// alpha_t(s) is the log-probability of frames 0..t ending in extended state s (emission at t
// included); beta_t(s) that of frames t+1..frames−1 given state s at t (emission at t excluded), so
// alpha_t(s) + beta_t(s) − log Z is the log posterior of state s at frame t. The log-softmax is
// written into g first and turned into the gradient row by row during the backward recursion;
// each row's emission terms beta_t(s) + log y_t(ext[s]) are kept in `rolling` before the row is
// overwritten, because beta_{t−1} needs them.
template <class T>
double ctc_sample(const T* z, T* g, int64_t T_max, int64_t C, int64_t frames, const int32_t* ext,
                  int64_t S, T* alpha, T* rolling, T scale) {
  for (int64_t t = 0; t < frames; ++t) {
    const T* zt = z + t * C;
    T* gt = g + t * C;
    const T m = *std::max_element(zt, zt + C);
    T sum = 0;
    for (int64_t k = 0; k < C; ++k) sum += std::exp(zt[k] - m);
    const T log_norm = m + std::log(sum);
    for (int64_t k = 0; k < C; ++k) gt[k] = zt[k] - log_norm;
  }
  std::fill(g + frames * C, g + T_max * C, T(0));

  // A skip from s−2 to s is allowed onto a label that differs from the label before the blank.
  auto can_skip = [&](int64_t s) { return s >= 2 && (s & 1) && ext[s] != ext[s - 2]; };

  std::fill(alpha, alpha + S, kNegInf<T>);
  alpha[0] = g[ext[0]];
  if (S > 1) alpha[1] = g[ext[1]];
  for (int64_t t = 1; t < frames; ++t) {
    const T* prev = alpha + (t - 1) * S;
    T* cur = alpha + t * S;
    const T* lp = g + t * C;
    for (int64_t s = 0; s < S; ++s) {
      const T a = prev[s], b = s >= 1 ? prev[s - 1] : kNegInf<T>;
      const T c = can_skip(s) ? prev[s - 2] : kNegInf<T>;
      cur[s] = log_add3(a, b, c) + lp[ext[s]];
    }
  }
  const T* last = alpha + (frames - 1) * S;
  const T log_z = log_add3(last[S - 1], S > 1 ? last[S - 2] : kNegInf<T>, kNegInf<T>);
  if (!std::isfinite(log_z)) {  // non-finite logits; the caller reports the loss as it is
    for (int64_t i = 0; i < frames * C; ++i) g[i] = std::numeric_limits<T>::quiet_NaN();
    return -double(log_z);
  }

  // beta rows: `beta` holds beta_t, `emit` holds beta_{t+1}(s) + log y_{t+1}(ext[s]).
  T* beta = rolling;
  T* emit = rolling + S;
  for (int64_t t = frames - 1; t >= 0; --t) {
    if (t == frames - 1) {
      std::fill(beta, beta + S, kNegInf<T>);
      beta[S - 1] = 0;
      if (S > 1) beta[S - 2] = 0;
    } else {
      for (int64_t s = 0; s < S; ++s) {
        const T a = emit[s], b = s + 1 < S ? emit[s + 1] : kNegInf<T>;
        const T c = s + 2 < S && can_skip(s + 2) ? emit[s + 2] : kNegInf<T>;
        beta[s] = log_add3(a, b, c);
      }
    }
    T* gt = g + t * C;
    const T* at = alpha + t * S;
    for (int64_t s = 0; s < S; ++s) emit[s] = beta[s] + gt[ext[s]];
    // Gradient of −log Z with respect to the logits: y_t(k) − Σ_{s: ext[s] = k} posterior(s).
    for (int64_t k = 0; k < C; ++k) gt[k] = std::exp(gt[k]);
    for (int64_t s = 0; s < S; ++s) gt[ext[s]] -= std::exp(at[s] + beta[s] - log_z);
    for (int64_t k = 0; k < C; ++k) gt[k] *= scale;
  }
  return -double(log_z);
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
  alpha_.resize(size_t(B * T_max * S));
  rolling_.resize(size_t(B * 2 * S));

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
      losses_[size_t(b)] =
          ctc_sample(out.data() + b * T_max * C, g, T_max, C, frames, ext, 2 * L + 1,
                     alpha_.data() + b * T_max * S, rolling_.data() + b * 2 * S, T(scale));
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
