#include "bpkit/ctc.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

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
    // Made only on error: a string per sample would allocate in every training step.
    auto sample = [&] { return where + "sample " + std::to_string(b) + ": "; };
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] < 0 || labels[i] >= C || labels[i] == blank_)
        throw std::invalid_argument(
            sample() + "label " + std::to_string(labels[i]) + " at position " + std::to_string(i) +
            (labels[i] == blank_ ? " is the blank index"
                                 : " outside [0, " + std::to_string(C) + ")"));
    }
    const int64_t frames = target.lengths.empty() ? T_max : target.lengths[size_t(b)];
    if (frames < 1 || frames > T_max)
      throw std::invalid_argument(sample() + "length " + std::to_string(frames) + " outside [1, " +
                                  std::to_string(T_max) + "]");
    const int64_t needed = frames_needed(labels);
    if (needed > frames && !zero_infinity_)
      throw std::invalid_argument(sample() + std::to_string(labels.size()) + " labels (" +
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

// ---- Decoding -----------------------------------------------------------------------------------

std::vector<int32_t> CtcResult::labels() const {
  std::vector<int32_t> out;
  out.reserve(symbols.size());
  for (const CtcSymbol& s : symbols) out.push_back(s.label);
  return out;
}

std::vector<CtcWord> ctc_words(const CtcResult& result, int32_t separator) {
  std::vector<CtcWord> words;
  bool open = false;  // the last word still takes symbols
  for (const CtcSymbol& s : result.symbols) {
    if (s.label == separator) {
      open = false;
      continue;
    }
    if (!open) words.push_back({{}, s.start, s.end, 1.0});
    open = true;
    CtcWord& w = words.back();
    w.labels.push_back(s.label);
    w.end = s.end;
    w.confidence = std::min(w.confidence, s.confidence);
  }
  return words;
}

LabelFsa::LabelFsa() : arcs_(1), final_(1, 0) {}

int LabelFsa::add_state(bool final) {
  arcs_.emplace_back();
  final_.push_back(final);
  return int(arcs_.size()) - 1;
}

void LabelFsa::set_final(int state, bool final) {
  if (state < 0 || state >= num_states())
    throw std::invalid_argument("label acceptor: no state " + std::to_string(state));
  final_[size_t(state)] = final;
}

void LabelFsa::add_arc(int from, int32_t label, int to) {
  if (from < 0 || from >= num_states() || to < 0 || to >= num_states())
    throw std::invalid_argument("label acceptor: arc " + std::to_string(from) + " -> " +
                                std::to_string(to) + " between unknown states (there are " +
                                std::to_string(num_states()) + ")");
  if (label < 0)
    throw std::invalid_argument("label acceptor: negative label " + std::to_string(label));
  auto& arcs = arcs_[size_t(from)];
  auto it = std::lower_bound(arcs.begin(), arcs.end(), std::make_pair(label, -1));
  if (it != arcs.end() && it->first == label) {
    if (it->second == to) return;
    throw std::invalid_argument("label acceptor: state " + std::to_string(from) +
                                " already has an arc for label " + std::to_string(label) +
                                " (to state " + std::to_string(it->second) +
                                "); the acceptor must be deterministic");
  }
  arcs.insert(it, {label, to});
}

int LabelFsa::next(int state, int32_t label) const {
  const auto& arcs = arcs_[size_t(state)];
  auto it = std::lower_bound(arcs.begin(), arcs.end(), std::make_pair(label, -1));
  return it != arcs.end() && it->first == label ? it->second : -1;
}

bool LabelFsa::accepts(const std::vector<int32_t>& labels) const {
  int state = 0;
  for (int32_t l : labels)
    if ((state = next(state, l)) < 0) return false;
  return is_final(state);
}

LabelFsa LabelFsa::repeat(const std::vector<int32_t>& symbols, int min_len, int max_len) {
  if (min_len < 0 || max_len < min_len)
    throw std::invalid_argument("label acceptor: lengths " + std::to_string(min_len) + ".." +
                                std::to_string(max_len) + " are not a range of counts");
  LabelFsa fsa;
  fsa.set_final(0, min_len == 0);
  for (int n = 1; n <= max_len; ++n) {  // state n: n symbols read
    fsa.add_state(n >= min_len);
    for (int32_t s : symbols) fsa.add_arc(n - 1, s, n);
  }
  return fsa;
}

LabelFsa LabelFsa::lexicon(const std::vector<std::vector<int32_t>>& words, int32_t separator) {
  if (words.empty()) throw std::invalid_argument("lexicon: no words");
  LabelFsa fsa;
  for (size_t w = 0; w < words.size(); ++w) {
    if (words[w].empty())
      throw std::invalid_argument("lexicon: word " + std::to_string(w) + " is empty");
    int state = 0;
    for (int32_t label : words[w]) {
      if (separator >= 0 && label == separator)
        throw std::invalid_argument("lexicon: word " + std::to_string(w) +
                                    " contains the separator label " + std::to_string(separator));
      int to = fsa.next(state, label);
      if (to < 0) {
        to = fsa.add_state();
        fsa.add_arc(state, label, to);
      }
      state = to;
    }
    fsa.set_final(state);
    // Back to the root for the next word.
    if (separator >= 0) fsa.add_arc(state, separator, 0);
  }
  return fsa;
}

namespace {

// log(e^a + e^b), exact when either is −∞.
inline double log_add(double a, double b) {
  if (a < b) std::swap(a, b);
  if (b == -HUGE_VAL) return a;
  return a + std::log1p(std::exp(b - a));
}

// Log-softmax rows of one sequence, [frames, C] (see the decoding section of ctc.h).
struct LogProbs {
  std::vector<double> lp;
  int64_t frames = 0, classes = 0;
  const double* row(int64_t t) const { return lp.data() + t * classes; }
};

template <class T>
LogProbs log_probs(const char* who, const Tensor<T>& scores, int64_t sample, int64_t length,
                   int blank) {
  const std::string where = std::string(who) + ": ";
  if (scores.rank() != 2 && scores.rank() != 3)
    throw std::invalid_argument(where + "expects scores [batch, frames, classes] or [frames, " +
                                "classes], got " + to_string(scores.shape()));
  const int64_t B = scores.rank() == 3 ? scores.dim(0) : 1;
  const int64_t T_max = scores.dim(scores.rank() - 2), C = scores.dim(scores.rank() - 1);
  if (sample < 0 || sample >= B)
    throw std::invalid_argument(where + "sample " + std::to_string(sample) + " outside [0, " +
                                std::to_string(B) + ")");
  const int64_t frames = length < 0 ? T_max : length;
  if (frames < 1 || frames > T_max)
    throw std::invalid_argument(where + "length " + std::to_string(length) + " outside [1, " +
                                std::to_string(T_max) + "]");
  if (blank < 0 || blank >= C)
    throw std::invalid_argument(where + "blank index " + std::to_string(blank) + " outside the " +
                                std::to_string(C) + " classes");
  LogProbs out;
  out.frames = frames;
  out.classes = C;
  out.lp.resize(size_t(frames * C));
  const T* z = scores.data() + sample * T_max * C;
  for (int64_t t = 0; t < frames; ++t) {
    const T* zt = z + t * C;
    double* lt = out.lp.data() + t * C;
    const double m = double(*std::max_element(zt, zt + C));
    double sum = 0;
    for (int64_t k = 0; k < C; ++k) sum += std::exp(double(zt[k]) - m);
    const double log_norm = m + std::log(sum);
    for (int64_t k = 0; k < C; ++k) lt[k] = double(zt[k]) - log_norm;
  }
  return out;
}

// Viterbi alignment of `labels` for the symbols' positions, plus the forward sum for log p.
// Labels must already be valid and alignable.
CtcResult align(const LogProbs& lp, const std::vector<int32_t>& labels, int blank) {
  constexpr double kNegInf = -HUGE_VAL;
  const int64_t L = int64_t(labels.size()), S = 2 * L + 1, frames = lp.frames;
  const size_t n_states = static_cast<size_t>(S);
  std::vector<int32_t> ext(n_states);
  for (int64_t s = 0; s < S; ++s) ext[size_t(s)] = (s & 1) ? labels[size_t(s / 2)] : blank;
  std::vector<double> best(n_states), best_prev(n_states), sum(n_states), sum_prev(n_states);
  std::vector<int8_t> back(static_cast<size_t>(frames * S), 0);  // predecessor: s − back
  for (int64_t s = 0; s < S; ++s)
    best[size_t(s)] = sum[size_t(s)] = s < 2 ? lp.row(0)[ext[size_t(s)]] : kNegInf;
  for (int64_t t = 1; t < frames; ++t) {
    std::swap(best, best_prev);
    std::swap(sum, sum_prev);
    const double* lt = lp.row(t);
    for (int64_t s = 0; s < S; ++s) {
      int8_t from = 0;
      double v = best_prev[size_t(s)], total = sum_prev[size_t(s)];
      if (s >= 1) {
        if (best_prev[size_t(s - 1)] > v) v = best_prev[size_t(s - (from = 1))];
        total = log_add(total, sum_prev[size_t(s - 1)]);
      }
      if (can_skip(ext.data(), s)) {
        if (best_prev[size_t(s - 2)] > v) v = best_prev[size_t(s - (from = 2))];
        total = log_add(total, sum_prev[size_t(s - 2)]);
      }
      back[size_t(t * S + s)] = from;
      best[size_t(s)] = v + lt[ext[size_t(s)]];
      sum[size_t(s)] = total + lt[ext[size_t(s)]];
    }
  }
  CtcResult result;
  result.log_prob = log_add(sum[size_t(S - 1)], S > 1 ? sum[size_t(S - 2)] : kNegInf);
  int64_t s = S > 1 && best[size_t(S - 2)] > best[size_t(S - 1)] ? S - 2 : S - 1;
  result.symbols.resize(size_t(L));
  for (int64_t i = 0; i < L; ++i) result.symbols[size_t(i)] = {labels[size_t(i)], -1, -1, -1, 0};
  for (int64_t t = frames - 1; t >= 0; --t) {
    if (s & 1) {
      CtcSymbol& sym = result.symbols[size_t(s / 2)];
      if (sym.end < 0) sym.end = int32_t(t);
      sym.start = int32_t(t);
    }
    if (t > 0) s -= back[size_t(t * S + s)];
  }
  for (CtcSymbol& sym : result.symbols) {
    sym.peak = sym.start;
    for (int32_t t = sym.start + 1; t <= sym.end; ++t)
      if (lp.row(t)[sym.label] > lp.row(sym.peak)[sym.label]) sym.peak = t;
    sym.confidence = std::exp(lp.row(sym.peak)[sym.label]);
    result.confidence = std::min(result.confidence, sym.confidence);
  }
  return result;
}

}  // namespace

template <class T>
CtcResult ctc_greedy_decode(const Tensor<T>& scores, int64_t sample, int64_t length, int blank) {
  const LogProbs lp = log_probs("ctc greedy decode", scores, sample, length, blank);
  std::vector<int32_t> labels;
  int32_t prev = -1;
  for (int64_t t = 0; t < lp.frames; ++t) {
    const double* lt = lp.row(t);
    const int32_t k = int32_t(std::max_element(lt, lt + lp.classes) - lt);
    if (k != blank && k != prev) labels.push_back(k);
    prev = k;
  }
  // The best path is the best alignment of its own collapse (up to ties), so the alignment
  // reproduces its runs.
  return align(lp, labels, blank);
}

template <class T>
CtcResult ctc_align(const Tensor<T>& scores, int64_t sample, int64_t length,
                    const std::vector<int32_t>& labels, int blank) {
  const LogProbs lp = log_probs("ctc align", scores, sample, length, blank);
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= lp.classes || labels[i] == blank)
      throw std::invalid_argument(
          "ctc align: label " + std::to_string(labels[i]) + " at position " + std::to_string(i) +
          (labels[i] == blank ? " is the blank index"
                              : " outside [0, " + std::to_string(lp.classes) + ")"));
  const int64_t needed = frames_needed(labels);
  if (needed > lp.frames)
    throw std::invalid_argument("ctc align: " + std::to_string(labels.size()) +
                                " labels need at least " + std::to_string(needed) +
                                " frames, but the sequence has " + std::to_string(lp.frames));
  return align(lp, labels, blank);
}

