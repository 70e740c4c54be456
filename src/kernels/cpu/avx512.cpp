// AVX-512F kernels, compiled for that target only (function attributes, never -march) and
// chosen at run time.
//
// T > 1 (prompts), fp32 arithmetic: from 16 tokens, outer-product tiles of 6
// rows x 64 tokens with the tokens in the lanes (see outer_tile); below that, tiles of 6 rows
// x 4 tokens with the columns in the lanes (see tile). Either way a thread split never changes
// a bit. fp32 weights are read in place; every other dtype is converted to fp32 (16-bit
// widened, quantized dequantized by the AVX2 code) once per block of rows and product (per
// block of tokens when the product's tokens do not fit in kL2Budget), into a per-thread
// buffer. On this project's AVX-512 Xeon (2 FMA units) the outer-product tiles run the 768 x
// 768 x 128 tokens product at 1.2-1.3x OpenBLAS's sgemm, the 6 x 4 tiles at 0.75-0.8x (both
// measured alternately in one process). T = 1 (generation): q4_0, q4_1, q5_0, q5_1 and the k-quants
// q4_k, q5_k, q6_k have 512-bit one-token dots (they were bound by instructions at 256 bits);
// these and f32, bf16, f16 and q8_0 dot four far-apart rows in lock-step with software prefetch
// (more bytes in flight than the AVX2 ones, see one_token_plain; for the quantized dots also
// four independent chains, see rows_k); each row is still summed alone. q2_k and q3_k go to
// the AVX2 one-token kernels. The avx512vnni level (end of file) is this one with the q8_0 and
// 32-value block dots built with vpdpbusd (avx512_dots.inc), and, when set_prompt_q8 asks
// for it, integer prompts for the 32-level block types (rows_i8); when set_prompt_bf16 asks for
// it on a CPU with AVX512-BF16, bf16 prompts for bf16 weights (rows_bf16_pairs). GCC 12's
// AVX-512 headers initialise their "undefined" vectors from themselves (__Y = __Y), which
// -Wmaybe-uninitialized (or -Wuninitialized, for _mm512_reduce_add_ps) reports inside every inlined
// intrinsic.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "kernels/cpu/avx512.hpp"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/cpu_features.hpp"
#include "core/quant.hpp"
#include "kernels/cpu/avx2.hpp"
#include "kernels/kernels.hpp"

#define WKV_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define WKV_AVX512_VNNI \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

namespace wkv::kernels::avx512 {

namespace {
WKV_AVX512 inline __mmask16 tail_mask(size_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}

// Y[t0 + t][o + r] = sums[r * stride + t] for r < R, t < n (tokens in the lanes of sums, rows
// in the columns of Y). Plain stores: vscatterdps (16 lines a scatter) took a fifth of the
// outer-product tiles' time in 12 x 768 prompts on the AMD EPYC (Zen 5); prompts 1.13x.
template <int R>
WKV_AVX512 inline void scatter_rows(const float* sums, size_t stride, float* Y, size_t rows,
                                    size_t o, size_t t0, size_t n) {
  for (size_t t = 0; t < n; ++t) {
    float* y = Y + (t0 + t) * rows + o;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) y[r] = sums[r * stride + t];
  }
}

struct BF16 {
  WKV_AVX512 static __m512 load(const unsigned char* row, size_t i, __mmask16 m) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, row + 2 * i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};
struct F16 {
  WKV_AVX512 static __m512 load(const unsigned char* row, size_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
  }
};

// The lane sums of a, b, c, d as one vector, by a transposing tree (13 instructions, against
// 4 x 9 for four separate reductions; the shuffles share a port with the FMAs). Every sum is
// the same tree of additions, whichever of the four vectors it comes from.
WKV_AVX512 inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  // per 128-bit lane: (a0+a2, b0+b2, a1+a3, b1+b3) and the same for c, d
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  // per 128-bit lane: the sums of a, b, c, d over that lane
  const __m512 q = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(q),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(q), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// One 16-column step of tile(): acc[r][k] += w[r][i..i+16) * x[k][i..i+16) (masked lanes 0).
template <int R>
WKV_AVX512 __attribute__((always_inline)) inline void tile_step(const float* w, size_t rs,
                                                                const float* const* x, size_t i,
                                                                __mmask16 m, __m512 (&acc)[R][4]) {
  __m512 wv[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) wv[r] = _mm512_maskz_loadu_ps(m, w + r * rs + i);
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const __m512 xv = _mm512_maskz_loadu_ps(m, x[k] + i);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][k] = _mm512_fmadd_ps(wv[r], xv, acc[r][k]);
  }
}

// Y[t..t+nt, o..o+R) for nt <= 4 tokens (a short group repeats its last token and drops the
// copies' results) from fp32 rows w (row stride rs floats): R*4 accumulators, each weight
// vector loaded once for four tokens and each token vector once for R rows; the column tail
// is one masked step. Every output element is one accumulator over the columns in order,
// reduced the same way whatever the row or token blocking (a thread split changes no bit).
template <int R>
WKV_AVX512 inline void tile(const float* w, size_t rs, const float* X, float* Y, size_t rows,
                            size_t cols, size_t t, size_t nt, size_t o) {
  const float* x[4];
  for (size_t k = 0; k < 4; ++k) x[k] = X + (t + std::min(k, nt - 1)) * cols;
  __m512 acc[R][4];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) acc[r][k] = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= cols; i += 16) tile_step<R>(w, rs, x, i, static_cast<__mmask16>(0xFFFF), acc);
  if (i < cols) tile_step<R>(w, rs, x, i, tail_mask(cols - i), acc);
  // Reduced with constant indices only: a variable index into acc (k < nt) makes GCC keep acc
  // in memory and store all of it every step (slower than AVX2).
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    alignas(16) float s[4];
    _mm_store_ps(s, reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
    for (size_t k = 0; k < nt; ++k) Y[(t + k) * rows + o + r] = s[k];
  }
}

constexpr size_t kTokBlock = 64;
// Bytes of X kept in L2 at once: half of this Xeon's 2 MiB (1.5 MiB measured 3-6 % slower).
constexpr size_t kL2Budget = size_t{1} << 20;
// Rows per tile: 6 x 4 accumulators, 6 weight vectors and a token vector fill 31 of the 32
// registers.
constexpr int kRowBlock = 6;

// Tokens [tb, te) times rows o..o+R, R a constant.
template <int R>
WKV_AVX512 inline void tile_block(const float* w, size_t rs, const float* X, float* Y, size_t rows,
                                  size_t cols, size_t tb, size_t te, size_t o) {
  for (size_t t = tb; t < te; t += 4)
    tile<R>(w, rs, X, Y, rows, cols, t, std::min<size_t>(4, te - t), o);
}

// ---- prompts from kOuterTokens tokens: outer-product tiles ----
// The tiles above keep 16 partial sums per output in a register (one per lane) and reload four
// token vectors for every six weight vectors; in registers alone they reach about 60 % of the
// FMA peak on this project's Xeon. The outer-product tile keeps the tokens in the lanes: the
// tokens are packed once per call, transposed into groups of kGroup tokens ([cols][kGroup],
// zero beyond T), and each step broadcasts one weight of each of R rows against V vectors of 16
// tokens (R x V accumulators; one load per 16 tokens, one broadcast per row). Each output is
// one lane: a sequential sum over kKc columns at a time, those partial sums added in column
// order, so neither the row blocking, the token grouping nor a thread split changes a bit.
// Used from kOuterTokens tokens (a property of the product, so a thread split never changes
// which path a row takes). matmul() packs once per product (pack_x, rows_packed); a direct
// call of a row kernel packs for itself.
constexpr size_t kGroup = 64;
constexpr size_t kKc = 256;

// r[i][j] -> r[j][i] for a 16 x 16 block of floats (unpack, 4-lane shuffle, two 128-bit lane
// shuffles: 64 shuffles for 256 values).
WKV_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int h = 0; h < 16; h += 8)
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

// r[i] = column k + i of the nt (<= 16) tokens x[0..nt) (row stride cols), zero beyond nt
// tokens and beyond cols.
WKV_AVX512 inline void load_columns16(const float* x, size_t nt, size_t cols, size_t k,
                                      __m512 (&r)[16]) {
  const __mmask16 m = tail_mask(cols - k);
#pragma GCC unroll 16
  for (size_t j = 0; j < 16; ++j)
    r[j] = j < nt ? _mm512_maskz_loadu_ps(m, x + j * cols + k) : _mm512_setzero_ps();
  transpose16(r);
}

// X [T, cols] as ceil(T / kGroup) groups of [cols][kGroup] floats (tokens beyond T zero), in a
// buffer of the calling thread (valid until its next pack). 16 x 16 blocks transposed in
// registers: a vgatherdps per column took 5 % of a 12 x 768 prompt on the AMD EPYC (Zen 5).
WKV_AVX512 const float* pack_groups(const float* X, size_t T, size_t cols) {
  thread_local std::vector<float> buf;
  const size_t groups = (T + kGroup - 1) / kGroup;
  float* xt = avx2::grow_aligned(buf, groups * cols * kGroup);
  for (size_t g = 0; g < groups; ++g)
    for (size_t v = 0; v < kGroup / 16; ++v) {
      const size_t t0 = g * kGroup + 16 * v;
      float* out = xt + g * cols * kGroup + 16 * v;
      if (t0 >= T) {
        for (size_t k = 0; k < cols; ++k) _mm512_store_ps(out + k * kGroup, _mm512_setzero_ps());
        continue;
      }
      const size_t nt = std::min<size_t>(16, T - t0);
      const float* x = X + t0 * cols;
      for (size_t k = 0; k < cols; k += 16) {
        __m512 r[16];
        load_columns16(x, nt, cols, k, r);
        const size_t nk = std::min<size_t>(16, cols - k);
#pragma GCC unroll 16
        for (size_t i = 0; i < 16; ++i)
          if (i < nk) _mm512_store_ps(out + (k + i) * kGroup, r[i]);
      }
    }
  return xt;
}

// An outer-product tile's R x V accumulators: zeroed, and stored into (first pass) or added to
// sums[r][16 v ..] after each register pass.
template <int R, int V>
WKV_AVX512 inline void zero_tile(__m512 (&acc)[R][V]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
}
template <int R, int V>
WKV_AVX512 inline void add_tile(const __m512 (&acc)[R][V], float* sums, bool first) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      float* s = sums + r * kGroup + 16 * v;
      _mm512_store_ps(s, first ? acc[r][v] : _mm512_add_ps(_mm512_load_ps(s), acc[r][v]));
    }
}

