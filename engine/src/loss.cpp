#include "bpkit/loss.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "bpkit/ctc.h"
#include "bpkit/metric.h"

namespace bpkit {
namespace {

template <class T>
void check_values(const std::string& kind, const Tensor<T>& out, const Targets<T>& t) {
  if (t.values.size() != out.size())
    throw std::invalid_argument(kind + " loss: targets " + to_string(t.values.shape()) +
                                " do not match the output " + to_string(out.shape()));
}

}  // namespace

template <class T>
double MeanSquaredError<T>::compute(const Tensor<T>& out, const Targets<T>& t, Tensor<T>& grad) {
  check_values(kind(), out, t);
  grad.resize(out.shape());
  const int64_t n = out.size();
  double sum = 0;
  const T scale = T(2) / T(n);
  for (int64_t i = 0; i < n; ++i) {
    const T d = out[i] - t.values[i];
    sum += double(d) * double(d);
    grad[i] = scale * d;
  }
  return sum / double(n);
}

template <class T>
double SoftmaxCrossEntropy<T>::compute(const Tensor<T>& out, const Targets<T>& t, Tensor<T>& grad) {
  const int64_t B = out.rows(), F = out.cols();
  if (int64_t(t.labels.size()) != B)
    throw std::invalid_argument(kind() + " loss: " + std::to_string(t.labels.size()) +
                                " labels for a batch of " + std::to_string(B));
  grad.resize(out.shape());
  double total = 0;
  const T inv_b = T(1) / T(B);
  for (int64_t b = 0; b < B; ++b) {
    const int32_t label = t.labels[size_t(b)];
    if (label < 0 || label >= F)
      throw std::invalid_argument(kind() + " loss: label " + std::to_string(label) +
                                  " outside [0, " + std::to_string(F) + ")");
    const T* z = out.data() + b * F;
    T* g = grad.data() + b * F;
    const T m = *std::max_element(z, z + F);
    T sum = 0;
    for (int64_t f = 0; f < F; ++f) sum += (g[f] = std::exp(z[f] - m));
    const T log_sum = std::log(sum);
    total += double(log_sum + m - z[label]);
    const T inv = inv_b / sum;
    for (int64_t f = 0; f < F; ++f) g[f] *= inv;
    g[label] -= inv_b;
  }
  return total / double(B);
}

template <class T>
double FrameCrossEntropy<T>::compute(const Tensor<T>& out, const Targets<T>& t, Tensor<T>& grad) {
  if (out.rank() != 3)
    throw std::invalid_argument(kind() + " loss: expects outputs [batch, frames, classes], got " +
                                to_string(out.shape()));
  const int64_t B = out.dim(0), T_ = out.dim(1), C = out.dim(2);
  if (int64_t(t.sequences.size()) != B)
    throw std::invalid_argument(kind() + " loss: " + std::to_string(t.sequences.size()) +
                                " label sequences for a batch of " + std::to_string(B));
  if (!t.lengths.empty() && int64_t(t.lengths.size()) != B)
    throw std::invalid_argument(kind() + " loss: " + std::to_string(t.lengths.size()) +
                                " sequence lengths for a batch of " + std::to_string(B));
  int64_t frames = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = t.lengths.empty() ? T_ : t.lengths[size_t(b)];
    if (len < 1 || len > T_)
      throw std::invalid_argument(kind() + " loss: sample " + std::to_string(b) + " has length " +
                                  std::to_string(len) + " (each must be 1.." + std::to_string(T_) +
                                  ")");
    if (int64_t(t.sequences[size_t(b)].size()) != len)
      throw std::invalid_argument(kind() + " loss: sample " + std::to_string(b) + " has " +
                                  std::to_string(t.sequences[size_t(b)].size()) + " labels for " +
                                  std::to_string(len) + " frames (one label per frame)");
    frames += len;
  }
  grad.resize(out.shape());
  grad.fill(T(0));
  const T inv_n = T(1) / T(frames);
  double total = 0;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int32_t>& labels = t.sequences[size_t(b)];
    for (size_t f = 0; f < labels.size(); ++f) {
      const int32_t label = labels[f];
      if (label < 0 || label >= C)
        throw std::invalid_argument(kind() + " loss: sample " + std::to_string(b) + " frame " +
                                    std::to_string(f) + ": label " + std::to_string(label) +
                                    " outside [0, " + std::to_string(C) + ")");
      const T* z = out.data() + (b * T_ + int64_t(f)) * C;
      T* g = grad.data() + (b * T_ + int64_t(f)) * C;
      const T m = *std::max_element(z, z + C);
      T sum = 0;
      for (int64_t c = 0; c < C; ++c) sum += (g[c] = std::exp(z[c] - m));
      total += double(std::log(sum) + m - z[label]);
      const T inv = inv_n / sum;
      for (int64_t c = 0; c < C; ++c) g[c] *= inv;
      g[label] -= inv_n;
    }
  }
  return total / double(frames);
}

template <class T>
double BinaryCrossEntropy<T>::compute(const Tensor<T>& out, const Targets<T>& t, Tensor<T>& grad) {
  check_values(kind(), out, t);
  grad.resize(out.shape());
  const int64_t n = out.size();
  const T inv_n = T(1) / T(n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T z = out[i], y = t.values[i];
    if (from_logits_) {
      sum += double(std::max(z, T(0)) - z * y + std::log1p(std::exp(-std::abs(z))));
      const T p = z >= 0 ? T(1) / (T(1) + std::exp(-z)) : std::exp(z) / (T(1) + std::exp(z));
      grad[i] = (p - y) * inv_n;
    } else {
      const T p = std::min(std::max(z, T(1e-7)), T(1 - 1e-7));
      sum -= double(y * std::log(p) + (1 - y) * std::log(1 - p));
      // The clamp is flat outside its range, so the gradient there is zero.
      grad[i] = (z == p) ? (p - y) / (p * (1 - p)) * inv_n : T(0);
    }
  }
  return sum / double(n);
}

template <class T>
std::unique_ptr<Loss<T>> make_loss(const std::string& kind) {
  if (kind == "mse") return std::make_unique<MeanSquaredError<T>>();
  if (kind == "softmax_cross_entropy" || kind == "cross_entropy")
    return std::make_unique<SoftmaxCrossEntropy<T>>();
  if (kind == "bce") return std::make_unique<BinaryCrossEntropy<T>>(false);
  if (kind == "bce_logits") return std::make_unique<BinaryCrossEntropy<T>>(true);
  if (kind == "ctc") return std::make_unique<CtcLoss<T>>();
  if (kind == "frame_cross_entropy") return std::make_unique<FrameCrossEntropy<T>>();
  if (kind == "triplet") return std::make_unique<TripletLoss<T>>();
  if (kind == "contrastive") return std::make_unique<ContrastiveLoss<T>>();
  throw std::invalid_argument(
      "unknown loss '" + kind +
      "' (known: mse, softmax_cross_entropy, bce, bce_logits, ctc, frame_cross_entropy, triplet, "
      "contrastive)");
}

#define BPKIT_LOSS(T)                    \
  template class MeanSquaredError<T>;    \
  template class SoftmaxCrossEntropy<T>; \
  template class BinaryCrossEntropy<T>;  \
  template class FrameCrossEntropy<T>;   \
  template std::unique_ptr<Loss<T>> make_loss<T>(const std::string&);
BPKIT_LOSS(float)
BPKIT_LOSS(double)

}  // namespace bpkit
