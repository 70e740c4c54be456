// The training matrix products on OpenBLAS (see ops.hpp). OpenBLAS is what the field uses for
// fp32 GEMM on CPUs: blocked, vectorised for every x86-64 level at run time, and threaded;
// our own kernels (src/kernels) target the inference shapes (matrix × a few vectors, quantized
// weights) instead.
#include <cblas.h>

#include <algorithm>
#include <thread>

#include "train/ops.hpp"

namespace wkv::train::ops {

namespace blas {

void mm_nt(const float* X, const float* W, float* Y, size_t M, size_t K, size_t N) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(Y, Y + M * N, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(M), blasint(N), blasint(K), 1.0f, X,
              blasint(K), W, blasint(K), 0.0f, Y, blasint(N));
}

void mm_nn(const float* X, const float* W, float* Y, size_t M, size_t K, size_t N) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(Y, Y + M * N, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(M), blasint(N), blasint(K), 1.0f,
              X, blasint(K), W, blasint(N), 0.0f, Y, blasint(N));
}

void mm_tn_acc(const float* A, const float* B, float* G, size_t M, size_t K, size_t N) {
  if (M == 0 || N == 0 || K == 0) return;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(K), blasint(N), blasint(M), 1.0f, A,
              blasint(K), B, blasint(N), 1.0f, G, blasint(N));
}

}  // namespace blas

void set_threads(size_t n) {
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  openblas_set_num_threads(int(n));
  kernels::set_threads(n);
}

}  // namespace wkv::train::ops
