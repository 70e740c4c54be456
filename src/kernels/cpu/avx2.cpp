// AVX2 + FMA + F16C kernels, compiled for that target only (function attributes, never
// -march) and chosen at run time.
//
// Matmul, per output row o and row range [r0, r1) (each element computed by the same code
// whatever the range, so a thread split never changes a bit):
//   prompts (T > 1): from 16 tokens, outer-product tiles (tokens in the lanes, X packed once
//     per call; see kOuterTokens) on fp32 rows (f32 in place; bf16/f16 widened and quantized
//     types dequantized a block of rows at a time); under 16 tokens, dot tiles in which four
//     tokens share each loaded weight vector.
//   plain weights (f32, bf16, f16), T = 1: a single token dots four far-apart rows in
//     lock-step (more DRAM streams in flight, see rows_one_token).
//   quantized weights, T = 1 (generation): x is quantized to q8 per 32 values (once per call)
//     and each weight block's int8 levels are dotted with it in integers, as ggml does, scaled
//     by d_w * d_x in fp32 (the _1 types add m * sum(x) of the block). The float alternative
//     (levels converted to fp32, FMA with x) measured 2.4-2.6 GB/s of q4_0 weights on one core
//     here: compute-bound, far below the DRAM bandwidth. The 4/5-bit types put two blocks of
//     a row in each vector and take their offset (8 or 16) off as offset * sum(qx) in
//     integers, so unsigned levels go straight into maddubs (see row_dot_q8). Dotting eight
//     rows at once (x loaded once, one horizontal-add tree) was twice as fast in cache but
//     half as fast from DRAM (eight interleaved row streams), so each row is one stream.
//     Error vs the reference: at most half a q8 step of x per element
//     (|w| * amax(x block) / 254).
//   quantized weights, T > 1 (prompts): a few rows are dequantized into a per-thread fp32
//     buffer (grown once, then reused: no allocation per token) and multiplied with a block of
//     tokens by the fp32 tiles, so dequantization is amortised over the tokens.
#include "kernels/cpu/avx2.hpp"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.hpp"
#include "core/quant.hpp"
#include "kernels/kernels.hpp"

#define WKV_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace wkv::kernels::avx2 {

namespace {

// Software prefetch for the quantized one-token kernels, which stream each weight
// row once: keeps the lines kPrefetchAhead bytes beyond the end of the current row requested,
// so the DRAM reads overlap the arithmetic (the hardware prefetcher alone left the quantized
// kernels at compute + memory time, not the larger of the two).
constexpr size_t kPrefetchAhead = 2048;
struct RowPrefetch {
  const unsigned char *next, *end;
  void upto(const unsigned char* row_end) {
    const unsigned char* want = std::min(end, row_end + kPrefetchAhead);
    for (; next < want; next += 64) _mm_prefetch(reinterpret_cast<const char*>(next), _MM_HINT_T0);
  }
};

WKV_AVX2 inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

// ---- plain weight rows ----

struct F32 {
  static constexpr size_t kBytes = 4;
  static constexpr bool kEvenOdd = false;
  WKV_AVX2 static __m256 load(const void* row, size_t i) {
    return _mm256_loadu_ps(static_cast<const float*>(row) + i);
  }
  WKV_AVX2 static void load16(const void* row, size_t i, __m256& a, __m256& b) {
    a = load(row, i);
    b = load(row, i + 8);
  }
  static float scalar(const void* row, size_t i) { return static_cast<const float*>(row)[i]; }
};
struct BF16 {
  static constexpr size_t kBytes = 2;
  // load16 gives elements i, i+2, .., i+14 in a and i+1, .., i+15 in b: a bf16 pair is one
  // dword, its even element made fp32 by a shift and its odd one by a mask (no shuffle).
  static constexpr bool kEvenOdd = true;
  WKV_AVX2 static __m256 load(const void* row, size_t i) {
    __m128i h = _mm_loadu_si128(
        reinterpret_cast<const __m128i*>(static_cast<const unsigned char*>(row) + 2 * i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  WKV_AVX2 static void load16(const void* row, size_t i, __m256& a, __m256& b) {
    const __m256i v = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(static_cast<const unsigned char*>(row) + 2 * i));
    a = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    b = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
  }
  static float scalar(const void* row, size_t i) {
    uint16_t h;
    std::memcpy(&h, static_cast<const unsigned char*>(row) + 2 * i, 2);
    return bf16_to_f32(h);
  }
};
struct F16 {
  static constexpr size_t kBytes = 2;
  static constexpr bool kEvenOdd = false;
  WKV_AVX2 static __m256 load(const void* row, size_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(
        reinterpret_cast<const __m128i*>(static_cast<const unsigned char*>(row) + 2 * i)));
  }
  WKV_AVX2 static void load16(const void* row, size_t i, __m256& a, __m256& b) {
    a = load(row, i);
    b = load(row, i + 8);
  }
  static float scalar(const void* row, size_t i) {
    uint16_t h;
    std::memcpy(&h, static_cast<const unsigned char*>(row) + 2 * i, 2);
    return f16_to_f32(h);
  }
};

// Y[t, o] for all t from one weight row.
template <class L>
WKV_AVX2 inline void row_times_tokens(const void* w, const float* X, float* Y, size_t rows,
                                      size_t cols, size_t T, size_t o) {
  size_t t = 0;
  for (; t + 4 <= T; t += 4) {
    const float* x0 = X + t * cols;
    const float* x1 = x0 + cols;
    const float* x2 = x1 + cols;
    const float* x3 = x2 + cols;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= cols; i += 8) {
      const __m256 wv = L::load(w, i);
      a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + i), a0);
      a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + i), a1);
      a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + i), a2);
      a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + i), a3);
    }
    float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (; i < cols; ++i) {
      const float wv = L::scalar(w, i);
      s0 += wv * x0[i];
      s1 += wv * x1[i];
      s2 += wv * x2[i];
      s3 += wv * x3[i];
    }
    Y[t * rows + o] = s0;
    Y[(t + 1) * rows + o] = s1;
    Y[(t + 2) * rows + o] = s2;
    Y[(t + 3) * rows + o] = s3;
  }
  for (; t < T; ++t) {
    const float* x = X + t * cols;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= cols; i += 32) {
      a0 = _mm256_fmadd_ps(L::load(w, i), _mm256_loadu_ps(x + i), a0);
      a1 = _mm256_fmadd_ps(L::load(w, i + 8), _mm256_loadu_ps(x + i + 8), a1);
      a2 = _mm256_fmadd_ps(L::load(w, i + 16), _mm256_loadu_ps(x + i + 16), a2);
      a3 = _mm256_fmadd_ps(L::load(w, i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= cols; i += 8) a0 = _mm256_fmadd_ps(L::load(w, i), _mm256_loadu_ps(x + i), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < cols; ++i) s += L::scalar(w, i) * x[i];
    Y[t * rows + o] = s;
  }
}

// Rows o..o+R times tokens t..t+4: R*4 accumulators, each weight vector loaded once for four
// tokens, each token vector once for R rows. Every element is summed exactly as in
// row_times_tokens' four-token path (one vector accumulator over i, hsum, scalar tail), so the
// blocking never changes a bit.
template <class L, int R>
WKV_AVX2 inline void tile(const unsigned char* w, size_t rb, const float* X, float* Y, size_t rows,
                          size_t cols, size_t t, size_t o) {
  const float* x[4] = {X + t * cols, X + (t + 1) * cols, X + (t + 2) * cols, X + (t + 3) * cols};
  __m256 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < 4; ++k) acc[r][k] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= cols; i += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = L::load(w + r * rb, i);
    for (int k = 0; k < 4; ++k) {
      const __m256 xv = _mm256_loadu_ps(x[k] + i);
      for (int r = 0; r < R; ++r) acc[r][k] = _mm256_fmadd_ps(wv[r], xv, acc[r][k]);
    }
  }
  for (int r = 0; r < R; ++r) {
    float s[4];
    for (int k = 0; k < 4; ++k) s[k] = hsum(acc[r][k]);
    for (size_t j = i; j < cols; ++j) {
      const float wj = L::scalar(w + r * rb, j);
      for (int k = 0; k < 4; ++k) s[k] += wj * x[k][j];
    }
    for (int k = 0; k < 4; ++k) Y[(t + k) * rows + o + r] = s[k];
  }
}

// Tokens per block: a block of X stays in L2 while the rows stream past it.
constexpr size_t kTokBlock = 64;
constexpr size_t kRowBlock = 3;

