// Building blocks of the training forward/backward, generic over float/double: the three
// matrix products a linear layer needs, LayerNorm/GroupNorm forward and backward, activations.
// Matrices are row-major; M rows of activations, K inputs, N outputs.
#pragma once

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "kernels/kernels.hpp"

namespace wkv::train::ops {

// The three products run on OpenBLAS (sgemm) in float, the precision training uses; double
// (finite-difference checks) keeps the plain loops. A zero-sized product writes zeros.
namespace blas {
void mm_nt(const float* X, const float* W, float* Y, size_t M, size_t K, size_t N);
void mm_nn(const float* X, const float* W, float* Y, size_t M, size_t K, size_t N);
void mm_tn_acc(const float* A, const float* B, float* G, size_t M, size_t K, size_t N);
}  // namespace blas

// Threads for the training products (OpenBLAS) and the inference kernels; 0 = all cores.
void set_threads(size_t n);

// Y[M,N] = X[M,K] · W[N,K]ᵀ   (nn.Linear with W [out, in])
template <class Real>
void mm_nt(const Real* X, const Real* W, Real* Y, size_t M, size_t K, size_t N) {
  if constexpr (std::is_same_v<Real, float>) {
    blas::mm_nt(X, W, Y, M, K, N);
  } else {
    for (size_t m = 0; m < M; ++m)
      for (size_t n = 0; n < N; ++n) {
        Real s = 0;
        for (size_t k = 0; k < K; ++k) s += X[m * K + k] * W[n * K + k];
        Y[m * N + n] = s;
      }
  }
}

// Y[M,N] = X[M,K] · W[K,N]   (LoRA x @ w1, and dX of a linear layer)
template <class Real>
void mm_nn(const Real* X, const Real* W, Real* Y, size_t M, size_t K, size_t N) {
  if constexpr (std::is_same_v<Real, float>) {
    blas::mm_nn(X, W, Y, M, K, N);
    return;
  }
  for (size_t m = 0; m < M; ++m) {
    Real* y = Y + m * N;
    for (size_t n = 0; n < N; ++n) y[n] = 0;
    for (size_t k = 0; k < K; ++k) {
      const Real x = X[m * K + k];
      const Real* w = W + k * N;
      for (size_t n = 0; n < N; ++n) y[n] += x * w[n];
    }
  }
}

// G[K,N] += A[M,K]ᵀ · B[M,N]   (weight gradients)
template <class Real>
void mm_tn_acc(const Real* A, const Real* B, Real* G, size_t M, size_t K, size_t N) {
  if constexpr (std::is_same_v<Real, float>) {
    blas::mm_tn_acc(A, B, G, M, K, N);
    return;
  }
  for (size_t m = 0; m < M; ++m)
    for (size_t k = 0; k < K; ++k) {
      const Real x = A[m * K + k];
      if (x == 0) continue;
      const Real* b = B + m * N;
      Real* g = G + k * N;
      for (size_t n = 0; n < N; ++n) g[n] += x * b[n];
    }
}

template <class Real>
inline Real sigmoid(Real x) {
  return Real(1) / (Real(1) + std::exp(-x));
}

// Normalisation over groups of n channels (LayerNorm: one group of C; GroupNorm: H groups of
// N), per-channel affine w, b over all groups·n channels. Stores xhat and rstd per group.
template <class Real>
void norm_forward(const Real* x, const Real* w, const Real* b, Real* y, Real* xhat, Real* rstd,
                  size_t groups, size_t n, double eps) {
  for (size_t g = 0; g < groups; ++g) {
    const Real* xg = x + g * n;
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; ++i) mean += xg[i];
    mean /= double(n);
    for (size_t i = 0; i < n; ++i) var += (xg[i] - mean) * (xg[i] - mean);
    var /= double(n);
    const double rs = 1.0 / std::sqrt(var + eps);
    rstd[g] = Real(rs);
    for (size_t i = 0; i < n; ++i) {
      const size_t c = g * n + i;
      xhat[c] = Real((xg[i] - mean) * rs);
      y[c] = xhat[c] * w[c] + b[c];
    }
  }
}

// dx = rstd·(dxh − mean(dxh) − xhat·mean(dxh·xhat)), dxh = dy·w; dw += dy·xhat; db += dy.
// dx is assigned if `accumulate` is false, else added.
template <class Real>
void norm_backward(const Real* dy, const Real* xhat, const Real* rstd, const Real* w, Real* dx,
                   Real* dw, Real* db, size_t groups, size_t n, bool accumulate) {
  for (size_t g = 0; g < groups; ++g) {
    double m1 = 0, m2 = 0;
    for (size_t i = 0; i < n; ++i) {
      const size_t c = g * n + i;
      const double dxh = double(dy[c]) * w[c];
      m1 += dxh;
      m2 += dxh * xhat[c];
      dw[c] += dy[c] * xhat[c];
      db[c] += dy[c];
    }
    m1 /= double(n);
    m2 /= double(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t c = g * n + i;
      const Real v = Real(double(rstd[g]) * (double(dy[c]) * w[c] - m1 - xhat[c] * m2));
      dx[c] = accumulate ? dx[c] + v : v;
    }
  }
}

}  // namespace wkv::train::ops