// sums[r][t] (r < R, t < 16 V) = sum over the columns of w[r] * xt[.][t], kKc columns per
// register pass.
template <int R, int V>
WKV_AVX512 void outer_tile(const float* w, size_t rs, const float* xt, size_t cols, float* sums) {
  for (size_t kb = 0; kb < cols; kb += kKc) {
    const size_t ke = std::min(cols, kb + kKc);
    __m512 acc[R][V];
    zero_tile(acc);
    for (size_t k = kb; k < ke; ++k) {
      __m512 x[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) x[v] = _mm512_load_ps(xt + k * kGroup + 16 * v);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512 b = _mm512_set1_ps(w[r * rs + k]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(b, x[v], acc[r][v]);
      }
    }
    add_tile(acc, sums, kb == 0);
  }
}

// The fp32 outer-product tile as outer_groups takes it: weights W, packed tokens X, a group of
// kGroup tokens every kGroup * group_len(cols) elements of X.
struct Fp32Tiles {
  using W = float;
  using X = float;
  static size_t group_len(size_t cols) { return cols; }
  template <int R, int V>
  WKV_AVX512 static void tile(const W* w, size_t rs, const X* g, size_t cols, float* sums) {
    outer_tile<R, V>(w, rs, g, cols, sums);
  }
};

// Y[tb..te, o..o+R) (tb a multiple of kGroup) from R rows w (row stride rs) and the packed
// groups xt, by K's tiles (16 V tokens each, V for the group's count).
template <class K, int R>
WKV_AVX512 void outer_groups(const typename K::W* w, size_t rs, const typename K::X* xt, float* Y,
                             size_t rows, size_t cols, size_t tb, size_t te, size_t o) {
  alignas(64) float sums[R * kGroup];
  for (size_t t0 = tb; t0 < te; t0 += kGroup) {
    const size_t n = std::min(kGroup, te - t0);
    const typename K::X* g = xt + t0 * K::group_len(cols);  // t0 is a multiple of kGroup
    switch ((n + 15) / 16) {
      case 1:
        K::template tile<R, 1>(w, rs, g, cols, sums);
        break;
      case 2:
        K::template tile<R, 2>(w, rs, g, cols, sums);
        break;
      case 3:
        K::template tile<R, 3>(w, rs, g, cols, sums);
        break;
      default:
        K::template tile<R, 4>(w, rs, g, cols, sums);
        break;
    }
    scatter_rows<R>(sums, kGroup, Y, rows, o, t0, n);
  }
}
template <int R>
WKV_AVX512 void outer_block(const float* w, size_t rs, const float* xt, float* Y, size_t rows,
                            size_t cols, size_t tb, size_t te, size_t o) {
  outer_groups<Fp32Tiles, R>(w, rs, xt, Y, rows, cols, tb, te, o);
}

// rows_at(o, n): fp32 rows o..o+n, row stride rs floats. xt: X already packed by pack_groups
// (T >= kOuterTokens), or nullptr.
template <class RowsAt>
WKV_AVX512 inline void rows_blocked(RowsAt rows_at, size_t rs, const float* X, float* Y,
                                    size_t rows, size_t cols, size_t T, size_t r0, size_t r1,
                                    const float* xt = nullptr) {
  // one tile height per count of rows (fewer than kRowBlock only in the last block)
  static_assert(kRowBlock == 6);
  using Block =
      void (*)(const float*, size_t, const float*, float*, size_t, size_t, size_t, size_t, size_t);
  static constexpr Block kTiles[kRowBlock + 1] = {nullptr,       tile_block<1>, tile_block<2>,
                                                  tile_block<3>, tile_block<4>, tile_block<5>,
                                                  tile_block<6>};
  static constexpr Block kOuter[kRowBlock + 1] = {nullptr,        outer_block<1>, outer_block<2>,
                                                  outer_block<3>, outer_block<4>, outer_block<5>,
                                                  outer_block<6>};
  // From kOuterTokens tokens the outer-product tiles on the packed groups, else the dot tiles
  // on X. A block of tokens stays in L2 while the rows stream past it: all T tokens when they
  // fit in kL2Budget (each block of rows is then fetched, or converted, once per product),
  // else kGroup (outer: 768 x 3072 x 128 tokens 1.4x faster than all at once) or kTokBlock
  // at a time.
  const bool outer = T >= kOuterTokens;
  if (outer && !xt) xt = pack_groups(X, T, cols);
  const Block* tiles = outer ? kOuter : kTiles;
  const float* src = outer ? xt : X;
  const size_t tok_step = T * cols * sizeof(float) <= kL2Budget ? T : (outer ? kGroup : kTokBlock);
  for (size_t tb = 0; tb < T; tb += tok_step) {
    const size_t te = std::min(T, tb + tok_step);
    for (size_t o = r0; o < r1; o += kRowBlock) {
      const size_t n = std::min<size_t>(kRowBlock, r1 - o);
      tiles[n](rows_at(o, n), rs, src, Y, rows, cols, tb, te, o);
    }
  }
}

WKV_AVX512 void rows_f32_tiles(const void* W, const float* X, float* Y, size_t rows, size_t cols,
                               size_t T, size_t r0, size_t r1, const float* xt = nullptr) {
  const auto* base = static_cast<const float*>(W);
  rows_blocked([&](size_t o, size_t) { return base + o * cols; }, cols, X, Y, rows, cols, T, r0, r1,
               xt);
}

// Any other dtype: each block of rows converted to fp32 once per token block (into a
// per-thread buffer that stays in L1), then the fp32 tiles. Widening in the tile instead would
// convert each weight once per four tokens, and the conversions share ports with the FMAs.
// Rows [o, min(o + kRowBlock, r1)) of row stride rb bytes, requested while the block before
// them runs its tiles (they are otherwise read cold by the conversion or the first tile).
WKV_AVX512 inline void prefetch_next_block(const unsigned char* base, size_t rb, size_t o,
                                           size_t r1) {
  const size_t e = std::min(r1, o + kRowBlock) * rb;
  for (size_t at = o * rb; at < e; at += 64)
    _mm_prefetch(reinterpret_cast<const char*>(base + at), _MM_HINT_T0);
}

template <class Convert>
WKV_AVX512 void rows_converted(Convert convert, const void* W, size_t rb, const float* X, float* Y,
                               size_t rows, size_t cols, size_t T, size_t r0, size_t r1,
                               const float* xt = nullptr) {
  const auto* base = static_cast<const unsigned char*>(W);
  thread_local std::vector<float> buf;
  if (buf.size() < kRowBlock * cols) buf.resize(kRowBlock * cols);
  float* b = buf.data();
  rows_blocked(
      [&](size_t o, size_t n) {
        for (size_t r = 0; r < n; ++r) convert(base + (o + r) * rb, b + r * cols, cols);
        prefetch_next_block(base, rb, o + n, r1);
        return static_cast<const float*>(b);
      },
      cols, X, Y, rows, cols, T, r0, r1, xt);
}

// (Functors, not lambdas: a lambda's body does not get the function's target attribute.)
template <class L>
struct Widen {
  WKV_AVX512 void operator()(const unsigned char* row, float* out, size_t cols) const {
    for (size_t i = 0; i < cols; i += 16) {
      const __mmask16 m = tail_mask(cols - i);
      _mm512_mask_storeu_ps(out + i, m, L::load(row, i, m));
    }
  }
};
struct Dequant {
  DType t;
  void operator()(const unsigned char* row, float* out, size_t cols) const {
    avx2::dequant_row(t, row, out, cols);
  }
};

// ---- one token, 16/32-bit weight rows (f32, bf16, f16) ----
// Bound by DRAM bandwidth, so the point is bytes in flight, not arithmetic: four far-apart rows
// in lock-step (as the AVX2 kernels; four streams), each stream prefetched kStreamAhead bytes
// ahead in software. On this project's AVX-512 Xeon (65536 x 768 bf16 from DRAM, one core,
// /tmp/probe/bw.cpp interleaved medians) the AVX2 lock-step read 10.6 GB/s, the same without
// prefetch at 512 bits 10.9, with it 12.6-12.8, against 12.3 for the bandwidth probe's plain
// four-stream sum. (On the AMD EPYC where the AVX2 kernels were tuned, software prefetch
// slowed the four streams, so they keep none.) Each row is summed alone (one accumulator,
// 32 columns per step, the tail masked), so neither the grouping nor a thread split changes
// a bit. The distances (kStreamAhead for these rows, kQuantAhead for the quantized dots) were
// 1024 bytes for both, tuned on the Xeon (~11 GB/s a core). On an AMD EPYC with AVX-512 (Zen 5,
// ~40 GB/s a core) that left too few bytes in flight: bench_kernels, 65536 x 768 from DRAM,
// GB/s at 1024 -> 2048 (plain) / 3072 (quantized) bytes ahead: bf16 43.1 -> 47.1, f16 34.9 ->
// 40.4, f32 35.0 -> 37.0, q8_0 33.6 -> 51.4, q4_0 32.5 -> 43.3, q4_k 33.9 -> 38.8, q6_k 38.3 ->
// 50.1 (quantized: flat from 3072 to 6144; plain: bf16 fell to 34.6 at 4096).
constexpr size_t kStreamAhead = 2048;
constexpr size_t kQuantAhead = 3072;
constexpr size_t kStreams = 4;
// A stream's next n bytes from p, kQuantAhead on, requested (the quantized dots prefetch each
// block's lines as they reach it).
template <size_t n>
WKV_AVX512 inline void prefetch_ahead(const unsigned char* p) {
  for (size_t b = 0; b < n; b += 64)
    _mm_prefetch(reinterpret_cast<const char*>(p + kQuantAhead + b), _MM_HINT_T0);
}

