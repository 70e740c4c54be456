// AVX2 + FMA + F16C kernels (cpu/avx2.cpp, compiled with target attributes and chosen at run
// time); signatures as in kernels.hpp.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.hpp"

namespace wkv::kernels::avx2 {

// A vector grown (never shrunk) to n elements past its first 64-byte boundary; returns that
// boundary (per-thread scratch of the prompt kernels, so their vector loads never split a line).
template <class E>
E* grow_aligned(std::vector<E>& buf, size_t n) {
  static_assert(64 % sizeof(E) == 0);
  constexpr size_t kPad = 64 / sizeof(E);
  if (buf.size() < n + kPad) buf.resize(n + kPad);
  const auto at = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + (64 - at % 64) % 64 / sizeof(E);
}

// The sum of 32 signed int8 levels q, by sad on the biased bytes q ^ 0x80 (the integer dots
// of this level and avx512's take a block's level sum for the offsets).
__attribute__((target("avx2"))) inline int32_t biased_level_sum(__m256i u) {
  const __m256i sad = _mm256_sad_epu8(u, _mm256_setzero_si256());
  const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
  return static_cast<int32_t>(_mm_cvtsi128_si64(_mm_add_epi64(h, _mm_unpackhi_epi64(h, h)))) -
         32 * 128;
}
__attribute__((target("avx2"))) inline int32_t level_sum(__m256i q) {
  return biased_level_sum(_mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80))));
}

void matmul_f32(const float* W, const float* X, float* Y, size_t rows, size_t cols, size_t T);
void matmul_bf16(const unsigned short* W, const float* X, float* Y, size_t rows, size_t cols,
                 size_t T);
#define WKV_AVX2_ROWS(fn)                                                                         \
  void fn(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T, size_t r0, \
          size_t r1);
WKV_AVX2_ROWS(rows_f32)
WKV_AVX2_ROWS(rows_bf16)
WKV_AVX2_ROWS(rows_f16)
WKV_AVX2_ROWS(rows_q8_0)
WKV_AVX2_ROWS(rows_q4_0)
WKV_AVX2_ROWS(rows_q4_1)
WKV_AVX2_ROWS(rows_q5_0)
WKV_AVX2_ROWS(rows_q5_1)
WKV_AVX2_ROWS(rows_q2_k)
WKV_AVX2_ROWS(rows_q3_k)
WKV_AVX2_ROWS(rows_q4_k)
WKV_AVX2_ROWS(rows_q5_k)
WKV_AVX2_ROWS(rows_q6_k)
#undef WKV_AVX2_ROWS
// Prompts from kOuterTokens tokens run outer-product tiles on X packed by pack_x (into the
// calling thread's buffer) and read by rows_packed, as Table::pack_x / rows_packed.
constexpr size_t kOuterTokens = 16;
const void* pack_x(const float* X, size_t T, size_t cols);
void rows_packed(DType t, const void* W, const void* xp, float* Y, size_t rows, size_t cols,
                 size_t T, size_t r0, size_t r1);
// One row of a quantized dtype dequantized to fp32 (cols a multiple of its block), exactly as
// quant::dequantize_row; for the wider kernels' T > 1 paths.
void dequant_row(DType t, const void* row, float* out, size_t cols);
void wkv7_step(float* S, const float* r, const float* w, const float* k, const float* v,
               const float* a, const float* b, float* y, size_t H, size_t N);
void wkv5_step(float* S, const float* r, const float* w, const float* u, const float* k,
               const float* v, float* y, size_t H, size_t N);
void exp_f32(const float* x, float* y, size_t n);
void sigmoid_f32(const float* x, float* y, size_t n);
void relu_sq_f32(const float* x, float* y, size_t n);
void layer_norm(const float* x, const float* w, const float* b, float* y, size_t n, float eps);

}  // namespace wkv::kernels::avx2