// ---- prompts from kOuterTokens tokens: outer-product tiles ----
// The dot tiles above keep 8 partial sums per output in a register and reload four token
// vectors for every three weight vectors, and reached about 30 % of the FMA peak
// (bench_kernels 768 x 768 x 64 f32: 24 GFLOP/s at 256 bits on this project's Xeon, where the
// 512-bit outer tiles ran 98). Here the tokens are in the lanes, as in the AVX-512 kernels: X
// is packed once per call into groups of kOuterGroup tokens ([cols][16], zero past T), and
// each step broadcasts one weight of each of R <= 6 rows against the group's two token
// vectors (12 accumulators, 2 token vectors and a broadcast: the 16 registers). Each output is
// one lane: a sequential sum over kOuterKc columns at a time, those partial sums added in
// column order, so neither the row blocking, the token grouping nor a thread split changes a
// bit. Weights other than f32 are widened (or dequantized) a block of rows at a time.
constexpr size_t kOuterGroup = 16;
constexpr size_t kOuterRows = 6;
constexpr size_t kOuterKc = 256;
static_assert(kTokBlock % kOuterGroup == 0 && kOuterRows >= kRowBlock);

// r[i] lane j becomes r[j] lane i.
WKV_AVX2 inline void transpose8(__m256 r[8]) {
  // pairs, then quads, of rows interleaved per 128-bit half ...
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]),
               t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]),
               t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]),
               t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  constexpr int kLo = _MM_SHUFFLE(1, 0, 1, 0), kHi = _MM_SHUFFLE(3, 2, 3, 2);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, kLo), s1 = _mm256_shuffle_ps(t0, t2, kHi),
               s2 = _mm256_shuffle_ps(t1, t3, kLo), s3 = _mm256_shuffle_ps(t1, t3, kHi),
               s4 = _mm256_shuffle_ps(t4, t6, kLo), s5 = _mm256_shuffle_ps(t4, t6, kHi),
               s6 = _mm256_shuffle_ps(t5, t7, kLo), s7 = _mm256_shuffle_ps(t5, t7, kHi);
  // ... so that s_j holds columns j (low half) and j + 4 (high half) of rows 0-3 or 4-7
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// X [T, cols] as ceil(T / 16) groups of [cols][16] floats, 32-byte aligned, in a buffer of
// the calling thread (valid until its next pack).
WKV_AVX2 const float* pack_groups(const float* X, size_t T, size_t cols) {
  thread_local std::vector<float> buf;
  const size_t groups = (T + kOuterGroup - 1) / kOuterGroup;
  float* xt = grow_aligned(buf, groups * cols * kOuterGroup);
  for (size_t g = 0; g < groups; ++g) {
    float* out = xt + g * cols * kOuterGroup;
    const size_t n = std::min(kOuterGroup, T - g * kOuterGroup);
    for (size_t h = 0; h < kOuterGroup; h += 8) {  // tokens h..h+8 of the group: m of them in X
      const size_t m = n > h ? std::min<size_t>(8, n - h) : 0;
      const float* x = X + (g * kOuterGroup + h) * cols;
      size_t k = 0;
      for (; k + 8 <= cols; k += 8) {
        __m256 r[8];
        for (size_t i = 0; i < 8; ++i)
          r[i] = i < m ? _mm256_loadu_ps(x + i * cols + k) : _mm256_setzero_ps();
        transpose8(r);
        for (size_t i = 0; i < 8; ++i) _mm256_store_ps(out + (k + i) * kOuterGroup + h, r[i]);
      }
      for (; k < cols; ++k)
        for (size_t i = 0; i < 8; ++i)
          out[k * kOuterGroup + h + i] = i < m ? x[i * cols + k] : 0.0f;
    }
  }
  return xt;
}

// sums[r][t] (r < R, t < 8 V) = sum over the columns of w[r] * xt[.][t].
template <int R, int V>
WKV_AVX2 void outer_tile(const float* w, size_t rs, const float* xt, size_t cols, float* sums) {
  for (size_t kb = 0; kb < cols; kb += kOuterKc) {
    const size_t ke = std::min(cols, kb + kOuterKc);
    __m256 acc[R][V];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
    for (size_t k = kb; k < ke; ++k) {
      __m256 x[V];
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) x[v] = _mm256_load_ps(xt + k * kOuterGroup + 8 * v);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const __m256 b = _mm256_broadcast_ss(w + r * rs + k);
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(b, x[v], acc[r][v]);
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        float* s = sums + r * kOuterGroup + 8 * v;
        _mm256_store_ps(s, kb == 0 ? acc[r][v] : _mm256_add_ps(_mm256_load_ps(s), acc[r][v]));
      }
  }
}

// Y[tb..te, o..o+R) (tb a multiple of 16) from R fp32 rows w (row stride rs floats) and the
// packed groups xt.
template <int R>
WKV_AVX2 void outer_block(const float* w, size_t rs, const float* xt, float* Y, size_t rows,
                          size_t cols, size_t tb, size_t te, size_t o) {
  alignas(32) float sums[R * kOuterGroup];
  for (size_t t0 = tb; t0 < te; t0 += kOuterGroup) {
    const size_t n = std::min(kOuterGroup, te - t0);
    const float* g = xt + t0 * cols;  // group t0 / 16 starts at (t0 / 16) * cols * 16
    if (n > 8)
      outer_tile<R, 2>(w, rs, g, cols, sums);
    else
      outer_tile<R, 1>(w, rs, g, cols, sums);
    for (size_t t = 0; t < n; ++t)
      for (int r = 0; r < R; ++r) Y[(t0 + t) * rows + o + r] = sums[r * kOuterGroup + t];
  }
}

// Row `row` of layout L as cols fp32 values.
template <class L>
WKV_AVX2 inline void widen_row(const unsigned char* row, float* out, size_t cols) {
  size_t i = 0;
  for (; i + 8 <= cols; i += 8) _mm256_storeu_ps(out + i, L::load(row, i));
  for (; i < cols; ++i) out[i] = L::scalar(row, i);
}

// xt: X already packed by pack_groups (rows_packed), or nullptr.
template <class L, class RowsAt>
WKV_AVX2 void rows_outer(RowsAt rows_at, size_t rb, const float* X, float* Y, size_t rows,
                         size_t cols, size_t T, size_t r0, size_t r1, const float* xt) {
  using Block =
      void (*)(const float*, size_t, const float*, float*, size_t, size_t, size_t, size_t, size_t);
  static constexpr Block kBlocks[kOuterRows + 1] = {nullptr,        outer_block<1>, outer_block<2>,
                                                    outer_block<3>, outer_block<4>, outer_block<5>,
                                                    outer_block<6>};
  if (!xt) xt = pack_groups(X, T, cols);
  thread_local std::vector<float> wide;
  if (!std::is_same_v<L, F32> && wide.size() < kOuterRows * cols) wide.resize(kOuterRows * cols);
  for (size_t tb = 0; tb < T; tb += kTokBlock) {
    const size_t te = std::min(T, tb + kTokBlock);
    for (size_t o = r0; o < r1; o += kOuterRows) {
      const size_t n = std::min(kOuterRows, r1 - o);
      const unsigned char* w = rows_at(o, n);
      if constexpr (std::is_same_v<L, F32>) {
        kBlocks[n](reinterpret_cast<const float*>(w), rb / sizeof(float), xt, Y, rows, cols, tb, te,
                   o);
      } else {
        for (size_t r = 0; r < n; ++r) widen_row<L>(w + r * rb, wide.data() + r * cols, cols);
        kBlocks[n](wide.data(), cols, xt, Y, rows, cols, tb, te, o);
      }
    }
  }
}

// T > 1 for rows [r0, r1): rows_at(o, n) returns the bytes of rows o..o+n (n <= kOuterRows,
// row stride rb) in layout L (the weights themselves, or a dequantized copy). xt: X packed
// (T >= kOuterTokens only), or nullptr.
template <class L, class RowsAt>
WKV_AVX2 inline void rows_blocked(RowsAt rows_at, size_t rb, const float* X, float* Y, size_t rows,
                                  size_t cols, size_t T, size_t r0, size_t r1,
                                  const float* xt = nullptr) {
  if (T >= kOuterTokens) return rows_outer<L>(rows_at, rb, X, Y, rows, cols, T, r0, r1, xt);
  const size_t T4 = T / 4 * 4;
  for (size_t tb = 0; tb < T4; tb += kTokBlock) {
    const size_t te = std::min(T4, tb + kTokBlock);
    size_t o = r0;
    for (; o + kRowBlock <= r1; o += kRowBlock) {
      const unsigned char* w = rows_at(o, kRowBlock);
      for (size_t t = tb; t < te; t += 4) tile<L, kRowBlock>(w, rb, X, Y, rows, cols, t, o);
    }
    for (; o < r1; ++o) {
      const unsigned char* w = rows_at(o, 1);
      for (size_t t = tb; t < te; t += 4) tile<L, 1>(w, rb, X, Y, rows, cols, t, o);
    }
  }
  if (T4 == T) return;
  for (size_t o = r0; o < r1; ++o)
    row_times_tokens<L>(rows_at(o, 1), X + T4 * cols, Y + T4 * rows, rows, cols, T - T4, o);
}

