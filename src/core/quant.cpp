#include "core/quant.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"

namespace wkv::quant {
namespace {

// The value of largest magnitude among x[0..n), with its sign (the scale of the symmetric
// formats takes the sign so that the extreme maps exactly onto the most negative level);
// *amax = its magnitude. The one-argument form covers one 32-value block.
float signed_absmax(const float* x, int n, float* amax) {
  float a = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > a) {
      a = std::fabs(x[i]);
      max = x[i];
    }
  *amax = a;
  return max;
}

float signed_absmax(const float* x) {
  float amax;
  return signed_absmax(x, static_cast<int>(kBlock), &amax);
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

// C's float-to-int truncation, as ggml's quantizers cast, for the small values they produce;
// NaN or out-of-range values (which only NaN or infinite weights produce) give 0 where the
// cast would be undefined behaviour.
inline int trunc_small(float v) { return v > -129.0f && v < 256.0f ? static_cast<int>(v) : 0; }

void q8_0(const float* x, BlockQ8_0* b) {
  float amax = 0.0f;
  for (size_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = f32_to_f16(d);
  for (size_t j = 0; j < kBlock; ++j) b->qs[j] = static_cast<int8_t>(trunc_small(std::round(x[j] * id)));
}

void q4_0(const float* x, BlockQ4_0* b) {
  const float d = signed_absmax(x) / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = f32_to_f16(d);
  for (size_t j = 0; j < kBlock / 2; ++j) {
    const uint8_t lo =
        static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(trunc_small(x[j] * id + 8.5f))));
    const uint8_t hi = static_cast<uint8_t>(
        std::min<int>(15, static_cast<int8_t>(trunc_small(x[j + 16] * id + 8.5f))));
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
    const uint8_t lo = static_cast<uint8_t>(
        std::min<int>(15, static_cast<int8_t>(trunc_small((x[j] - mn) * id + 0.5f))));
    const uint8_t hi = static_cast<uint8_t>(
        std::min<int>(15, static_cast<int8_t>(trunc_small((x[j + 16] - mn) * id + 0.5f))));
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
    q[j] = static_cast<uint8_t>(
        std::min<int>(31, static_cast<int8_t>(trunc_small(x[j] * id + 16.5f))));
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
  for (size_t j = 0; j < kBlock; ++j) q[j] = static_cast<uint8_t>(trunc_small((x[j] - mn) * id + 0.5f));
  pack5(q, b->qs, b->qh);
}

// 5-bit level of element j (0..31) from qs/qh.
inline int level5(const uint8_t* qs, const uint8_t* qh_bytes, size_t j) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const int lo = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
  return lo | static_cast<int>(((qh >> j) & 1u) << 4);
}

// ---- k-quant quantizers ----
// These follow the algorithms of ggml's reference quantizers (quantize_row_q*_K_ref, without an
// importance matrix) step by step, with the same float operations in the same order, so that
// the blocks come out byte-identical: a least-squares search over candidate scales per
// sub-block, then the sub-block scales (and mins) quantized against the largest one.

// Round to nearest, ties to even, for |x| < 2^22: adding 1.5 * 2^23 leaves the integer in the
// low mantissa bits (ggml's nearest_int). Unlike a float-to-int cast it is defined for any x
// (NaN and huge values give some int, which the callers clamp), so a model with NaN weights
// quantizes to garbage, not to undefined behaviour.
inline int nearest(float x) {
  const float v = x + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

constexpr float kGroupMaxEps = 1e-15f;

// Symmetric levels L in [0, 2*nmax) for n values, weighted by x^2, trying 19 scales around
// -nmax / max; returns the scale (x ~ scale * (L - nmax)).
float fit_symmetric(int n, int nmax, const float* x, int8_t* L) {
  float amax;
  const float max = signed_absmax(x, n, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  const auto level = [&](float iscale, int i) {
    return std::max(-nmax, std::min(nmax - 1, nearest(iscale * x[i])));
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale, i);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const float l = static_cast<float>(level(iscale, i));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + level(iscale, i));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Symmetric levels for q3_k: start from -nmax / max, then move single levels while the
// x^2-weighted fit improves (at most 5 passes). L in [0, 2*nmax); returns the scale.
float fit_symmetric_greedy(int n, int nmax, const float* x, int8_t* L) {
  float amax;
  const float max = signed_absmax(x, n, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest(iscale * x[i])));
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx <= 0) continue;
      float sl2 = suml2 - w * li * li;
      const int nl = std::max(-nmax, std::min(nmax - 1, nearest(x[i] * sl2 / slx)));
      if (nl == L[i]) continue;
      slx += w * x[i] * static_cast<float>(nl);
      sl2 += w * static_cast<float>(nl) * static_cast<float>(nl);
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<int8_t>(nl);
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return sumlx / suml2;
}

// Asymmetric levels L in [0, nmax] with x ~ scale * L - min, weighted least squares over
// nstep + 1 candidate scales (rmin + rdelta * is + nmax) / (max - min); the error measure is
// the weighted absolute (use_mad) or squared difference. Returns the scale; *neg_min = min.
float fit_affine(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                 float* neg_min, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t{0});
    *neg_min = -min;
    return 0.0f;
  }
  const auto err = [use_mad](float d) { return use_mad ? std::fabs(d) : d * d; };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(0, std::min(nmax, nearest(iscale * (x[i] - min))));
    L[i] = static_cast<uint8_t>(l);
    best += weights[i] * err(scale * static_cast<float>(l) + min - x[i]);
  }
  uint8_t aux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest(iscale * (x[i] - min))));
      aux[i] = static_cast<uint8_t>(l);
      const float w = weights[i], fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float e = 0;
    for (int i = 0; i < n; ++i)
      e += weights[i] * err(this_scale * static_cast<float>(aux[i]) + this_min - x[i]);
    if (e < best) {
      std::copy(aux, aux + n, L);
      best = e;
      scale = this_scale;
      min = this_min;
    }
  }
  *neg_min = -min;
  return scale;
}

