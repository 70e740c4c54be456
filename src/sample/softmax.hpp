// The softmax weights the sampler draws from, exp(logit - max) in double, computed the same way
// on every x86-64 (so a seed draws the same tokens everywhere) and vectorized.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace wkv {

// exp(d) for the softmax's d = logit - max <= 0, within about 1 ulp of the exact value; 0 for
// d < -708 (near the smallest normal double), -inf and NaN. Written out rather than calling
// std::exp: glibc's takes ~4 ns a call (the pass over a 65536-token vocabulary was most of a
// draw's 320 us, ~10 % of a 0.1B model's token), and it picks an FMA or a plain variant by CPU.
// This is plain double arithmetic with no branch, so GCC vectorizes the loops calling it with
// the baseline SSE2 and every x86-64 computes the same bits: the same seed draws the same
// tokens on every machine. d = k ln 2 + r with |r| <= ln 2 / 2 (Cody-Waite, k by the 1.5 * 2^52
// rounding trick), e^r by its Taylor series to r^13 (truncation below 1e-17), times 2^k built
// in the exponent bits.
inline double exp_nonpositive(double d) {
  constexpr double kLog2e = 0x1.71547652b82fep0, kLn2Hi = 0x1.62e42fee00000p-1,
                   kLn2Lo = 0x1.a39ef35793c76p-33, kShifter = 0x1.8p52;
  const double t = d * kLog2e + kShifter;
  const double k = t - kShifter;
  const double r = (d - k * kLn2Hi) - k * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1 / 13!, then Horner down to 1 / 0!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // t's low bits hold k (two's complement, wrapping): k + 1023 in the exponent field
  const uint64_t biased = std::bit_cast<uint64_t>(t) - std::bit_cast<uint64_t>(kShifter) + 1023;
  const double e = p * std::bit_cast<double>(biased << 52);
  // 0 unless |d| <= 708 (so also for -inf and NaN), by integer masking: GCC keeps a
  // floating-point compare-and-select as a branch (it may trap) and then vectorizes nothing.
  const uint64_t mag = std::bit_cast<uint64_t>(d) & 0x7fffffffffffffffu;
  const uint64_t keep = ((std::bit_cast<uint64_t>(708.0) - mag) >> 63) - 1;
  return std::bit_cast<double>(std::bit_cast<uint64_t>(e) & keep);
}

// out[i] = exp_nonpositive((x[i] - max) * scale) for i < n: -inf and NaN give 0.
void softmax_weights(const float* x, double* out, size_t n, double max, double scale);

}  // namespace wkv