// One token, rows [r0, r1). A single core reads DRAM faster with several far-apart streams in
// flight than with one: the rows are split into kStreams quarters and a row of each quarter is
// dotted in lock-step (bench_kernels, 65536 x 768 from DRAM on this machine's core: f32
// 9.0 -> ~12 GB/s, bf16 8.8 -> ~11). Software prefetching, which helped the single stream,
// slowed the four. Each row's sum is computed alone (two accumulators over 16-column steps,
// hsum, scalar tail), so neither the grouping nor a thread split changes a bit. For bf16, x is
// reordered per 16 columns to match load16's even/odd halves.
constexpr size_t kStreams = 4;

template <class L, size_t S>
WKV_AVX2 inline void dot_rows(const unsigned char* const* w, const float* xs, const float* x,
                              size_t cols, float* out) {
  __m256 a[S], b[S];
  for (size_t s = 0; s < S; ++s) a[s] = b[s] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= cols; i += 16) {
    const __m256 xa = _mm256_loadu_ps(xs + i), xb = _mm256_loadu_ps(xs + i + 8);
    for (size_t s = 0; s < S; ++s) {
      __m256 wa, wb;
      L::load16(w[s], i, wa, wb);
      a[s] = _mm256_fmadd_ps(wa, xa, a[s]);
      b[s] = _mm256_fmadd_ps(wb, xb, b[s]);
    }
  }
  for (size_t s = 0; s < S; ++s) {
    float v = hsum(_mm256_add_ps(a[s], b[s]));
    for (size_t j = i; j < cols; ++j) v += L::scalar(w[s], j) * x[j];
    out[s] = v;
  }
}

// Rows [r0, r1) of row stride rb at base, one token: dot.template operator()<S>(w, out) dots
// the S rows w[0..S) into out[0..S), a row of each quarter of the range at a time, then the
// remainder one by one.
template <class DotS>
WKV_AVX2 inline void lockstep_rows(const unsigned char* base, size_t rb, float* Y, size_t r0,
                                   size_t r1, DotS&& dot) {
  const size_t q = (r1 - r0) / kStreams;
  for (size_t j = 0; j < q; ++j) {
    const unsigned char* w[kStreams];
    float out[kStreams];
    for (size_t s = 0; s < kStreams; ++s) w[s] = base + (r0 + s * q + j) * rb;
    dot.template operator()<kStreams>(w, out);
    for (size_t s = 0; s < kStreams; ++s) Y[r0 + s * q + j] = out[s];
  }
  for (size_t o = r0 + kStreams * q; o < r1; ++o) {
    const unsigned char* w = base + o * rb;
    dot.template operator()<1>(&w, Y + o);
  }
}

template <class L>
WKV_AVX2 void rows_one_token(const unsigned char* base, size_t rb, const float* x, float* Y,
                             size_t cols, size_t r0, size_t r1) {
  const float* xs = x;
  if constexpr (L::kEvenOdd) {
    thread_local std::vector<float> buf;
    if (buf.size() < cols) buf.resize(cols);
    for (size_t c = 0; c + 16 <= cols; c += 16)
      for (size_t j = 0; j < 8; ++j) {
        buf[c + j] = x[c + 2 * j];
        buf[c + 8 + j] = x[c + 2 * j + 1];
      }
    xs = buf.data();
  }
  lockstep_rows(base, rb, Y, r0, r1, [&]<size_t S>(const unsigned char* const* w, float* out) {
    dot_rows<L, S>(w, xs, x, cols, out);
  });
}

template <class L>
WKV_AVX2 void rows_plain(const void* W, const float* X, float* Y, size_t rows, size_t cols,
                         size_t T, size_t r0, size_t r1, const float* xt = nullptr) {
  const size_t rb = cols * L::kBytes;
  const unsigned char* base = static_cast<const unsigned char*>(W);
  if (T == 1) return rows_one_token<L>(base, rb, X, Y, cols, r0, r1);
  rows_blocked<L>([&](size_t o, size_t) { return base + o * rb; }, rb, X, Y, rows, cols, T, r0, r1,
                  xt);
}

// ---- quantized weight rows ----

// 32 bytes, byte j = 0xFF where bit j of `bits` is set.
WKV_AVX2 inline __m256i bits_to_bytes(uint32_t bits) {
  const __m256i v = _mm256_set1_epi32(static_cast<int>(bits));
  const __m256i which = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                         2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i mask = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(v, which), mask);
  return _mm256_cmpeq_epi8(b, mask);
}

// 32 nibbles -> 32 bytes in element order (low nibbles are elements 0..15, high 16..31).
WKV_AVX2 inline __m256i nibbles(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(raw, m);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m);
  return _mm256_set_m128i(hi, lo);
}

// fp16 scale -> fp32 with F16C (inline; the library's f16_to_f32 is an out-of-line call).
WKV_AVX2 inline float half(const unsigned char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Each block type: bytes per block; whether it has a min m (x = d * q + m) or an offset kOff
// (x = d * (u - kOff) with u >= 0 stored); levels() giving the 32 int8 levels q of a block
// (for dequantization); and pair(), the one-token integer dot: for the blocks of two rows a and
// b, 8 int32 lanes whose lanes 0-3 sum to sum_j u_a[j] * qx[j] and lanes 4-7 to the same for b
// (u: the stored level, unsigned for the 4/5-bit types, so maddubs takes it directly and the
// offset is taken off once per block as kOff * sum(qx)). X holds qx as [0..15 | 0..15] (xl) and
// [16..31 | 16..31] (xh). q8_0 (signed levels, memory-bound) has row() instead: one block.
struct XBlock {
  __m256i xl, xh;
};

// Low and high nibbles of 16 bytes of row a and 16 of row b: [a 0..15 | b 0..15] and
// [a 16..31 | b 16..31] in element order.
WKV_AVX2 inline void nibble_pair(const uint8_t* a, const uint8_t* b, __m256i& lo, __m256i& hi) {
  const __m256i raw = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  const __m256i m = _mm256_set1_epi8(0x0f);
  lo = _mm256_and_si256(raw, m);
  hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m);
}

// sum of u * qx for unsigned levels split as above (|u| <= 31: each int16 pair sum <= 7874, two
// of them <= 15748, no saturation).
WKV_AVX2 inline __m256i dot_pair(__m256i lo, __m256i hi, const XBlock& x) {
  const __m256i p =
      _mm256_add_epi16(_mm256_maddubs_epi16(lo, x.xl), _mm256_maddubs_epi16(hi, x.xh));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// `bit` in byte k where the bit selected by mask byte k of byte src[k] of v is set.
WKV_AVX2 inline __m256i spread_bits(__m256i v, __m256i src, __m256i mask, __m256i bit) {
  const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(v, src), mask);
  return _mm256_and_si256(_mm256_cmpeq_epi8(b, mask), bit);
}

// The fifth bits of rows a and b (qh: 32 bits per block, bit j for element j), as 0x10 bytes
// in the [a 0..15 | b 0..15] and [a 16..31 | b 16..31] orders.
WKV_AVX2 inline void high_bits_pair(const uint8_t* qa, const uint8_t* qb, __m256i& lo,
                                    __m256i& hi) {
  uint32_t ha, hb;
  std::memcpy(&ha, qa, 4);
  std::memcpy(&hb, qb, 4);
  // both words in every 64-bit lane; byte k of the result takes the byte of qh holding its bit
  const __m256i v = _mm256_set1_epi64x(static_cast<long long>(ha | uint64_t{hb} << 32));
  const __m256i src_lo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 4,
                                          4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5);
  const __m256i src_hi = _mm256_add_epi8(src_lo, _mm256_set1_epi8(2));
  const __m256i mask = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  const __m256i bit = _mm256_set1_epi8(0x10);

  lo = _mm256_or_si256(lo, spread_bits(v, src_lo, mask, bit));
  hi = _mm256_or_si256(hi, spread_bits(v, src_hi, mask, bit));
}