void q2_k(const float* x, BlockQ2_K* y) {
  uint8_t L[kBlockK];
  float scales[16], mins[16], weights[16];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = fit_affine(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  if (max_scale > 0) {
    const float iscale = 15.f / max_scale;
    for (int j = 0; j < 16; ++j) y->scales[j] = static_cast<uint8_t>(nearest(iscale * scales[j]));
    y->d = f32_to_f16(max_scale / 15.f);
  } else {
    std::memset(y->scales, 0, sizeof y->scales);
    y->d = f32_to_f16(0.f);
  }
  if (max_min > 0) {
    const float iscale = 15.f / max_min;
    for (int j = 0; j < 16; ++j)
      y->scales[j] = static_cast<uint8_t>(y->scales[j] | (nearest(iscale * mins[j]) << 4));
    y->dmin = f32_to_f16(max_min / 15.f);
  } else {
    y->dmin = f32_to_f16(0.f);
  }
  for (int j = 0; j < 16; ++j) {
    const float d = f16_to_f32(y->d) * static_cast<float>(y->scales[j] & 15);
    if (d == 0.0f) continue;
    const float dm = f16_to_f32(y->dmin) * static_cast<float>(y->scales[j] >> 4);
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<uint8_t>(std::max(0, std::min(3, nearest((x[16 * j + i] + dm) / d))));
  }
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* q = L + 128 * h + l;
      y->qs[32 * h + l] = static_cast<uint8_t>(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
    }
}

void q3_k(const float* x, BlockQ3_K* y) {
  int8_t L[kBlockK];
  float scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric_greedy(16, 4, x + 16 * j, L + 16 * j);
  float amax;
  const float max_scale = signed_absmax(scales, 16, &amax);
  std::memset(y->scales, 0, sizeof y->scales);
  if (max_scale != 0.0f) {
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < 16; ++j) {
      const int l = std::max(-32, std::min(31, nearest(iscale * scales[j]))) + 32;
      if (j < 8)
        y->scales[j] = static_cast<uint8_t>(l & 15);
      else
        y->scales[j - 8] = static_cast<uint8_t>(y->scales[j - 8] | ((l & 15) << 4));
      y->scales[8 + j % 4] = static_cast<uint8_t>(y->scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
    }
    y->d = f32_to_f16(1 / iscale);
  } else {
    y->d = f32_to_f16(0.f);
  }
  int8_t sc[16];
  scales_q3_k(y->scales, sc);
  for (int j = 0; j < 16; ++j) {
    const float d = f16_to_f32(y->d) * static_cast<float>(sc[j]);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<int8_t>(std::max(-4, std::min(3, nearest(x[16 * j + i] / d))) + 4);
  }
  // The third bit of element j goes to bit j / 32 of hmask[j % 32].
  std::memset(y->hmask, 0, sizeof y->hmask);
  for (int j = 0; j < 256; ++j)
    if (L[j] > 3) {
      y->hmask[j % 32] = static_cast<uint8_t>(y->hmask[j % 32] | (1 << (j / 32)));
      L[j] = static_cast<int8_t>(L[j] - 4);
    }
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int8_t* q = L + 128 * h + l;
      y->qs[32 * h + l] = static_cast<uint8_t>(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
    }
}

// q4_k (nmax 15) and q5_k (nmax 31): 8 sub-blocks of 32 with 6-bit scales and mins. Fills
// d, dmin, scales and the levels L[256] in [0, nmax].
void q45_k(const float* x, int nmax, uint16_t* d16, uint16_t* dmin16, uint8_t* packed,
           uint8_t* L) {
  float scales[8], mins[8], weights[32];
  float max_scale = 0, max_min = 0;
  const bool q4 = nmax == 15;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_affine(32, nmax, xs, weights, L + 32 * j, &mins[j], q4 ? -1.f : -0.5f, 0.1f,
                           q4 ? 20 : 15, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = static_cast<uint8_t>(std::min(63, nearest(inv_scale * scales[j]) & 0xff));
    const uint8_t lm = static_cast<uint8_t>(std::min(63, nearest(inv_min * mins[j]) & 0xff));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 15) | ((lm & 15) << 4));
      packed[j - 4] = static_cast<uint8_t>(packed[j - 4] | ((ls >> 4) << 6));
      packed[j] = static_cast<uint8_t>(packed[j] | ((lm >> 4) << 6));
    }
  }
  *d16 = f32_to_f16(max_scale / 63.f);
  *dmin16 = f32_to_f16(max_min / 63.f);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scale_min_k4(packed, j, &sc, &m);
    const float d = f16_to_f32(*d16) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = f16_to_f32(*dmin16) * static_cast<float>(m);
    for (int i = 0; i < 32; ++i)
      L[32 * j + i] =
          static_cast<uint8_t>(std::max(0, std::min(nmax, nearest((x[32 * j + i] + dm) / d))));
  }
}

