// Random network architectures for gradient checks of whole layer stacks.
//
// random_arch(seed) draws a valid network (every layer builds on the shape below it, every sample's
// valid length stays >= 1 through strided layers) from all the engine's layer kinds: dense, conv2d
// (im2col and Winograd paths, with and without fused ReLU, strides, paddings), max and average
// pooling (fused with the convolution below it when the network fuses them), batch normalization,
// dropout, every activation, flatten and reshape, columns, Elman/LSTM/GRU (one and two directions,
// every output mode, truncated BPTT), frame_dense and fixed-point layers, over flat inputs, images,
// variable-width line images and variable-length sequences. An architecture also fixes the batch,
// the sequence lengths, the engine's thread count and the losses whose gradients fit its output.
//
// An architecture prints as YAML (the `network:` block of a pipeline file, plus a `check:` line),
// and arch_from_yaml() reads that text back, so a failure reported by the test can be replayed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bpkit/network.h"

namespace bpkit_test {

struct ArchLayer {
  std::string kind;
  std::vector<std::pair<std::string, std::string>> attrs;  // in the order they print
};

struct Arch {
  uint64_t seed = 1;   // initialization, input, projection and element picks
  bpkit::Shape input;  // per sample; kDynamic allowed
  std::vector<ArchLayer> layers;
  int64_t batch = 2;
  std::vector<int32_t> lengths;     // valid frames per sample, or empty (every frame valid)
  int threads = 1;                  // engine threads during the check
  std::vector<std::string> losses;  // checked end to end besides the projection
  // Per-sample shape of the input drawn for a check: a dynamic dimension gets the longest length
  // (7 without lengths).
  bpkit::Shape concrete_input() const;
  // The batch's input shape: [batch, concrete_input()...].
  bpkit::Shape batch_shape() const;
  std::string yaml() const;
};

// A valid architecture drawn from `seed` (the same seed gives the same architecture).
Arch random_arch(uint64_t seed);

// Reads Arch::yaml()'s text. Throws std::runtime_error naming `where` and the problem.
Arch arch_from_yaml(const std::string& text, const std::string& where);

// The architecture's network, initialized from arch.seed.
template <class T>
bpkit::Network<T> build_network(const Arch& arch);

// The index of the highest layer whose truncated BPTT cuts a gradient for this architecture's
// lengths, or -1 when no gradient is cut (no truncation, or truncation longer than every sequence).
int highest_cut_layer(const Arch& arch);

}  // namespace bpkit_test
