// The sampler's random source: std::mt19937_64 (its output sequence is fixed by the C++
// standard) and a uniform double built from its top 53 bits, so a seed gives the same draws
// on every platform (std::uniform_real_distribution's output is implementation-defined).
#pragma once

#include <cstdint>
#include <random>

namespace wkv {

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}

  uint64_t next_u64() { return gen_(); }

  // Uniform in [0, 1): the top 53 bits of one 64-bit output, times 2^-53 (exact in a double).
  double next_unit() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 gen_;
};

}  // namespace wkv