void q4_k(const float* x, BlockQ4_K* y) {
  uint8_t L[kBlockK];
  q45_k(x, 15, &y->d, &y->dmin, y->scales, L);
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l)
      y->qs[32 * g + l] = static_cast<uint8_t>(L[64 * g + l] | (L[64 * g + l + 32] << 4));
}

void q5_k(const float* x, BlockQ5_K* y) {
  uint8_t L[kBlockK];
  q45_k(x, 31, &y->d, &y->dmin, y->scales, L);
  std::memset(y->qh, 0, sizeof y->qh);
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l) {
      int l1 = L[64 * g + l], l2 = L[64 * g + l + 32];
      if (l1 > 15) {
        l1 -= 16;
        y->qh[l] = static_cast<uint8_t>(y->qh[l] | (1 << (2 * g)));
      }
      if (l2 > 15) {
        l2 -= 16;
        y->qh[l] = static_cast<uint8_t>(y->qh[l] | (2 << (2 * g)));
      }
      y->qs[32 * g + l] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
}

void q6_k(const float* x, BlockQ6_K* y) {
  int8_t L[kBlockK];
  float scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
  float max_abs;
  const float max_scale = signed_absmax(scales, 16, &max_abs);
  if (max_abs < kGroupMaxEps) {
    std::memset(y, 0, sizeof *y);
    return;
  }
  const float iscale = -128.f / max_scale;
  y->d = f32_to_f16(1 / iscale);
  for (int j = 0; j < 16; ++j)
    y->scales[j] = static_cast<int8_t>(std::min(127, nearest(iscale * scales[j])));
  for (int j = 0; j < 16; ++j) {
    const float d = f16_to_f32(y->d) * static_cast<float>(y->scales[j]);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<int8_t>(std::max(-32, std::min(31, nearest(x[16 * j + i] / d))) + 32);
  }
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int8_t* q = L + 128 * h + l;
      y->ql[64 * h + l] = static_cast<uint8_t>((q[0] & 15) | ((q[64] & 15) << 4));
      y->ql[64 * h + l + 32] = static_cast<uint8_t>((q[32] & 15) | ((q[96] & 15) << 4));
      y->qh[32 * h + l] = static_cast<uint8_t>((q[0] >> 4) | ((q[32] >> 4) << 2) |
                                               ((q[64] >> 4) << 4) | ((q[96] >> 4) << 6));
    }
}

// ---- k-quant dequantizers (ggml's element order) ----

void deq_q2_k(const BlockQ2_K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  const uint8_t* q = b.qs;
  size_t is = 0;
  for (size_t half = 0; half < 2; ++half, q += 32) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (size_t part = 0; part < 2; ++part) {
        const uint8_t sc = b.scales[is++];
        const float dl = d * static_cast<float>(sc & 15), ml = dmin * static_cast<float>(sc >> 4);
        for (size_t l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
      }
    }
  }
}

