#include "core/dtype.hpp"

#include <array>
#include <cmath>

namespace wkv {

namespace {
constexpr std::array<DTypeInfo, 20> kTable = {{
    {DType::f32, 4, "f32", "F32"},
    {DType::f16, 2, "f16", "F16"},
    {DType::bf16, 2, "bf16", "BF16"},
    {DType::f64, 8, "f64", "F64"},
    {DType::i8, 1, "i8", "I8"},
    {DType::u8, 1, "u8", "U8"},
    {DType::i16, 2, "i16", "I16"},
    {DType::i32, 4, "i32", "I32"},
    {DType::i64, 8, "i64", "I64"},
    {DType::boolean, 1, "bool", "BOOL"},
    {DType::q8_0, 34, "q8_0", "", 32},
    {DType::q4_0, 18, "q4_0", "", 32},
    {DType::q4_1, 20, "q4_1", "", 32},
    {DType::q5_0, 22, "q5_0", "", 32},
    {DType::q5_1, 24, "q5_1", "", 32},
    {DType::q2_k, 84, "q2_k", "", 256},
    {DType::q3_k, 110, "q3_k", "", 256},
    {DType::q4_k, 144, "q4_k", "", 256},
    {DType::q5_k, 176, "q5_k", "", 256},
    {DType::q6_k, 210, "q6_k", "", 256},
}};
static_assert([] {
  for (size_t i = 0; i < kTable.size(); ++i)
    if (static_cast<size_t>(kTable[i].dtype) != i) return false;
  return true;
}(), "kTable rows must follow the DType enum order");
}  // namespace

const DTypeInfo& dtype_info(DType t) { return kTable[static_cast<size_t>(t)]; }

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const auto& e : kTable)
    if (!e.safetensors.empty() && e.safetensors == name) return e.dtype;
  return std::nullopt;
}

// Case-insensitive, so ggml's spellings ("Q4_K", "Q8_0") name the same types.
std::optional<DType> dtype_from_name(std::string_view name) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  for (const auto& e : kTable) {
    if (e.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) same = lower(name[i]) == e.name[i];
    if (same) return e.dtype;
  }
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: value = man * 2^-24
      float f = std::ldexp(static_cast<float>(man), -24);
      std::memcpy(&u, &f, 4);
      u |= sign;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (absu >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (absu < 0x38800000u) {  // subnormal or zero in f16: round(|f| * 2^24)
    float a;
    std::memcpy(&a, &absu, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
  }
  // normal: rebias exponent, round mantissa to nearest even
  uint32_t v = absu - (112u << 23);
  v += 0xfffu + ((v >> 13) & 1u);
  return static_cast<uint16_t>(sign | (v >> 13));
}

}  // namespace wkv
