// The official RWKV-7 initialisation (TRAINING_REFERENCE.md §6): LoRA widths, orthogonal
// matrices with their gains, the closed-form vectors, zeros where the recipe has zeros, and
// determinism given the seed.
#include <gtest/gtest.h>

#include <cmath>

#include "train/init.hpp"

namespace wkv::train {
namespace {

TEST(OfficialInit, LoraWidthsMatchTheReferenceTable) {
  const int64_t cases[][5] = {{768, 64, 64, 32, 128}, {1024, 64, 64, 64, 160},
                              {2048, 128, 128, 64, 224}, {32, 32, 32, 32, 32}};
  for (const auto& c : cases) {
    EXPECT_EQ(official_lora_width(c[0], 2.5), c[1]) << c[0];
    EXPECT_EQ(official_lora_width(c[0], 2.5), c[2]) << c[0];
    EXPECT_EQ(official_lora_width(c[0], 1.7), c[3]) << c[0];
    EXPECT_EQ(official_lora_width(c[0], 5.0), c[4]) << c[0];
  }
}

// max |WᵀW − g²·I| (columns orthogonal: rows >= cols) or |WWᵀ − g²·I| (wide).
double ortho_error(const Param<float>& w, double g) {
  const size_t R = size_t(w.shape[0]), C = size_t(w.shape[1]);
  const bool tall = R >= C;
  const size_t n = tall ? C : R, m = tall ? R : C;
  auto at = [&](size_t i, size_t k) {  // element k of vector i (column if tall, row if wide)
    return double(tall ? w.data[k * C + i] : w.data[i * C + k]);
  };
  double err = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t k = 0; k < m; ++k) s += at(i, k) * at(j, k);
      err = std::max(err, std::fabs(s - (i == j ? g * g : 0.0)));
    }
  return err;
}

TEST(OfficialInit, MatricesAreOrthogonalWithTheOfficialGains) {
  Dims d;
  d.L = 2, d.C = 64, d.N = 16, d.V = 300;
  auto p = official_init(d, 5);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->d.H, 4);
  EXPECT_EQ(p->d.F, 256);
  EXPECT_EQ(p->d.Dw, 32);
  for (const auto& l : p->layers) {
    EXPECT_LT(ortho_error(l.Wr, 1.0), 1e-5);
    EXPECT_LT(ortho_error(l.Wv, 1.0), 1e-5);
    EXPECT_LT(ortho_error(l.Wk, 0.1), 1e-5);
    EXPECT_LT(ortho_error(l.ffn_key, 2.0), 1e-5);  // [4C, C]: gain 1 · √4
    for (const auto* w2 : {&l.w2, &l.a2, &l.v2, &l.g2}) EXPECT_LT(ortho_error(*w2, 0.1), 1e-5);
    for (const auto* z : {&l.Wo, &l.ffn_value, &l.w1, &l.a1, &l.v1, &l.g1})
      for (float x : z->data) ASSERT_EQ(x, 0.0f);
  }
  EXPECT_LT(ortho_error(p->head, 0.5 * std::sqrt(300.0 / 64.0)), 1e-5);
  for (float x : p->emb.data) ASSERT_LE(std::fabs(x), 1e-4f);
}

TEST(OfficialInit, VectorsFollowTheClosedForms) {
  Dims d;
  d.L = 3, d.C = 32, d.N = 8, d.V = 256;
  auto p = official_init(d, 1);
  ASSERT_TRUE(p) << p.error().message;
  const double C = 32, N = 8, L = 3;
  for (size_t li = 0; li < 3; ++li) {
    const auto& l = p->layers[li];
    const double r0 = double(li) / (L - 1), r1 = 1 - double(li) / L;
    for (size_t i = 0; i < 32; ++i) {
      const double ddd = double(i) / C, lin = double(i) / (C - 1) - 0.5;
      const double z = (double(i % 8) - (N - 1) / 2) / ((N - 1) / 2), zz = z * std::fabs(z);
      const double www = -6 + 6 * std::pow(double(i) / (C - 1), 1 + std::pow(r0, 0.3));
      EXPECT_NEAR(l.x_r.data[i], 1 - std::pow(ddd, 0.2 * r1), 1e-6);
      EXPECT_NEAR(l.x_w.data[i], 1 - std::pow(ddd, 0.9 * r1), 1e-6);
      EXPECT_NEAR(l.x_g.data[i], 1 - std::pow(ddd, 0.2 * r1), 1e-6);
      EXPECT_NEAR(l.ffn_x_k.data[i], 1 - std::pow(ddd, std::pow(r1, 4)), 1e-6);
      EXPECT_NEAR(l.w0.data[i], www + 0.5 + 2.5 * zz, 1e-5);
      EXPECT_NEAR(l.a0.data[i], -0.19 + 0.3 * zz + 0.4 * lin, 1e-6);
      EXPECT_NEAR(l.v0.data[i], 0.73 - 0.4 * lin, 1e-6);
      EXPECT_NEAR(l.k_k.data[i], 0.71 - 0.1 * lin, 1e-6);
      EXPECT_FLOAT_EQ(l.k_a.data[i], 1.02f);
      EXPECT_NEAR(l.lnx_w.data[i], std::pow((1.0 + double(li)) / L, 0.7), 1e-6);
      EXPECT_EQ(l.lnx_b.data[i], 0.0f);
      EXPECT_EQ(l.ln1_w.data[i], 1.0f);
    }
    for (float x : l.r_k.data) EXPECT_FLOAT_EQ(x, -0.04f);
  }
  EXPECT_FALSE(p->layers[0].ln0_w.data.empty());
  EXPECT_TRUE(p->layers[1].ln0_w.data.empty());
}

TEST(OfficialInit, SameSeedSameModelOtherSeedOtherModel) {
  Dims d;
  d.L = 1, d.C = 32, d.N = 16, d.V = 64;
  auto a = official_init(d, 9), b = official_init(d, 9), c = official_init(d, 10);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->head.data, b->head.data);
  EXPECT_EQ(a->layers[0].Wr.data, b->layers[0].Wr.data);
  EXPECT_NE(a->head.data, c->head.data);
}

TEST(OfficialInit, RejectsAWidthThatIsNotAMultipleOfTheHeadSize) {
  Dims d;
  d.L = 1, d.C = 40, d.N = 16, d.V = 64;
  auto p = official_init(d, 1);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("multiple of the head size"), std::string::npos);
}

}  // namespace
}  // namespace wkv::train
