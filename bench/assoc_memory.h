// Pattern completion on 8×8 binary characters: the associative-memory task behind the fixed-point
// network demonstration (bench/assoc_memory.cpp) and its fast test (tests/test_fixed_point.cpp).
//
// A small set of characters is drawn below as bitmaps. A sample is one character, corrupted by
// flipping `flips` random pixels and, optionally, hiding `occluded_rows` whole rows (a random band
// of consecutive rows); the network sees the corrupted image as a 64-vector (+1 ink, −1 paper,
// 0 hidden) and must output the clean bitmap (64 values in [0, 1], 1 = ink). Pixel error and exact
// restoration are measured on fresh corruptions drawn from a separate random stream.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bpkit/fixed_point.h"
#include "bpkit/layers.h"
#include "bpkit/loss.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"
#include "bpkit/random.h"

namespace assoc {

constexpr int kPixels = 64;

// 20 characters, 8 rows of 8 pixels each, '#' = ink.
inline const std::vector<std::string>& glyph_rows() {
  static const std::vector<std::string> rows = {
      // 0         1          2          3          4
      "..####..", "...##...", "..####..", "..####..", "....##..",  //
      ".##..##.", "..###...", ".##..##.", ".##..##.", "...###..",  //
      ".##.###.", ".####...", ".....##.", ".....##.", "..####..",  //
      ".###.##.", "...##...", "....##..", "...###..", ".##.##..",  //
      ".##..##.", "...##...", "...##...", ".....##.", ".######.",  //
      ".##..##.", "...##...", "..##....", ".##..##.", "....##..",  //
      "..####..", ".######.", ".######.", "..####..", "....##..",  //
      "........", "........", "........", "........", "........",  //
      // 5         6          7          8          9
      ".######.", "..####..", ".######.", "..####..", "..####..",  //
      ".##.....", ".##.....", ".....##.", ".##..##.", ".##..##.",  //
      ".#####..", ".#####..", "....##..", ".##..##.", ".##..##.",  //
      ".....##.", ".##..##.", "...##...", "..####..", "..#####.",  //
      ".....##.", ".##..##.", "..##....", ".##..##.", ".....##.",  //
      ".##..##.", ".##..##.", "..##....", ".##..##.", "....##..",  //
      "..####..", "..####..", "..##....", "..####..", "..###...",  //
      "........", "........", "........", "........", "........",  //
      // A         C          E          F          H
      "...##...", "..####..", ".######.", ".######.", ".##..##.",  //
      "..####..", ".##..##.", ".##.....", ".##.....", ".##..##.",  //
      ".##..##.", ".##.....", ".##.....", ".##.....", ".##..##.",  //
      ".##..##.", ".##.....", ".#####..", ".#####..", ".######.",  //
      ".######.", ".##.....", ".##.....", ".##.....", ".##..##.",  //
      ".##..##.", ".##..##.", ".##.....", ".##.....", ".##..##.",  //
      ".##..##.", "..####..", ".######.", ".##.....", ".##..##.",  //
      "........", "........", "........", "........", "........",  //
      // K         L          P          T          X
      ".##..##.", ".##.....", ".#####..", ".######.", ".##..##.",  //
      ".##.##..", ".##.....", ".##..##.", "...##...", ".##..##.",  //
      ".####...", ".##.....", ".##..##.", "...##...", "..####..",  //
      ".###....", ".##.....", ".#####..", "...##...", "...##...",  //
      ".####...", ".##.....", ".##.....", "...##...", "..####..",  //
      ".##.##..", ".##.....", ".##.....", "...##...", ".##..##.",  //
      ".##..##.", ".######.", ".##.....", "...##...", ".##..##.",  //
      "........", "........", "........", "........", "........",  //
  };
  return rows;
}

// The first `count` characters (at most 20) as 64 bits each, 1 = ink.
inline std::vector<std::vector<uint8_t>> glyphs(int count = 20) {
  const std::vector<std::string>& rows = glyph_rows();
  const int per_block = 5, blocks = int(rows.size()) / (8 * per_block);
  std::vector<std::vector<uint8_t>> out;
  for (int blk = 0; blk < blocks; ++blk)
    for (int g = 0; g < per_block; ++g) {
      std::vector<uint8_t> bits(kPixels);
      for (int r = 0; r < 8; ++r)
        for (int c = 0; c < 8; ++c)
          bits[size_t(r * 8 + c)] = rows[size_t((blk * 8 + r) * per_block + g)][size_t(c)] == '#';
      out.push_back(bits);
    }
  out.resize(size_t(std::min<int>(count, int(out.size()))));
  return out;
}

struct Corruption {
  int flips = 0;          // pixels flipped at random positions (distinct)
  int occluded_rows = 0;  // a band of this many consecutive rows is hidden (input 0)
};

// A batch of corrupted characters: x [n,64] in {−1, 0, +1}, target [n,64] in {0, 1}, and which
// character each row is.
struct Batch {
  bpkit::Tensor<float> x, target;
  std::vector<int> label;
};

inline Batch make_batch(const std::vector<std::vector<uint8_t>>& set, int64_t n, Corruption c,
                        bpkit::Rng& rng) {
  Batch b;
  b.x = bpkit::Tensor<float>({n, kPixels});
  b.target = bpkit::Tensor<float>({n, kPixels});
  int perm[kPixels];
  for (int64_t s = 0; s < n; ++s) {
    const int g = int(rng.below(set.size()));
    b.label.push_back(g);
    float* x = b.x.data() + s * kPixels;
    float* t = b.target.data() + s * kPixels;
    for (int i = 0; i < kPixels; ++i) {
      t[i] = set[size_t(g)][size_t(i)];
      x[i] = t[i] > 0.5f ? 1.f : -1.f;
    }
    for (int i = 0; i < kPixels; ++i) perm[i] = i;
    for (int i = 0; i < c.flips; ++i) {  // partial Fisher–Yates: distinct positions
      std::swap(perm[i], perm[i + int(rng.below(uint64_t(kPixels - i)))]);
      x[perm[i]] = -x[perm[i]];
    }
    if (c.occluded_rows > 0) {
      const int r0 = int(rng.below(uint64_t(8 - c.occluded_rows + 1)));
      for (int r = r0; r < r0 + c.occluded_rows; ++r)
        for (int col = 0; col < 8; ++col) x[r * 8 + col] = 0.f;
    }
  }
  return b;
}

struct Score {
  double pixel_error = 0;   // fraction of wrong pixels
  double exact = 0;         // fraction of samples restored without a single wrong pixel
  int64_t unconverged = 0;  // fixed-point net: samples whose relaxation failed (see evaluate)
};

// Outputs in [0, 1] (or the corrupted input in {−1, 0, 1}) thresholded at `threshold`.
inline Score score(const bpkit::Tensor<float>& out, const bpkit::Tensor<float>& target,
                   float threshold = 0.5f) {
  Score s;
  const int64_t n = target.rows();
  for (int64_t b = 0; b < n; ++b) {
    int wrong = 0;
    for (int i = 0; i < kPixels; ++i)
      wrong += (out[b * kPixels + i] > threshold) != (target[b * kPixels + i] > 0.5f);
    s.pixel_error += double(wrong) / kPixels / double(n);
    s.exact += wrong == 0 ? 1.0 / double(n) : 0.0;
  }
  return s;
}

// The trivial baseline: the corrupted input itself (hidden pixels read as paper).
inline Score copy_input_score(const Batch& b) {
  return score(b.x, b.target, 0.f);
}

// The ideal decoder for this set: the stored character nearest to the visible pixels (Hamming
// distance over the pixels that are not hidden). It knows the stored set, which the networks must
// learn.
inline Score nearest_character_score(const std::vector<std::vector<uint8_t>>& set, const Batch& b) {
  bpkit::Tensor<float> out(b.target.shape());
  for (int64_t s = 0; s < b.x.rows(); ++s) {
    const float* x = b.x.data() + s * kPixels;
    size_t best = 0;
    int best_d = kPixels + 1;
    for (size_t g = 0; g < set.size(); ++g) {
      int d = 0;
      for (int i = 0; i < kPixels; ++i)
        d += x[i] != 0.f && (x[i] > 0.f) != (set[g][size_t(i)] != 0);
      if (d < best_d) best_d = d, best = g;
    }
    for (int i = 0; i < kPixels; ++i) out[s * kPixels + i] = set[best][size_t(i)];
  }
  return score(out, b.target);
}

// The networks compared. fixed_point: N = 64 + hidden units, the first 64 of which are the visible
// (output) units, relaxed to equilibrium. mlp: 64 → hidden (sigmoid) → 64 (sigmoid).
inline bpkit::Network<float> fixed_point_net(int64_t hidden, uint64_t seed, bool symmetric,
                                             double tol = 1e-5, double damping = 0.5) {
  bpkit::FixedPointOptions o;
  o.tol = tol;
  o.max_iter = 2000;
  o.damping = damping;
  bpkit::Network<float> net({kPixels}, seed);
  net.emplace<bpkit::FixedPoint<float>>(kPixels + hidden, kPixels,
                                        bpkit::FixedPointActivation::kSigmoid, o, symmetric,
                                        /*zero_diagonal=*/true, /*init_radius=*/1.0);
  return net;
}

inline bpkit::Network<float> mlp_net(int64_t hidden, uint64_t seed) {
  bpkit::Network<float> net({kPixels}, seed);
  net.emplace<bpkit::Dense<float>>(hidden, -1, bpkit::Init::kGlorot);
  net.emplace<bpkit::ActivationLayer<float>>(bpkit::Activation::kSigmoid);
  net.emplace<bpkit::Dense<float>>(kPixels, -1, bpkit::Init::kGlorot);
  net.emplace<bpkit::ActivationLayer<float>>(bpkit::Activation::kSigmoid);
  return net;
}

struct TrainSettings {
  int steps = 2000;
  int64_t batch = 64;
  double lr = 0.01;      // Adam
  int max_flips = 16;    // training corruptions: flips uniform in [0, max_flips]
  int max_occluded = 0;  // and occluded rows uniform in [0, max_occluded]
  uint64_t data_seed = 1;
};

// What train() did.
struct TrainResult {
  double final_loss = 0;      // mean training loss over the last 10% of the steps
  int skipped = 0;            // steps not taken because a relaxation did not converge
  std::string first_failure;  // the first such error message
};

// Trains on fresh corruptions every step (mean squared error, Adam). A step whose forward or
// adjoint relaxation fails to converge (ConvergenceError) is not taken: its gradient is discarded
// and the step counted in `skipped`, so no step ever uses a gradient the layer could not vouch for.
inline TrainResult train(bpkit::Network<float>& net, const std::vector<std::vector<uint8_t>>& set,
                         const TrainSettings& ts) {
  bpkit::Adam<float> opt(net.params(), ts.lr);
  bpkit::MeanSquaredError<float> loss;
  bpkit::Rng rng(ts.data_seed);
  bpkit::Targets<float> t;
  bpkit::Tensor<float> grad;
  TrainResult result;
  int tail_n = 0;
  for (int step = 0; step < ts.steps; ++step) {
    // Each sample of the batch gets its own corruption level.
    Batch b;
    b.x = bpkit::Tensor<float>({ts.batch, kPixels});
    b.target = bpkit::Tensor<float>({ts.batch, kPixels});
    for (int64_t s = 0; s < ts.batch; ++s) {
      Corruption c;
      c.flips = int(rng.below(uint64_t(ts.max_flips + 1)));
      c.occluded_rows = ts.max_occluded > 0 ? int(rng.below(uint64_t(ts.max_occluded + 1))) : 0;
      Batch one = make_batch(set, 1, c, rng);
      std::copy(one.x.begin(), one.x.end(), b.x.data() + s * kPixels);
      std::copy(one.target.begin(), one.target.end(), b.target.data() + s * kPixels);
    }
    t.values = b.target;
    net.zero_grad();
    double l = 0;
    try {
      l = loss.compute(net.forward(b.x, bpkit::Mode::kTrain), t, grad);
      net.backward(grad);
    } catch (const bpkit::ConvergenceError& e) {
      if (result.skipped++ == 0) result.first_failure = e.what();
      continue;
    }
    opt.step();
    if (step >= ts.steps - std::max(1, ts.steps / 10)) result.final_loss += l, ++tail_n;
  }
  if (tail_n > 0) result.final_loss /= tail_n;
  return result;
}

// Scores the network's answers. When the batch's relaxation fails (ConvergenceError), the samples
// are relaxed one by one; a sample that still fails has no answer, and is scored as if the network
// had returned its corrupted input (so it counts as not restored) and counted in `unconverged`.
inline Score evaluate(bpkit::Network<float>& net, const Batch& b) {
  try {
    return score(net.forward(b.x, bpkit::Mode::kInfer), b.target);
  } catch (const bpkit::ConvergenceError&) {
  }
  const int64_t n = b.x.rows();
  bpkit::Tensor<float> out(b.target.shape()), one({1, kPixels});
  int64_t failed = 0;
  for (int64_t s = 0; s < n; ++s) {
    std::copy(b.x.data() + s * kPixels, b.x.data() + (s + 1) * kPixels, one.data());
    float* o = out.data() + s * kPixels;
    try {
      const bpkit::Tensor<float>& y = net.forward(one, bpkit::Mode::kInfer);
      std::copy(y.begin(), y.end(), o);
    } catch (const bpkit::ConvergenceError&) {
      ++failed;
      for (int i = 0; i < kPixels; ++i) o[i] = one[i] > 0 ? 1.f : 0.f;
    }
  }
  Score sc = score(out, b.target);
  sc.unconverged = failed;
  return sc;
}

}  // namespace assoc