struct Q8_0 {
  static constexpr size_t kBytes = sizeof(quant::BlockQ8_0);
  static constexpr bool kMin = false;
  WKV_AVX2 static __m256i levels(const unsigned char* b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
  }
  // One block: |q| times sign-adjusted qx (|q| <= 128, |qx| <= 127: pairs <= 32512), 8 int32.
  WKV_AVX2 static __m256i row(const unsigned char* w, const int8_t* qx) {
    const __m256i q = levels(w);
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q)),
                             _mm256_set1_epi16(1));
  }
};
struct Q4_0 {
  static constexpr size_t kBytes = sizeof(quant::BlockQ4_0);
  static constexpr bool kMin = false;
  static constexpr int kOff = 8;
  WKV_AVX2 static __m256i levels(const unsigned char* b) {
    return _mm256_sub_epi8(nibbles(b + 2), _mm256_set1_epi8(8));
  }
  WKV_AVX2 static __m256i pair(const unsigned char* a, const unsigned char* b, const XBlock& x) {
    __m256i lo, hi;
    nibble_pair(a + 2, b + 2, lo, hi);
    return dot_pair(lo, hi, x);
  }
};
struct Q4_1 {
  static constexpr size_t kBytes = sizeof(quant::BlockQ4_1);
  static constexpr bool kMin = true;
  static constexpr int kOff = 0;
  WKV_AVX2 static __m256i levels(const unsigned char* b) { return nibbles(b + 4); }
  WKV_AVX2 static __m256i pair(const unsigned char* a, const unsigned char* b, const XBlock& x) {
    __m256i lo, hi;
    nibble_pair(a + 4, b + 4, lo, hi);
    return dot_pair(lo, hi, x);
  }
};
struct Q5_0 {
  static constexpr size_t kBytes = sizeof(quant::BlockQ5_0);
  static constexpr bool kMin = false;
  static constexpr int kOff = 16;
  WKV_AVX2 static __m256i levels(const unsigned char* b) {
    uint32_t qh;
    std::memcpy(&qh, b + 2, 4);
    const __m256i hi = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(b + 6), hi), _mm256_set1_epi8(16));
  }
  WKV_AVX2 static __m256i pair(const unsigned char* a, const unsigned char* b, const XBlock& x) {
    __m256i lo, hi;
    nibble_pair(a + 6, b + 6, lo, hi);
    high_bits_pair(a + 2, b + 2, lo, hi);
    return dot_pair(lo, hi, x);
  }
};
struct Q5_1 {
  static constexpr size_t kBytes = sizeof(quant::BlockQ5_1);
  static constexpr bool kMin = true;
  static constexpr int kOff = 0;
  WKV_AVX2 static __m256i levels(const unsigned char* b) {
    uint32_t qh;
    std::memcpy(&qh, b + 4, 4);
    const __m256i hi = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles(b + 8), hi);
  }
  WKV_AVX2 static __m256i pair(const unsigned char* a, const unsigned char* b, const XBlock& x) {
    __m256i lo, hi;
    nibble_pair(a + 8, b + 8, lo, hi);
    high_bits_pair(a + 4, b + 4, lo, hi);
    return dot_pair(lo, hi, x);
  }
};

// The four fp32 vectors of a block's levels (elements 0-7, 8-15, 16-23, 24-31).
WKV_AVX2 inline void levels_ps(__m256i q, __m256* f) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  f[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
  f[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
  f[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
  f[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

// One row dequantized to fp32: x = d * q (+ m), as quant::dequantize_row (d * q is exact, so
// the fused d * q + m rounds the same way).
template <class Q>
WKV_AVX2 inline void dequant_row(const unsigned char* w, float* out, size_t nb) {
  for (size_t b = 0; b < nb; ++b, w += Q::kBytes, out += 32) {
    __m256 f[4];
    levels_ps(Q::levels(w), f);
    const __m256 d = _mm256_set1_ps(half(w));
    const __m256 m = Q::kMin ? _mm256_set1_ps(half(w + 2)) : _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) _mm256_storeu_ps(out + 8 * k, _mm256_fmadd_ps(d, f[k], m));
  }
}

// x quantized to q8 per 32-value block (as ggml does for its quantized dot products):
// qx = round(x / dx) with dx = amax / 127, plus dx x the sum of each block's qx (for the m term
// of the _1 types: the quantized sum, not the exact one, so that its rounding errors cancel
// those of the levels; with the exact sum, generation from rwkv.cpp's Q5_1 files missed the
// official logits by 1.5-5x more).
struct QuantX {
  std::vector<int8_t> q;
  std::vector<float> d, sum;
  // Only for the two-blocks-per-vector kernels (kPairs): qx of blocks b, b + 1 (b even) as
  // [lo16 b | lo16 b+1 | hi16 b | hi16 b+1], and per block the 4 lane sums of qx that a madd
  // lane covers (lane j: elements 4j..4j+3 and 16+4j..16+4j+3).
  std::vector<int8_t> qp;
  std::vector<int32_t> isum4;
};

template <bool kPairs>
WKV_AVX2 inline void quantize_x(const float* x, size_t nb, QuantX& out) {
  if (out.q.size() < nb * 32) {
    out.q.resize(nb * 32);
    out.d.resize(nb);
    out.sum.resize(nb);
  }
  if (kPairs && out.isum4.size() < nb * 4) {
    out.qp.resize((nb + 1) / 2 * 64);
    out.isum4.resize(nb * 4);
  }
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t b = 0; b < nb; ++b, x += 32) {
    __m256 v[4] = {_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8), _mm256_loadu_ps(x + 16),
                   _mm256_loadu_ps(x + 24)};
    __m256 amax =
        _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                      _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float am = _mm_cvtss_f32(m4);
    const float d = am / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    out.d[b] = d;
    __m256i i[4];
    for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], id));
    const __m256i p01 = _mm256_packs_epi32(i[0], i[1]), p23 = _mm256_packs_epi32(i[2], i[3]);
    const __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q.data() + b * 32), q);
    out.sum[b] = d * static_cast<float>(level_sum(q));
    if constexpr (!kPairs) continue;
    // pair layout: block b's low 16 at byte 0 (b even) or 16 (b odd) of its pair, high 16 at 32/48
    int8_t* pp = out.qp.data() + (b & ~size_t{1}) * 32 + (b & 1) * 16;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(pp), _mm256_castsi256_si128(q));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(pp + 32), _mm256_extracti128_si256(q, 1));
    const __m256i l4 =
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out.isum4.data() + 4 * b),
                     _mm_add_epi32(_mm256_castsi256_si128(l4), _mm256_extracti128_si256(l4, 1)));
  }
}

// One row of a 4/5-bit type times the q8-quantized token (q8_0 rows: rows_dot_q8_0).
//   Compute-bound here: two blocks per vector (Q::pair on blocks b and b + 1: the
//     low nibbles of both in one register, the high in another), so each instruction serves
//     64 weights; 8 int32 lanes (4 per block), the offset kOff * sum(qx) taken off per lane in
//     integers, converted once and scaled by [d_b d_x,b x4 | d_b+1 d_x,b+1 x4].
// A row is summed by the same code wherever a thread's range starts, so a thread split never
// changes a bit.
template <class Q>
WKV_AVX2 inline float row_dot_q8(const unsigned char* w, const QuantX& xq, size_t nb) {
  static_assert(!std::is_same_v<Q, Q8_0>, "q8_0 rows go through rows_dot_q8_0");
  __m256 acc = _mm256_setzero_ps();
  static_assert((Q::kOff & (Q::kOff - 1)) == 0, "the offset is applied as a shift");
  constexpr int kShift = Q::kOff ? std::countr_zero(static_cast<unsigned>(Q::kOff)) : 0;
  float accm = 0.0f;
  size_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * Q::kBytes) {
    const int8_t* xp = xq.qp.data() + b * 32;
    const XBlock x{_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp)),
                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + 32))};
    __m256i i = Q::pair(w, w + Q::kBytes, x);
    if constexpr (Q::kOff != 0)
      i = _mm256_sub_epi32(
          i, _mm256_slli_epi32(
                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.isum4.data() + b * 4)),
                 kShift));
    // the two fp16 scales (each with the next 2 bytes) times d_x of their blocks, then
    // spread to [d_b d_x,b x4 | d_b+1 d_x,b+1 x4]
    int32_t da, db;
    std::memcpy(&da, w, 4);
    std::memcpy(&db, w + Q::kBytes, 4);
    const __m128 dw = _mm_cvtph_ps(_mm_insert_epi32(_mm_cvtsi32_si128(da), db, 1));
    const __m128 dx2 = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(xq.d.data() + b)));
    const __m128 s2 = _mm_mul_ps(dw, _mm_unpacklo_ps(dx2, dx2));
    const __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s2),
                                              _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2));
    acc = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(i), acc);
    if constexpr (Q::kMin) {
      accm += half(w + 2) * xq.sum[b];
      accm += half(w + Q::kBytes + 2) * xq.sum[b + 1];
    }
  }
  __m128 acc4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  if (b < nb) {  // an odd last block: the same block in both halves, lanes 0-3 kept
    const int8_t* q = xq.q.data() + b * 32;
    const XBlock x{
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q))),
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16)))};
    __m128i i = _mm256_castsi256_si128(Q::pair(w, w, x));
    if constexpr (Q::kOff != 0)
      i = _mm_sub_epi32(
          i,
          _mm_slli_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xq.isum4.data() + b * 4)),
                         kShift));
    acc4 = _mm_fmadd_ps(_mm_set1_ps(half(w) * xq.d[b]), _mm_cvtepi32_ps(i), acc4);
    if constexpr (Q::kMin) accm += half(w + 2) * xq.sum[b];
  }
  acc4 = _mm_add_ps(acc4, _mm_movehl_ps(acc4, acc4));
  acc4 = _mm_add_ss(acc4, _mm_shuffle_ps(acc4, acc4, 1));
  return _mm_cvtss_f32(acc4) + accm;
}

