// Classification metrics.
#pragma once

#include <string>
#include <vector>

#include "bpkit/tensor.h"

namespace bpkit {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int classes);
  // Counts argmax(out[b]) against labels[b] for each row of out [B, classes].
  void add(const Tensor<float>& out, const int32_t* labels);
  void add(int truth, int predicted);
  int64_t at(int truth, int predicted) const {
    return counts_[size_t(truth * classes_ + predicted)];
  }
  int classes() const { return classes_; }
  int64_t total() const;
  double accuracy() const;
  // Rows = truth, columns = prediction, with a header line.
  std::string to_string() const;

 private:
  int classes_;
  std::vector<int64_t> counts_;
};

// Index of the largest value in row b of out.
int argmax_row(const Tensor<float>& out, int64_t b);

}  // namespace bpkit