// Weights i..i+32 of a row as two fp32 vectors (in the order x is stored in, see kEvenOdd),
// the lanes at and beyond n (< 32) zero.
struct F32Rows {
  static constexpr size_t kBytes = 4;
  static constexpr bool kEvenOdd = false;
  WKV_AVX512 static void load32(const unsigned char* row, size_t i, size_t n, __m512& a,
                                __m512& b) {
    const auto* p = reinterpret_cast<const float*>(row) + i;
    a = _mm512_maskz_loadu_ps(tail_mask(n), p);
    b = _mm512_maskz_loadu_ps(n > 16 ? tail_mask(n - 16) : 0, p + 16);
  }
};
// A bf16 pair is one dword: its even element becomes fp32 by a shift, its odd one by a mask,
// so x is stored per 32 columns as the 16 even then the 16 odd ones.
struct BF16Rows {
  static constexpr size_t kBytes = 2;
  static constexpr bool kEvenOdd = true;
  WKV_AVX512 static void load32(const unsigned char* row, size_t i, size_t n, __m512& a,
                                __m512& b) {
    const __mmask32 m = n >= 32 ? ~__mmask32{0} : (__mmask32{1} << n) - 1;
    const __m512i v = _mm512_maskz_loadu_epi16(m, row + 2 * i);
    a = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    b = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
};
struct F16Rows {
  static constexpr size_t kBytes = 2;
  static constexpr bool kEvenOdd = false;
  WKV_AVX512 static void load32(const unsigned char* row, size_t i, size_t n, __m512& a,
                                __m512& b) {
    a = F16::load(row, i, tail_mask(n));
    b = F16::load(row, i + 16, n > 16 ? tail_mask(n - 16) : 0);
  }
};

template <class L, size_t S>
WKV_AVX512 inline void plain_rows(const unsigned char* const* w, const float* xs, size_t cols,
                                  float* out) {
  __m512 acc[S];
  for (size_t s = 0; s < S; ++s) acc[s] = _mm512_setzero_ps();
  for (size_t i = 0; i < cols; i += 32) {
    const __m512 xa = _mm512_loadu_ps(xs + i), xb = _mm512_loadu_ps(xs + i + 16);
    for (size_t s = 0; s < S; ++s) {
      for (size_t k = 0; k < 32 * L::kBytes; k += 64)
        _mm_prefetch(reinterpret_cast<const char*>(w[s] + i * L::kBytes + k + kStreamAhead),
                     _MM_HINT_T0);
      __m512 a, b;
      L::load32(w[s], i, cols - i, a, b);
      acc[s] = _mm512_fmadd_ps(b, xb, _mm512_fmadd_ps(a, xa, acc[s]));
    }
  }
  for (size_t s = 0; s < S; ++s) out[s] = _mm512_reduce_add_ps(acc[s]);
}

template <class L>
struct PlainRows {
  const float* xs;
  size_t cols;
  template <size_t S>
  WKV_AVX512 void rows(const unsigned char* const* w, float* out) const {
    plain_rows<L, S>(w, xs, cols, out);
  }
};

// ---- the token, quantized to int8 for the integer one-token dots ----
// (The levels live in a grow_aligned buffer, so the dots' 64-byte loads never split a line.)

// The sum of 32 signed levels at p.
WKV_AVX512 inline int32_t level_sum(const int8_t* p) {
  return avx2::level_sum(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// 32 values quantized as the AVX2 kernels do (d = amax / 127, rounded to nearest, saturated):
// levels 0-15 in lo, 16-31 in hi; returns d.
WKV_AVX512 inline float q8_block(const float* x, __m128i& lo, __m128i& hi) {
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  const float d =
      _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1))) / 127.0f;
  const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
  lo = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, id)));
  hi = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, id)));
  return d;
}

// ---- one token, 32-value block rows (q4_0, q4_1, q5_0, q5_1) ----
// At 256 bits (two blocks per vector) these ran at 7.4-7.6 GB/s of q4_0 in L2 (bench_kernels
// 768 x 768), short of the 11-12 GB/s one core draws from DRAM: bound by instructions, half of
// them shuffles and scale handling. Here four blocks share each step: their 16 bytes of levels
// go into the four 128-bit lanes (one load, three inserts), so every nibble mask, maddubs,
// conversion and FMA serves 128 weights, and the four fp16 scales are converted together.
// The token is quantized exactly as the AVX2 kernels do (int8 per 32 values, d = amax / 127,
// the same rounding), stored per quad of blocks b..b+3 as the steps use it:
// [q_b[0..16) | .. | q_b+3[0..16)] then [q_b[16..32) | .. | q_b+3[16..32)]. Lane 4k + j of a
// step's int32 result is block b + k's elements 4j..4j+3 and 16+4j..16+4j+3, so the offset
// (kOff * the qx of those elements) and the scale d_w d_x are per lane too. A short last quad
// skips the loads of its missing blocks: whatever their lanes hold meets zero x, a zero offset
// and a zero scale.
struct QuantX4 {
  std::vector<int8_t> buf;   // holds q, 64-byte aligned
  int8_t* q = nullptr;       // 128 bytes per quad
  std::vector<int32_t> off;  // per quad 16 lanes: kOff * the lane's sum of qx (kOff != 0 only)
  std::vector<float> dx;     // per quad 16 lanes: d_x of the lane's block
  std::vector<float> sum;    // per quad 4: d_x x the block's level sum (kMin types only)
};

template <class Q>
WKV_AVX512 void quantize_x4(const float* x, size_t nb, QuantX4& out) {
  const size_t nq = (nb + 3) / 4;
  out.q = avx2::grow_aligned(out.buf, nq * 128);
  if (out.off.size() < nq * 16) {
    out.off.resize(nq * 16);
    out.dx.resize(nq * 16);
    out.sum.resize(nq * 4);
  }
  if (nb % 4) {  // the short last quad: zero x in its missing blocks
    std::memset(out.q + (nq - 1) * 128, 0, 128);
    std::fill_n(out.off.data() + (nq - 1) * 16, 16, 0);
    std::fill_n(out.dx.data() + (nq - 1) * 16, 16, 0.0f);
    std::fill_n(out.sum.data() + (nq - 1) * 4, 4, 0.0f);
  }
  for (size_t b = 0; b < nb; ++b, x += 32) {
    __m128i lo, hi;
    const float d = q8_block(x, lo, hi);
    const size_t qd = b / 4, k = b % 4;
    int8_t* q = out.q + qd * 128 + 16 * k;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 64), hi);
    _mm_storeu_ps(out.dx.data() + qd * 16 + 4 * k, _mm_set1_ps(d));
    if constexpr (Q::kOff != 0) {
      // lane j: the qx of elements 4j..4j+3 (lo) plus 16+4j..16+4j+3 (hi)
      const __m128i ones = _mm_set1_epi8(1);
      const __m128i s =
          _mm_madd_epi16(_mm_add_epi16(_mm_maddubs_epi16(ones, lo), _mm_maddubs_epi16(ones, hi)),
                         _mm_set1_epi16(1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out.off.data() + qd * 16 + 4 * k),
                       _mm_mullo_epi32(s, _mm_set1_epi32(Q::kOff)));
    }
    if constexpr (Q::kMin)  // the quantized sum, as for the levels: their errors cancel
      out.sum[qd * 4 + k] = d * static_cast<float>(avx2::level_sum(_mm256_set_m128i(hi, lo)));
  }
}

// A quad of 32-value blocks (n of them, 1..4) as two vectors of words: a = its bytes [0, 64),
// b = [64, n kBytes) (masked loads: nothing past block n - 1 is read, those words are zero).
// The block sizes (18, 20, 22, 24) and field offsets are even, so every field of the four
// blocks is one word permutation (vpermt2w) of a and b. This replaced a load and insert per
// block's levels and a scalar gather of the fp16 scales (four loads, shifts and ors per quad),
// which left the q4_0 dot bound by instructions on the AMD EPYC (Zen 5).
template <class Q>
struct QuadWords {
  // Word indices into (a, b): lane k's 8 words = block k's 16 levels (idx_qs); words 4k..4k+3
  // = block k's d (idx_d); word k = block k's m (idx_m) or low / high half of its fifth bits
  // (idx_qh, idx_qh + 32).
  static constexpr auto kIdx = [] {
    std::array<uint16_t, 128> a{};
    for (size_t k = 0; k < 4; ++k) {
      for (size_t j = 0; j < 8; ++j)
        a[8 * k + j] = static_cast<uint16_t>((k * Q::kBytes + Q::kQs) / 2 + j);
      for (size_t j = 0; j < 4; ++j) a[32 + 4 * k + j] = static_cast<uint16_t>(k * Q::kBytes / 2);
      a[64 + k] = static_cast<uint16_t>((k * Q::kBytes + 2) / 2);
      if constexpr (Q::kQh >= 0) {
        a[96 + k] = static_cast<uint16_t>((k * Q::kBytes + Q::kQh) / 2);
        a[100 + k] = static_cast<uint16_t>((k * Q::kBytes + Q::kQh) / 2 + 1);
      }
    }
    return a;
  }();
  static_assert(Q::kBytes % 2 == 0 && Q::kQs % 2 == 0 && (Q::kQh < 0 || Q::kQh % 2 == 0));
  static_assert(4 * Q::kBytes > 64 && 4 * Q::kBytes <= 128);

  __m512i a, b;
  WKV_AVX512 QuadWords(const unsigned char* w, size_t n) {
    const size_t words = n * Q::kBytes / 2;
    a = words >= 32 ? _mm512_loadu_si512(w)
                    : _mm512_maskz_loadu_epi16((__mmask32{1} << words) - 1, w);
    b = words > 32 ? _mm512_maskz_loadu_epi16((__mmask32{1} << (words - 32)) - 1, w + 64)
                   : _mm512_setzero_si512();
  }
  WKV_AVX512 __m512i pick(size_t at) const {
    return _mm512_permutex2var_epi16(a, _mm512_loadu_si512(kIdx.data() + at), b);
  }
  // The levels split as the token quad is (lane k: block k's low nibbles in lo, high in hi;
  // with a fifth bit, +16 where it is set).
  WKV_AVX512 void levels(__m512i& lo, __m512i& hi) const {
    const __m512i raw = pick(0), low4 = _mm512_set1_epi8(0x0f);
    lo = _mm512_and_si512(raw, low4);
    hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
    if constexpr (Q::kQh >= 0) {
      // bit j of qh is element j's, bits 16..31 those of the high nibbles
      const __m512i qh = pick(96);
      const uint64_t ml = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm512_castsi512_si128(qh)));
      const uint64_t mh = static_cast<uint64_t>(_mm_cvtsi128_si64(
          _mm_unpackhi_epi64(_mm512_castsi512_si128(qh), _mm512_castsi512_si128(qh))));
      const __m512i sixteen = _mm512_set1_epi8(16);
      lo = _mm512_mask_add_epi8(lo, _cvtu64_mask64(ml), lo, sixteen);
      hi = _mm512_mask_add_epi8(hi, _cvtu64_mask64(mh), hi, sixteen);
    }
  }
  // Lanes 4k..4k+3: block k's d (0 past n).
  WKV_AVX512 __m512 d16() const { return _mm512_cvtph_ps(_mm512_castsi512_si256(pick(32))); }
  // Lane k: block k's m (the _1 types).
  WKV_AVX512 __m128 m4() const { return _mm_cvtph_ps(_mm512_castsi512_si128(pick(64))); }
};