float* row_buffer(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Rows of either block family: at T = 1 x is quantized once per call (the same bits in every
// thread, so results do not depend on the split) and each row is dotted with it in integers;
// for T > 1 a few rows at a time are dequantized into a per-thread fp32 buffer (grown once,
// then reused), which serves every token of a token block.
// dot_rows, where not nullptr, dots S rows (template argument) in lock-step for T = 1. Only
// q8_0 has one: it is memory-bound, and lock-step took it from 10.4-10.7 to 13.8 GB/s
// (bench_kernels, 65536 x 768). The 4/5-bit and k-quant dots are compute-bound here; the
// same change to the k-quants measured no gain (q4_k 7.4-7.7 -> 6.9-8.0 GB/s, q6_k 8.2-8.9
// -> 6.8-7.1), so they keep one row at a time with software prefetch.
template <class XQ, class Quantize, class Dot, class Dequant, class DotRows = std::nullptr_t>
WKV_AVX2 inline void rows_quantized(const void* W, size_t rb, const float* X, float* Y, size_t rows,
                                    size_t cols, size_t T, size_t r0, size_t r1, const float* xt,
                                    Quantize quantize, Dot dot, Dequant dequant,
                                    DotRows dot_rows = nullptr) {
  const unsigned char* base = static_cast<const unsigned char*>(W);
  if (T == 1) {
    thread_local XQ xq;
    quantize(X, xq);
    if constexpr (!std::is_same_v<DotRows, std::nullptr_t>) {
      // Lock-step over far-apart rows, as rows_one_token (no software prefetch there).
      lockstep_rows(base, rb, Y, r0, r1, [&]<size_t S>(const unsigned char* const* w, float* out) {
        dot_rows.template operator()<S>(w, xq, out);
      });
    } else {
      RowPrefetch pf{base + r0 * rb, base + r1 * rb};
      for (size_t o = r0; o < r1; ++o) {
        pf.upto(base + (o + 1) * rb);
        Y[o] = dot(base + o * rb, xq);
      }
    }
    return;
  }
  float* buf = row_buffer(kOuterRows * cols);
  rows_blocked<F32>(
      [&](size_t o, size_t n) {
        for (size_t r = 0; r < n; ++r) dequant(base + (o + r) * rb, buf + r * cols);
        return reinterpret_cast<const unsigned char*>(buf);
      },
      cols * 4, X, Y, rows, cols, T, r0, r1, xt);
}

// q8_0 rows w[0..S) times the quantized token, in lock-step (more DRAM streams in flight),
// each row summed alone: per block |q| times sign-adjusted qx, pairwise to int16 then int32,
// scaled by d_w * d_x into 8 fp32 lanes (memory-bound).
template <size_t S>
WKV_AVX2 inline void rows_dot_q8_0(const unsigned char* const* w, const QuantX& xq, size_t nb,
                                   float* out) {
  __m256 acc[S];
  for (size_t s = 0; s < S; ++s) acc[s] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const int8_t* qx = xq.q.data() + b * 32;
    for (size_t s = 0; s < S; ++s) {
      const unsigned char* wb = w[s] + b * Q8_0::kBytes;
      const __m256 f = _mm256_cvtepi32_ps(Q8_0::row(wb, qx));
      acc[s] = _mm256_fmadd_ps(_mm256_set1_ps(half(wb) * xq.d[b]), f, acc[s]);
    }
  }
  for (size_t s = 0; s < S; ++s) out[s] = hsum(acc[s]);
}

template <class Q>
WKV_AVX2 void rows_quant(const void* W, const float* X, float* Y, size_t rows, size_t cols,
                         size_t T, size_t r0, size_t r1, const float* xt = nullptr) {
  const size_t nb = cols / 32;
  if constexpr (std::is_same_v<Q, Q8_0>) {
    rows_quantized<QuantX>(
        W, nb * Q::kBytes, X, Y, rows, cols, T, r0, r1, xt,
        [nb](const float* x, QuantX& q) { quantize_x<false>(x, nb, q); }, nullptr,
        [nb](const unsigned char* w, float* out) { dequant_row<Q>(w, out, nb); },
        [nb]<size_t S>(const unsigned char* const* w, const QuantX& q, float* out) {
          rows_dot_q8_0<S>(w, q, nb, out);
        });
  } else {
    rows_quantized<QuantX>(
        W, nb * Q::kBytes, X, Y, rows, cols, T, r0, r1, xt,
        [nb](const float* x, QuantX& q) { quantize_x<true>(x, nb, q); },
        [nb](const unsigned char* w, const QuantX& q) { return row_dot_q8<Q>(w, q, nb); },
        [nb](const unsigned char* w, float* out) { dequant_row<Q>(w, out, nb); });
  }
}
// ---- k-quant weight rows ----
// Each 256-value super-block is unpacked into 8 groups of 32 unsigned levels u (0..63), an
// integer scale per 16 values and either an integer min per 16 (q2_k, q4_k, q5_k:
// x = d * sc * u - dmin * m) or a fixed offset (q3_k: 4, q6_k: 32; x = d * sc * (u - off)).
//   T = 1: x is quantized to int8 per 256 values (one scale, plus the sum of each 16), as
//     ggml's Q8_K; the scaled integer dots of a super-block are summed in int32 and converted
//     to float once per super-block, the min/offset term from the sums of 16. Each type has
//     its own dot (row_dot_q23k, row_dot_q45k, row_dot_q6k) that decodes the scales in
//     registers and unpacks levels as it uses them: the generic unpack into a KBlock (kept
//     for T > 1) ran them 1.5-2.4x slower. Error vs the reference: at most
//     |w| * amax(x super-block) / 254 per element.
//   T > 1: rows are dequantized (bit-identical to quant::dequantize_row: the same products in
//     the same order) into the fp32 tile kernel, as for the 32-blocks.
struct KBlock {
  __m256i u[8];
  int16_t sc[16], m[16];
  float d, dmin;
};

// 32 bytes of `p` shifted right by `shift` bits, masked to `mask`.
WKV_AVX2 inline __m256i bits_of(const uint8_t* p, int shift, int mask) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm256_and_si256(_mm256_srli_epi16(v, shift), _mm256_set1_epi8(static_cast<char>(mask)));
}
// `val` where bit `bit` of each of the 32 bytes at p is set, else 0.
WKV_AVX2 inline __m256i bit_as(const uint8_t* p, int bit, char val) {
  const __m256i m = _mm256_set1_epi8(static_cast<char>(1 << bit));
  const __m256i v = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), m);
  return _mm256_and_si256(_mm256_cmpeq_epi8(v, m), _mm256_set1_epi8(val));
}

struct Q2K {
  static constexpr size_t kBytes = sizeof(quant::BlockQ2_K);
  static constexpr bool kMin = true;
  static constexpr int kOff = 0;
  WKV_AVX2 static void unpack(const unsigned char* p, KBlock& g) {
    quant::BlockQ2_K b;
    std::memcpy(&b, p, sizeof b);
    g.d = _cvtsh_ss(b.d);
    g.dmin = _cvtsh_ss(b.dmin);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) g.u[4 * h + k] = bits_of(b.qs + 32 * h, 2 * k, 3);
    for (int j = 0; j < 16; ++j) {
      g.sc[j] = static_cast<int16_t>(b.scales[j] & 15);
      g.m[j] = static_cast<int16_t>(b.scales[j] >> 4);
    }
  }
};
struct Q3K {
  static constexpr size_t kBytes = sizeof(quant::BlockQ3_K);
  static constexpr bool kMin = false;
  static constexpr int kOff = 4;
  WKV_AVX2 static void unpack(const unsigned char* p, KBlock& g) {
    quant::BlockQ3_K b;
    std::memcpy(&b, p, sizeof b);
    g.d = _cvtsh_ss(b.d);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)  // level - 4 where the high bit is clear: (level | 4*hbit) - 4
        g.u[4 * h + k] =
            _mm256_or_si256(bits_of(b.qs + 32 * h, 2 * k, 3), bit_as(b.hmask, 4 * h + k, 4));
    int8_t sc[16];
    quant::scales_q3_k(b.scales, sc);
    for (int j = 0; j < 16; ++j) g.sc[j] = sc[j];
  }
};
template <bool k5>
struct Q45K {
  static constexpr size_t kBytes = k5 ? sizeof(quant::BlockQ5_K) : sizeof(quant::BlockQ4_K);
  static constexpr bool kMin = true;
  static constexpr int kOff = 0;
  WKV_AVX2 static void unpack(const unsigned char* p, KBlock& g) {
    // Both layouts start d, dmin, scales[12]; q5_k then has qh[32] before qs.
    uint16_t d16, dm16;
    std::memcpy(&d16, p, 2);
    std::memcpy(&dm16, p + 2, 2);
    g.d = _cvtsh_ss(d16);
    g.dmin = _cvtsh_ss(dm16);
    const uint8_t* scales = p + 4;
    const uint8_t* qh = p + 16;
    const uint8_t* qs = p + (k5 ? 48 : 16);
    for (int j = 0; j < 8; ++j) {
      __m256i u = bits_of(qs + 32 * (j / 2), 4 * (j % 2), 15);
      if constexpr (k5) u = _mm256_or_si256(u, bit_as(qh, j, 16));
      g.u[j] = u;
      uint8_t sc, mn;
      quant::scale_min_k4(scales, j, &sc, &mn);
      g.sc[2 * j] = g.sc[2 * j + 1] = sc;
      g.m[2 * j] = g.m[2 * j + 1] = mn;
    }
  }
};
struct Q6K {
  static constexpr size_t kBytes = sizeof(quant::BlockQ6_K);
  static constexpr bool kMin = false;
  static constexpr int kOff = 32;
  WKV_AVX2 static void unpack(const unsigned char* p, KBlock& g) {
    quant::BlockQ6_K b;
    std::memcpy(&b, p, sizeof b);
    g.d = _cvtsh_ss(b.d);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k) {
        const __m256i lo = bits_of(b.ql + 64 * h + 32 * (k % 2), 4 * (k / 2), 15);
        const __m256i hi = _mm256_slli_epi16(bits_of(b.qh + 32 * h, 2 * k, 3), 4);
        g.u[4 * h + k] = _mm256_or_si256(lo, hi);
      }
    for (int j = 0; j < 16; ++j) g.sc[j] = b.scales[j];
  }
};

