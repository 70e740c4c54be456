// Matmul for every weight dtype: the references against a double-precision product of the
// dequantized weights, every SIMD table against the references (awkward shapes, T = 1..64),
// and bit-identical results for any thread count.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "core/quant.hpp"
#include "kernels/kernels.hpp"
#include "test_util.hpp"

namespace wkv::kernels {
namespace {

const DType kAll[] = {DType::f32,  DType::bf16, DType::f16,  DType::q8_0, DType::q4_0,
                      DType::q4_1, DType::q5_0, DType::q5_1, DType::q2_k, DType::q3_k,
                      DType::q4_k, DType::q5_k, DType::q6_k};

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// W [rows, cols] in dtype t (raw bytes) from fp32 values.
std::vector<unsigned char> encode(DType t, const std::vector<float>& w, size_t rows, size_t cols) {
  const size_t rb = dtype_bytes(t, cols);
  std::vector<unsigned char> out(rb * rows);
  for (size_t r = 0; r < rows; ++r) {
    const float* src = w.data() + r * cols;
    unsigned char* dst = out.data() + r * rb;
    switch (t) {
      case DType::f32:
        std::memcpy(dst, src, cols * 4);
        break;
      case DType::bf16:
      case DType::f16:
        for (size_t i = 0; i < cols; ++i) {
          const uint16_t h = t == DType::bf16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
          std::memcpy(dst + 2 * i, &h, 2);
        }
        break;
      default:
        quant::quantize_row(t, src, dst, cols);
    }
  }
  return out;
}

// Column counts valid for t (quantized: multiples of the block, 32 or 256).
std::vector<size_t> cols_for(DType t) {
  if (dtype_info(t).block == 256) return {256, 512, 768, 1280};
  if (dtype_is_quantized(t)) return {32, 64, 96, 160, 800};
  return {1, 3, 7, 8, 17, 31, 64, 130, 257};
}

TEST(MatmulAllTypes, ReferenceMatchesDequantizedProduct) {
  for (DType t : kAll) {
    const MatmulRows fn = ref_table().rows_for(t);
    ASSERT_NE(fn, nullptr);
    for (size_t cols : cols_for(t)) {
      const size_t rows = 5, T = 3;
      const auto w = randn(rows * cols, 11);
      const auto x = randn(T * cols, 12);
      const auto W = encode(t, w, rows, cols);
      std::vector<float> wd(rows * cols);
      for (size_t r = 0; r < rows; ++r)
        quant::dequantize_row(t, W.data() + r * dtype_bytes(t, cols), wd.data() + r * cols, cols);
      std::vector<float> y(T * rows, -1.0f);
      fn(W.data(), x.data(), y.data(), rows, cols, T, 0, rows);
      for (size_t tt = 0; tt < T; ++tt)
        for (size_t o = 0; o < rows; ++o) {
          double s = 0, mag = 0;
          for (size_t i = 0; i < cols; ++i) {
            s += static_cast<double>(wd[o * cols + i]) * x[tt * cols + i];
            mag += std::fabs(static_cast<double>(wd[o * cols + i]) * x[tt * cols + i]);
          }
          EXPECT_NEAR(y[tt * rows + o], s, 1e-6 * mag + 1e-6)
              << dtype_name(t) << " cols " << cols << " t " << tt << " o " << o;
        }
    }
  }
}

TEST(MatmulAllTypes, RowRangeWritesOnlyItsRows) {
  for (DType t : kAll) {
    const size_t rows = 9, cols = dtype_info(t).block == 256 ? 256 : 64;
    const auto W = encode(t, randn(rows * cols, 3), rows, cols);
    for (const Table* tab :
         {&ref_table(), avx2_table(), avx512_table(), avx512vnni_table(), amx_table()}) {
      if (!tab) continue;
      for (size_t T : {2u, 20u}) {  // 20: the AMX tiles' path
        const auto x = randn(T * cols, 4);
        std::vector<float> y(T * rows, 42.0f);
        tab->rows_for(t)(W.data(), x.data(), y.data(), rows, cols, T, 3, 7);
        for (size_t tt = 0; tt < T; ++tt)
          for (size_t o = 0; o < rows; ++o) {
            if (o >= 3 && o < 7)
              EXPECT_NE(y[tt * rows + o], 42.0f) << tab->name << " " << dtype_name(t);
            else
              EXPECT_EQ(y[tt * rows + o], 42.0f) << tab->name << " " << dtype_name(t);
          }
      }
    }
  }
}

// Any split of the rows into ranges gives the same bits as one range, for every table: the
// one-token kernels group rows a quarter of the range apart (avx2 rows_one_token), so the
// groups change with the range, and a row's sum must not. (matmul() itself does not split
// products this small across threads, so ThreadCountDoesNotChangeABit alone would miss it.)
TEST(MatmulAllTypes, RowSplitDoesNotChangeABit) {
  // Two widths, so every grouping runs both the whole-quad loop and the tail of the 32-value
  // block dots (96: a tail only; 416: three quads and a tail) and one and three super-blocks
  // of the k-quant dots.
  for (DType t : kAll)
    for (const size_t cols : dtype_info(t).block == 256 ? std::array<size_t, 2>{256, 768}
                                                        : std::array<size_t, 2>{96, 416}) {
      const size_t rows = 53;
      const auto W = encode(t, randn(rows * cols, 7), rows, cols);
      for (const Table* tab :
           {&ref_table(), avx2_table(), avx512_table(), avx512vnni_table(), amx_table()}) {
        if (!tab) continue;
        for (size_t T : {1u, 2u, 20u}) {
          const auto x = randn(T * cols, 8);
          std::vector<float> whole(T * rows), parts(T * rows);
          tab->rows_for(t)(W.data(), x.data(), whole.data(), rows, cols, T, 0, rows);
          const size_t cuts[] = {0, 5, 6, 19, 40, rows};
          for (size_t k = 0; k + 1 < std::size(cuts); ++k)
            tab->rows_for(t)(W.data(), x.data(), parts.data(), rows, cols, T, cuts[k], cuts[k + 1]);
          EXPECT_EQ(std::memcmp(whole.data(), parts.data(), whole.size() * 4), 0)
              << tab->name << " " << dtype_name(t) << " cols=" << cols << " T=" << T;
        }
      }
    }
}

// x quantized to q8 per xb values as the integer kernels do (d = amax / 127 in fp32, each
// value times 1 / d rounded to nearest even, saturated to [-128, 127]) and dequantized again.
std::vector<float> q8_round_trip(const std::vector<float>& x, size_t xb) {
  std::vector<float> out(x.size());
  for (size_t c0 = 0; c0 < x.size(); c0 += xb) {
    float amax = 0;
    for (size_t i = c0; i < c0 + xb; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (size_t i = c0; i < c0 + xb; ++i) {
      const float level = std::clamp(std::nearbyint(x[i] * id), -128.0f, 127.0f);
      out[i] = d * level;  // exact: level has at most 8 bits
    }
  }
  return out;
}

// Per output row: the product of the dequantized weights with x_q8 (q8_round_trip) in double,
// and the sum of the terms' magnitudes (for the tolerance of an fp32 sum of those terms).
struct Q8Reference {
  std::vector<double> y, mag;
};
Q8Reference q8_reference(DType t, const std::vector<unsigned char>& W, const std::vector<float>& xq,
                         size_t rows, size_t cols) {
  Q8Reference out{std::vector<double>(rows), std::vector<double>(rows)};
  std::vector<float> w(cols);
  for (size_t o = 0; o < rows; ++o) {
    quant::dequantize_row(t, W.data() + o * dtype_bytes(t, cols), w.data(), cols);
    for (size_t i = 0; i < cols; ++i) {
      const double p = static_cast<double>(w[i]) * xq[i];
      out.y[o] += p;
      out.mag[o] += std::fabs(p);
    }
  }
  return out;
}

// Per output (t, o): 2^-15 * sum_i |w_oi x_ti|, the error bound of the AMX kernels' split-bf16
// products (amx.cpp), with w the dequantized weights.
std::vector<float> split_bf16_bound(DType t, const std::vector<unsigned char>& W,
                                    const std::vector<float>& x, size_t rows, size_t cols,
                                    size_t T) {
  std::vector<float> out(T * rows), w(cols);
  for (size_t o = 0; o < rows; ++o) {
    quant::dequantize_row(t, W.data() + o * dtype_bytes(t, cols), w.data(), cols);
    for (size_t tt = 0; tt < T; ++tt) {
      double m = 0;
      for (size_t i = 0; i < cols; ++i)
        m += std::fabs(static_cast<double>(w[i]) * x[tt * cols + i]);
      out[tt * rows + o] = static_cast<float>(m * std::ldexp(1.0, -15));
    }
  }
  return out;
}

std::vector<const Table*> simd_tables() {
  std::vector<const Table*> out;
  for (const Table* t : {avx2_table(), avx512_table(), avx512vnni_table(), amx_table()})
    if (t) out.push_back(t);
  return out;
}

// The prompt modes: fp32 (0); tokens quantized to q8 where the level does it (1,
// set_prompt_q8); tokens rounded to bf16 for bf16 weights where the CPU has AVX512-BF16 (2,
// set_prompt_bf16).
struct PromptModes {
  ~PromptModes() { set(0); }
  static constexpr int kModes[] = {0, 1, 2};
  static void set(int m) {
    set_prompt_q8(m == 1);
    set_prompt_bf16(m == 2);
  }
};

// x rounded to bf16, nearest even (what vcvtneps2bf16 gives for normal values).
std::vector<float> bf16_round(std::vector<float> x) {
  for (float& v : x) {
    uint32_t b = std::bit_cast<uint32_t>(v);
    b = (b + 0x7fffu + ((b >> 16) & 1u)) & 0xffff0000u;
    v = std::bit_cast<float>(b);
  }
  return x;
}

TEST(MatmulAllTypes, SimdMatchesReferenceOnAwkwardShapes) {
  const auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "CPU has no AVX2+FMA+F16C";
  PromptModes restore;
  for (int mode : PromptModes::kModes)
    for (const Table* simd : tables) {
      PromptModes::set(mode);
      for (DType t : kAll) {
        for (size_t rows : {1u, 3u, 7u, 16u, 37u}) {
          for (size_t cols : cols_for(t)) {
            for (size_t T : {1u, 2u, 3u, 4u, 5u, 8u, 16u, 17u, 33u, 64u, 80u}) {
              if (rows * cols * T > 400000) continue;
              const auto w = randn(rows * cols, static_cast<uint32_t>(rows * 131 + cols));
              const auto x = randn(T * cols, static_cast<uint32_t>(T));
              const auto W = encode(t, w, rows, cols);
              std::vector<float> want(T * rows), got(T * rows, 1e30f);
              ref_table().rows_for(t)(W.data(), x.data(), want.data(), rows, cols, T, 0, rows);
              simd->rows_for(t)(W.data(), x.data(), got.data(), rows, cols, T, 0, rows);
              // fp32 sums in another order: error ~ sqrt(cols) * eps * |w||x|; |w||x| ~ 1 here.
              const float fp_tol = 2e-6f * static_cast<float>(cols) + 1e-5f;
              if (simd->rows_packed && T >= simd->packed_min_t) {
                // The two-step form matmul() takes from packed_min_t tokens: the same bits.
                std::vector<float> packed(T * rows, 1e30f);
                simd->rows_packed(t, W.data(), simd->pack_x(t, x.data(), T, cols), packed.data(),
                                  rows, cols, T, 0, rows);
                EXPECT_EQ(std::memcmp(packed.data(), got.data(), got.size() * 4), 0)
                    << simd->name << " " << dtype_name(t) << " " << rows << "x" << cols
                    << " T=" << T;
              }
              if (dtype_is_quantized(t) &&
                  (T == 1 || (simd->quantizes_x && simd->quantizes_x(t, T)))) {
                // Generation (and, where quantizes_x says so, prompts) quantizes x to q8, per 256
                // values for a k-quant's one-token dots (as ggml's Q8_K) and per 32 otherwise;
                // the rest is exact integer sums scaled in fp32, so the result must be the
                // dequantized weights times x_q8 up to fp32 rounding (relative to the terms'
                // magnitudes, as the weights' offsets make them larger than the result).
                const size_t xb = T == 1 ? dtype_info(t).block : 32;
                for (size_t tt = 0; tt < T; ++tt) {
                  const std::vector<float> xt(x.begin() + tt * cols, x.begin() + (tt + 1) * cols);
                  const auto ref = q8_reference(t, W, q8_round_trip(xt, xb), rows, cols);
                  for (size_t o = 0; o < rows; ++o)
                    EXPECT_NEAR(got[tt * rows + o], ref.y[o], 2e-6 * ref.mag[o] + 1e-5)
                        << simd->name << " " << dtype_name(t) << " " << rows << "x" << cols
                        << " T=" << T << " t=" << tt << " o=" << o;
                }
                continue;
              }
              if (simd->rounds_x_bf16 && simd->rounds_x_bf16(t, T)) {
                // bf16 prompts: the exact products of the bf16 weights and x rounded to bf16,
                // summed in fp32 (in another order than the reference's).
                std::vector<float> want_r(T * rows);
                const auto xr = bf16_round(x);
                ref_table().rows_for(t)(W.data(), xr.data(), want_r.data(), rows, cols, T, 0, rows);
                EXPECT_LE(test::max_abs_diff(got, want_r), fp_tol)
                    << simd->name << " bf16 prompts " << rows << "x" << cols << " T=" << T;
                continue;
              }
              if (simd->packed_split_bf16 && T >= simd->packed_min_t) {
                const auto bound = split_bf16_bound(t, W, x, rows, cols, T);
                for (size_t i = 0; i < got.size(); ++i)
                  EXPECT_LE(std::fabs(got[i] - want[i]), bound[i] + fp_tol)
                      << simd->name << " " << dtype_name(t) << " " << rows << "x" << cols
                      << " T=" << T << " at " << i;
                continue;
              }
              EXPECT_LE(test::max_abs_diff(got, want), fp_tol)
                  << simd->name << " " << dtype_name(t) << " " << rows << "x" << cols << " T=" << T;
            }
          }
        }
      }
    }
}

TEST(MatmulAllTypes, ThreadCountDoesNotChangeABit) {
  const size_t before = threads();
  PromptModes restore;
  for (int mode : PromptModes::kModes)
    for (DType t : kAll) {
      PromptModes::set(mode);
      // 256 columns: 8 blocks of 32 (an even count) or one k-quant super-block; 288: 9 blocks,
      // so the two-blocks-per-vector one-token kernels also take their odd-block path.
      for (size_t cols : {256u, 288u})
        for (size_t T : {1u, 3u, 17u, 40u}) {  // 40: AMX's odd last block of 16 tokens
          if (cols % dtype_info(t).block != 0) continue;
          const size_t rows = 203;
          const auto W = encode(t, randn(rows * cols, 5), rows, cols);
          const auto x = randn(T * cols, 6);
          std::vector<float> y1(T * rows), yn(T * rows);
          set_threads(1);
          matmul(t, W.data(), x.data(), y1.data(), rows, cols, T);
          for (size_t n : {2u, 3u, 5u}) {
            set_threads(n);
            std::fill(yn.begin(), yn.end(), 0.0f);
            matmul(t, W.data(), x.data(), yn.data(), rows, cols, T);
            EXPECT_EQ(std::memcmp(y1.data(), yn.data(), y1.size() * 4), 0)
                << dtype_name(t) << " " << cols << " cols, T=" << T << " threads " << n;
          }
        }
    }
  set_threads(before);
}

// matmul_batch: every job's Y as matmul alone on one thread gives it, at any thread count, for
// batches mixing dtypes and sizes (rows below one task's 16-row alignment, a tiny product next
// to large ones, a batch too large for one hand-off, several tokens).
TEST(MatmulAllTypes, BatchMatchesOneByOne) {
  const size_t before = threads();
  struct Shape {
    DType t;
    size_t rows, cols;
  };
  const Shape shapes[] = {{DType::q4_k, 203, 256}, {DType::bf16, 5, 288},   {DType::f32, 64, 288},
                          {DType::q8_0, 77, 256},  {DType::q6_k, 300, 256}, {DType::f16, 33, 96},
                          {DType::q5_1, 128, 96},  {DType::q4_0, 17, 288},  {DType::q3_k, 40, 512}};
  std::vector<std::vector<unsigned char>> W;
  std::vector<std::vector<float>> X;
  for (size_t i = 0; i < std::size(shapes); ++i) {
    W.push_back(encode(shapes[i].t, randn(shapes[i].rows * shapes[i].cols, 20 + i), shapes[i].rows,
                       shapes[i].cols));
    X.push_back(randn(3 * shapes[i].cols, 40 + i));
  }
  for (size_t T : {1u, 3u})
    for (size_t count : {std::size(shapes), kMaxMatmulBatch, size_t{7}, size_t{2}}) {
      std::vector<std::vector<float>> want(count), got(count);
      set_threads(1);
      for (size_t i = 0; i < count; ++i) {
        want[i].assign(T * shapes[i].rows, 0.0f);
        matmul(shapes[i].t, W[i].data(), X[i].data(), want[i].data(), shapes[i].rows,
               shapes[i].cols, T);
      }
      for (size_t n : {1u, 2u, 3u, 5u}) {
        set_threads(n);
        std::vector<MatmulJob> jobs;
        for (size_t i = 0; i < count; ++i) {
          got[i].assign(T * shapes[i].rows, -1.0f);
          jobs.push_back({shapes[i].t, W[i].data(), X[i].data(), got[i].data(), shapes[i].rows,
                          shapes[i].cols});
        }
        matmul_batch(jobs, T);
        for (size_t i = 0; i < count; ++i)
          EXPECT_EQ(std::memcmp(want[i].data(), got[i].data(), want[i].size() * 4), 0)
              << "job " << i << " (" << dtype_name(shapes[i].t) << ") of " << count << ", T=" << T
              << ", threads " << n;
      }
    }
  set_threads(before);
}

TEST(Wkv, SimdStepsMatchReference) {
  const auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "CPU has no AVX2+FMA+F16C";
  for (const Table* simd : tables)
    for (size_t N : {1u, 3u, 8u, 13u, 16u, 32u, 64u}) {
      const size_t H = 3, C = H * N;
      auto S0 = randn(H * N * N, 1);
      const auto r = randn(C, 2), k = randn(C, 3), v = randn(C, 4), a = randn(C, 5),
                 b = randn(C, 6), u = randn(C, 7);
      std::vector<float> w(C);
      for (size_t i = 0; i < C; ++i) w[i] = 0.5f + 0.4f * std::tanh(u[i]);
      for (int step = 0; step < 2; ++step) {
        auto Sa = S0, Sb = S0;
        std::vector<float> ya(C), yb(C);
        if (step == 0) {
          ref::wkv7_step(Sa.data(), r.data(), w.data(), k.data(), v.data(), a.data(), b.data(),
                         ya.data(), H, N);
          simd->wkv7_step(Sb.data(), r.data(), w.data(), k.data(), v.data(), a.data(), b.data(),
                          yb.data(), H, N);
        } else {
          ref::wkv5_step(Sa.data(), r.data(), w.data(), u.data(), k.data(), v.data(), ya.data(), H,
                         N);
          simd->wkv5_step(Sb.data(), r.data(), w.data(), u.data(), k.data(), v.data(), yb.data(), H,
                          N);
        }
        const float tol = 1e-5f * static_cast<float>(N) + 1e-5f;
        EXPECT_LE(test::max_abs_diff(ya, yb), tol * 4) << "wkv" << (step ? 5 : 7) << " N=" << N;
        EXPECT_LE(test::max_abs_diff(Sa, Sb), tol) << "wkv" << (step ? 5 : 7) << " N=" << N;
      }
    }
}

// exp and sigmoid of every table against std::exp in double: within 2 ulp where the result is
// a normal float, 0 (or a denormal) below, inf and NaN passed through; the tail of a length
// that is not a multiple of the vector gives the same bits as the full vectors, in place.
TEST(Elementwise, ExpAndSigmoidMatchStd) {
  std::vector<float> x;
  for (double v = -105.0; v <= 105.0; v += 0.00097) x.push_back(static_cast<float>(v));
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.7228f, 88.7229f, 88.73f, -87.3365f, -87.3366f,
                  -87.35f, 0.34657359f, -0.34657359f, 1e30f, -1e30f})
    x.push_back(v);
  const float inf = std::numeric_limits<float>::infinity();
  x.push_back(inf);
  x.push_back(-inf);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  std::vector<const Table*> tables = simd_tables();
  tables.push_back(&ref_table());
  for (const Table* t : tables) {
    std::vector<float> e(x.size()), s(x.size());
    t->exp_f32(x.data(), e.data(), x.size());
    t->sigmoid_f32(x.data(), s.data(), x.size());
    size_t bad = 0;
    for (size_t i = 0; i < x.size() && bad < 5; ++i) {
      const double want_e = std::exp(static_cast<double>(x[i]));
      const double want_s = 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])));
      bool ok_e, ok_s;
      if (std::isnan(x[i])) {
        ok_e = std::isnan(e[i]);
        ok_s = std::isnan(s[i]);
      } else {
        if (want_e > std::numeric_limits<float>::max())
          ok_e = e[i] == inf;
        else if (want_e < std::numeric_limits<float>::min())
          ok_e = e[i] >= 0 && e[i] <= std::numeric_limits<float>::min();
        else
          ok_e = std::abs(e[i] - want_e) <= 2.4e-7 * want_e;
        if (want_s < std::numeric_limits<float>::min())
          ok_s = s[i] >= 0 && s[i] <= std::numeric_limits<float>::min();
        else
          ok_s = std::abs(s[i] - want_s) <= 3.6e-7 * want_s;
      }
      if (!ok_e || !ok_s) {
        ++bad;
        ADD_FAILURE() << t->name << " x=" << x[i] << " exp " << e[i] << " (want " << want_e
                      << ") sigmoid " << s[i] << " (want " << want_s << ")";
      }
    }
    // every length 0..40, in place: the same bits as the long run, nothing past n written
    for (size_t n = 0; n <= 40; ++n) {
      std::vector<float> a(x.begin() + 1000, x.begin() + 1000 + 48), b = a;
      t->exp_f32(a.data(), a.data(), n);
      t->sigmoid_f32(b.data(), b.data(), n);
      for (size_t i = 0; i < 48; ++i) {
        EXPECT_EQ(a[i], i < n ? e[1000 + i] : x[1000 + i]) << t->name << " exp n=" << n;
        EXPECT_EQ(b[i], i < n ? s[1000 + i] : x[1000 + i]) << t->name << " sigmoid n=" << n;
      }
    }
  }
}