// Where each block type keeps its levels (kQs), fifth bits (kQh, -1: none) and min (kMin: the
// fp16 after d); kOff: the stored level of zero.
template <size_t kBytes_, size_t kQs_, int kQh_, bool kMin_, int kOff_>
struct Block32 {
  static constexpr size_t kBytes = kBytes_, kQs = kQs_;
  static constexpr int kQh = kQh_, kOff = kOff_;
  static constexpr bool kMin = kMin_;
};
using Q4_0 = Block32<sizeof(quant::BlockQ4_0), offsetof(quant::BlockQ4_0, qs), -1, false, 8>;
using Q4_1 = Block32<sizeof(quant::BlockQ4_1), offsetof(quant::BlockQ4_1, qs), -1, true, 0>;
using Q5_0 = Block32<sizeof(quant::BlockQ5_0), offsetof(quant::BlockQ5_0, qs),
                     offsetof(quant::BlockQ5_0, qh), false, 16>;
using Q5_1 = Block32<sizeof(quant::BlockQ5_1), offsetof(quant::BlockQ5_1, qs),
                     offsetof(quant::BlockQ5_1, qh), true, 0>;
static_assert(offsetof(quant::BlockQ4_1, m) == 2 && offsetof(quant::BlockQ5_1, m) == 2);

// ---- one token, q8_0 rows ----
// Two blocks per step (their 32 levels in the two 256-bit halves), four rows in lock-step with
// software prefetch as one_token_plain (q8_0 is close to DRAM-bound: the AVX2 lock-step read
// 8.6 GB/s of 65536 x 768 from DRAM). The levels are signed, and AVX-512 has no vpsignb: |q|
// goes into maddubs and x is negated where q < 0 (|q| <= 128, |x| <= 127: no saturation).
// The token is quantized as for the 4/5-bit blocks, but in its natural order.
struct QuantX8 {
  std::vector<int8_t> buf;  // holds q, 64-byte aligned, zero beyond the last block
  int8_t* q = nullptr;
  std::vector<float> dx;  // per pair of blocks 16 lanes: d_x of the lane's block
};

WKV_AVX512 void quantize_x8(const float* x, size_t nb, QuantX8& out) {
  const size_t np = (nb + 1) / 2;
  out.q = avx2::grow_aligned(out.buf, np * 64);
  if (out.dx.size() < np * 16) out.dx.resize(np * 16);
  if (nb % 2) {
    std::memset(out.q + nb * 32, 0, 32);
    std::fill_n(out.dx.data() + nb * 8, 8, 0.0f);
  }
  for (size_t b = 0; b < nb; ++b, x += 32) {
    __m128i lo, hi;
    const float d = q8_block(x, lo, hi);
    int8_t* q = out.q + b * 32;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), hi);
    _mm256_storeu_ps(out.dx.data() + b * 8, _mm256_set1_ps(d));
  }
}

// ---- one token, k-quant rows (q4_k, q5_k, q6_k) ----
// These dots are bound by instructions, not memory, at 256 bits (bench_kernels 768 x 768 in
// L2: q4_k 8.0 GB/s, q6_k 8.4, against 24 for bf16), so here they run on 64 bytes per step.
// The token is quantized exactly as the AVX2 kernels do (int8 per 256 values, d = amax / 127,
// the same rounding, the integer sum of each 16): only the order of the final fp32 additions
// differs. For q4_k / q5_k the 32-value groups of each super-block are stored in the order
// their 64-byte steps use them (a step's low nibbles are groups 4s and 4s + 2, its high
// nibbles 4s + 1 and 4s + 3); q6_k uses them in order.
struct QuantXK {
  std::vector<int8_t> buf;  // holds q, 64-byte aligned: its 64-byte loads never split a line
  int8_t* q = nullptr;
  std::vector<int16_t> bsum;    // per 16 values, in the natural order
  std::vector<int16_t> bsum32;  // per 32 values (natural order), 8 per super-block
  std::vector<float> dpair;     // the scale d and -d, per super-block
};

template <bool kNibbleOrder>
WKV_AVX512 void quantize_xk(const float* x, size_t nsb, QuantXK& out) {
  out.q = avx2::grow_aligned(out.buf, nsb * 256);
  if (out.bsum.size() < nsb * 16) {
    out.bsum.resize(nsb * 16);
    out.bsum32.resize(nsb * 8);
    out.dpair.resize(nsb * 2);
  }
  constexpr int kPos[8] = {0, 2, 1, 3, 4, 6, 5, 7};  // where group g is stored
  for (size_t b = 0; b < nsb; ++b, x += 256) {
    __m512 amax = _mm512_setzero_ps();
    for (int k = 0; k < 16; ++k)
      amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)));
    const float d = _mm512_reduce_max_ps(amax) / 127.0f;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    out.dpair[2 * b] = d;
    out.dpair[2 * b + 1] = -d;
    int8_t* q = out.q + b * 256;
    for (int h = 0; h < 16; ++h) {
      const int g = h / 2, at = 32 * (kNibbleOrder ? kPos[g] : g) + 16 * (h % 2);
      const __m512i i = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * h), id));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + at), _mm512_cvtsepi32_epi8(i));
      out.bsum[16 * b + static_cast<size_t>(h)] = static_cast<int16_t>(_mm512_reduce_add_epi32(
          _mm512_max_epi32(_mm512_min_epi32(i, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128))));
    }
    for (size_t g = 0; g < 8; ++g)
      out.bsum32[8 * b + g] =
          static_cast<int16_t>(out.bsum[16 * b + 2 * g] + out.bsum[16 * b + 2 * g + 1]);
  }
}

// int16 lane i of a 32-lane index vector: `a` for lanes 0-15, `b` for 16-31.
WKV_AVX512 inline __m512i halves16(short a, short b) {
  return _mm512_inserti64x4(_mm512_set1_epi16(a), _mm256_set1_epi16(b), 1);
}

// A vpshufb control making int16 lanes 0-15 byte `a` (zero-extended) of their 128-bit lane,
// 16-31 byte `b`.
WKV_AVX512 inline __m512i byte_halves(int a, int b) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(0x8000 | a)),
                            _mm256_set1_epi16(static_cast<short>(0x8000 | b)), 1);
}

// Byte lanes 0-31 bit `lo` set, 32-63 bit `hi`.
WKV_AVX512 inline __m512i bit(int lo, int hi) {
  return _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << lo)),
                            _mm256_set1_epi8(static_cast<char>(1 << hi)), 1);
}

// sumi + the dot of unsigned levels u with qx, each int16 pair sum scaled by its lane of sc.
WKV_AVX512 inline __m512i scaled_dot64(__m512i sumi, __m512i u, const int8_t* qx, __m512i sc) {
  const __m512i x = _mm512_loadu_si512(qx);
  // (vpdpwssd in place of madd + add measured no faster: it puts its 5-cycle latency on the
  // chain through sumi, so the avx512vnni level uses these dots too)
  return _mm512_add_epi32(sumi, _mm512_madd_epi16(_mm512_maddubs_epi16(u, x), sc));
}

// Super-block b of four q4_k / q5_k rows w[0..4) (qx, bsum32, dpair: the token's levels,
// 32-sums and [d, -d] of that super-block): row r's scaled integer dot into acc[r], the four
// rows' min terms into accm (lanes 4r..4r+3). The rows' headers are decoded together, one
// 128-bit lane each (see KQ45).
template <bool k5>
WKV_AVX512 __attribute__((always_inline)) inline void q45k_block4(const unsigned char* const* w,
                                                                  const int8_t* qx,
                                                                  const int16_t* bsum32,
                                                                  const float* dpair, __m512* acc,
                                                                  __m512& accm) {
  const __m512i low4 = _mm512_set1_epi8(0x0f), sixteen = _mm512_set1_epi8(16);
  const __m512i m63 = _mm512_set1_epi8(0x3f), m48 = _mm512_set1_epi8(0x30);
  const __m512i c_shift = _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0, 4, 0));
  __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[0])));
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[1])), 1);
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[2])), 2);
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[3])), 3);
  // per lane, words 1, 2: sc[0..3], m[0..3] and sc[4..7], m[4..7] (c & 15 into word 1,
  // c >> 4 into word 2)
  const __m512i lo = _mm512_and_si512(v, m63);
  const __m512i hi = _mm512_or_si512(
      _mm512_and_si512(_mm512_srlv_epi32(_mm512_shuffle_epi32(v, _MM_PERM_DDDD), c_shift), low4),
      _mm512_and_si512(_mm512_srli_epi32(v, 2), m48));
  // per lane [m[0..3], m[4..7], sc[0..3], sc[4..7]]
  const __m512i ms =
      _mm512_mask_blend_epi32(0xcccc, _mm512_unpackhi_epi32(lo, hi), _mm512_unpacklo_epi32(lo, hi));
  // [d_r dx, -dmin_r dx] for r = 0..3 (d, dmin: each lane's first word)
  const __m128i dd = _mm512_castsi512_si128(_mm512_permutexvar_epi32(
      _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), v));
  const __m512 ddm = _mm512_castps256_ps512(
      _mm256_mul_ps(_mm256_cvtph_ps(dd),
                    _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(dpair)))));
  // lanes 4r..4r+3: m[2i] bsum32[2i] + m[2i+1] bsum32[2i+1] of row r (|lane| <= 2 * 63 * 4064:
  // exact in fp32)
  const __m512i m16 = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(
      _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 0, 0, 0, 0), ms)));
  const __m512i mins = _mm512_madd_epi16(
      m16, _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bsum32))));
  accm = _mm512_fmadd_ps(
      _mm512_permutexvar_ps(_mm512_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7), ddm),
      _mm512_cvtepi32_ps(mins), accm);
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    // row r's 16 bytes in every 128-bit lane
    const __m512i msb = _mm512_permutexvar_epi32(
        _mm512_add_epi32(_mm512_set1_epi32(4 * r),
                         _mm512_broadcast_i32x4(_mm_setr_epi32(0, 1, 2, 3))),
        ms);
    const uint8_t* qs = w[r] + (k5 ? 48 : 16);
    __m512i qh;
    if constexpr (k5)
      qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r] + 16)));
    __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int s = 0; s < 2; ++s) {
      const __m512i raw = _mm512_loadu_si512(qs + 64 * s);
      __m512i u0 = _mm512_and_si512(raw, low4);
      __m512i u1 = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
      if constexpr (k5) {
        // the fifth bit of group g is bit g of qh
        u0 =
            _mm512_mask_add_epi8(u0, _mm512_test_epi8_mask(qh, bit(4 * s, 4 * s + 2)), u0, sixteen);
        u1 = _mm512_mask_add_epi8(u1, _mm512_test_epi8_mask(qh, bit(4 * s + 1, 4 * s + 3)), u1,
                                  sixteen);
      }
      const int g = 8 + 4 * s;  // scale j is byte 8 + j
      sumi = scaled_dot64(sumi, u0, qx + 128 * s, _mm512_shuffle_epi8(msb, byte_halves(g, g + 2)));
      sumi = scaled_dot64(sumi, u1, qx + 128 * s + 64,
                          _mm512_shuffle_epi8(msb, byte_halves(g + 1, g + 3)));
    }
    acc[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_set1_epi32(2 * r), ddm),
                             _mm512_cvtepi32_ps(sumi), acc[r]);
  }
}

