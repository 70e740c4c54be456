// Block quantizers: round-trip error bounds per type, and byte-identity with ggml's quantizer
// on real data (rwkv.cpp's Q5_0 / Q5_1 files of the tiny RWKV-7 against its FP32 file).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/quant.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

using quant::kBlock;

std::vector<float> random_row(size_t n, uint32_t seed, float offset) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(offset, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  // A few outliers and an exactly-zero block, as real weights have.
  v[5] *= 20.0f;
  std::fill(v.begin() + static_cast<ptrdiff_t>(2 * kBlock),
            v.begin() + static_cast<ptrdiff_t>(3 * kBlock), 0.0f);
  return v;
}

struct Bound {
  DType t;
  // Max error allowed within a block, from its min, max and absolute max.
  float (*max_err)(float mn, float mx, float amax);
  float rms_frac;  // rms error over the row must stay below this fraction of the max bound
};

const Bound kBounds[] = {
    // d = amax/127 (fp16-rounded: relative 2^-11 on each |q| <= 127 level).
    {DType::q8_0, [](float, float, float a) { return a / 127 * 0.5f + a * 0x1p-11f; }, 0.7f},
    // d = -max/8: the extreme maps exactly; the other sign may clamp (+8 -> 7): error <= |d|.
    {DType::q4_0, [](float, float, float a) { return a / 8 + a * 0x1p-10f; }, 0.45f},
    {DType::q4_1,
     [](float mn, float mx, float) {
       const float d = (mx - mn) / 15;
       return d * 0.5f + d * 15 * 0x1p-11f + std::fabs(mn) * 0x1p-11f + 1e-6f;
     },
     0.7f},
    {DType::q5_0, [](float, float, float a) { return a / 16 + a * 0x1p-10f; }, 0.45f},
    {DType::q5_1,
     [](float mn, float mx, float) {
       const float d = (mx - mn) / 31;
       return d * 0.5f + d * 31 * 0x1p-11f + std::fabs(mn) * 0x1p-11f + 1e-6f;
     },
     0.7f},
};

TEST(Quant, RoundTripErrorWithinBoundsForEveryType) {
  const size_t n = 32 * kBlock;
  for (const Bound& b : kBounds) {
    for (float offset : {0.0f, 3.0f}) {
      SCOPED_TRACE(std::string(dtype_name(b.t)) + " offset " + std::to_string(offset));
      const auto x = random_row(n, 7, offset);
      std::vector<unsigned char> q(dtype_bytes(b.t, n));
      quant::quantize_row(b.t, x.data(), q.data(), n);
      std::vector<float> y(n);
      quant::dequantize_row(b.t, q.data(), y.data(), n);
      double se = 0, sb = 0;
      for (size_t blk = 0; blk < n / kBlock; ++blk) {
        const float* xb = x.data() + blk * kBlock;
        const float mn = *std::min_element(xb, xb + kBlock);
        const float mx = *std::max_element(xb, xb + kBlock);
        const float amax = std::max(std::fabs(mn), std::fabs(mx));
        const float bound = b.max_err(mn, mx, amax);
        for (size_t j = 0; j < kBlock; ++j) {
          const float e = std::fabs(y[blk * kBlock + j] - xb[j]);
          EXPECT_LE(e, bound) << "block " << blk << " j " << j;
          se += static_cast<double>(e) * e;
          sb += static_cast<double>(bound) * bound;
        }
        if (amax == 0.0f) {
          for (size_t j = 0; j < kBlock; ++j) EXPECT_EQ(y[blk * kBlock + j], 0.0f);
        }
      }
      // Errors spread over the quantization step, not piled at the bound.
      EXPECT_LT(std::sqrt(se / sb), b.rms_frac);
    }
  }
}

TEST(Quant, Q8_0ExtremesMapToPlusMinus127) {
  std::vector<float> x(kBlock, 0.0f);
  x[3] = -2.54f;
  x[9] = 1.27f;
  quant::BlockQ8_0 b;
  quant::quantize_row(DType::q8_0, x.data(), &b, kBlock);
  EXPECT_EQ(b.qs[3], -127);
  EXPECT_EQ(b.qs[9], 64);  // 1.27 / 0.02 = 63.5 rounds away from zero
  EXPECT_EQ(b.qs[0], 0);
}

// ---- ggml byte-identity on real data ----------------------------------------------------------

struct Record {
  int32_t type;
  std::vector<int32_t> dims;
  size_t numel;
  std::vector<unsigned char> data;
};

