// AVX-512 kernels (cpu/avx512.cpp) and AMX-BF16 tile kernels (cpu/amx.cpp), compiled with
// target attributes and chosen at run time; row-range signatures as in kernels.hpp.
#pragma once

#include <cstddef>

#include "core/dtype.hpp"

namespace wkv::kernels {

#define WKV_SIMD_ROWS(fn)                                                                         \
  void fn(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T, size_t r0, \
          size_t r1);
#define WKV_SIMD_ROWS_ALL  \
  WKV_SIMD_ROWS(rows_f32)  \
  WKV_SIMD_ROWS(rows_bf16) \
  WKV_SIMD_ROWS(rows_f16)  \
  WKV_SIMD_ROWS(rows_q8_0) \
  WKV_SIMD_ROWS(rows_q4_0) \
  WKV_SIMD_ROWS(rows_q4_1) \
  WKV_SIMD_ROWS(rows_q5_0) \
  WKV_SIMD_ROWS(rows_q5_1) \
  WKV_SIMD_ROWS(rows_q2_k) \
  WKV_SIMD_ROWS(rows_q3_k) \
  WKV_SIMD_ROWS(rows_q4_k) \
  WKV_SIMD_ROWS(rows_q5_k) \
  WKV_SIMD_ROWS(rows_q6_k)

// AVX-512F: T > 1 in fp32 with 16-wide FMAs (weights converted or dequantized to fp32);
// T = 1: 512-bit dots for q4_0/q4_1/q5_0/q5_1 and q4_k/q5_k/q6_k; f32/bf16/f16/q8_0 in four
// prefetched streams; the AVX2 one-token kernels for q2_k and q3_k.
namespace avx512 {
WKV_SIMD_ROWS_ALL
// Products over kOuterTokens tokens or more: X packed once per product (into the calling
// thread's buffer, valid until that thread packs again; read by every thread of the product),
// then rows [r0, r1) of Y = X W^T for any weight dtype, the same bits as the row kernels.
constexpr size_t kOuterTokens = 16;
const void* pack_x(const float* X, size_t T, size_t cols);
void rows_packed(DType t, const void* W, const void* xp, float* Y, size_t rows, size_t cols,
                 size_t T, size_t r0, size_t r1);
// The RWKV-7 recurrence, four state rows at a time (head sizes a multiple of 16; others go to
// the AVX2 step).
void wkv7_step(float* S, const float* r, const float* w, const float* k, const float* v,
               const float* a, const float* b, float* y, size_t H, size_t N);
}  // namespace avx512

// AVX-512 with VNNI: the avx512 level with these rows' one-token dots built on vpdpbusd (the
// same bits in fewer instructions).
namespace avx512vnni {
WKV_SIMD_ROWS(rows_q8_0)
WKV_SIMD_ROWS(rows_q4_0)
WKV_SIMD_ROWS(rows_q4_1)
WKV_SIMD_ROWS(rows_q5_0)
WKV_SIMD_ROWS(rows_q5_1)
WKV_SIMD_ROWS(rows_q4_k)
WKV_SIMD_ROWS(rows_q5_k)
// From avx512::kOuterTokens tokens, products of q8_0, q4_0, q4_1, q5_0, q5_1, q4_k and q5_k
// weights quantize the tokens to q8 per 32 columns (as generation does) and sum each block in
// integers (vpdpbusd); quantizes_x says which products do. pack_x / rows_packed: the two-step form
// (as avx512's, by dtype).
bool quantizes_x(DType t, size_t T);
// bf16 weights over kOuterTokens tokens or more, when set_prompt_bf16 asks for it and the CPU
// has AVX512-BF16: the tokens rounded to bf16, vdpbf16ps (rows_bf16, pack_x, rows_packed).
bool rounds_x_bf16(DType t, size_t T);
WKV_SIMD_ROWS(rows_bf16)
const void* pack_x(DType t, const float* X, size_t T, size_t cols);
void rows_packed(DType t, const void* W, const void* xp, float* Y, size_t rows, size_t cols,
                 size_t T, size_t r0, size_t r1);
}  // namespace avx512vnni

// AMX-BF16 (with AVX-512 BF16 for the conversions): T >= kMinTokens through the tiles, in the
// split-bf16 form that keeps fp32-level accuracy (see amx.cpp); fewer tokens go to avx512.
namespace amx {
constexpr size_t kMinTokens = 8;
// Whether the OS lets this process use the tiles (asks for the permission once).
bool os_permits();
// X [T, cols] converted once per product into the tiles' layout, in a buffer of the calling
// thread (valid until that thread packs again); read by every thread of the product.
const void* pack_x(const float* X, size_t T, size_t cols);
// Rows [r0, r1) of Y = X W^T from a pack_x result (same contract as the row kernels).
void rows_packed(DType t, const void* W, const void* xp, float* Y, size_t rows, size_t cols,
                 size_t T, size_t r0, size_t r1);
WKV_SIMD_ROWS_ALL
}  // namespace amx

#undef WKV_SIMD_ROWS_ALL
#undef WKV_SIMD_ROWS

}  // namespace wkv::kernels