// A row's accumulators folded to 4 lanes, always in this order; its sum is then
// (c0 + c2) + (c1 + c3).
WKV_AVX512 inline __m128 q45k_fold(__m512 acc, __m128 accm) {
  const __m128 a4 =
      _mm_add_ps(accm, _mm_add_ps(_mm512_castps512_ps128(acc), _mm512_extractf32x4_ps(acc, 1)));
  const __m128 b4 = _mm_add_ps(_mm512_extractf32x4_ps(acc, 2), _mm512_extractf32x4_ps(acc, 3));
  return _mm_add_ps(a4, b4);
}

// q4_k / q5_k, four rows at a time (rows_k): two 64-byte steps per super-block and row. A
// block's first 16 bytes (d, dmin and the 12 packed bytes of scales and mins) are decoded in
// one 128-bit lane: as 32-bit words [d|dmin, a, b, c], sc[0..3] = a & 63, m[0..3] = b & 63,
// sc[4..7] = (c & 15) | (a >> 6) << 4, m[4..7] = (c >> 4) | (b >> 6) << 4
// (quant::scale_min_k4), as 16 bytes m[0..7], sc[0..7]; a step's scales are picked per
// 256-bit half by one vpshufb. The four rows' headers share one zmm, so the decoding, the
// fp16 scales and the min terms (the mins times the 32-sums of the token) cost one set of
// instructions per four rows: a row's own decoding was about half of its ~42 vector uops per
// super-block, which AVX-512 issues on two ports (a copy of the loop on 64 x 768 in L1: ~40
// -> ~32 cycles a super-block; 65536 x 768 from DRAM 7.6 -> 8.9 GB/s). Each row's dot is scaled by
// d dx and its min term (4 lanes) by -dmin dx, and the row is summed as it was alone (the
// same operations per lane). (The scalar decoding and two separate tails ran q4_k at
// 8.4 GB/s in L2, no faster than AVX2.)
template <bool k5>
struct KQ45 {
  static_assert(kStreams == 4, "one 128-bit lane of a zmm per stream's header");
  static constexpr size_t kBytes = k5 ? sizeof(quant::BlockQ5_K) : sizeof(quant::BlockQ4_K);
  struct Acc {
    __m512 acc[4];
    __m512 accm;  // row r's min terms in lanes 4r..4r+3
  };
  // super-block b of four rows (at p[0..4)) into a
  WKV_AVX512 static void block(const unsigned char* const* p, const QuantXK& xq, size_t b, Acc& a) {
    q45k_block4<k5>(p, xq.q + b * 256, xq.bsum32.data() + 8 * b, xq.dpair.data() + 2 * b, a.acc,
                    a.accm);
  }
  // each row's sum: (c0 + c2) + (c1 + c3) of its fold
  WKV_AVX512 static void sum(const Acc& a, float* out) {
    const __m128 m[4] = {_mm512_castps512_ps128(a.accm), _mm512_extractf32x4_ps(a.accm, 1),
                         _mm512_extractf32x4_ps(a.accm, 2), _mm512_extractf32x4_ps(a.accm, 3)};
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const __m128 c4 = q45k_fold(a.acc[r], m[r]);
      const __m128 a2 = _mm_add_ps(c4, _mm_movehl_ps(c4, c4));
      out[r] = _mm_cvtss_f32(_mm_add_ss(a2, _mm_shuffle_ps(a2, a2, 1)));
    }
  }
};

// q6_k: per half of the super-block, one 64-byte load of ql gives groups 4h, 4h + 1 (low
// nibbles) and 4h + 2, 4h + 3 (high nibbles); their two high bits come from the same 32 bytes
// of qh, shifted per 256-bit half into bits 4-5. The offset 32 is applied through the 16-sums.
// One super-block w of a q6_k row: its scaled integer dot into acc, the offset term into accc.
WKV_AVX512 __attribute__((always_inline)) inline void q6k_block(const unsigned char* w,
                                                                const int8_t* qx,
                                                                const int16_t* bsum, float dx,
                                                                __m512& acc, __m256& accc) {
  static_assert(offsetof(quant::BlockQ6_K, ql) == 0 && offsetof(quant::BlockQ6_K, qh) == 128 &&
                offsetof(quant::BlockQ6_K, scales) == 192 && offsetof(quant::BlockQ6_K, d) == 208);
  const __m512i low4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
  // groups 4h + k take bits 2k, 2k + 1 of qh: k = 0, 1 shifted up by 4, 2; k = 2, 3 down by 0, 2
  const __m512i up = halves16(4, 2), down = halves16(0, 2);
  uint16_t d16;
  std::memcpy(&d16, w + 208, 2);
  const __m256i sc16 =
      _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
  const __m512i scz = _mm512_castsi256_si512(sc16);
  __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m512i l = _mm512_loadu_si512(w + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * h)));
    const __m512i ua = _mm512_or_si512(_mm512_and_si512(l, low4),
                                       _mm512_and_si512(_mm512_sllv_epi16(qh, up), bits45));
    const __m512i ub = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4),
                                       _mm512_and_si512(_mm512_srlv_epi16(qh, down), bits45));
    // int16 lane i of group pair (4h, 4h + 1) is 16-part 8h + i / 8; of (4h + 2, 4h + 3)
    // 8h + 4 + i / 8
    const __m512i ia =
        _mm512_add_epi16(_mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22,
                                                            21, 20, 19, 18, 17, 16, 15, 14, 13, 12,
                                                            11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           3),
                         _mm512_set1_epi16(static_cast<short>(8 * h)));
    const __m512i ib = _mm512_add_epi16(ia, _mm512_set1_epi16(4));
    // |pairs| <= 2 * 63 * 127, times |scale| <= 128, in pairs: within int32
    sumi = scaled_dot64(sumi, ua, qx + 128 * h, _mm512_permutexvar_epi16(ia, scz));
    sumi = scaled_dot64(sumi, ub, qx + 128 * h + 64, _mm512_permutexvar_epi16(ib, scz));
  }
  const float ddx = _cvtsh_ss(d16) * dx;
  const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsum));
  acc = _mm512_fmadd_ps(_mm512_set1_ps(ddx), _mm512_cvtepi32_ps(sumi), acc);
  accc = _mm256_fmadd_ps(_mm256_set1_ps(32.0f * ddx),
                         _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, sc16)), accc);
}

// A q6_k row's accumulators summed, always in this order.
WKV_AVX512 inline float q6k_sum(__m512 acc, __m256 accc) {
  const __m128 c4 = _mm_add_ps(_mm256_castps256_ps128(accc), _mm256_extractf128_ps(accc, 1));
  return _mm512_reduce_add_ps(acc) -
         _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(c4, c4), _mm_hadd_ps(c4, c4)));
}

// q6_k four rows at a time (rows_k), each row's super-block on its own.
struct KQ6 {
  static constexpr size_t kBytes = sizeof(quant::BlockQ6_K);
  struct Acc {
    __m512 acc[kStreams];
    __m256 accc[kStreams];
  };
  WKV_AVX512 static void block(const unsigned char* const* p, const QuantXK& xq, size_t b, Acc& a) {
#pragma GCC unroll 4
    for (size_t r = 0; r < kStreams; ++r)
      q6k_block(p[r], xq.q + b * 256, xq.bsum.data() + 16 * b, xq.dpair[2 * b], a.acc[r],
                a.accc[r]);
  }
  WKV_AVX512 static void sum(const Acc& a, float* out) {
#pragma GCC unroll 4
    for (size_t r = 0; r < kStreams; ++r) out[r] = q6k_sum(a.acc[r], a.accc[r]);
  }
};

// kStreams rows w[0..kStreams) of k-quant format K into out: their super-blocks one at a time
// (independent chains: a row alone left the core waiting on its chain, three super-blocks at
// 768 columns then the fold, ~110 cycles a row), each stream's next block prefetched
// kQuantAhead ahead, and each row summed by K::sum as it would be alone (one row runs as
// kStreams copies of itself, see KRows), so grouping rows never changes a bit.
template <class K>
WKV_AVX512 inline void rows_k(const unsigned char* const* w, const QuantXK& xq, size_t nsb,
                              float* out) {
  typename K::Acc a = {};  // zeros
  for (size_t b = 0; b < nsb; ++b) {
    const unsigned char* p[kStreams];
#pragma GCC unroll 4
    for (size_t r = 0; r < kStreams; ++r) {
      p[r] = w[r] + b * K::kBytes;
      prefetch_ahead<K::kBytes>(p[r]);
    }
    K::block(p, xq, b, a);
  }
  K::sum(a, out);
}