template <class K>
WKV_AVX2 inline void dequant_row_k(const unsigned char* w, float* out, size_t nsb) {
  KBlock g;
  const __m256i off = _mm256_set1_epi8(static_cast<char>(K::kOff));
  for (size_t b = 0; b < nsb; ++b, w += K::kBytes, out += 256) {
    K::unpack(w, g);
    for (int j = 0; j < 8; ++j) {
      __m256 f[4];
      levels_ps(_mm256_sub_epi8(g.u[j], off), f);
      for (int k = 0; k < 4; ++k) {
        const int h = 2 * j + k / 2;
        const __m256 s = _mm256_set1_ps(g.d * static_cast<float>(g.sc[h]));
        const __m256 m = _mm256_set1_ps(K::kMin ? g.dmin * static_cast<float>(g.m[h]) : 0.0f);
        _mm256_storeu_ps(out + 32 * j + 8 * k, _mm256_fmsub_ps(f[k], s, m));
      }
    }
  }
}

// x quantized to int8 per 256 values: q = round(x / d), d = amax / 127, and the integer sum
// of each 16 levels.
struct QuantXK {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int16_t> bsum;
};

WKV_AVX2 inline void quantize_xk(const float* x, size_t nsb, QuantXK& out) {
  if (out.q.size() < nsb * 256) {
    out.q.resize(nsb * 256);
    out.d.resize(nsb);
    out.bsum.resize(nsb * 16);
  }
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t b = 0; b < nsb; ++b, x += 256) {
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 32; ++k)
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float d = _mm_cvtss_f32(m4) / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    out.d[b] = d;
    int8_t* q = out.q.data() + b * 256;
    for (int g = 0; g < 8; ++g) {
      __m256i i[4];
      for (int k = 0; k < 4; ++k)
        i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * k), id));
      const __m256i p01 = _mm256_packs_epi32(i[0], i[1]), p23 = _mm256_packs_epi32(i[2], i[3]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * g),
                          _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order));
    }
    for (int h = 0; h < 16; ++h) {
      int s = 0;
      for (int e = 0; e < 16; ++e) s += q[16 * h + e];
      out.bsum[16 * b + static_cast<size_t>(h)] = static_cast<int16_t>(s);
    }
  }
}

WKV_AVX2 inline int hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// sumi plus the dot of 32 unsigned levels u with qx[32 g .. 32 g + 32), elements 0-15 scaled by
// int16 element 2g of sc16 and 16-31 by 2g + 1 (a dword broadcast, then an in-lane shuffle).
WKV_AVX2 inline __m256i scaled_dot32(__m256i sumi, __m256i u, const int8_t* qx, __m256i sc16,
                                     int g) {
  const __m256i halves = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2,
                                          3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + 32 * g));
  const __m256i sc =
      _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(g)), halves);
  return _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), sc));
}

// The end of a super-block: acc += d dx * float(sumi); returns the integer min/offset sum,
// sum over the 16-value parts of coef * sum(qx part).
WKV_AVX2 inline int finish_superblock(__m256& acc, float d_dx, __m256i sumi, const QuantXK& xq,
                                      size_t b, __m256i coef) {
  acc = _mm256_fmadd_ps(_mm256_set1_ps(d_dx), _mm256_cvtepi32_ps(sumi), acc);
  const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.bsum.data() + 16 * b));
  return hsum_epi32(_mm256_madd_epi16(bs, coef));
}

// q4_k / q5_k at one token, without the generic unpack: the 8 six-bit scales and mins come
// out of the 12 packed bytes with three 32-bit word operations each (bytes j of the words
// a, b, c = packed[0..3], [4..7], [8..11]: sc[0..3] = a & 63, m[0..3] = b & 63,
// sc[4..7] = (c & 15) | (a >> 6) << 4, m[4..7] = (c >> 4) | (b >> 6) << 4, as
// quant::scale_min_k4), the scale of each 32 is broadcast from a register with one shuffle,
// and the levels are unpacked as they are used. Per super-block: the scaled integer dot in
// int32 and the min term from the 16-sums of qx, each one fma into the same 8 lanes (no
// horizontal sum per super-block: bench_kernels q4_k 2048^2 10.5-10.9 -> 13.4-14.0 GB/s).
template <bool k5>
WKV_AVX2 inline float row_dot_q45k(const unsigned char* w, const QuantXK& xq, size_t nsb) {
  constexpr size_t kBytes = k5 ? sizeof(quant::BlockQ5_K) : sizeof(quant::BlockQ4_K);
  __m256 acc = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  // each of 8 bytes twice
  const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  for (size_t b = 0; b < nsb; ++b, w += kBytes) {
    uint16_t d16, dm16;
    std::memcpy(&d16, w, 2);
    std::memcpy(&dm16, w + 2, 2);
    uint32_t a, bb, c;
    std::memcpy(&a, w + 4, 4);
    std::memcpy(&bb, w + 8, 4);
    std::memcpy(&c, w + 12, 4);
    const uint32_t sc_lo = a & 0x3f3f3f3fu, m_lo = bb & 0x3f3f3f3fu;
    const uint32_t sc_hi = (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4);
    const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0fu) | (((bb >> 6) & 0x03030303u) << 4);
    // 8 scales as int16 in both halves
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(
        _mm_insert_epi32(_mm_cvtsi32_si128(static_cast<int>(sc_lo)), static_cast<int>(sc_hi), 1)));
    const uint8_t* qs = w + (k5 ? 48 : 16);
    const int8_t* qx = xq.q.data() + b * 256;
    __m256i qh;
    if constexpr (k5) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
    __m256i sumi = _mm256_setzero_si256();
    for (int jj = 0; jj < 4; ++jj) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * jj));
      __m256i u0 = _mm256_and_si256(raw, low4);
      __m256i u1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
      if constexpr (k5) {
        const __m256i bit = _mm256_set1_epi8(1);
        u0 = _mm256_or_si256(
            u0, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * jj), bit), 4));
        u1 = _mm256_or_si256(
            u1, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * jj + 1), bit), 4));
      }
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + 64 * jj));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + 64 * jj + 32));
      // scale j = 2 jj, 2 jj + 1: int16 element j is bytes 2j, 2j + 1
      const __m256i s0 =
          _mm256_shuffle_epi8(sc16, _mm256_set1_epi16(static_cast<short>(0x0100 + 0x0404 * jj)));
      const __m256i s1 =
          _mm256_shuffle_epi8(sc16, _mm256_set1_epi16(static_cast<short>(0x0302 + 0x0404 * jj)));
      // |pair sums| <= 2 * 31 * 127, times a scale <= 63, summed in pairs: within int32
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(u0, x0), s0));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(u1, x1), s1));
    }
    const float dx = xq.d[b];
    // mins: each of the 8 applies to two 16-sums of qx
    const __m128i m8 =
        _mm_insert_epi32(_mm_cvtsi32_si128(static_cast<int>(m_lo)), static_cast<int>(m_hi), 1);
    const __m256i m16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(m8, dup));
    // the min term per lane, no horizontal sum per super-block (|lane| <= 2 * 2032 * 63: exact
    // in fp32)
    const __m256i bs =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.bsum.data() + 16 * b));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(d16) * dx), _mm256_cvtepi32_ps(sumi), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(_cvtsh_ss(dm16) * dx),
                           _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, m16)), acc);
  }
  return hsum(acc);
}

