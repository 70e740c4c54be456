// AMX-BF16 tile kernels for products over many tokens (prompts, batches), compiled for that
// target only (function attributes) and chosen at run time when the CPU has the tiles and
// Linux grants the process their state (arch_prctl ARCH_REQ_XCOMP_PERM).
//
// Y[t, o] = sum_i W[o, i] X[t, i] with W as the tiles' A operand (16 weight rows x 32 columns,
// row-major, as W is stored) and X as B (pairs of columns x 16 tokens, the "VNNI" layout
// TDPBF16PS wants), packed once per product by pack_x. The tiles multiply bf16 and add in
// fp32. To keep fp32-level accuracy, each fp32 value v is split into hi = bf16(v) and
// lo = bf16(v - hi) (v - hi - lo is within 2^-17 |v|), and
//   W X ~ Whi Xhi + Whi Xlo + Wlo Xhi      (Wlo Xlo, below 2^-18 |W||X|, is dropped),
// three tile products instead of one (the "bf16x3" scheme of oneDNN and cuBLAS). bf16 weights
// are exact in bf16 (Wlo = 0: two products), and so are f16 weights split in two; fp32 and
// dequantized weights keep 16 of their 24 bits. Each product's error is therefore below
// 2^-15 |w||x| (the kernel test checks that bound), against the 2^-9 of plain bf16.
//
// Per 16-row block the weights are converted into a per-thread bf16 panel (bf16 weights with
// a column count that is a multiple of 32 are read in place), then multiplied with the packed
// tokens, two blocks of 16 tokens at a time: tiles 0-1 accumulate, 2-3 hold Whi/Wlo, 4-7 the
// two token blocks' Xhi/Xlo. Every output element sums the same tile products in the same
// order whatever the row range, so a thread split never changes a bit.
// GCC 12's AVX-512 headers initialise their "undefined" vectors from themselves (__Y = __Y),
// which -Wmaybe-uninitialized reports inside every inlined intrinsic.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/cpu_features.hpp"
#include "core/error.hpp"
#include "kernels/cpu/avx2.hpp"
#include "kernels/cpu/avx512.hpp"

#define WKV_AMX \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))