// The q8_0 and 32-value block one-token dots, built twice: for the avx512 level and, with
// vpdpbusd, for avx512vnni (q4_0 / q8_0 768 x 768 in L2 6-8 % faster, the same bits).
namespace dots {
#define WKV_DOT WKV_AVX512
#define WKV_DOT_VNNI 0
#include "kernels/cpu/avx512_dots.inc"
#undef WKV_DOT_VNNI
#undef WKV_DOT
}  // namespace dots
namespace dots_vnni {
#define WKV_DOT WKV_AVX512_VNNI
#define WKV_DOT_VNNI 1
#include "kernels/cpu/avx512_dots.inc"
#undef WKV_DOT_VNNI
#undef WKV_DOT
}  // namespace dots_vnni

// lockstep's rows of format K.
template <class K>
struct KRows {
  const QuantXK& xq;
  size_t nsb;
  template <size_t S>
  WKV_AVX512 void rows(const unsigned char* const* w, float* out) const {
    static_assert(S == 1 || S == kStreams);
    if constexpr (S == kStreams) {
      rows_k<K>(w, xq, nsb, out);
    } else {  // one row: the kStreams-row dot of kStreams copies of it
      const unsigned char* wn[kStreams];
      float outn[kStreams];
      std::fill_n(wn, kStreams, w[0]);
      rows_k<K>(wn, xq, nsb, outn);
      out[0] = outn[0];
    }
  }
};

// Rows [r0, r1) as lockstep's four far-apart streams (one prefetched stream, one row at a
// time, read DRAM 15-30 % slower).
template <bool kNibbleOrder, class K>
WKV_AVX512 void one_token_k(const void* W, const float* X, float* Y, size_t cols, size_t rb,
                            size_t r0, size_t r1) {
  const size_t nsb = cols / 256;
  thread_local QuantXK xq;
  quantize_xk<kNibbleOrder>(X, nsb, xq);
  dots::lockstep(static_cast<const unsigned char*>(W), rb, Y, r0, r1, KRows<K>{xq, nsb});
}

// ---- prompts on VNNI: 32-level block weights against the tokens quantized to q8 ----
// For q8_0, q4_0, q4_1, q5_0, q5_1, q4_k and q5_k (every weight dw level + mw per block of 32,
// the level a byte), from kOuterTokens tokens: the tokens are quantized per 32 columns as for
// generation (q8_block) and each block of a product is an exact integer sum (vpdpbusd: the
// token's levels + 128 as the unsigned operand, the weight's signed levels broadcast; 128 x
// the weight block's level sum taken back out), scaled by dw d_x into an fp32 lane, plus mw
// d_x (the token block's level sum) where the type has offsets: tokens in the lanes, 4 rows x
// 32 tokens per tile, blocks summed in column order (no split changes a bit). On this
// project's Xeon the integer tile runs at 2.1-3.5x the fp32 outer-product tile in registers.
constexpr int kI8Rows = 4;
constexpr size_t kI8Tokens = 32;

// The packed tokens: per 16 tokens and block b, 8 x 64 bytes (dword g of lane t: the token's
// levels 4g..4g+3, each + 128) and the 16 scales (0 past T).
struct I8Tokens {
  const uint8_t* q;
  const float* d;
  const float* ds;  // d x the levels' sum, per block (for the weights' offsets)
  size_t nb;
};

WKV_AVX512 I8Tokens pack_q8(const float* X, size_t T, size_t cols) {
  thread_local std::vector<uint8_t> qbuf;
  thread_local std::vector<float> dbuf, sbuf;
  const size_t nb = cols / 32, groups = (T + 15) / 16;
  uint8_t* q = avx2::grow_aligned(qbuf, groups * nb * 512);
  float* d = avx2::grow_aligned(dbuf, groups * nb * 16);
  float* ds = avx2::grow_aligned(sbuf, groups * nb * 16);
  if (T % 16) {
    std::memset(q + (groups - 1) * nb * 512, 0, nb * 512);
    std::fill_n(d + (groups - 1) * nb * 16, nb * 16, 0.0f);
    std::fill_n(ds + (groups - 1) * nb * 16, nb * 16, 0.0f);
  }
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (size_t t = 0; t < T; ++t) {
    const size_t lane = t % 16, grp = t / 16;
    for (size_t b = 0; b < nb; ++b) {
      __m128i lo, hi;
      const float db = q8_block(X + t * cols + b * 32, lo, hi);
      const __m256i biased = _mm256_xor_si256(_mm256_set_m128i(hi, lo), flip);
      alignas(32) uint32_t u[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(u), biased);
      uint8_t* o = q + (grp * nb + b) * 512 + lane * 4;
      for (size_t g = 0; g < 8; ++g) std::memcpy(o + g * 64, u + g, 4);
      d[(grp * nb + b) * 16 + lane] = db;
      ds[(grp * nb + b) * 16 + lane] = db * static_cast<float>(avx2::biased_level_sum(biased));
    }
  }
  return {q, d, ds, nb};
}

// out[r][v * 16 + lane] for R rows (levels lv[r], block stride bs bytes; dw, ws, mw: [R][nb]
// scale, 128 x level sum and offset, a weight being dw level + mw) and V groups of 16 tokens
// from xq / xd / xs (group v at v * nb blocks).
template <int R, int V, bool kMin>
WKV_AVX512_VNNI void i8_tile(const int8_t* const* lv, size_t bs, const float* dw, const int32_t* ws,
                             const float* mw, const uint8_t* xq, const float* xd, const float* xs,
                             size_t nb, float* out) {
  __m512 f[R][V];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) f[r][v] = _mm512_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    __m512i s[R][V];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) s[r][v] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      __m512i x[V];
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) x[v] = _mm512_load_si512(xq + (v * nb + b) * 512 + g * 64);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        int32_t w4;
        std::memcpy(&w4, lv[r] + b * bs + 4 * g, 4);
        const __m512i bw = _mm512_set1_epi32(w4);
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) s[r][v] = _mm512_dpbusd_epi32(s[r][v], x[v], bw);
      }
    }
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      const __m512 d = _mm512_load_ps(xd + (v * nb + b) * 16);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512i c = _mm512_sub_epi32(s[r][v], _mm512_set1_epi32(ws[r * nb + b]));
        f[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c),
                                  _mm512_mul_ps(d, _mm512_set1_ps(dw[r * nb + b])), f[r][v]);
        if constexpr (kMin)
          f[r][v] = _mm512_fmadd_ps(_mm512_set1_ps(mw[r * nb + b]),
                                    _mm512_load_ps(xs + (v * nb + b) * 16), f[r][v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) _mm512_store_ps(out + r * kI8Tokens + 16 * v, f[r][v]);
}

// Y[., o..o+R) for every token.
template <int R, bool kMin>
WKV_AVX512_VNNI void i8_block(const int8_t* const* lv, size_t bs, const float* dw,
                              const int32_t* ws, const float* mw, const I8Tokens& xt, float* Y,
                              size_t rows, size_t T, size_t o) {
  alignas(64) float out[R * kI8Tokens];
  for (size_t t0 = 0; t0 < T; t0 += kI8Tokens) {
    const size_t n = std::min(kI8Tokens, T - t0);
    const uint8_t* xq = xt.q + t0 / 16 * xt.nb * 512;
    const float* xd = xt.d + t0 / 16 * xt.nb * 16;
    const float* xs = xt.ds + t0 / 16 * xt.nb * 16;
    if (n > 16)
      i8_tile<R, 2, kMin>(lv, bs, dw, ws, mw, xq, xd, xs, xt.nb, out);
    else
      i8_tile<R, 1, kMin>(lv, bs, dw, ws, mw, xq, xd, xs, xt.nb, out);
    scatter_rows<R>(out, kI8Tokens, Y, rows, o, t0, n);
  }
}

bool i8_weights(DType t) {
  switch (t) {
    case DType::q8_0:
    case DType::q4_0:
    case DType::q4_1:
    case DType::q5_0:
    case DType::q5_1:
    case DType::q4_k:
    case DType::q5_k:
      return true;
    default:
      return false;
  }
}

// 32 bytes: the low nibbles of p[0..16) then their high nibbles.
WKV_AVX512 inline __m256i nibbles16(const unsigned char* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}
// 32 bytes: the low (shift 0) or high (shift 4) nibbles of p[0..32).
WKV_AVX512 inline __m256i nibbles32(const unsigned char* p, int shift) {
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm256_and_si256(_mm256_srl_epi16(b, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(0x0F));
}
WKV_AVX512 inline float half(const unsigned char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// One row of an i8_weights type other than q8_0 as signed levels lv[32 b + i], with per-block
// scale dw[b] and offset mw[b] (weight = dw level + mw).
WKV_AVX512 void unpack_row(DType t, const unsigned char* row, size_t nb, int8_t* lv, float* dw,
                           float* mw) {
  switch (t) {
    case DType::q4_0:
      for (size_t b = 0; b < nb; ++b, row += 18) {
        dw[b] = half(row);
        mw[b] = 0.0f;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(lv + 32 * b),
                            _mm256_sub_epi8(nibbles16(row + 2), _mm256_set1_epi8(8)));
      }
      break;
    case DType::q4_1:
      for (size_t b = 0; b < nb; ++b, row += 20) {
        dw[b] = half(row);
        mw[b] = half(row + 2);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(lv + 32 * b), nibbles16(row + 4));
      }
      break;
    case DType::q5_0:
    case DType::q5_1: {
      const bool q51 = t == DType::q5_1;
      const size_t bb = q51 ? 24 : 22, hq = q51 ? 4 : 2;  // block bytes; where qh starts
      for (size_t b = 0; b < nb; ++b, row += bb) {
        uint32_t qh;
        std::memcpy(&qh, row + hq, 4);
        dw[b] = half(row);
        mw[b] = q51 ? half(row + 2) : 0.0f;
        const __m256i v = _mm256_or_si256(nibbles16(row + hq + 4),
                                          _mm256_maskz_set1_epi8(qh, static_cast<char>(16)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(lv + 32 * b),
                            q51 ? v : _mm256_sub_epi8(v, _mm256_set1_epi8(16)));
      }
      break;
    }
    default: {  // q4_k / q5_k: super-blocks of 8 blocks of 32
      const bool q5 = t == DType::q5_k;
      const size_t sb = q5 ? 176 : 144;
      for (size_t b0 = 0; b0 < nb; b0 += 8, row += sb) {
        const float d = half(row), dmin = half(row + 2);
        const unsigned char* qs = row + (q5 ? 48 : 16);
        const __m256i hb = q5 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16))
                              : _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j) {
          uint8_t s6, m6;
          quant::scale_min_k4(row + 4, j, &s6, &m6);
          dw[b0 + j] = d * static_cast<float>(s6);
          mw[b0 + j] = -(dmin * static_cast<float>(m6));
          __m256i v = nibbles32(qs + 32 * (j / 2), 4 * (j % 2));
          if (q5) {
            const __mmask32 hi =
                _mm256_test_epi8_mask(hb, _mm256_set1_epi8(static_cast<char>(1 << j)));
            v = _mm256_or_si256(v, _mm256_maskz_set1_epi8(hi, static_cast<char>(16)));
          }
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(lv + 32 * (b0 + j)), v);
        }
      }
    }
  }
}