// relu^2 of every table: the same bits as max(x, 0)^2 in scalar code (NaN stays NaN, -0 and
// negatives give +0, overflow gives inf) for every length 0..40 in place and out of place,
// nothing past n written.
TEST(Elementwise, ReluSquaredMatchesScalar) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {0.0f,   -0.0f, 1.5f, -1.5f, 1e-30f, -1e-30f, 2e19f, -2e19f,
                          1e-45f, inf,   -inf, 3.0f,  -7.25f, 0.5f,    1e19f, -3e-3f};
  for (int i = 0; i < 40; ++i) x.push_back(static_cast<float>((i * 37) % 23) - 11.3f);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  std::vector<const Table*> tables = simd_tables();
  tables.push_back(&ref_table());
  for (const Table* t : tables) {
    std::vector<float> y(x.size(), -1.0f);
    t->relu_sq_f32(x.data(), y.data(), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const float h = x[i] > 0.0f ? x[i] : 0.0f;
      if (std::isnan(x[i]))
        EXPECT_TRUE(std::isnan(y[i])) << t->name << " relu_sq(NaN) = " << y[i];
      else
        EXPECT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(h * h))
            << t->name << " relu_sq(" << x[i] << ") = " << y[i];
    }
    for (size_t n = 0; n <= 40; ++n) {
      std::vector<float> a(x.begin(), x.begin() + 48);
      t->relu_sq_f32(a.data(), a.data(), n);
      for (size_t i = 0; i < 48; ++i)
        EXPECT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(i < n ? y[i] : x[i]))
            << t->name << " relu_sq n=" << n << " i=" << i;
    }
  }
}

