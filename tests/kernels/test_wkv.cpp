// The RWKV-4 and RWKV-5/6 WKV steps against their defining sums, computed naively in double.
#include <random>

#include "kernels/kernels.hpp"
#include "test_util.hpp"

namespace wkv::kernels {
namespace {

std::vector<float> uniform(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// wkv_t = (sum_{i<t} e^{(t-1-i)w + k_i} v_i + e^{u+k_t} v_t) / (same without v), per channel.
TEST(Wkv4, StepMatchesClosedFormAndStaysFiniteForLargeKeys) {
  const size_t C = 5, T = 12;
  for (float scale : {1.0f, 60.0f}) {  // 60: e^k overflows fp32 without the max-exponent form
    auto k = uniform(T * C, -scale, scale, 1);
    auto v = uniform(T * C, -1, 1, 2);
    auto w = uniform(C, -2, -0.01f, 3);  // -exp(time_decay) < 0
    auto u = uniform(C, -1, 1, 4);
    std::vector<float> aa(C, 0), bb(C, 0), pp(C, -1e30f), y(C);
    for (size_t t = 0; t < T; ++t) {
      wkv4_step(aa.data(), bb.data(), pp.data(), w.data(), u.data(), k.data() + t * C,
                v.data() + t * C, y.data(), C);
      for (size_t c = 0; c < C; ++c) {
        // Closed form, shifted by the largest exponent (in double).
        double m = u[c] + k[t * C + c];
        for (size_t i = 0; i < t; ++i) m = std::max(m, double(t - 1 - i) * w[c] + k[i * C + c]);
        double num = std::exp(u[c] + k[t * C + c] - m) * v[t * C + c];
        double den = std::exp(u[c] + k[t * C + c] - m);
        for (size_t i = 0; i < t; ++i) {
          const double e = std::exp(double(t - 1 - i) * w[c] + k[i * C + c] - m);
          num += e * v[i * C + c];
          den += e;
        }
        ASSERT_TRUE(std::isfinite(y[c]));
        EXPECT_NEAR(y[c], num / den, 1e-5) << "t=" << t << " c=" << c << " scale=" << scale;
      }
    }
  }
}

// y_j = sum_i r_i (u_i k_i v_j + S_ij), S_ij <- S_ij w_i + k_i v_j, per head, S[h, key, value].
TEST(Wkv5, StepMatchesDefinitionPerHead) {
  const size_t H = 3, N = 4, C = H * N, T = 5;
  auto r = uniform(T * C, -1, 1, 5), k = uniform(T * C, -1, 1, 6), v = uniform(T * C, -1, 1, 7);
  auto w = uniform(T * C, 0.1f, 0.99f, 8), u = uniform(C, -1, 1, 9);
  std::vector<float> S(H * N * N, 0), y(C);
  std::vector<double> Sd(H * N * N, 0);
  for (size_t t = 0; t < T; ++t) {
    const size_t o = t * C;
    wkv5_step(S.data(), r.data() + o, w.data() + o, u.data(), k.data() + o, v.data() + o,
              y.data(), H, N);
    for (size_t h = 0; h < H; ++h) {
      for (size_t j = 0; j < N; ++j) {
        double want = 0;
        for (size_t i = 0; i < N; ++i)
          want += r[o + h * N + i] *
                  (u[h * N + i] * k[o + h * N + i] * v[o + h * N + j] + Sd[(h * N + i) * N + j]);
        EXPECT_NEAR(y[h * N + j], want, 1e-5) << "t=" << t;
      }
      for (size_t i = 0; i < N; ++i)
        for (size_t j = 0; j < N; ++j) {
          double& s = Sd[(h * N + i) * N + j];
          s = s * w[o + h * N + i] + double(k[o + h * N + i]) * v[o + h * N + j];
        }
    }
  }
  for (size_t e = 0; e < S.size(); ++e) EXPECT_NEAR(S[e], Sd[e], 1e-5);
}

}  // namespace
}  // namespace wkv::kernels