// Rows [r0, r1) of the i8_weights types against the packed tokens: q8_0's levels are read in
// place, the others' unpacked to bytes once per block of rows.
WKV_AVX512_VNNI void rows_i8(DType t, const void* W, const I8Tokens& xt, float* Y, size_t rows,
                             size_t cols, size_t T, size_t r0, size_t r1) {
  using Block = void (*)(const int8_t* const*, size_t, const float*, const int32_t*, const float*,
                         const I8Tokens&, float*, size_t, size_t, size_t);
  static constexpr Block kBlocks[kI8Rows + 1] = {nullptr, i8_block<1, false>, i8_block<2, false>,
                                                 i8_block<3, false>, i8_block<4, false>};
  static constexpr Block kMinBlocks[kI8Rows + 1] = {nullptr, i8_block<1, true>, i8_block<2, true>,
                                                    i8_block<3, true>, i8_block<4, true>};
  thread_local std::vector<int8_t> unpacked;
  thread_local std::vector<float> dws, mws;
  thread_local std::vector<int32_t> wss;
  const size_t nb = cols / 32, rb = dtype_bytes(t, cols);
  const bool q8 = t == DType::q8_0;
  const bool has_min = t == DType::q4_1 || t == DType::q5_1 || t == DType::q4_k || t == DType::q5_k;
  const size_t bs = q8 ? 34 : 32;  // bytes from one block's levels to the next's
  int8_t* u = avx2::grow_aligned(unpacked, kI8Rows * cols);
  if (dws.size() < kI8Rows * nb) {
    dws.resize(kI8Rows * nb);
    mws.resize(kI8Rows * nb);
    wss.resize(kI8Rows * nb);
  }
  const auto* base = static_cast<const unsigned char*>(W);
  for (size_t o = r0; o < r1; o += kI8Rows) {
    const size_t n = std::min<size_t>(kI8Rows, r1 - o);
    const int8_t* lv[kI8Rows];
    for (size_t r = 0; r < n; ++r) {
      const unsigned char* row = base + (o + r) * rb;
      if (q8) {  // 34-byte blocks: fp16 scale, then the 32 levels
        lv[r] = reinterpret_cast<const int8_t*>(row + 2);
        for (size_t b = 0; b < nb; ++b) dws[r * nb + b] = half(row + b * 34);
      } else {
        lv[r] = u + r * cols;
        unpack_row(t, row, nb, u + r * cols, dws.data() + r * nb, mws.data() + r * nb);
      }
      for (size_t b = 0; b < nb; ++b) wss[r * nb + b] = 128 * level_sum(lv[r] + b * bs);
    }
    (has_min ? kMinBlocks : kBlocks)[n](lv, bs, dws.data(), wss.data(), mws.data(), xt, Y, rows, T,
                                        o);
  }
}

template <class L>
WKV_AVX512 void one_token_plain(const void* W, const float* X, float* Y, size_t cols, size_t r0,
                                size_t r1) {
  // x padded with zeros to whole 32-column steps (bf16: even then odd columns of each step)
  const size_t padded = (cols + 31) / 32 * 32;
  thread_local std::vector<float> buf;
  if (buf.size() < padded) buf.resize(padded);
  float* xs = buf.data();
  std::fill(xs + cols / 32 * 32, xs + padded, 0.0f);
  for (size_t c = 0; c < cols; c += 32)
    for (size_t j = 0; j < 32 && c + j < cols; ++j)
      xs[c + (L::kEvenOdd ? (j % 2) * 16 + j / 2 : j)] = X[c + j];
  dots::lockstep(static_cast<const unsigned char*>(W), cols * L::kBytes, Y, r0, r1,
                 PlainRows<L>{xs, cols});
}

// ---- bf16 prompts (opt-in, AVX512-BF16) ----
// With set_prompt_bf16 and a CPU with AVX512-BF16, products of bf16 weights over kOuterTokens
// tokens or more round the tokens to bf16 once (round to nearest even) and multiply with
// vdpbf16ps: 32 products into 16 fp32 lanes per instruction, twice the fp32 FMA's rate on
// cores where both issue two a cycle (AMD Zen 4/5), and the bf16 weights are used as they
// are (no conversion to fp32). The outer-product tile of the fp32 path with column pairs in
// place of columns: the tokens in the lanes, each lane a dword (x[2p] low, x[2p + 1] high),
// each step a pair of weights broadcast as one dword. Each output is one lane summed over
// the pairs in order (kKc columns a register pass, as fp32), so no split changes a bit.
#define WKV_AVX512_BF16 \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")))

// X [T, cols] as ceil(T / kGroup) groups of [ceil(cols / 2)][kGroup] dwords, each the bf16
// pair of a token's columns 2p, 2p + 1 (zero beyond T and cols), in the calling thread's buffer.
WKV_AVX512_BF16 const uint32_t* pack_bf16_pairs(const float* X, size_t T, size_t cols) {
  thread_local std::vector<uint32_t> buf;
  const size_t groups = (T + kGroup - 1) / kGroup, np = (cols + 1) / 2;
  uint32_t* xp = avx2::grow_aligned(buf, groups * np * kGroup);
  for (size_t g = 0; g < groups; ++g)
    for (size_t v = 0; v < kGroup / 16; ++v) {
      const size_t t0 = g * kGroup + 16 * v;
      uint32_t* out = xp + g * np * kGroup + 16 * v;
      if (t0 >= T) {
        for (size_t p = 0; p < np; ++p)
          _mm512_store_si512(out + p * kGroup, _mm512_setzero_si512());
        continue;
      }
      const size_t nt = std::min<size_t>(16, T - t0);
      const float* x = X + t0 * cols;
      for (size_t k = 0; k < cols; k += 16) {
        __m512 r[16];
        load_columns16(x, nt, cols, k, r);
        const size_t npk = std::min<size_t>(8, (cols - k + 1) / 2);
#pragma GCC unroll 8
        for (size_t i = 0; i < 8; ++i) {
          if (i >= npk) break;
          const __m512i e = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(r[2 * i]));
          const __m512i o = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(r[2 * i + 1]));
          _mm512_store_si512(out + (k / 2 + i) * kGroup,
                             _mm512_or_si512(e, _mm512_slli_epi32(o, 16)));
        }
      }
    }
  return xp;
}

// acc[r][v] += dpbf16(x of pair row xr, lanes 16v.., weights b[r]).
template <int R, int V>
WKV_AVX512_BF16 inline void pair_step(__m512 (&acc)[R][V], const uint32_t* xr,
                                      const __m512i (&b)[R]) {
  __m512bh x[V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) x[v] = (__m512bh)_mm512_load_si512(xr + 16 * v);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], x[v], (__m512bh)b[r]);
}

// sums[r][t] (r < R, t < 16 V) = the pairs' dpbf16 of rows w[r] (stride rs) and xp[.][t], kKc
// columns a register pass; an odd width's last pair is its one weight (high half zero).
template <int R, int V>
WKV_AVX512_BF16 void outer_tile_bf16(const uint16_t* w, size_t rs, const uint32_t* xp, size_t cols,
                                     float* sums) {
  const size_t np = (cols + 1) / 2, full = cols / 2;
  for (size_t pb = 0; pb < np; pb += kKc / 2) {
    const size_t pe = std::min(np, pb + kKc / 2);
    __m512 acc[R][V];
    zero_tile(acc);
    __m512i b[R];
    for (size_t p = pb; p < std::min(pe, full); ++p) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        uint32_t d;
        std::memcpy(&d, w + r * rs + 2 * p, 4);
        b[r] = _mm512_set1_epi32(static_cast<int>(d));
      }
      pair_step<R, V>(acc, xp + p * kGroup, b);
    }
    if (pe > full) {  // odd width: the last pair's one weight
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) b[r] = _mm512_set1_epi32(w[r * rs + 2 * full]);
      pair_step<R, V>(acc, xp + full * kGroup, b);
    }
    add_tile(acc, sums, pb == 0);
  }
}

struct Bf16PairTiles {
  using W = uint16_t;
  using X = uint32_t;
  static size_t group_len(size_t cols) { return (cols + 1) / 2; }
  template <int R, int V>
  WKV_AVX512_BF16 static void tile(const W* w, size_t rs, const X* g, size_t cols, float* sums) {
    outer_tile_bf16<R, V>(w, rs, g, cols, sums);
  }
};
template <int R>
WKV_AVX512 void outer_block_bf16(const uint16_t* w, size_t rs, const uint32_t* xp, float* Y,
                                 size_t rows, size_t cols, size_t T, size_t o) {
  outer_groups<Bf16PairTiles, R>(w, rs, xp, Y, rows, cols, 0, T, o);
}

// Rows [r0, r1) of Y = X W^T for bf16 W from pack_bf16_pairs (all T tokens per block of rows:
// the weights are read in place, so re-reading them per group of tokens costs no conversion).
WKV_AVX512_BF16 void rows_bf16_pairs(const void* W, const uint32_t* xp, float* Y, size_t rows,
                                     size_t cols, size_t T, size_t r0, size_t r1) {
  static_assert(kRowBlock == 6);
  using Block =
      void (*)(const uint16_t*, size_t, const uint32_t*, float*, size_t, size_t, size_t, size_t);
  static constexpr Block kBlocks[kRowBlock + 1] = {nullptr,
                                                   outer_block_bf16<1>,
                                                   outer_block_bf16<2>,
                                                   outer_block_bf16<3>,
                                                   outer_block_bf16<4>,
                                                   outer_block_bf16<5>,
                                                   outer_block_bf16<6>};
  const auto* base = static_cast<const uint16_t*>(W);
  for (size_t o = r0; o < r1; o += kRowBlock) {
    const size_t n = std::min<size_t>(kRowBlock, r1 - o);
    prefetch_next_block(static_cast<const unsigned char*>(W), cols * 2, o + n, r1);
    kBlocks[n](base + o * cols, cols, xp, Y, rows, cols, T, o);
  }
}

}  // namespace

