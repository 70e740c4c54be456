// Element types and their traits (size, names in each file format), plus the scalar
// conversions between fp32 and the 16-bit float formats.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace wkv {

// Plain element types, then block-quantized ones (ggml's layouts, see core/quant.hpp): a block
// of `block` consecutive elements of one row is stored in `size` bytes.
enum class DType : uint8_t {
  f32, f16, bf16, f64, i8, u8, i16, i32, i64, boolean,
  q8_0, q4_0, q4_1, q5_0, q5_1,
  q2_k, q3_k, q4_k, q5_k, q6_k,  // ggml's k-quants: super-blocks of 256
};

struct DTypeInfo {
  DType dtype;
  uint8_t size;                    // bytes per element (per block for quantized types)
  std::string_view name;           // our name: "f32", "bf16", "q8_0", ...
  std::string_view safetensors;    // "F32", "BF16", ... ("" where safetensors has none)
  uint16_t block = 1;              // elements per block (1 for plain types)
};

const DTypeInfo& dtype_info(DType t);
inline bool dtype_is_quantized(DType t) { return dtype_info(t).block > 1; }
// Bytes per element of a plain type; for a quantized type the bytes of one block.
inline size_t dtype_size(DType t) { return dtype_info(t).size; }
// Bytes of n consecutive elements of one row (n a multiple of the block for quantized types).
inline size_t dtype_bytes(DType t, size_t n) {
  const DTypeInfo& i = dtype_info(t);
  return n / i.block * i.size;
}
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }
std::optional<DType> dtype_from_safetensors(std::string_view name);
std::optional<DType> dtype_from_name(std::string_view name);  // "q8_0" -> DType::q8_0

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace wkv