// The records of an rwkv.cpp .bin file by name (raw, as stored).
std::map<std::string, Record> read_bin(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), {});
  std::map<std::string, Record> out;
  EXPECT_GE(bytes.size(), 24u) << path;
  size_t pos = 24;
  auto i32 = [&](size_t at) {
    int32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  while (pos + 12 <= bytes.size()) {
    Record r;
    const int32_t nd = i32(pos), klen = i32(pos + 4);
    r.type = i32(pos + 8);
    pos += 12;
    r.numel = 1;
    for (int32_t d = 0; d < nd; ++d, pos += 4) {
      r.dims.push_back(i32(pos));
      r.numel *= static_cast<size_t>(r.dims.back());
    }
    std::string key(reinterpret_cast<const char*>(bytes.data() + pos), static_cast<size_t>(klen));
    pos += static_cast<size_t>(klen);
    size_t nbytes = 0;
    switch (r.type) {
      case 0: nbytes = 4 * r.numel; break;
      case 1: nbytes = 2 * r.numel; break;
      case 7: nbytes = r.numel / 32 * 22; break;
      case 8: nbytes = r.numel / 32 * 24; break;
      default: ADD_FAILURE() << "unexpected type " << r.type << " in " << path; return out;
    }
    if (pos + nbytes > bytes.size()) {
      ADD_FAILURE() << "truncated " << path;
      return out;
    }
    r.data.assign(bytes.begin() + static_cast<ptrdiff_t>(pos),
                  bytes.begin() + static_cast<ptrdiff_t>(pos + nbytes));
    pos += nbytes;
    out.emplace(std::move(key), std::move(r));
  }
  return out;
}

std::string bin(const char* kind) {
  return test::testdata(std::string("rwkvcpp/tiny-rwkv-7v0-834K-") + kind + ".bin");
}

TEST(Quant, Q5QuantizerIsByteIdenticalToGgmlOnRealWeights) {
  const auto fp32 = read_bin(bin("FP32"));
  ASSERT_FALSE(fp32.empty());
  for (auto [kind, code, dt] : {std::tuple{"Q5_0", 7, DType::q5_0}, std::tuple{"Q5_1", 8, DType::q5_1}}) {
    SCOPED_TRACE(kind);
    const auto q = read_bin(bin(kind));
    size_t tensors = 0, blocks = 0, differing = 0;
    for (const auto& [name, r] : q) {
      if (r.type != code) continue;
      auto it = fp32.find(name);
      ASSERT_NE(it, fp32.end()) << name;
      ASSERT_EQ(it->second.type, 0) << name;
      ASSERT_EQ(it->second.numel, r.numel) << name;
      std::vector<float> x(r.numel);
      std::memcpy(x.data(), it->second.data.data(), 4 * r.numel);
      std::vector<unsigned char> mine(r.data.size());
      quant::quantize_row(dt, x.data(), mine.data(), r.numel);
      const size_t bs = dtype_size(dt);
      for (size_t b = 0; b < r.numel / kBlock; ++b)
        differing += std::memcmp(mine.data() + b * bs, r.data.data() + b * bs, bs) != 0;
      blocks += r.numel / kBlock;
      ++tensors;
    }
    EXPECT_GT(tensors, 10u);
    EXPECT_EQ(differing, 0u) << "of " << blocks << " blocks in " << tensors << " tensors";
  }
}

// ---- k-quants ---------------------------------------------------------------------------------

// A deterministic input (std::mt19937 is specified bit for bit; no std:: distributions, which
// are not): 60 super-blocks cycling through uniform, narrow all-positive, outliers, half
// zero/half tiny, non-negative, and a few repeated levels.
std::vector<float> k_test_input(size_t nsb) {
  std::mt19937 g(20261127u);
  std::vector<float> x;
  x.reserve(nsb * 256);
  const float levels[4] = {0.0f, 1.0f, -1.0f, 0.25f};
  for (size_t b = 0; b < nsb; ++b)
    for (int i = 0; i < 256; ++i) {
      const float u = static_cast<float>(g() >> 8) * (1.0f / 16777216.0f);
      float v = 0;
      switch (b % 6) {
        case 0: v = u * 2 - 1; break;
        case 1: v = 0.5f + (u - 0.5f) * 0.04f; break;
        case 2: v = (u * 2 - 1) * (i % 37 == 0 ? 10.0f : 1.0f); break;
        case 3: v = i < 128 ? 0.0f : (u * 2 - 1) * 1e-3f; break;
        case 4: v = u; break;
        default: v = levels[g() % 4]; break;
      }
      x.push_back(v);
    }
  return x;
}

uint64_t fnv1a(const void* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<const unsigned char*>(p)[i];
    h *= 1099511628211ull;
  }
  return h;
}

// FNV-1a of the blocks that ggml's reference quantizers (quantize_row_*_ref, no importance
// matrix) write for k_test_input(60), and of the floats its to_float gives for those blocks:
// measured with ggml from llama.cpp c392e50 (2025-02-20), built locally for the purpose.
struct KGolden {
  DType t;
  uint64_t blocks, floats;
};
const KGolden kKGolden[] = {
    {DType::q2_k, 0xa61aa49e1b8a6268ull, 0x8c13a52865ef2aa6ull},
    {DType::q3_k, 0xcf1133f1bdb06270ull, 0x34e40907887c0cd1ull},
    {DType::q4_k, 0xe463c2f9add9c31full, 0xe1cab758dd41610bull},
    {DType::q5_k, 0x83907f1644ac26f8ull, 0xc1373b9cd418161bull},
    {DType::q6_k, 0x32f111db5cc069d2ull, 0xeecbc73efc854981ull},
    {DType::q8_0, 0xf9667a13c4ffe92aull, 0x75ae62e1749118a0ull},
    {DType::q4_0, 0x6c179d538b8bbfc5ull, 0xb7dd81e35b53e726ull},
    {DType::q4_1, 0x65df48da5cac0717ull, 0xe0161a95dd14d723ull},
    {DType::q5_0, 0xfdee18729c87d0edull, 0xb5c3cf2bfc2a789eull},
    {DType::q5_1, 0x39e36cb9cfe169d0ull, 0x2ef7da0434898d1cull},
};