void deq_q3_k(const BlockQ3_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  int8_t sc[16];
  scales_q3_k(b.scales, sc);
  const uint8_t* q = b.qs;
  uint8_t m = 1;
  size_t is = 0;
  for (size_t half = 0; half < 2; ++half, q += 32) {
    for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
      for (size_t part = 0; part < 2; ++part) {
        const float dl = d * static_cast<float>(sc[is++]);
        for (size_t l = 0; l < 16; ++l) {
          const size_t e = l + 16 * part;
          const int v = ((q[e] >> shift) & 3) - ((b.hmask[e] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
      }
    }
  }
}

// q4_k and q5_k: qh == nullptr for q4_k.
void deq_q45_k(uint16_t d16, uint16_t dmin16, const uint8_t* scales, const uint8_t* qh,
               const uint8_t* qs, float* y) {
  const float d = f16_to_f32(d16), dmin = f16_to_f32(dmin16);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, mn;
    scale_min_k4(scales, j, &sc, &mn);
    const float dl = d * sc, ml = dmin * mn;
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = 4 * (j % 2);
    for (size_t l = 0; l < 32; ++l) {
      int v = (q[l] >> shift) & 15;
      if (qh && (qh[l] >> j) & 1) v += 16;
      *y++ = dl * static_cast<float>(v) - ml;
    }
  }
}

void deq_q6_k(const BlockQ6_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const uint8_t* ql = b.ql;
  const uint8_t* qh = b.qh;
  const int8_t* sc = b.scales;
  for (size_t half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
    for (size_t l = 0; l < 32; ++l) {
      const size_t is = l / 16;
      const int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

template <class B>
B load_block(const unsigned char* p) {
  B b;
  std::memcpy(&b, p, sizeof b);
  return b;
}

bool dequantize_k(DType t, const unsigned char* p, float* dst, size_t n) {
  if (dtype_info(t).block != kBlockK) return false;
  WKV_ASSERT(n % kBlockK == 0);
  const size_t bs = dtype_size(t);
  for (size_t i = 0; i < n / kBlockK; ++i, p += bs, dst += kBlockK) {
    switch (t) {
      case DType::q2_k: deq_q2_k(load_block<BlockQ2_K>(p), dst); break;
      case DType::q3_k: deq_q3_k(load_block<BlockQ3_K>(p), dst); break;
      case DType::q4_k: {
        const auto b = load_block<BlockQ4_K>(p);
        deq_q45_k(b.d, b.dmin, b.scales, nullptr, b.qs, dst);
        break;
      }
      case DType::q5_k: {
        const auto b = load_block<BlockQ5_K>(p);
        deq_q45_k(b.d, b.dmin, b.scales, b.qh, b.qs, dst);
        break;
      }
      case DType::q6_k: deq_q6_k(load_block<BlockQ6_K>(p), dst); break;
      default: WKV_ASSERT(false && "dequantize_k: not a k-quant");
    }
  }
  return true;
}

}  // namespace

void scales_q3_k(const uint8_t* packed, int8_t* out) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? (packed[j] & 15) : (packed[j - 8] >> 4);
    const int hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
}

void quantize_row(DType t, const float* src, void* dst, size_t n) {
  if (dtype_info(t).block == kBlockK) {
    WKV_ASSERT(n % kBlockK == 0);
    auto* out = static_cast<unsigned char*>(dst);
    const size_t bs = dtype_size(t);
    for (size_t i = 0; i < n / kBlockK; ++i, src += kBlockK, out += bs) {
      // Blocks are built in aligned locals and copied out (dst may be unaligned).
      switch (t) {
        case DType::q2_k: { BlockQ2_K b{}; q2_k(src, &b); std::memcpy(out, &b, bs); break; }
        case DType::q3_k: { BlockQ3_K b{}; q3_k(src, &b); std::memcpy(out, &b, bs); break; }
        case DType::q4_k: { BlockQ4_K b{}; q4_k(src, &b); std::memcpy(out, &b, bs); break; }
        case DType::q5_k: { BlockQ5_K b{}; q5_k(src, &b); std::memcpy(out, &b, bs); break; }
        case DType::q6_k: { BlockQ6_K b{}; q6_k(src, &b); std::memcpy(out, &b, bs); break; }
        default: WKV_ASSERT(false && "quantize_row: not a k-quant");
      }
    }
    return;
  }
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
  if (dequantize_k(t, p, dst, n)) return;
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
