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
//
// The k-quants (ggml's Q2_K .. Q6_K) group 256 elements into a super-block with fp16 scales
// d (and dmin) and small per-sub-block scales (and mins) in 4, 6 or 8 bits:
//   q2_k: 16 sub-blocks of 16: x = d * (sc & 15) * q - dmin * (sc >> 4),     q 2 bits
//   q3_k: 16 sub-blocks of 16: x = d * (s - 32) * (q - 4*(hbit == 0)),       q 2+1 bits, s 6 bits
//   q4_k:  8 sub-blocks of 32: x = d * s * q - dmin * m,                     q 4 bits, s/m 6 bits
//   q5_k:  8 sub-blocks of 32: as q4_k with a 5th bit per element in qh
//   q6_k: 16 sub-blocks of 16: x = d * s * (q - 32), s int8,                 q 4+2 bits
// (bit positions in quant.cpp's dequantizers; each follows ggml's dequantize_row_q*_K).
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
constexpr size_t kBlockK = 256;  // elements per k-quant super-block (ggml's QK_K)

struct BlockQ2_K {
  uint8_t scales[kBlockK / 16];  // low nibble scale, high nibble min, per 16 elements
  uint8_t qs[kBlockK / 4];
  uint16_t d, dmin;
};
struct BlockQ3_K {
  uint8_t hmask[kBlockK / 8];
  uint8_t qs[kBlockK / 4];
  uint8_t scales[12];  // 16 six-bit scales
  uint16_t d;
};
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];  // 8 six-bit scales and 8 six-bit mins
  uint8_t qs[kBlockK / 2];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[kBlockK / 8];
  uint8_t qs[kBlockK / 2];
};
struct BlockQ6_K {
  uint8_t ql[kBlockK / 2];
  uint8_t qh[kBlockK / 4];
  int8_t scales[kBlockK / 16];
  uint16_t d;
};

static_assert(sizeof(BlockQ8_0) == 34 && alignof(BlockQ8_0) == 2);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);

// n elements (a multiple of t's block: 32, or 256 for the k-quants) of `src` into blocks of
// `t` at `dst`. `t` must be a quantized type.
void quantize_row(DType t, const float* src, void* dst, size_t n);
// The reverse: n elements of type `t` (quantized or f32/f16/bf16) at `src` into fp32.
void dequantize_row(DType t, const void* src, float* dst, size_t n);

// The 6-bit scale and min of sub-block j (0..7) of a q4_k/q5_k block's 12 packed bytes.
inline void scale_min_k4(const uint8_t* s, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// The 16 signed scales (s - 32) of a q3_k block's 12 packed bytes.
void scales_q3_k(const uint8_t* packed, int8_t* out);

}  // namespace wkv::quant
