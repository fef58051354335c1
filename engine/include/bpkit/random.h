// The engine's random numbers: xoshiro256** seeded by splitmix64, with its own normal and uniform
// transforms so that the same seed gives bit-identical weights on every platform and library
// version (the standard library's distributions are implementation-defined).
#pragma once

#include <cstdint>

namespace bpkit {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0x5eed);
  uint64_t next_u64();
  // Uniform in [0, 1).
  double uniform();
  // Uniform integer in [0, n). Requires n > 0.
  uint64_t below(uint64_t n);
  // Standard normal (Box–Muller, both values used).
  double normal();
  // A new, independent generator derived from this one (for per-layer streams).
  Rng split();

 private:
  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace bpkit