// layer_norm at every SIMD level against the reference (double sums, so at most a flip of the
// last fp32 bit), for lengths around the vector width and model widths, rows far from zero
// (mean 1000: the variance must not cancel), in place as group_norm calls it, nothing past n
// written, and a constant row giving exactly b.
TEST(Elementwise, LayerNormMatchesReference) {
  const auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "CPU has no AVX2+FMA+F16C";
  std::vector<size_t> lengths;
  for (size_t n = 1; n <= 40; ++n) lengths.push_back(n);
  for (size_t n : {64u, 768u, 1031u}) lengths.push_back(n);
  for (const Table* t : tables)
    for (size_t n : lengths)
      for (float offset : {0.0f, 3.0f, 1000.0f}) {
        auto x = randn(n + 1, static_cast<uint32_t>(n));
        for (auto& v : x) v += offset;
        const auto w = randn(n, 90), b = randn(n, 91);
        std::vector<float> want(n + 1, 7.0f), got(n + 1, 7.0f);
        ref_table().layer_norm(x.data(), w.data(), b.data(), want.data(), n, 1e-5f);
        t->layer_norm(x.data(), w.data(), b.data(), got.data(), n, 1e-5f);
        for (size_t i = 0; i < n; ++i)
          EXPECT_NEAR(got[i], want[i], 2e-6f * (std::fabs(want[i]) + 1.0f))
              << t->name << " n=" << n << " offset " << offset << " i=" << i;
        EXPECT_EQ(got[n], 7.0f) << t->name << " wrote past n=" << n;
        std::vector<float> inplace(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n));
        t->layer_norm(inplace.data(), w.data(), b.data(), inplace.data(), n, 1e-5f);
        EXPECT_EQ(std::memcmp(inplace.data(), got.data(), n * 4), 0)
            << t->name << " in place, n=" << n;
        std::vector<float> flat(n, offset), y(n);
        t->layer_norm(flat.data(), w.data(), b.data(), y.data(), n, 1e-5f);
        EXPECT_EQ(std::memcmp(y.data(), b.data(), n * 4), 0) << t->name << " constant row";
      }
}

TEST(Dispatch, ForcedLevelIsHonoured) {
  // The chosen table is the best level this CPU has at or below WKV_KERNELS (unset or
  // unknown: avx512vnni, the default cap).
  const char* force = std::getenv("WKV_KERNELS");
  std::string cap = force ? force : "";
  const std::vector<std::pair<std::string, const Table*>> levels = {
      {"amx", amx_table()},
      {"avx512vnni", avx512vnni_table()},
      {"avx512", avx512_table()},
      {"avx2", avx2_table()}};
  bool known = cap == "ref";
  for (const auto& level : levels) known = known || level.first == cap;
  if (!known) cap = "avx512vnni";
  std::string want = "ref";
  bool allowed = false;
  for (const auto& [name, tab] : levels) {
    if (name == cap) allowed = true;
    if (allowed && tab) {
      want = name;
      break;
    }
  }
  EXPECT_EQ(std::string(table().name), want) << "WKV_KERNELS=" << cap;
}

}  // namespace
}  // namespace wkv::kernels