template <class T>
CtcResult ctc_beam_decode(const Tensor<T>& scores, int64_t sample, int64_t length,
                          const CtcBeamOptions& options) {
  constexpr double kNegInf = -HUGE_VAL;
  const int blank = options.blank;
  const LogProbs lp = log_probs("ctc beam decode", scores, sample, length, blank);
  const int64_t C = lp.classes;
  if (options.beam_width < 1)
    throw std::invalid_argument("ctc beam decode: beam width " +
                                std::to_string(options.beam_width) + " must be >= 1");
  const LabelFsa* fsa = options.constraint;
  // The constraint's labels are checked where the search follows them (a lexicon has hundreds of
  // thousands of states, a search over a word's frames visits a few hundred).
  auto bad_label = [&](int32_t label) {
    return std::invalid_argument(
        "ctc beam decode: the constraint's label " + std::to_string(label) +
        (label == blank ? " is the blank index"
                        : " is not one of the " + std::to_string(C) + " classes"));
  };

  // Prefixes live in a tree, one node per distinct prefix (with its acceptor state), so a
  // hypothesis is one integer; the map finds a prefix's node again when it re-enters the beam.
  struct Node {
    int32_t parent, label;
    int state;
  };
  std::vector<Node> nodes{{-1, -1, 0}};
  std::unordered_map<uint64_t, int32_t> children;
  auto child = [&](int32_t node, int32_t label, int state) {
    const uint64_t key = (uint64_t(uint32_t(node)) << 32) | uint32_t(label);
    auto it = children.find(key);
    if (it != children.end()) return it->second;
    nodes.push_back({node, label, state});
    return children[key] = int32_t(nodes.size()) - 1;
  };
  struct Hyp {
    int32_t node;
    double blank, last;  // log-probabilities of the alignments ending in a blank / in the label
  };
  // A candidate for the next beam: beam[from]'s prefix (label < 0) or that prefix plus `label`.
  struct Candidate {
    int32_t from, label;
    int state;
    double blank, last, score;
    int32_t order;  // position in the list, the tie-break
  };
  std::vector<Hyp> beam{{0, 0.0, kNegInf}}, kept;
  std::vector<Candidate> cands;
  std::vector<int32_t> beam_of;                    // node → its index in the beam, or −1
  std::vector<int32_t> first_child, next_sibling;  // beam members whose parent is in the beam
  std::vector<int32_t> merge_into(size_t(C), -1);  // label → candidate already holding it
  std::vector<int32_t> all_labels;
  for (int32_t k = 0; k < C; ++k)
    if (k != blank) all_labels.push_back(k);

  // Why candidates rather than a map from prefix to slot: an extension ℓ+c is a new prefix unless
  // ℓ+c is itself in the beam, i.e. is a beam member whose parent is ℓ. Those few merges are found
  // through merge_into; every other extension is one addition appended to a flat list, and nodes
  // are made only for the beam_width survivors.
  for (int64_t t = 0; t < lp.frames; ++t) {
    const double* lt = lp.row(t);
    const int32_t W = int32_t(beam.size());
    beam_of.resize(nodes.size(), -1);
    for (int32_t i = 0; i < W; ++i) beam_of[size_t(beam[size_t(i)].node)] = i;
    first_child.assign(size_t(W), -1);
    next_sibling.assign(size_t(W), -1);
    cands.clear();
    for (int32_t i = 0; i < W; ++i) {  // candidate i keeps beam[i]'s prefix
      const Hyp& h = beam[size_t(i)];
      const Node& n = nodes[size_t(h.node)];
      // The last label again without a blank between stays in the same prefix.
      cands.push_back({i, -1, n.state, log_add(h.blank, h.last) + lt[blank],
                       n.label >= 0 ? h.last + lt[n.label] : kNegInf, 0, i});
      const int32_t parent_slot = n.parent >= 0 ? beam_of[size_t(n.parent)] : -1;
      if (parent_slot >= 0) {
        next_sibling[size_t(i)] = first_child[size_t(parent_slot)];
        first_child[size_t(parent_slot)] = i;
      }
    }
    // With a full beam, the kept prefixes score at least the beam_width-th best of these W
    // candidates (merges only raise them), so a new prefix scoring below that is never kept.
    double floor = kNegInf;
    if (W == options.beam_width) {
      for (Candidate& c : cands) c.score = log_add(c.blank, c.last);
      floor =
          std::min_element(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
            return a.score < b.score;
          })->score;
    }
    for (int32_t i = 0; i < W; ++i) {
      const Hyp h = beam[size_t(i)];
      const Node n = nodes[size_t(h.node)];
      const double total = log_add(h.blank, h.last);
      for (int32_t j = first_child[size_t(i)]; j >= 0; j = next_sibling[size_t(j)])
        merge_into[size_t(nodes[size_t(beam[size_t(j)].node)].label)] = j;
      auto extend = [&](int32_t c, int state) {
        if (lt[c] < options.min_log_prob) return;
        // After the same label, only alignments ending in a blank start a new symbol.
        const double v = (c == n.label ? h.blank : total) + lt[c];
        if (v == kNegInf) return;
        const int32_t j = merge_into[size_t(c)];
        if (j >= 0)
          cands[size_t(j)].last = log_add(cands[size_t(j)].last, v);
        else if (v >= floor)
          cands.push_back({i, c, state, kNegInf, v, 0, int32_t(cands.size())});
      };
      if (fsa) {
        for (const auto& arc : fsa->arcs(n.state)) {
          if (arc.first >= C || arc.first == blank) throw bad_label(arc.first);
          extend(arc.first, arc.second);
        }
      } else {
        for (int32_t c : all_labels) extend(c, 0);
      }
      for (int32_t j = first_child[size_t(i)]; j >= 0; j = next_sibling[size_t(j)])
        merge_into[size_t(nodes[size_t(beam[size_t(j)].node)].label)] = -1;
    }
    for (const Hyp& h : beam) beam_of[size_t(h.node)] = -1;

    // Keep the beam_width most probable prefixes; ties go to the earlier candidate, so the result
    // is deterministic.
    for (Candidate& c : cands) c.score = log_add(c.blank, c.last);
    auto better = [](const Candidate& a, const Candidate& b) {
      return a.score != b.score ? a.score > b.score : a.order < b.order;
    };
    if (cands.size() > size_t(options.beam_width)) {
      std::nth_element(cands.begin(), cands.begin() + options.beam_width, cands.end(), better);
      cands.resize(size_t(options.beam_width));
    }
    kept.clear();
    for (const Candidate& c : cands) {
      const int32_t from = beam[size_t(c.from)].node;
      kept.push_back({c.label < 0 ? from : child(from, c.label, c.state), c.blank, c.last});
    }
    std::swap(beam, kept);
  }

  const Hyp* best = nullptr;
  double best_score = kNegInf;
  for (const Hyp& h : beam) {
    if (fsa && !fsa->is_final(nodes[size_t(h.node)].state)) continue;
    const double score = log_add(h.blank, h.last);
    if (!best || score > best_score || (score == best_score && h.node < best->node)) {
      best = &h;
      best_score = score;
    }
  }
  if (!best) {
    CtcResult none;
    none.log_prob = kNegInf;
    none.confidence = 0;
    return none;
  }
  std::vector<int32_t> labels;
  for (int32_t n = best->node; n > 0; n = nodes[size_t(n)].parent)
    labels.push_back(nodes[size_t(n)].label);
  std::reverse(labels.begin(), labels.end());
  return align(lp, labels, blank);
}