// q6_k at one token, without the generic unpack (which copied the 210-byte block): levels
// u = ql | qh << 4 in 0..63 unpacked as used, the signed scale of each 16 taken from one
// register of the 16 scales as int16 (a dword broadcast and an in-lane shuffle per 32), the
// offset 32 applied through the 16-sums of qx.
WKV_AVX2 inline float row_dot_q6k(const unsigned char* w, const QuantXK& xq, size_t nsb) {
  constexpr size_t kBytes = sizeof(quant::BlockQ6_K);
  static_assert(offsetof(quant::BlockQ6_K, ql) == 0 && offsetof(quant::BlockQ6_K, qh) == 128 &&
                offsetof(quant::BlockQ6_K, scales) == 192 && offsetof(quant::BlockQ6_K, d) == 208);
  __m256 acc = _mm256_setzero_ps();
  float corr_acc = 0.0f;
  const __m256i low4 = _mm256_set1_epi8(0x0f), low2 = _mm256_set1_epi8(0x03);
  for (size_t b = 0; b < nsb; ++b, w += kBytes) {
    uint16_t d16;
    std::memcpy(&d16, w + 208, 2);
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
    const int8_t* qx = xq.q.data() + b * 256;
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * h));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * h + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * h));
      for (int k = 0; k < 4; ++k) {
        const __m256i l = k % 2 ? l1 : l0;
        const __m256i lo = _mm256_and_si256(k / 2 ? _mm256_srli_epi16(l, 4) : l, low4);
        const __m256i hi =
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), low2), 4);
        const __m256i u = _mm256_or_si256(lo, hi);
        // |pairs| <= 2 * 63 * 127, times |scale| <= 128, in pairs: within int32
        sumi = scaled_dot32(sumi, u, qx, sc16, 4 * h + k);
      }
    }
    const float dx = xq.d[b];
    const float d = _cvtsh_ss(d16);
    const int corr = finish_superblock(acc, d * dx, sumi, xq, b, sc16);
    corr_acc += d * dx * 32.0f * static_cast<float>(corr);
  }
  return hsum(acc) - corr_acc;
}

// q2_k / q3_k at one token, as row_dot_q6k: two-bit levels (plus q3_k's high bit from hmask)
// unpacked as used, the 16 per-16 scales decoded into one int16 register once per
// super-block (q3_k: the six-bit signed scales with four 32-bit word operations, as
// quant::scales_q3_k; q2_k: the low nibbles, its mins the high nibbles) and broadcast per 32
// with a dword permute and an in-lane shuffle.
template <bool k3>
WKV_AVX2 inline float row_dot_q23k(const unsigned char* w, const QuantXK& xq, size_t nsb) {
  using B = std::conditional_t<k3, quant::BlockQ3_K, quant::BlockQ2_K>;
  constexpr size_t kBytes = sizeof(B);
  __m256 acc = _mm256_setzero_ps();
  float corr_acc = 0.0f;
  const __m256i low2 = _mm256_set1_epi8(0x03);
  for (size_t b = 0; b < nsb; ++b, w += kBytes) {
    uint16_t d16, dm16 = 0;
    std::memcpy(&d16, w + offsetof(B, d), 2);
    __m256i sc16, m16 = _mm256_setzero_si256();
    if constexpr (k3) {
      uint32_t a, bb, c;
      std::memcpy(&a, w + offsetof(B, scales), 4);
      std::memcpy(&bb, w + offsetof(B, scales) + 4, 4);
      std::memcpy(&c, w + offsetof(B, scales) + 8, 4);
      const uint32_t n4 = 0x0f0f0f0fu, n2 = 0x03030303u;
      const __m128i s = _mm_setr_epi32(static_cast<int>((a & n4) | ((c & n2) << 4)),
                                       static_cast<int>((bb & n4) | (((c >> 2) & n2) << 4)),
                                       static_cast<int>(((a >> 4) & n4) | (((c >> 4) & n2) << 4)),
                                       static_cast<int>(((bb >> 4) & n4) | (((c >> 6) & n2) << 4)));
      sc16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(s, _mm_set1_epi8(32)));
    } else {
      std::memcpy(&dm16, w + offsetof(B, dmin), 2);
      const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + offsetof(B, scales)));
      const __m128i n4 = _mm_set1_epi8(0x0f);
      sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(s, n4));
      m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), n4));
    }
    const unsigned char* qs = w + offsetof(B, qs);
    __m256i hm;
    if constexpr (k3)
      hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + offsetof(B, hmask)));
    const int8_t* qx = xq.q.data() + b * 256;
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h));
      for (int k = 0; k < 4; ++k) {
        const int g = 4 * h + k;
        __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), low2);
        if constexpr (k3)
          u = _mm256_or_si256(
              u, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, g), _mm256_set1_epi8(1)),
                                   2));
        // |pairs| <= 2 * 7 * 127, times |scale| <= 32
        sumi = scaled_dot32(sumi, u, qx, sc16, g);
      }
    }
    const float dx = xq.d[b];
    const float d = _cvtsh_ss(d16);
    const int corr = finish_superblock(acc, d * dx, sumi, xq, b, k3 ? sc16 : m16);
    corr_acc += (k3 ? d * dx * 4.0f : _cvtsh_ss(dm16) * dx) * static_cast<float>(corr);
  }
  return hsum(acc) - corr_acc;
}

// K: the block layout (its unpack serves the T > 1 dequantization); Dot: its one-token dot.
template <class K, float (*Dot)(const unsigned char*, const QuantXK&, size_t)>
WKV_AVX2 void rows_kquant(const void* W, const float* X, float* Y, size_t rows, size_t cols,
                          size_t T, size_t r0, size_t r1, const float* xt = nullptr) {
  const size_t nsb = cols / 256;
  rows_quantized<QuantXK>(
      W, nsb * K::kBytes, X, Y, rows, cols, T, r0, r1, xt,
      [nsb](const float* x, QuantXK& q) { quantize_xk(x, nsb, q); },
      [nsb](const unsigned char* w, const QuantXK& q) { return Dot(w, q, nsb); },
      [nsb](const unsigned char* w, float* out) { dequant_row_k<K>(w, out, nsb); });
}
}  // namespace

WKV_AVX2 void matmul_f32(const float* W, const float* X, float* Y, size_t rows, size_t cols,
                         size_t T) {
  rows_plain<F32>(W, X, Y, rows, cols, T, 0, rows);
}
WKV_AVX2 void matmul_bf16(const unsigned short* W, const float* X, float* Y, size_t rows,
                          size_t cols, size_t T) {
  rows_plain<BF16>(W, X, Y, rows, cols, T, 0, rows);
}

namespace {
// The one dtype -> implementation mapping, for the per-dtype entry points and rows_packed.
// xt: X packed by pack_x (T >= kOuterTokens), or nullptr.
WKV_AVX2 void rows_any(DType t, const void* W, const float* X, float* Y, size_t rows, size_t cols,
                       size_t T, size_t r0, size_t r1, const float* xt = nullptr) {
  switch (t) {
    case DType::f32:
      return rows_plain<F32>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::bf16:
      return rows_plain<BF16>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::f16:
      return rows_plain<F16>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q8_0:
      return rows_quant<Q8_0>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q4_0:
      return rows_quant<Q4_0>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q4_1:
      return rows_quant<Q4_1>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q5_0:
      return rows_quant<Q5_0>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q5_1:
      return rows_quant<Q5_1>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q2_k:
      return rows_kquant<Q2K, row_dot_q23k<false>>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q3_k:
      return rows_kquant<Q3K, row_dot_q23k<true>>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q4_k:
      return rows_kquant<Q45K<false>, row_dot_q45k<false>>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q5_k:
      return rows_kquant<Q45K<true>, row_dot_q45k<true>>(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::q6_k:
      return rows_kquant<Q6K, row_dot_q6k>(W, X, Y, rows, cols, T, r0, r1, xt);
    default:
      WKV_ASSERT(false && "avx2: a dtype no avx2 kernel takes");
  }
}
}  // namespace

#define WKV_ROWS(q)                                                                          \
  void rows_##q(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T, \
                size_t r0, size_t r1) {                                                      \
    rows_any(DType::q, W, X, Y, rows, cols, T, r0, r1);                                      \
  }
WKV_ROWS(f32)
WKV_ROWS(bf16)
WKV_ROWS(f16)
WKV_ROWS(q8_0)
WKV_ROWS(q4_0)
WKV_ROWS(q4_1)
WKV_ROWS(q5_0)
WKV_ROWS(q5_1)
WKV_ROWS(q2_k)
WKV_ROWS(q3_k)
WKV_ROWS(q4_k)
WKV_ROWS(q5_k)
WKV_ROWS(q6_k)
#undef WKV_ROWS

WKV_AVX2 const void* pack_x(const float* X, size_t T, size_t cols) {
  return pack_groups(X, T, cols);
}

WKV_AVX2 void rows_packed(DType t, const void* W, const void* xp, float* Y, size_t rows,
                          size_t cols, size_t T, size_t r0, size_t r1) {
  WKV_ASSERT(T >= kOuterTokens);  // X is read only through xp from kOuterTokens tokens
  rows_any(t, W, nullptr, Y, rows, cols, T, r0, r1, static_cast<const float*>(xp));
}

