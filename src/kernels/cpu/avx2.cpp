// AVX2 + FMA kernels, compiled for that target only and chosen at run time.
#include <immintrin.h>

#include "kernels/kernels.hpp"

namespace wkv::kernels::avx2 {

namespace {
__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) inline __m256 load_bf16(const unsigned short* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Four tokens at a time share each loaded weight vector.
template <class LoadW>
__attribute__((target("avx2,fma"))) inline void matmul_impl(LoadW load_w, const float* X, float* Y,
                                                            size_t rows, size_t cols, size_t T) {
  for (size_t o = 0; o < rows; ++o) {
    size_t t = 0;
    for (; t + 4 <= T; t += 4) {
      const float* x0 = X + t * cols;
      const float* x1 = x0 + cols;
      const float* x2 = x1 + cols;
      const float* x3 = x2 + cols;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
             a3 = _mm256_setzero_ps();
      size_t i = 0;
      for (; i + 8 <= cols; i += 8) {
        __m256 w = load_w(o, i);
        a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x0 + i), a0);
        a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x1 + i), a1);
        a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x2 + i), a2);
        a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x3 + i), a3);
      }
      float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
      for (; i < cols; ++i) {
        float w = _mm256_cvtss_f32(load_w.scalar(o, i));
        s0 += w * x0[i];
        s1 += w * x1[i];
        s2 += w * x2[i];
        s3 += w * x3[i];
      }
      Y[t * rows + o] = s0;
      Y[(t + 1) * rows + o] = s1;
      Y[(t + 2) * rows + o] = s2;
      Y[(t + 3) * rows + o] = s3;
    }
    for (; t < T; ++t) {
      const float* x = X + t * cols;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      size_t i = 0;
      for (; i + 16 <= cols; i += 16) {
        a0 = _mm256_fmadd_ps(load_w(o, i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load_w(o, i + 8), _mm256_loadu_ps(x + i + 8), a1);
      }
      for (; i + 8 <= cols; i += 8) a0 = _mm256_fmadd_ps(load_w(o, i), _mm256_loadu_ps(x + i), a0);
      float s = hsum(_mm256_add_ps(a0, a1));
      for (; i < cols; ++i) s += _mm256_cvtss_f32(load_w.scalar(o, i)) * x[i];
      Y[t * rows + o] = s;
    }
  }
}

struct LoadF32 {
  const float* W;
  size_t cols;
  __attribute__((target("avx2,fma"))) __m256 operator()(size_t o, size_t i) const {
    return _mm256_loadu_ps(W + o * cols + i);
  }
  __attribute__((target("avx2,fma"))) __m256 scalar(size_t o, size_t i) const {
    return _mm256_set1_ps(W[o * cols + i]);
  }
};
struct LoadBF16 {
  const unsigned short* W;
  size_t cols;
  __attribute__((target("avx2,fma"))) __m256 operator()(size_t o, size_t i) const {
    return load_bf16(W + o * cols + i);
  }
  __attribute__((target("avx2,fma"))) __m256 scalar(size_t o, size_t i) const {
    unsigned int u = static_cast<unsigned int>(W[o * cols + i]) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return _mm256_set1_ps(f);
  }
};
}  // namespace

__attribute__((target("avx2,fma"))) void matmul_f32(const float* W, const float* X, float* Y,
                                                    size_t rows, size_t cols, size_t T) {
  matmul_impl(LoadF32{W, cols}, X, Y, rows, cols, T);
}

__attribute__((target("avx2,fma"))) void matmul_bf16(const unsigned short* W, const float* X,
                                                     float* Y, size_t rows, size_t cols, size_t T) {
  matmul_impl(LoadBF16{W, cols}, X, Y, rows, cols, T);
}

}  // namespace wkv::kernels::avx2