template <class T>
CtcResult ctc_lexicon_correct(const Tensor<T>& scores, int64_t sample, int64_t length,
                              const CtcResult& decoded, const LabelFsa& lexicon,
                              const std::vector<uint8_t>& word_label,
                              const CtcLexiconOptions& options) {
  if (scores.rank() != 2 && scores.rank() != 3)
    throw std::invalid_argument("ctc lexicon correct: expects scores [batch, frames, classes] or " +
                                std::string("[frames, classes], got ") + to_string(scores.shape()));
  const int64_t B = scores.rank() == 3 ? scores.dim(0) : 1;
  const int64_t T_max = scores.dim(scores.rank() - 2), C = scores.dim(scores.rank() - 1);
  const int64_t frames = length < 0 ? T_max : length;
  if (sample < 0 || sample >= B || frames < 1 || frames > T_max)
    throw std::invalid_argument("ctc lexicon correct: sample " + std::to_string(sample) +
                                " or length " + std::to_string(length) + " out of range");
  if (int64_t(word_label.size()) != C)
    throw std::invalid_argument("ctc lexicon correct: word_label has " +
                                std::to_string(word_label.size()) + " entries for " +
                                std::to_string(C) + " classes");
  const std::vector<CtcSymbol>& sym = decoded.symbols;
  const size_t n = sym.size();
  auto kind = [&](size_t i) -> int {
    const int32_t l = sym[i].label;
    return l >= 0 && l < C ? word_label[size_t(l)] : 0;
  };
  auto is_word = [&](size_t i) { return kind(i) == 1 || kind(i) == 2; };
  CtcBeamOptions beam;
  beam.blank = options.blank;
  beam.beam_width = options.beam_width;
  beam.constraint = &lexicon;
  Tensor<T> span;
  const T* base = scores.data() + sample * T_max * C;
  // The symbols [i, j) as one word: true, with the replacement in `out`, when a lexicon word
  // replaces them.
  auto attempt = [&](size_t i, size_t j, std::vector<int32_t>& out) {
    std::vector<int32_t> word;
    bool letter = false;
    for (size_t k = i; k < j; ++k) {
      word.push_back(sym[k].label);
      letter = letter || kind(k) == 2;
    }
    if (word.size() < 2 || !letter || lexicon.accepts(word)) return false;
    // Frames from after the previous symbol to before the next one.
    const int64_t from = i > 0 ? int64_t(sym[i - 1].end) + 1 : 0;
    const int64_t to = j < n ? int64_t(sym[j].start) - 1 : frames - 1;
    if (from < 0 || to >= frames || from > to) return false;
    span.resize({to - from + 1, C});
    std::copy(base + from * C, base + (to + 1) * C, span.data());
    const CtcResult best = ctc_beam_decode(span, 0, -1, beam);
    if (best.symbols.empty()) return false;
    const double own = ctc_align(span, 0, -1, word, options.blank).log_prob;
    if (best.log_prob < own - options.max_cost) return false;
    out = best.labels();
    return true;
  };
  std::vector<int32_t> labels, repl;
  bool changed = false;
  for (size_t i = 0; i < n;) {
    if (!is_word(i)) {
      labels.push_back(sym[i].label);
      ++i;
      continue;
    }
    size_t j = i;
    while (j < n && is_word(j)) ++j;
    // A run beside an apostrophe is part of a contraction or possessive ("he'll", "isn't"): kept.
    if ((i > 0 && kind(i - 1) == 4) || (j < n && kind(j) == 4)) {
      for (size_t k = i; k < j; ++k) labels.push_back(sym[k].label);
      i = j;
      continue;
    }
    // Two runs of at least two symbols, neither a word, around one punctuation symbol (a misread
    // letter, as in "AMEf?ICAN") are tried as one word first.
    auto piece = [&](size_t a, size_t b) {
      std::vector<int32_t> w;
      for (size_t k = a; k < b; ++k) w.push_back(sym[k].label);
      return w;
    };
    size_t k = j + 1;
    while (k < n && is_word(k)) ++k;
    if (j + 1 < n && kind(j) == 0 && is_word(j + 1) && j - i >= 2 && k - j - 1 >= 2 &&
        (k == n || kind(k) != 4) && !lexicon.accepts(piece(i, j)) &&
        !lexicon.accepts(piece(j + 1, k))) {
      if (attempt(i, k, repl)) {
        labels.insert(labels.end(), repl.begin(), repl.end());
        changed = true;
        i = k;
        continue;
      }
    }
    if (attempt(i, j, repl)) {
      labels.insert(labels.end(), repl.begin(), repl.end());
      changed = true;
    } else {
      for (size_t k = i; k < j; ++k) labels.push_back(sym[k].label);
    }
    i = j;
  }
  if (!changed) return decoded;
  return ctc_align(scores, sample, length, labels, options.blank);
}

#define BPKIT_CTC_DECODE(T)                                                                        \
  template CtcResult ctc_greedy_decode<T>(const Tensor<T>&, int64_t, int64_t, int);                \
  template CtcResult ctc_beam_decode<T>(const Tensor<T>&, int64_t, int64_t,                        \
                                        const CtcBeamOptions&);                                    \
  template CtcResult ctc_align<T>(const Tensor<T>&, int64_t, int64_t, const std::vector<int32_t>&, \
                                  int);                                                            \
  template CtcResult ctc_lexicon_correct<T>(const Tensor<T>&, int64_t, int64_t, const CtcResult&,  \
                                            const LabelFsa&, const std::vector<uint8_t>&,          \
                                            const CtcLexiconOptions&);
BPKIT_CTC_DECODE(float)
BPKIT_CTC_DECODE(double)

}  // namespace bpkit
