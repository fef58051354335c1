// In-memory datasets and the IDX reader (the MNIST / Fashion-MNIST file format, plain or gzip).
#pragma once

#include <string>
#include <vector>

#include "bpkit/random.h"
#include "bpkit/tensor.h"

namespace bpkit {

// x: [N, per-sample shape...], y: N class labels in [0, classes).
struct Dataset {
  Tensor<float> x;
  std::vector<int32_t> y;
  int classes = 0;
  int64_t size() const { return x.rank() == 0 ? 0 : x.rows(); }  // an empty Dataset{} has 0
};

// Samples of varying size along their first dimension (sequences: x[i] is {T_i, F}), with either a
// class label per sample (sequence → label) or a label sequence per sample (CTC: labels in
// [0, classes), never the blank). Training pads each batch to its longest sample and passes the
// valid lengths to the network.
struct SequenceDataset {
  std::vector<Tensor<float>> x;
  std::vector<int32_t> y;                       // class labels, or empty
  std::vector<std::vector<int32_t>> sequences;  // label sequences, or empty
  int classes = 0;
  int64_t size() const { return int64_t(x.size()); }
};

// Tuples of samples for metric learning (metric.h): x holds every sample once and each tuple lists
// `arity` row indices of x (2: a pair, 3: anchor, positive, negative). Pairs carry a label each
// (1: the same class or writer, 0: not); triplets none.
struct TupleDataset {
  Tensor<float> x;  // [N, per-sample...]
  int arity = 3;
  std::vector<int64_t> tuples;  // arity indices per tuple
  std::vector<int32_t> labels;  // pairs: one per tuple
  int64_t size() const { return arity > 0 ? int64_t(tuples.size()) / arity : 0; }
};

// Reads an IDX image file (u8, rank 3: N×H×W) and its label file into x [N,1,H,W] scaled to [0,1].
// Files may be gzip-compressed. Throws FileError naming the path on any unreadable, truncated or
// inconsistent file.
Dataset load_idx(const std::string& images_path, const std::string& labels_path);

// Fashion-MNIST (or MNIST) from a directory holding
// {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. split: "train" or "t10k".
Dataset load_mnist_dir(const std::string& dir, const std::string& split);

// Copies the samples idx[0..n) of `from` into x (resized to [n, ...]) and their labels into y.
void gather(const Dataset& from, const int64_t* idx, int64_t n, Tensor<float>& x,
            std::vector<int32_t>& y);

// Splits off the last `fraction` of a seeded permutation as validation data.
void split_validation(const Dataset& all, double fraction, uint64_t seed, Dataset& train,
                      Dataset& validation);

}  // namespace bpkit
