// AVX-512F kernels, compiled for that target only (function attributes, never -march) and
// chosen at run time.
//
// T > 1 (prompts): fp32 tiles of 6 rows x 4 tokens (24 zmm accumulators), each weight vector
// loaded once for four tokens and each token vector once for six rows; the column tail is a
// masked step, so every output element is one accumulator over the columns in order, reduced
// the same way whatever the row or token blocking (a thread split never changes a bit).
// fp32 weights are read in place; every other dtype is converted to fp32 (16-bit widened,
// quantized dequantized by the AVX2 code) once per block of rows and 64 tokens, into a
// per-thread buffer. On this project's AVX-512 Xeon (2 FMA units) the 768 x 768 x 64 tokens
// product runs at 60-83 GFLOP/s against 36-58 for the AVX2 tiles.
// T = 1 (generation) goes to the AVX2 one-token kernels: they are bound by memory bandwidth,
// which a wider vector does not change.
// GCC 12's AVX-512 headers initialise their "undefined" vectors from themselves (__Y = __Y),
// which -Wmaybe-uninitialized (or -Wuninitialized, for _mm512_reduce_add_ps) reports inside
// every inlined intrinsic.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "kernels/cpu/avx512.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/avx2.hpp"

#define WKV_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

namespace wkv::kernels::avx512 {

namespace {
WKV_AVX512 inline __mmask16 tail_mask(size_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
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

constexpr size_t kTokBlock = 64;  // a block of X stays in L2 while the rows stream past it
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

// rows_at(o, n): fp32 rows o..o+n, row stride rs floats.
template <class RowsAt>
WKV_AVX512 inline void rows_blocked(RowsAt rows_at, size_t rs, const float* X, float* Y,
                                    size_t rows, size_t cols, size_t T, size_t r0, size_t r1) {
  for (size_t tb = 0; tb < T; tb += kTokBlock) {
    const size_t te = std::min(T, tb + kTokBlock);
    size_t o = r0;
    for (; o + kRowBlock <= r1; o += kRowBlock)
      tile_block<kRowBlock>(rows_at(o, kRowBlock), rs, X, Y, rows, cols, tb, te, o);
    const size_t n = r1 - o;  // 0 .. kRowBlock - 1 rows left
    if (n == 0) continue;
    // one tile height per count of rows left
    static_assert(kRowBlock == 6);
    using Block = void (*)(const float*, size_t, const float*, float*, size_t, size_t, size_t,
                           size_t, size_t);
    static constexpr Block kLeft[kRowBlock] = {nullptr,       tile_block<1>, tile_block<2>,
                                               tile_block<3>, tile_block<4>, tile_block<5>};
    kLeft[n](rows_at(o, n), rs, X, Y, rows, cols, tb, te, o);
  }
}

WKV_AVX512 void rows_f32_tiles(const void* W, const float* X, float* Y, size_t rows, size_t cols,
                               size_t T, size_t r0, size_t r1) {
  const auto* base = static_cast<const float*>(W);
  rows_blocked([&](size_t o, size_t) { return base + o * cols; }, cols, X, Y, rows, cols, T, r0,
               r1);
}

// Any other dtype: each block of rows converted to fp32 once per token block (into a
// per-thread buffer that stays in L1), then the fp32 tiles. Widening in the tile instead would
// convert each weight once per four tokens, and the conversions share ports with the FMAs.
template <class Convert>
WKV_AVX512 void rows_converted(Convert convert, const void* W, size_t rb, const float* X, float* Y,
                               size_t rows, size_t cols, size_t T, size_t r0, size_t r1) {
  const auto* base = static_cast<const unsigned char*>(W);
  thread_local std::vector<float> buf;
  if (buf.size() < kRowBlock * cols) buf.resize(kRowBlock * cols);
  float* b = buf.data();
  rows_blocked(
      [&](size_t o, size_t n) {
        for (size_t r = 0; r < n; ++r) convert(base + (o + r) * rb, b + r * cols, cols);
        return static_cast<const float*>(b);
      },
      cols, X, Y, rows, cols, T, r0, r1);
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
}  // namespace

#define WKV_ROWS(fn, impl)                                                                        \
  void fn(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T, size_t r0, \
          size_t r1) {                                                                            \
    if (T == 1) return avx2::fn(W, X, Y, rows, cols, T, r0, r1);                                  \
    impl;                                                                                         \
  }
WKV_ROWS(rows_f32, rows_f32_tiles(W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_bf16, rows_converted(Widen<BF16>{}, W, cols * 2, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_f16, rows_converted(Widen<F16>{}, W, cols * 2, X, Y, rows, cols, T, r0, r1))
#define WKV_QROWS(q)                                                                               \
  WKV_ROWS(rows_##q, rows_converted(Dequant{DType::q}, W, dtype_bytes(DType::q, cols), X, Y, rows, \
                                    cols, T, r0, r1))
WKV_QROWS(q8_0)
WKV_QROWS(q4_0)
WKV_QROWS(q4_1)
WKV_QROWS(q5_0)
WKV_QROWS(q5_1)
WKV_QROWS(q2_k)
WKV_QROWS(q3_k)
WKV_QROWS(q4_k)
WKV_QROWS(q5_k)
WKV_QROWS(q6_k)
#undef WKV_QROWS
#undef WKV_ROWS

}  // namespace wkv::kernels::avx512
