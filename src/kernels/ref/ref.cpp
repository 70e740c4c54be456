// Scalar reference kernels: the truth that every SIMD path is tested against.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/quant.hpp"
#include "kernels/kernels.hpp"

namespace wkv::kernels {

namespace {
inline float bf16(unsigned short h) {
  unsigned int u = static_cast<unsigned int>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

namespace ref {

void matmul_f32(const float* W, const float* X, float* Y, size_t rows, size_t cols, size_t T) {
  for (size_t o = 0; o < rows; ++o) {
    const float* w = W + o * cols;
    for (size_t t = 0; t < T; ++t) {
      const float* x = X + t * cols;
      // Four partial sums: shorter dependency chains than one, same result on every machine.
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      size_t i = 0;
      for (; i + 4 <= cols; i += 4) {
        s0 += w[i] * x[i];
        s1 += w[i + 1] * x[i + 1];
        s2 += w[i + 2] * x[i + 2];
        s3 += w[i + 3] * x[i + 3];
      }
      for (; i < cols; ++i) s0 += w[i] * x[i];
      Y[t * rows + o] = (s0 + s1) + (s2 + s3);
    }
  }
}

void matmul_bf16(const unsigned short* W, const float* X, float* Y, size_t rows, size_t cols,
                 size_t T) {
  for (size_t o = 0; o < rows; ++o) {
    const unsigned short* w = W + o * cols;
    for (size_t t = 0; t < T; ++t) {
      const float* x = X + t * cols;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      size_t i = 0;
      for (; i + 4 <= cols; i += 4) {
        s0 += bf16(w[i]) * x[i];
        s1 += bf16(w[i + 1]) * x[i + 1];
        s2 += bf16(w[i + 2]) * x[i + 2];
        s3 += bf16(w[i + 3]) * x[i + 3];
      }
      for (; i < cols; ++i) s0 += bf16(w[i]) * x[i];
      Y[t * rows + o] = (s0 + s1) + (s2 + s3);
    }
  }
}

namespace {
// Rows [r0, r1) for any weight dtype: each row is expanded to fp32 in chunks of kChunk values
// (a multiple of 4 and of the quantization block) and dotted with four partial sums indexed by
// i % 4, exactly as matmul_f32 sums, so an f32 row gives the same bits as matmul_f32.
constexpr size_t kChunk = 256;
void rows_generic(DType dt, const void* W, const float* X, float* Y, size_t rows, size_t cols,
                  size_t T, size_t r0, size_t r1) {
  const size_t row_bytes = dtype_bytes(dt, cols);
  float buf[kChunk];
  for (size_t o = r0; o < r1; ++o) {
    const unsigned char* w = static_cast<const unsigned char*>(W) + o * row_bytes;
    for (size_t t = 0; t < T; ++t) {
      const float* x = X + t * cols;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      size_t i = 0;
      for (size_t c0 = 0; c0 < cols; c0 += kChunk) {
        const size_t n = std::min(kChunk, cols - c0);
        quant::dequantize_row(dt, w + dtype_bytes(dt, c0), buf, n);
        size_t j = 0;
        for (; j + 4 <= n; j += 4, i += 4) {
          s0 += buf[j] * x[i];
          s1 += buf[j + 1] * x[i + 1];
          s2 += buf[j + 2] * x[i + 2];
          s3 += buf[j + 3] * x[i + 3];
        }
        for (; j < n; ++j, ++i) s0 += buf[j] * x[i];
      }
      Y[t * rows + o] = (s0 + s1) + (s2 + s3);
    }
  }
}
}  // namespace

#define WKV_REF_ROWS(fn, dt)                                                                 \
  void fn(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,     \
          size_t r0, size_t r1) {                                                          \
    rows_generic(dt, W, X, Y, rows, cols, T, r0, r1);                                      \
  }
WKV_REF_ROWS(matmul_f32_rows, DType::f32)
WKV_REF_ROWS(matmul_bf16_rows, DType::bf16)
WKV_REF_ROWS(matmul_f16, DType::f16)
WKV_REF_ROWS(matmul_q8_0, DType::q8_0)
WKV_REF_ROWS(matmul_q4_0, DType::q4_0)
WKV_REF_ROWS(matmul_q4_1, DType::q4_1)
WKV_REF_ROWS(matmul_q5_0, DType::q5_0)
WKV_REF_ROWS(matmul_q5_1, DType::q5_1)
WKV_REF_ROWS(matmul_q2_k, DType::q2_k)
WKV_REF_ROWS(matmul_q3_k, DType::q3_k)
WKV_REF_ROWS(matmul_q4_k, DType::q4_k)
WKV_REF_ROWS(matmul_q5_k, DType::q5_k)
WKV_REF_ROWS(matmul_q6_k, DType::q6_k)
#undef WKV_REF_ROWS

}  // namespace ref

namespace ref {
void layer_norm(const float* x, const float* w, const float* b, float* y, size_t n, float eps) {
  double mean = 0;
  for (size_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  double var = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = x[i] - mean;
    var += d * d;
  }
  var /= static_cast<double>(n);
  const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
  const float m = static_cast<float>(mean);
  for (size_t i = 0; i < n; ++i) y[i] = (x[i] - m) * inv * w[i] + b[i];
}
}  // namespace ref

void group_norm(const float* x, const float* w, const float* b, float* y, size_t H, size_t N,
                float eps) {
  for (size_t h = 0; h < H; ++h)
    layer_norm(x + h * N, w + h * N, b + h * N, y + h * N, N, eps);
}

void wkv4_step(float* aa, float* bb, float* pp, const float* w, const float* u, const float* k,
               const float* v, float* y, size_t C) {
  for (size_t c = 0; c < C; ++c) {
    const float uk = u[c] + k[c];
    float q = std::max(pp[c], uk);
    float e1 = std::exp(pp[c] - q);
    float e2 = std::exp(uk - q);
    y[c] = (e1 * aa[c] + e2 * v[c]) / (e1 * bb[c] + e2);
    const float pw = pp[c] + w[c];
    q = std::max(pw, k[c]);
    e1 = std::exp(pw - q);
    e2 = std::exp(k[c] - q);
    aa[c] = e1 * aa[c] + e2 * v[c];
    bb[c] = e1 * bb[c] + e2;
    pp[c] = q;
  }
}

namespace ref {
void wkv7_step(float* S, const float* r, const float* w, const float* k, const float* v,
               const float* a, const float* b, float* y, size_t H, size_t N) {
  for (size_t h = 0; h < H; ++h) {
    const size_t o = h * N;
    float* Sh = S + h * N * N;
    for (size_t i = 0; i < N; ++i) {
      float* row = Sh + i * N;
      float sa = 0;
      for (size_t j = 0; j < N; ++j) sa += a[o + j] * row[j];
      const float vi = v[o + i];
      float acc = 0;
      for (size_t j = 0; j < N; ++j) {
        const float s = row[j] * w[o + j] + k[o + j] * vi + sa * b[o + j];
        row[j] = s;
        acc += s * r[o + j];
      }
      y[o + i] = acc;
    }
  }
}

void wkv5_step(float* S, const float* r, const float* w, const float* u, const float* k,
               const float* v, float* y, size_t H, size_t N) {
  for (size_t h = 0; h < H; ++h) {
    const size_t o = h * N;
    float* Sh = S + h * N * N;
    float* yh = y + o;
    for (size_t j = 0; j < N; ++j) yh[j] = 0;
    for (size_t i = 0; i < N; ++i) {  // row i = key channel: accumulate r_i * (...) into y
      float* row = Sh + i * N;
      const float ri = r[o + i], ki = k[o + i], ui = u[o + i], wi = w[o + i];
      const float* vh = v + o;
      for (size_t j = 0; j < N; ++j) {
        const float kv = ki * vh[j];
        yh[j] += ri * (ui * kv + row[j]);
        row[j] = kv + wi * row[j];
      }
    }
  }
}

void exp_f32(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
void sigmoid_f32(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}
void relu_sq_f32(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float h = std::max(x[i], 0.0f);
    y[i] = h * h;
  }
}

}  // namespace ref

}  // namespace wkv::kernels
