// Block-quantized weights: the block structs of ggml's Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 (byte
// for byte, so GGUF and rwkv.cpp data are used without repacking), with the reference
// quantizers (same rounding as ggml's reference code, so a quantized file is byte-identical)
// and dequantizers. Blocks run along a row: element j of block b is row element 32*b + j.
//   q8_0: x = d * q,            q int8
//   q4_0: x = d * (q - 8),      q 4 bits; low nibbles hold elements 0..15, high 16..31
//   q4_1: x = d * q + m,        q 4 bits
//   q5_0: x = d * (q - 16),     q 5 bits: 4 in qs as q4_0, the 5th bit of element j in qh bit j
//   q5_1: x = d * q + m,        q 5 bits, as q5_0
// d and m are IEEE fp16.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.hpp"

namespace wkv::quant {

constexpr size_t kBlock = 32;

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kBlock];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kBlock / 2];
};
struct BlockQ4_1 {
  uint16_t d, m;
  uint8_t qs[kBlock / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kBlock / 2];
};
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kBlock / 2];
};
static_assert(sizeof(BlockQ8_0) == 34 && alignof(BlockQ8_0) == 2);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);

// n elements (a multiple of kBlock) of `src` into n/32 blocks of `t` at `dst`. `t` must be a
// quantized type.
void quantize_row(DType t, const float* src, void* dst, size_t n);
// The reverse: n elements of type `t` (quantized or f32/f16/bf16) at `src` into fp32.
void dequantize_row(DType t, const void* src, float* dst, size_t n);

}  // namespace wkv::quant