WKV_AVX2 void dequant_row(DType t, const void* row, float* out, size_t cols) {
  const auto* w = static_cast<const unsigned char*>(row);
  switch (t) {
    case DType::q8_0:
      return dequant_row<Q8_0>(w, out, cols / 32);
    case DType::q4_0:
      return dequant_row<Q4_0>(w, out, cols / 32);
    case DType::q4_1:
      return dequant_row<Q4_1>(w, out, cols / 32);
    case DType::q5_0:
      return dequant_row<Q5_0>(w, out, cols / 32);
    case DType::q5_1:
      return dequant_row<Q5_1>(w, out, cols / 32);
    case DType::q2_k:
      return dequant_row_k<Q2K>(w, out, cols / 256);
    case DType::q3_k:
      return dequant_row_k<Q3K>(w, out, cols / 256);
    case DType::q4_k:
      return dequant_row_k<Q45K<false>>(w, out, cols / 256);
    case DType::q5_k:
      return dequant_row_k<Q45K<true>>(w, out, cols / 256);
    case DType::q6_k:
      return dequant_row_k<Q6K>(w, out, cols / 256);
    default:
      WKV_ASSERT(false && "dequant_row: not a quantized dtype");
  }
}

// ---- WKV recurrences, vectorised along the state row ----

WKV_AVX2 void wkv7_step(float* S, const float* r, const float* w, const float* k, const float* v,
                        const float* a, const float* b, float* y, size_t H, size_t N) {
  for (size_t h = 0; h < H; ++h) {
    const size_t o = h * N;
    float* Sh = S + h * N * N;
    const float *rh = r + o, *wh = w + o, *kh = k + o, *ah = a + o, *bh = b + o;
    for (size_t i = 0; i < N; ++i) {
      float* row = Sh + i * N;
      __m256 sav = _mm256_setzero_ps();
      size_t j = 0;
      for (; j + 8 <= N; j += 8)
        sav = _mm256_fmadd_ps(_mm256_loadu_ps(ah + j), _mm256_loadu_ps(row + j), sav);
      float sa = hsum(sav);
      for (; j < N; ++j) sa += ah[j] * row[j];
      const float vi = v[o + i];
      const __m256 vv = _mm256_set1_ps(vi), sv = _mm256_set1_ps(sa);
      __m256 acc = _mm256_setzero_ps();
      j = 0;
      for (; j + 8 <= N; j += 8) {
        __m256 s = _mm256_mul_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(wh + j));
        s = _mm256_fmadd_ps(_mm256_loadu_ps(kh + j), vv, s);
        s = _mm256_fmadd_ps(sv, _mm256_loadu_ps(bh + j), s);
        _mm256_storeu_ps(row + j, s);
        acc = _mm256_fmadd_ps(s, _mm256_loadu_ps(rh + j), acc);
      }
      float yi = hsum(acc);
      for (; j < N; ++j) {
        const float s = row[j] * wh[j] + kh[j] * vi + sa * bh[j];
        row[j] = s;
        yi += s * rh[j];
      }
      y[o + i] = yi;
    }
  }
}

// ---- exp and sigmoid ----
// exp(x) = 2^n e^r, n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts, so r is exact to
// fp32), e^r by Cephes' degree-6 polynomial for expf (|r| <= ln 2 / 2; about 1 ulp there).
// x is clamped to [-87.34, 88.72], so n is within [-126, 128] and 2^n is applied as two normal
// factors; x above 88.72 gives inf, below -87.34 gives 0 (std::exp gives denormals there), NaN
// stays NaN.
WKV_AVX2 inline __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.7228394f), lo = _mm256_set1_ps(-87.3365479f);
  const __m256 xc = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n as 2^h 2^(n-h), h = n >> 1: both factors normal for n in [-126, 128]
  const __m256i ni = _mm256_cvtps_epi32(n), h = _mm256_srai_epi32(ni, 1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, bias), 23));
  const __m256 e2 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), bias), 23));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, e1), e2);
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN in, NaN out
}

// y = f(x) over n floats, 8 at a time; the tail through a zero-padded copy. (Functors, not
// lambdas: a lambda's body does not get the function's target attribute.)
template <class F>
WKV_AVX2 inline void map8(const float* x, float* y, size_t n, F f) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float t[8] = {};
    std::memcpy(t, x + i, (n - i) * sizeof(float));
    _mm256_store_ps(t, f(_mm256_load_ps(t)));
    std::memcpy(y + i, t, (n - i) * sizeof(float));
  }
}
struct Exp8 {
  WKV_AVX2 __m256 operator()(__m256 x) const { return exp8(x); }
};
struct Sigmoid8 {
  WKV_AVX2 __m256 operator()(__m256 x) const {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_xor_ps(x, _mm256_set1_ps(-0.0f)))));
  }
};

WKV_AVX2 void exp_f32(const float* x, float* y, size_t n) { map8(x, y, n, Exp8{}); }
// max_ps(0, x) is x when x is NaN (its second operand), as std::max(x, 0.0f).
struct ReluSq8 {
  WKV_AVX2 __m256 operator()(__m256 x) const {
    const __m256 h = _mm256_max_ps(_mm256_setzero_ps(), x);
    return _mm256_mul_ps(h, h);
  }
};

WKV_AVX2 void sigmoid_f32(const float* x, float* y, size_t n) { map8(x, y, n, Sigmoid8{}); }
WKV_AVX2 void relu_sq_f32(const float* x, float* y, size_t n) { map8(x, y, n, ReluSq8{}); }

// The reference's arithmetic (double sums, then fp32 without fused multiply-adds), the sums in
// two chains of four lanes instead of one sequential chain: a 768-channel norm was ~1.4 us of
// dependent double adds (1.6 % of 12 x 768 generation, 2.7 % of a prompt).
WKV_AVX2 inline double hsum_pd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
WKV_AVX2 void layer_norm(const float* x, const float* w, const float* b, float* y, size_t n,
                         float eps) {
  const size_t n8 = n / 8 * 8;
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (size_t i = 0; i < n8; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  double mean = hsum_pd(_mm256_add_pd(s0, s1));
  for (size_t i = n8; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  const __m256d md = _mm256_set1_pd(mean);
  s0 = _mm256_setzero_pd();
  s1 = _mm256_setzero_pd();
  for (size_t i = 0; i < n8; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), md);
    const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), md);
    s0 = _mm256_add_pd(s0, _mm256_mul_pd(d0, d0));
    s1 = _mm256_add_pd(s1, _mm256_mul_pd(d1, d1));
  }
  double var = hsum_pd(_mm256_add_pd(s0, s1));
  for (size_t i = n8; i < n; ++i) {
    const double d = x[i] - mean;
    var += d * d;
  }
  var /= static_cast<double>(n);
  const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
  const float m = static_cast<float>(mean);
  const __m256 mv = _mm256_set1_ps(m), iv = _mm256_set1_ps(inv);
  for (size_t i = 0; i < n8; i += 8) {
    const __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), iv),
                                   _mm256_loadu_ps(w + i));
    _mm256_storeu_ps(y + i, _mm256_add_ps(t, _mm256_loadu_ps(b + i)));
  }
  for (size_t i = n8; i < n; ++i) y[i] = (x[i] - m) * inv * w[i] + b[i];
}

WKV_AVX2 void wkv5_step(float* S, const float* r, const float* w, const float* u, const float* k,
                        const float* v, float* y, size_t H, size_t N) {
  for (size_t h = 0; h < H; ++h) {
    const size_t o = h * N;
    float* Sh = S + h * N * N;
    float* yh = y + o;
    const float* vh = v + o;
    for (size_t j = 0; j < N; ++j) yh[j] = 0;
    for (size_t i = 0; i < N; ++i) {
      float* row = Sh + i * N;
      const float ri = r[o + i], ki = k[o + i], ui = u[o + i], wi = w[o + i];
      const __m256 rv = _mm256_set1_ps(ri), kv = _mm256_set1_ps(ki), uv = _mm256_set1_ps(ui),
                   wv = _mm256_set1_ps(wi);
      size_t j = 0;
      for (; j + 8 <= N; j += 8) {
        const __m256 kvj = _mm256_mul_ps(kv, _mm256_loadu_ps(vh + j));
        const __m256 s = _mm256_loadu_ps(row + j);
        const __m256 t = _mm256_fmadd_ps(uv, kvj, s);
        _mm256_storeu_ps(yh + j, _mm256_fmadd_ps(rv, t, _mm256_loadu_ps(yh + j)));
        _mm256_storeu_ps(row + j, _mm256_fmadd_ps(wv, s, kvj));
      }
      for (; j < N; ++j) {
        const float kvj = ki * vh[j];
        yh[j] += ri * (ui * kvj + row[j]);
        row[j] = kvj + wi * row[j];
      }
    }
  }
}

}  // namespace wkv::kernels::avx2