// Prompts (T > 1) for weights of any dtype; xt: X already packed (rows_packed), or nullptr.
WKV_AVX512 void rows_prompt(DType t, const void* W, const float* X, float* Y, size_t rows,
                            size_t cols, size_t T, size_t r0, size_t r1,
                            const float* xt = nullptr) {
  switch (t) {
    case DType::f32:
      return rows_f32_tiles(W, X, Y, rows, cols, T, r0, r1, xt);
    case DType::bf16:
      return rows_converted(Widen<BF16>{}, W, cols * 2, X, Y, rows, cols, T, r0, r1, xt);
    case DType::f16:
      return rows_converted(Widen<F16>{}, W, cols * 2, X, Y, rows, cols, T, r0, r1, xt);
    default:
      return rows_converted(Dequant{t}, W, dtype_bytes(t, cols), X, Y, rows, cols, T, r0, r1, xt);
  }
}

#define WKV_ROWS(fn, impl)                                                                        \
  void fn(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T, size_t r0, \
          size_t r1) {                                                                            \
    if (T == 1) return avx2::fn(W, X, Y, rows, cols, T, r0, r1);                                  \
    impl;                                                                                         \
  }
#define WKV_PLAIN_ROWS(fn, L, impl)                                                               \
  void fn(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T, size_t r0, \
          size_t r1) {                                                                            \
    if (T == 1) return one_token_plain<L>(W, X, Y, cols, r0, r1);                                 \
    impl;                                                                                         \
  }
WKV_PLAIN_ROWS(rows_f32, F32Rows, rows_prompt(DType::f32, W, X, Y, rows, cols, T, r0, r1))
WKV_PLAIN_ROWS(rows_bf16, BF16Rows, rows_prompt(DType::bf16, W, X, Y, rows, cols, T, r0, r1))
WKV_PLAIN_ROWS(rows_f16, F16Rows, rows_prompt(DType::f16, W, X, Y, rows, cols, T, r0, r1))
#undef WKV_PLAIN_ROWS
#define WKV_QROWS(q) WKV_ROWS(rows_##q, rows_prompt(DType::q, W, X, Y, rows, cols, T, r0, r1))
WKV_QROWS(q2_k)
WKV_QROWS(q3_k)
// q8_0, the 4/5-bit blocks and the k-quants have their own one-token dots.
#define WKV_KROWS(q, one)                                                                    \
  void rows_##q(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T, \
                size_t r0, size_t r1) {                                                      \
    [[maybe_unused]] const size_t rb = dtype_bytes(DType::q, cols);                          \
    if (T == 1) return one;                                                                  \
    rows_prompt(DType::q, W, X, Y, rows, cols, T, r0, r1);                                   \
  }
#define WKV_VNNI_DOTS(X) X(q8_0) X(q4_0) X(q4_1) X(q5_0) X(q5_1)
#define WKV_DOTS_ROWS(q) WKV_KROWS(q, dots::one_token_##q(W, X, Y, cols, r0, r1))
WKV_VNNI_DOTS(WKV_DOTS_ROWS)
#undef WKV_DOTS_ROWS
WKV_KROWS(q4_k, (one_token_k<true, KQ45<false>>(W, X, Y, cols, rb, r0, r1)))
WKV_KROWS(q5_k, (one_token_k<true, KQ45<true>>(W, X, Y, cols, rb, r0, r1)))
WKV_KROWS(q6_k, (one_token_k<false, KQ6>(W, X, Y, cols, rb, r0, r1)))
#undef WKV_KROWS
#undef WKV_QROWS
#undef WKV_ROWS

const void* pack_x(const float* X, size_t T, size_t cols) { return pack_groups(X, T, cols); }

void rows_packed(DType t, const void* W, const void* xp, float* Y, size_t rows, size_t cols,
                 size_t T, size_t r0, size_t r1) {
  rows_prompt(t, W, nullptr, Y, rows, cols, T, r0, r1, static_cast<const float*>(xp));
}

// ---- the RWKV-7 recurrence ----
// Per head, state rows i (S[i][j], j < N): sa = a . S[i]; S[i] = S[i] * w + v[i] k + sa b;
// y[i] = S[i] . r. Four rows at a time, each row's N values in N / 16 registers, so four
// independent chains hide the FMA latency (the AVX2 step runs one row's two dependent sums at
// a time); the four rows' sums come out of one transposing tree (reduce4), y's as one store.
template <size_t NV>  // N / 16
WKV_AVX512 void wkv7_rows4(float* Sh, const float* rh, const float* wh, const float* kh,
                           const float* vh, const float* ah, const float* bh, float* yh, size_t i) {
  __m512 s[4][NV], sa[4];
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    const float* row = Sh + (i + q) * NV * 16;
    sa[q] = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (size_t j = 0; j < NV; ++j) {
      s[q][j] = _mm512_loadu_ps(row + 16 * j);
      sa[q] = _mm512_fmadd_ps(_mm512_loadu_ps(ah + 16 * j), s[q][j], sa[q]);
    }
  }
  alignas(16) float sas[4];
  _mm_store_ps(sas, reduce4(sa[0], sa[1], sa[2], sa[3]));
  __m512 acc[4];
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    float* row = Sh + (i + q) * NV * 16;
    const __m512 vv = _mm512_set1_ps(vh[i + q]), sv = _mm512_set1_ps(sas[q]);
    acc[q] = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (size_t j = 0; j < NV; ++j) {
      __m512 x = _mm512_mul_ps(s[q][j], _mm512_loadu_ps(wh + 16 * j));
      x = _mm512_fmadd_ps(_mm512_loadu_ps(kh + 16 * j), vv, x);
      x = _mm512_fmadd_ps(sv, _mm512_loadu_ps(bh + 16 * j), x);
      _mm512_storeu_ps(row + 16 * j, x);
      acc[q] = _mm512_fmadd_ps(x, _mm512_loadu_ps(rh + 16 * j), acc[q]);
    }
  }
  _mm_storeu_ps(yh + i, reduce4(acc[0], acc[1], acc[2], acc[3]));
}

WKV_AVX512 void wkv7_step(float* S, const float* r, const float* w, const float* k, const float* v,
                          const float* a, const float* b, float* y, size_t H, size_t N) {
  if (N != 64 && N != 32 && N != 16) return avx2::wkv7_step(S, r, w, k, v, a, b, y, H, N);
  for (size_t h = 0; h < H; ++h) {
    const size_t o = h * N;
    float* Sh = S + h * N * N;
    for (size_t i = 0; i < N; i += 4) {
      if (N == 64)
        wkv7_rows4<4>(Sh, r + o, w + o, k + o, v + o, a + o, b + o, y + o, i);
      else if (N == 32)
        wkv7_rows4<2>(Sh, r + o, w + o, k + o, v + o, a + o, b + o, y + o, i);
      else
        wkv7_rows4<1>(Sh, r + o, w + o, k + o, v + o, a + o, b + o, y + o, i);
    }
  }
}

}  // namespace wkv::kernels::avx512

// AVX-512 with VNNI: the rows whose one-token dots differ (the rest of the level is avx512's).
namespace wkv::kernels::avx512vnni {
bool quantizes_x(DType t, size_t T) {
  return T >= avx512::kOuterTokens && avx512::i8_weights(t) && prompt_q8();
}

// T = 1: `one` (the VNNI one-token dot, or avx512's row kernel where there is none); integer
// prompts where quantizes_x; else avx512's prompt path.
#define WKV_VNNI_ROWS(q, one)                                                                     \
  void rows_##q(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,      \
                size_t r0, size_t r1) {                                                           \
    if (T == 1) return one;                                                                       \
    if (quantizes_x(DType::q, T))                                                                 \
      return avx512::rows_i8(DType::q, W, avx512::pack_q8(X, T, cols), Y, rows, cols, T, r0, r1); \
    avx512::rows_##q(W, X, Y, rows, cols, T, r0, r1);                                             \
  }
#define WKV_VNNI_DOT_ROWS(q) \
  WKV_VNNI_ROWS(q, avx512::dots_vnni::one_token_##q(W, X, Y, cols, r0, r1))
WKV_VNNI_DOTS(WKV_VNNI_DOT_ROWS)
#undef WKV_VNNI_DOT_ROWS
WKV_VNNI_ROWS(q4_k, avx512::rows_q4_k(W, X, Y, rows, cols, T, r0, r1))
WKV_VNNI_ROWS(q5_k, avx512::rows_q5_k(W, X, Y, rows, cols, T, r0, r1))
#undef WKV_VNNI_ROWS

bool rounds_x_bf16(DType t, size_t T) {
  static const bool has = cpu_features().avx512bf16;
  return has && t == DType::bf16 && T >= avx512::kOuterTokens && prompt_bf16();
}

void rows_bf16(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
               size_t r0, size_t r1) {
  if (!rounds_x_bf16(DType::bf16, T)) return avx512::rows_bf16(W, X, Y, rows, cols, T, r0, r1);
  avx512::rows_bf16_pairs(W, avx512::pack_bf16_pairs(X, T, cols), Y, rows, cols, T, r0, r1);
}

const void* pack_x(DType t, const float* X, size_t T, size_t cols) {
  if (rounds_x_bf16(t, T)) return avx512::pack_bf16_pairs(X, T, cols);
  if (!quantizes_x(t, T)) return avx512::pack_x(X, T, cols);
  thread_local avx512::I8Tokens packed;
  packed = avx512::pack_q8(X, T, cols);
  return &packed;
}

void rows_packed(DType t, const void* W, const void* xp, float* Y, size_t rows, size_t cols,
                 size_t T, size_t r0, size_t r1) {
  if (rounds_x_bf16(t, T))
    return avx512::rows_bf16_pairs(W, static_cast<const uint32_t*>(xp), Y, rows, cols, T, r0, r1);
  if (!quantizes_x(t, T)) return avx512::rows_packed(t, W, xp, Y, rows, cols, T, r0, r1);
  avx512::rows_i8(t, W, *static_cast<const avx512::I8Tokens*>(xp), Y, rows, cols, T, r0, r1);
}
}  // namespace wkv::kernels::avx512vnni
#undef WKV_VNNI_DOTS
