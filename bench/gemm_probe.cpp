// fp32 matrix-product rate of this machine: times cblas_sgemm (OpenBLAS, what the training
// products use) on an N x N x N product and prints the median GFLOP/s of several runs.
//   gemm_probe [N=1024] [THREADS=0 (all cores)] [RUNS=9]
// Built by bench/bench_train.sh with the system compiler (no CMake target needed).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1024;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  const int runs = argc > 3 ? std::atoi(argv[3]) : 9;
  if (n <= 0 || threads < 0 || runs <= 0) {
    std::fprintf(stderr, "usage: gemm_probe [N] [THREADS] [RUNS]\n");
    return 2;
  }
  if (threads > 0) openblas_set_num_threads(threads);
  const size_t nn = size_t(n) * size_t(n);
  std::vector<float> a(nn), b(nn), c(nn);
  for (size_t i = 0; i < nn; ++i) {
    a[i] = float(i % 97) * 0.01f - 0.48f;
    b[i] = float(i % 89) * 0.01f - 0.44f;
  }
  auto gemm = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
  };
  gemm();  // warm-up: thread start, page faults
  std::vector<double> rates;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    gemm();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(2.0 * double(n) * double(n) * double(n) / s / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  std::printf("%.2f\n", rates[rates.size() / 2]);  // median GFLOP/s
  return c[0] == c[0] ? 0 : 1;                     // (uses the result)
}