TEST(Quant, EveryBlockTypeIsByteIdenticalToGgml) {
  const size_t n = 60 * 256;
  const auto x = k_test_input(60);
  for (const KGolden& k : kKGolden) {
    SCOPED_TRACE(std::string(dtype_name(k.t)));
    std::vector<unsigned char> q(dtype_bytes(k.t, n));
    quant::quantize_row(k.t, x.data(), q.data(), n);
    EXPECT_EQ(fnv1a(q.data(), q.size()), k.blocks);
    std::vector<float> y(n);
    quant::dequantize_row(k.t, q.data(), y.data(), n);
    EXPECT_EQ(fnv1a(y.data(), 4 * n), k.floats);
  }
}

TEST(QuantK, RoundTripErrorShrinksWithBits) {
  // Relative RMS error on Gaussian data, with ggml's measured levels for its reference
  // quantizers (2.6 to 6.6 bits per weight: 29 %, 15 %, 7 %, 3.5 %, 1.7 %) plus 15 % slack.
  const std::pair<DType, double> kMax[] = {{DType::q2_k, 0.335}, {DType::q3_k, 0.17},
                                           {DType::q4_k, 0.081}, {DType::q5_k, 0.041},
                                           {DType::q6_k, 0.0197}};
  const size_t n = 64 * 256;
  std::mt19937 g(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(g);
  double prev = 1.0;
  for (auto [t, limit] : kMax) {
    std::vector<unsigned char> q(dtype_bytes(t, n));
    quant::quantize_row(t, x.data(), q.data(), n);
    std::vector<float> y(n);
    quant::dequantize_row(t, q.data(), y.data(), n);
    double se = 0, sx = 0;
    for (size_t i = 0; i < n; ++i) {
      se += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
      sx += static_cast<double>(x[i]) * x[i];
    }
    const double rel = std::sqrt(se / sx);
    EXPECT_LT(rel, limit) << dtype_name(t);
    EXPECT_LT(rel, prev * 0.7) << dtype_name(t) << " should beat the type with fewer bits";
    prev = rel;
  }
}

// A model from a stranger may hold NaN or infinite weights: every quantizer gives some blocks
// without undefined behaviour (this runs under UBSan in CI: the k-quants round with ggml's
// add-a-constant trick, the 32-blocks guard their casts), and the finite blocks beside them
// are unaffected.
TEST(Quant, NonFiniteWeightsQuantizeWithoutUndefinedBehaviour) {
  const size_t n = 3 * 256;
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 13) / 6.0f - 1.0f;
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[300] = std::numeric_limits<float>::infinity();
  x[301] = -std::numeric_limits<float>::infinity();
  x[302] = 3e38f;
  for (DType t : {DType::q8_0, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1, DType::q2_k,
                  DType::q3_k, DType::q4_k, DType::q5_k, DType::q6_k}) {
    std::vector<unsigned char> q(dtype_bytes(t, n)), clean(dtype_bytes(t, 256));
    quant::quantize_row(t, x.data(), q.data(), n);
    quant::quantize_row(t, x.data() + 512, clean.data(), 256);
    EXPECT_EQ(std::memcmp(q.data() + dtype_bytes(t, 512), clean.data(), clean.size()), 0)
        << dtype_name(t);
    std::vector<float> y(n);
    quant::dequantize_row(t, q.data(), y.data(), n);
  }
}

TEST(QuantK, ZeroSuperBlockStaysZeroAndSizesMatchGgml) {
  for (DType t : {DType::q2_k, DType::q3_k, DType::q4_k, DType::q5_k, DType::q6_k}) {
    std::vector<float> x(512, 0.0f), y(512, 1.0f);
    for (size_t i = 256; i < 512; ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
    std::vector<unsigned char> q(dtype_bytes(t, 512));
    quant::quantize_row(t, x.data(), q.data(), 512);
    quant::dequantize_row(t, q.data(), y.data(), 512);
    for (size_t i = 0; i < 256; ++i) ASSERT_EQ(y[i], 0.0f) << dtype_name(t) << " " << i;
    EXPECT_EQ(dtype_info(t).block, 256u);
  }
  EXPECT_EQ(dtype_size(DType::q2_k), 84u);
  EXPECT_EQ(dtype_size(DType::q3_k), 110u);
  EXPECT_EQ(dtype_size(DType::q4_k), 144u);
  EXPECT_EQ(dtype_size(DType::q5_k), 176u);
  EXPECT_EQ(dtype_size(DType::q6_k), 210u);
  EXPECT_EQ(dtype_from_name("Q4_K"), DType::q4_k);
}

}  // namespace
}  // namespace wkv
