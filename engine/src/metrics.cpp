#include "bpkit/metrics.h"

#include <cstdio>
#include <stdexcept>

namespace bpkit {

ConfusionMatrix::ConfusionMatrix(int classes) : classes_(classes) {
  if (classes < 1) throw std::invalid_argument("confusion matrix needs at least one class");
  counts_.assign(size_t(classes) * size_t(classes), 0);
}

int argmax_row(const Tensor<float>& out, int64_t b) {
  const int64_t F = out.cols();
  const float* r = out.data() + b * F;
  int best = 0;
  for (int64_t f = 1; f < F; ++f)
    if (r[f] > r[best]) best = int(f);
  return best;
}

void ConfusionMatrix::add(int truth, int predicted) {
  if (truth < 0 || truth >= classes_ || predicted < 0 || predicted >= classes_)
    throw std::invalid_argument("confusion matrix: class outside [0, " + std::to_string(classes_) +
                                ")");
  ++counts_[size_t(truth * classes_ + predicted)];
}

void ConfusionMatrix::add(const Tensor<float>& out, const int32_t* labels) {
  for (int64_t b = 0; b < out.rows(); ++b) add(labels[b], argmax_row(out, b));
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t c : counts_) t += c;
  return t;
}

double ConfusionMatrix::accuracy() const {
  int64_t right = 0;
  for (int c = 0; c < classes_; ++c) right += at(c, c);
  const int64_t t = total();
  return t ? double(right) / double(t) : 0;
}

std::string ConfusionMatrix::to_string() const {
  std::string s = "truth\\pred";
  char buf[32];
  for (int p = 0; p < classes_; ++p) {
    std::snprintf(buf, sizeof buf, " %6d", p);
    s += buf;
  }
  s += "\n";
  for (int t = 0; t < classes_; ++t) {
    std::snprintf(buf, sizeof buf, "%10d", t);
    s += buf;
    for (int p = 0; p < classes_; ++p) {
      std::snprintf(buf, sizeof buf, " %6lld", static_cast<long long>(at(t, p)));
      s += buf;
    }
    s += "\n";
  }
  return s;
}

}  // namespace bpkit
