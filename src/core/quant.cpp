#include "core/quant.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"

namespace wkv::quant {
namespace {

// The value of largest magnitude, with its sign (the scale of the symmetric formats takes the
// sign so that the extreme maps exactly onto the most negative level).
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (size_t j = 0; j < kBlock; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

void min_max(const float* x, float* lo, float* hi) {
  float mn = x[0], mx = x[0];
  for (size_t j = 1; j < kBlock; ++j) {
    mn = std::min(mn, x[j]);
    mx = std::max(mx, x[j]);
  }
  *lo = mn;
  *hi = mx;
}

void q8_0(const float* x, BlockQ8_0* b) {
  float amax = 0.0f;
  for (size_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = f32_to_f16(d);
  for (size_t j = 0; j < kBlock; ++j) b->qs[j] = static_cast<int8_t>(std::round(x[j] * id));
}

void q4_0(const float* x, BlockQ4_0* b) {
  const float d = signed_absmax(x) / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = f32_to_f16(d);
  for (size_t j = 0; j < kBlock / 2; ++j) {
    const uint8_t lo = static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x[j] * id + 8.5f)));
    const uint8_t hi =
        static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x[j + 16] * id + 8.5f)));
    b->qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

void q4_1(const float* x, BlockQ4_1* b) {
  float mn, mx;
  min_max(x, &mn, &mx);
  const float d = (mx - mn) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = f32_to_f16(d);
  b->m = f32_to_f16(mn);
  for (size_t j = 0; j < kBlock / 2; ++j) {
    const uint8_t lo =
        static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>((x[j] - mn) * id + 0.5f)));
    const uint8_t hi =
        static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>((x[j + 16] - mn) * id + 0.5f)));
    b->qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

void pack5(const uint8_t* q, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (size_t j = 0; j < kBlock / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
    qh |= static_cast<uint32_t>((q[j] >> 4) & 1u) << j;
    qh |= static_cast<uint32_t>((q[j + 16] >> 4) & 1u) << (j + 16);
  }
  std::memcpy(qh_bytes, &qh, 4);  // little-endian, as ggml
}

void q5_0(const float* x, BlockQ5_0* b) {
  const float d = signed_absmax(x) / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = f32_to_f16(d);
  uint8_t q[kBlock];
  for (size_t j = 0; j < kBlock; ++j)
    q[j] = static_cast<uint8_t>(std::min<int>(31, static_cast<int8_t>(x[j] * id + 16.5f)));
  pack5(q, b->qs, b->qh);
}

void q5_1(const float* x, BlockQ5_1* b) {
  float mn, mx;
  min_max(x, &mn, &mx);
  const float d = (mx - mn) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = f32_to_f16(d);
  b->m = f32_to_f16(mn);
  uint8_t q[kBlock];
  for (size_t j = 0; j < kBlock; ++j) q[j] = static_cast<uint8_t>((x[j] - mn) * id + 0.5f);
  pack5(q, b->qs, b->qh);
}

// 5-bit level of element j (0..31) from qs/qh.
inline int level5(const uint8_t* qs, const uint8_t* qh_bytes, size_t j) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const int lo = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
  return lo | static_cast<int>(((qh >> j) & 1u) << 4);
}

}  // namespace

void quantize_row(DType t, const float* src, void* dst, size_t n) {
  WKV_ASSERT(n % kBlock == 0);
  const size_t nb = n / kBlock;
  for (size_t i = 0; i < nb; ++i) {
    const float* x = src + i * kBlock;
    switch (t) {
      case DType::q8_0: q8_0(x, static_cast<BlockQ8_0*>(dst) + i); break;
      case DType::q4_0: q4_0(x, static_cast<BlockQ4_0*>(dst) + i); break;
      case DType::q4_1: q4_1(x, static_cast<BlockQ4_1*>(dst) + i); break;
      case DType::q5_0: q5_0(x, static_cast<BlockQ5_0*>(dst) + i); break;
      case DType::q5_1: q5_1(x, static_cast<BlockQ5_1*>(dst) + i); break;
      default: WKV_ASSERT(false && "quantize_row: not a quantized type");
    }
  }
}

void dequantize_row(DType t, const void* src, float* dst, size_t n) {
  const auto* p = static_cast<const unsigned char*>(src);
  switch (t) {
    case DType::f32: std::memcpy(dst, src, n * 4); return;
    case DType::f16:
    case DType::bf16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = t == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    default: break;
  }
  WKV_ASSERT(dtype_is_quantized(t) && n % kBlock == 0);
  const size_t nb = n / kBlock;
  for (size_t i = 0; i < nb; ++i) {
    float* y = dst + i * kBlock;
    switch (t) {
      case DType::q8_0: {
        BlockQ8_0 b;
        std::memcpy(&b, p + i * sizeof b, sizeof b);
        const float d = f16_to_f32(b.d);
        for (size_t j = 0; j < kBlock; ++j) y[j] = d * b.qs[j];
        break;
      }
      case DType::q4_0: {
        BlockQ4_0 b;
        std::memcpy(&b, p + i * sizeof b, sizeof b);
        const float d = f16_to_f32(b.d);
        for (size_t j = 0; j < 16; ++j) {
          y[j] = d * ((b.qs[j] & 0x0f) - 8);
          y[j + 16] = d * ((b.qs[j] >> 4) - 8);
        }
        break;
      }
      case DType::q4_1: {
        BlockQ4_1 b;
        std::memcpy(&b, p + i * sizeof b, sizeof b);
        const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
        for (size_t j = 0; j < 16; ++j) {
          y[j] = d * (b.qs[j] & 0x0f) + m;
          y[j + 16] = d * (b.qs[j] >> 4) + m;
        }
        break;
      }
      case DType::q5_0: {
        BlockQ5_0 b;
        std::memcpy(&b, p + i * sizeof b, sizeof b);
        const float d = f16_to_f32(b.d);
        for (size_t j = 0; j < kBlock; ++j) y[j] = d * (level5(b.qs, b.qh, j) - 16);
        break;
      }
      case DType::q5_1: {
        BlockQ5_1 b;
        std::memcpy(&b, p + i * sizeof b, sizeof b);
        const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
        for (size_t j = 0; j < kBlock; ++j) y[j] = d * level5(b.qs, b.qh, j) + m;
        break;
      }
      default: WKV_ASSERT(false && "dequantize_row: unsupported type");
    }
  }
}

}  // namespace wkv::quant