namespace wkv::kernels::amx {

namespace {
constexpr long kArchGetXcompPerm = 0x1022;
constexpr long kArchReqXcompPerm = 0x1023;
constexpr unsigned kXfeatureTileData = 18;

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

// Tiles 0-7 all 16 rows of 64 bytes: 16x16 fp32 accumulators, 16 rows x 32 bf16 operands.
TileConfig make_config() {
  TileConfig c;
  for (int i = 0; i < 8; ++i) {
    c.colsb[i] = 64;
    c.rows[i] = 16;
  }
  return c;
}
const TileConfig kConfig = make_config();

// The tokens packed for the tiles: for token block tb (16 tokens) and column chunk kc (32
// columns), 16 rows (column pairs p) of 16 dwords (tokens n), each dword the bf16 pair
// (x[n][32 kc + 2p], x[n][32 kc + 2p + 1]); hi and lo planes, zero-padded.
struct Packed {
  size_t T = 0, cols = 0, ntb = 0, nkc = 0;
  const uint32_t* hi = nullptr;
  const uint32_t* lo = nullptr;
};

template <class V>
V* align64(std::vector<V>& buf, size_t n) {
  const size_t extra = 64 / sizeof(V);
  if (buf.size() < n + extra) buf.resize(n + extra);
  auto p = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<V*>((p + 63) & ~uintptr_t{63});
}

WKV_AMX inline __mmask16 tail_mask(size_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}
// v[i..i+16) with zeros past n (and nothing read there).
WKV_AMX inline __m512 load16(const float* v, size_t i, size_t n) {
  if (i >= n) return _mm512_setzero_ps();
  return _mm512_maskz_loadu_ps(tail_mask(n - i), v + i);
}
WKV_AMX inline __m256i to_bf16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }
WKV_AMX inline __m512 from_bf16(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// 16 fp32 values split into bf16 hi and lo halves.
WKV_AMX inline void split(__m512 v, __m256i& hi, __m256i& lo) {
  hi = to_bf16(v);
  lo = to_bf16(_mm512_sub_ps(v, from_bf16(hi)));
}

WKV_AMX const Packed* pack(const float* X, size_t T, size_t cols) {
  thread_local std::vector<uint32_t> buf;
  thread_local Packed p;
  const size_t ntb = (T + 15) / 16, nkc = (cols + 31) / 32, plane = ntb * nkc * 256;
  uint32_t* hi = align64(buf, 2 * plane);
  uint32_t* lo = hi + plane;
  std::memset(hi, 0, 2 * plane * sizeof(uint32_t));
  // Dword p of a 32-column chunk goes to row p of its tile: 16 dwords (64 bytes) apart.
  const __m512i rows16 =
      _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
  for (size_t t = 0; t < T; ++t) {
    const float* x = X + t * cols;
    const size_t tb = t / 16, n = t % 16;
    for (size_t kc = 0; kc < nkc; ++kc) {
      __m256i h0, l0, h1, l1;
      split(load16(x, kc * 32, cols), h0, l0);
      split(load16(x, kc * 32 + 16, cols), h1, l1);
      const __m512i h = _mm512_inserti64x4(_mm512_castsi256_si512(h0), h1, 1);
      const __m512i l = _mm512_inserti64x4(_mm512_castsi256_si512(l0), l1, 1);
      const size_t off = (tb * nkc + kc) * 256 + n;
      _mm512_i32scatter_epi32(hi + off, rows16, h, 4);
      _mm512_i32scatter_epi32(lo + off, rows16, l, 4);
    }
  }
  p = Packed{T, cols, ntb, nkc, hi, lo};
  return &p;
}

// A 16-row block of weights as bf16 tiles' rows: hi (row stride in bytes) and lo (nullptr when
// the weights are exact in hi).
struct Panel {
  const uint16_t* hi;
  size_t hi_stride;
  const uint16_t* lo;
};

// Rows [o, o + nr) of W (nr <= 16) as a panel of 16 rows x colsP columns (zero-padded).
WKV_AMX Panel panel(DType t, const void* W, size_t o, size_t nr, size_t cols, size_t colsP) {
  const size_t rb = dtype_bytes(t, cols);
  const auto* base = static_cast<const unsigned char*>(W) + o * rb;
  if (t == DType::bf16 && nr == 16 && cols == colsP)
    return {reinterpret_cast<const uint16_t*>(base), rb, nullptr};
  const bool exact = t == DType::bf16;  // bf16 weights need no lo half
  thread_local std::vector<uint16_t> hbuf, lbuf;
  thread_local std::vector<float> fbuf;
  uint16_t* hi = align64(hbuf, 16 * colsP);
  uint16_t* lo = exact ? nullptr : align64(lbuf, 16 * colsP);
  float* f = exact ? nullptr : align64(fbuf, colsP);
  for (size_t r = 0; r < 16; ++r) {
    uint16_t* hr = hi + r * colsP;
    uint16_t* lr = exact ? nullptr : lo + r * colsP;
    if (r >= nr) {
      std::memset(hr, 0, colsP * 2);
      if (!exact) std::memset(lr, 0, colsP * 2);
      continue;
    }
    const unsigned char* row = base + r * rb;
    if (exact) {
      std::memcpy(hr, row, cols * 2);
      std::memset(hr + cols, 0, (colsP - cols) * 2);
      continue;
    }
    const float* src = f;
    if (t == DType::f32) {
      src = reinterpret_cast<const float*>(row);
    } else if (t == DType::f16) {
      for (size_t i = 0; i < cols; i += 16) {
        const __mmask16 m = tail_mask(cols - i);
        _mm512_mask_storeu_ps(f + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i)));
      }
    } else {
      avx2::dequant_row(t, row, f, cols);
    }
    for (size_t i = 0; i < colsP; i += 16) {
      __m256i h, l;
      split(load16(src, i, cols), h, l);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(hr + i), h);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lr + i), l);
    }
  }
  return {hi, colsP * 2, lo};
}

