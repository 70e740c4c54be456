// Every SIMD kernel against the scalar reference, on sizes that exercise the tails.
#include <random>

#include "core/dtype.hpp"
#include "kernels/kernels.hpp"
#include "test_util.hpp"

namespace wkv::kernels {
namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

TEST(Matmul, Avx2MatchesReferenceF32AndBf16) {
  const Table* simd = avx2_table();
  if (!simd) GTEST_SKIP() << "CPU has no AVX2+FMA";
  for (size_t rows : {1u, 7u, 64u}) {
    for (size_t cols : {3u, 8u, 17u, 64u, 130u}) {
      for (size_t T : {1u, 3u, 4u, 9u}) {
        auto W = randn(rows * cols, 1);
        auto X = randn(T * cols, 2);
        std::vector<float> want(T * rows), got(T * rows);
        ref::matmul_f32(W.data(), X.data(), want.data(), rows, cols, T);
        simd->matmul_f32(W.data(), X.data(), got.data(), rows, cols, T);
        // fp32 sums in another order: relative error ~ cols * eps
        EXPECT_LE(test::max_abs_diff(got, want), 1e-5f * cols) << rows << "x" << cols << " T=" << T;
        std::vector<unsigned short> Wb(W.size());
        for (size_t i = 0; i < W.size(); ++i) Wb[i] = f32_to_bf16(W[i]);
        ref::matmul_bf16(Wb.data(), X.data(), want.data(), rows, cols, T);
        simd->matmul_bf16(Wb.data(), X.data(), got.data(), rows, cols, T);
        EXPECT_LE(test::max_abs_diff(got, want), 1e-5f * cols) << rows << "x" << cols << " T=" << T;
      }
    }
  }
}

TEST(Matmul, ReferenceComputesWTimesX) {
  const float W[] = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const float X[] = {1, 0, -1, 2, 1, 0};  // [2, 3]
  float Y[4];
  ref::matmul_f32(W, X, Y, 2, 3, 2);
  EXPECT_EQ(Y[0], -2);  // t0: row0 . x0
  EXPECT_EQ(Y[1], -2);  // t0: row1 . x0
  EXPECT_EQ(Y[2], 4);   // t1: row0 . x1
  EXPECT_EQ(Y[3], 13);  // t1: row1 . x1
}

TEST(Norms, GroupNormNormalisesEachGroup) {
  const float x[] = {1, 2, 3, 10, 20, 30};
  const float w[] = {1, 1, 1, 2, 2, 2};
  const float b[] = {0, 0, 0, 1, 1, 1};
  float y[6];
  group_norm(x, w, b, y, 2, 3, 0.0f);
  const float s = std::sqrt(1.5f);  // std of {-1, 0, 1}
  EXPECT_NEAR(y[0], -s, 1e-5);
  EXPECT_NEAR(y[1], 0, 1e-6);
  EXPECT_NEAR(y[5], 1 + 2 * s, 1e-5);
}

}  // namespace
}  // namespace wkv::kernels
