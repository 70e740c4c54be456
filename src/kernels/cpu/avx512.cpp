// AVX-512F kernels, compiled for that target only (function attributes, never -march) and
// chosen at run time.
//
// T > 1 (prompts): as the AVX2 tile kernel, 16 lanes wide: four tokens share each loaded
// weight vector and four rows each token vector; the column tail is a masked load, so every
// output element is one accumulator over the columns in order, reduced the same way whatever
// the row or token blocking (a thread split never changes a bit). 16-bit weights are widened
// to fp32 in registers; quantized rows are dequantized to fp32 (the AVX2 dequantizer) once
// per token block into a per-thread buffer.
// T = 1 (generation) goes to the AVX2 one-token kernels: they are bound by memory bandwidth,
// which a wider vector does not change.
// GCC 12's AVX-512 headers initialise their "undefined" vectors from themselves (__Y = __Y),
// which -Wmaybe-uninitialized reports inside every inlined intrinsic.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
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

struct F32 {
  WKV_AVX512 static __m512 load(const unsigned char* row, size_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
  }
};
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

// One 16-column step of tile(): acc[r][k] += w[r][i..i+16) * x[k][i..i+16) (masked lanes 0).
template <class L, int R>
WKV_AVX512 inline void tile_step(const unsigned char* w, size_t rb, const float* const* x, size_t i,
                                 __mmask16 m, __m512 (&acc)[R][4]) {
  __m512 wv[R];
  for (int r = 0; r < R; ++r) wv[r] = L::load(w + r * rb, i, m);
  for (int k = 0; k < 4; ++k) {
    const __m512 xv = _mm512_maskz_loadu_ps(m, x[k] + i);
    for (int r = 0; r < R; ++r) acc[r][k] = _mm512_fmadd_ps(wv[r], xv, acc[r][k]);
  }
}

// Y[t..t+nt, o..o+R) for nt <= 4 tokens (a short group repeats its last token and drops the
// copies' results).
template <class L, int R>
WKV_AVX512 inline void tile(const unsigned char* w, size_t rb, const float* X, float* Y,
                            size_t rows, size_t cols, size_t t, size_t nt, size_t o) {
  const float* x[4];
  for (size_t k = 0; k < 4; ++k) x[k] = X + (t + std::min(k, nt - 1)) * cols;
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < 4; ++k) acc[r][k] = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= cols; i += 16) tile_step<L, R>(w, rb, x, i, static_cast<__mmask16>(0xFFFF), acc);
  if (i < cols) tile_step<L, R>(w, rb, x, i, tail_mask(cols - i), acc);
  for (int r = 0; r < R; ++r)
    for (size_t k = 0; k < nt; ++k) Y[(t + k) * rows + o + r] = _mm512_reduce_add_ps(acc[r][k]);
}

constexpr size_t kTokBlock = 64;  // a block of X stays in L2 while the rows stream past it
constexpr int kRowBlock = 4;

// rows_at(o, n): the bytes of rows o..o+n (row stride rb) in layout L.
template <class L, class RowsAt>
WKV_AVX512 inline void rows_blocked(RowsAt rows_at, size_t rb, const float* X, float* Y,
                                    size_t rows, size_t cols, size_t T, size_t r0, size_t r1) {
  for (size_t tb = 0; tb < T; tb += kTokBlock) {
    const size_t te = std::min(T, tb + kTokBlock);
    size_t o = r0;
    for (; o + kRowBlock <= r1; o += kRowBlock) {
      const unsigned char* w = rows_at(o, kRowBlock);
      for (size_t t = tb; t < te; t += 4)
        tile<L, kRowBlock>(w, rb, X, Y, rows, cols, t, std::min<size_t>(4, te - t), o);
    }
    for (; o < r1; ++o) {
      const unsigned char* w = rows_at(o, 1);
      for (size_t t = tb; t < te; t += 4)
        tile<L, 1>(w, rb, X, Y, rows, cols, t, std::min<size_t>(4, te - t), o);
    }
  }
}

template <class L>
WKV_AVX512 void rows_plain(const void* W, const float* X, float* Y, size_t rows, size_t cols,
                           size_t T, size_t r0, size_t r1, size_t bytes) {
  const size_t rb = cols * bytes;
  const auto* base = static_cast<const unsigned char*>(W);
  rows_blocked<L>([&](size_t o, size_t) { return base + o * rb; }, rb, X, Y, rows, cols, T, r0, r1);
}

WKV_AVX512 void rows_quant(DType t, const void* W, const float* X, float* Y, size_t rows,
                           size_t cols, size_t T, size_t r0, size_t r1) {
  const size_t rb = dtype_bytes(t, cols);
  const auto* base = static_cast<const unsigned char*>(W);
  thread_local std::vector<float> buf;
  if (buf.size() < kRowBlock * cols) buf.resize(kRowBlock * cols);
  float* b = buf.data();
  rows_blocked<F32>(
      [&](size_t o, size_t n) {
        for (size_t r = 0; r < n; ++r)
          avx2::dequant_row(t, base + (o + r) * rb, b + r * cols, cols);
        return reinterpret_cast<const unsigned char*>(b);
      },
      cols * 4, X, Y, rows, cols, T, r0, r1);
}
}  // namespace

#define WKV_ROWS(fn, impl)                                                                        \
  void fn(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T, size_t r0, \
          size_t r1) {                                                                            \
    if (T == 1) return avx2::fn(W, X, Y, rows, cols, T, r0, r1);                                  \
    impl;                                                                                         \
  }
WKV_ROWS(rows_f32, rows_plain<F32>(W, X, Y, rows, cols, T, r0, r1, 4))
WKV_ROWS(rows_bf16, rows_plain<BF16>(W, X, Y, rows, cols, T, r0, r1, 2))
WKV_ROWS(rows_f16, rows_plain<F16>(W, X, Y, rows, cols, T, r0, r1, 2))
WKV_ROWS(rows_q8_0, rows_quant(DType::q8_0, W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_q4_0, rows_quant(DType::q4_0, W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_q4_1, rows_quant(DType::q4_1, W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_q5_0, rows_quant(DType::q5_0, W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_q5_1, rows_quant(DType::q5_1, W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_q2_k, rows_quant(DType::q2_k, W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_q3_k, rows_quant(DType::q3_k, W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_q4_k, rows_quant(DType::q4_k, W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_q5_k, rows_quant(DType::q5_k, W, X, Y, rows, cols, T, r0, r1))
WKV_ROWS(rows_q6_k, rows_quant(DType::q6_k, W, X, Y, rows, cols, T, r0, r1))
#undef WKV_ROWS

}  // namespace wkv::kernels::avx512