WKV_AMX void multiply(DType t, const void* W, const Packed& xp, float* Y, size_t rows, size_t cols,
                      size_t T, size_t r0, size_t r1) {
  WKV_ASSERT(xp.T == T && xp.cols == cols);
  const size_t nkc = xp.nkc, colsP = nkc * 32, lstride = colsP * 2;
  alignas(64) float out[2][256];
  _tile_loadconfig(&kConfig);
  for (size_t o = r0; o < r1; o += 16) {
    const size_t nr = std::min<size_t>(16, r1 - o);
    const Panel pn = panel(t, W, o, nr, cols, colsP);
    // The tile loads below are asm without a memory clobber: make the panel's stores visible.
    __asm__ __volatile__("" ::: "memory");
    for (size_t tb = 0; tb < xp.ntb; tb += 2) {
      const bool two = tb + 1 < xp.ntb;
      _tile_zero(0);
      _tile_zero(1);
      const uint32_t* xh = xp.hi + tb * nkc * 256;
      const uint32_t* xl = xp.lo + tb * nkc * 256;
      for (size_t kc = 0; kc < nkc; ++kc) {
        _tile_loadd(2, pn.hi + kc * 32, pn.hi_stride);
        _tile_loadd(4, xh + kc * 256, 64);
        _tile_loadd(5, xl + kc * 256, 64);
        _tile_dpbf16ps(0, 2, 4);
        _tile_dpbf16ps(0, 2, 5);
        if (pn.lo) {
          _tile_loadd(3, pn.lo + kc * 32, lstride);
          _tile_dpbf16ps(0, 3, 4);
        }
        if (two) {
          _tile_loadd(6, xh + (nkc + kc) * 256, 64);
          _tile_loadd(7, xl + (nkc + kc) * 256, 64);
          _tile_dpbf16ps(1, 2, 6);
          _tile_dpbf16ps(1, 2, 7);
          if (pn.lo) _tile_dpbf16ps(1, 3, 6);
        }
      }
      _tile_stored(0, out[0], 64);
      if (two) _tile_stored(1, out[1], 64);
      for (size_t j = 0; j < (two ? 2u : 1u); ++j) {
        const size_t t0 = (tb + j) * 16, nt = std::min<size_t>(16, T - t0);
        for (size_t n = 0; n < nt; ++n)
          for (size_t r = 0; r < nr; ++r) Y[(t0 + n) * rows + o + r] = out[j][r * 16 + n];
      }
    }
  }
  _tile_release();
}
}  // namespace

bool os_permits() {
  static const bool ok = [] {
    const CpuFeatures& f = cpu_features();
    if (!(f.amx_tile && f.amx_bf16 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512bf16 &&
          f.avx2 && f.fma && f.f16c))
      return false;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) != 0) return false;
    unsigned long granted = 0;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &granted) != 0) return false;
    return ((granted >> kXfeatureTileData) & 1u) != 0;
  }();
  return ok;
}

const void* pack_x(const float* X, size_t T, size_t cols) { return pack(X, T, cols); }

void rows_packed(DType t, const void* W, const void* xp, float* Y, size_t rows, size_t cols,
                 size_t T, size_t r0, size_t r1) {
  if (r0 >= r1) return;
  multiply(t, W, *static_cast<const Packed*>(xp), Y, rows, cols, T, r0, r1);
}

#define WKV_ROWS(fn, dt)                                                                          \
  void fn(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T, size_t r0, \
          size_t r1) {                                                                            \
    if (T < kMinTokens) return avx512::fn(W, X, Y, rows, cols, T, r0, r1);                        \
    rows_packed(dt, W, pack_x(X, T, cols), Y, rows, cols, T, r0, r1);                             \
  }
WKV_ROWS(rows_f32, DType::f32)
WKV_ROWS(rows_bf16, DType::bf16)
WKV_ROWS(rows_f16, DType::f16)
WKV_ROWS(rows_q8_0, DType::q8_0)
WKV_ROWS(rows_q4_0, DType::q4_0)
WKV_ROWS(rows_q4_1, DType::q4_1)
WKV_ROWS(rows_q5_0, DType::q5_0)
WKV_ROWS(rows_q5_1, DType::q5_1)
WKV_ROWS(rows_q2_k, DType::q2_k)
WKV_ROWS(rows_q3_k, DType::q3_k)
WKV_ROWS(rows_q4_k, DType::q4_k)
WKV_ROWS(rows_q5_k, DType::q5_k)
WKV_ROWS(rows_q6_k, DType::q6_k)
#undef WKV_ROWS

}  // namespace wkv::kernels::amx
