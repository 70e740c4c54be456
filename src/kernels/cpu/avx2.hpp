// AVX2 + FMA + F16C kernels (cpu/avx2.cpp, compiled with target attributes and chosen at run
// time); signatures as in kernels.hpp.
#pragma once

#include <xmmintrin.h>

#include <algorithm>
#include <cstddef>

#include "core/dtype.hpp"

namespace wkv::kernels::avx2 {

// Software prefetch for the one-token kernels (these and avx512's), which stream each weight
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

}  // namespace wkv::kernels::avx2
