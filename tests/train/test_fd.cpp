// Finite-difference checks, in double precision on small random inputs, of the WKV-7 backward
// (chunked, with an initial state), LayerNorm/GroupNorm backward, and the whole model's backward
// (every parameter: LoRA paths, v_first residual, kk, bonus, FFN, head, L2Wrap, initial state).
#include <random>

#include "train/ops.hpp"
#include "train/wkv7.hpp"
#include "train_test_util.hpp"

namespace wkv::train::test {
namespace {

constexpr double kStep = 1e-6;   // central difference step (values are O(1))
constexpr double kFdTol = 1e-6;  // rel_l2 of analytic vs FD gradient; FD error ≈ 1e-9 here

std::vector<double> randn(size_t n, std::mt19937& rng, double sigma = 1.0, double mean = 0.0) {
  std::normal_distribution<double> nd(mean, sigma);
  std::vector<double> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Central differences of f() w.r.t. every element of x.
template <class Fn>
std::vector<double> numeric_grad(std::vector<double>& x, Fn&& f) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + kStep;
    const double up = f();
    x[i] = keep - kStep;
    const double down = f();
    x[i] = keep;
    g[i] = (up - down) / (2 * kStep);
  }
  return g;
}

TEST(TrainFiniteDifference, Wkv7BackwardWithChunksAndInitialState) {
  std::mt19937 rng(1);
  Wkv7Dims d{2, 7, 2, 4, 3};  // 7 tokens in chunks of 3: a partial last chunk
  const size_t n = d.B * d.T * d.H * d.N, NN = d.N * d.N;
  auto r = randn(n, rng), k = randn(n, rng), v = randn(n, rng), a = randn(n, rng, 0.3),
       b = randn(n, rng, 0.3), s0 = randn(d.H * NN, rng), cot = randn(n, rng);
  std::vector<double> w(n);
  std::uniform_real_distribution<double> ud(0.55, 1.0);
  for (auto& x : w) x = ud(rng);
  std::vector<double> y(n), states(d.state_floats());
  auto loss = [&] {
    wkv7_forward(d, r.data(), w.data(), k.data(), v.data(), a.data(), b.data(), s0.data(), y.data(),
                 states.data());
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += y[i] * cot[i];
    return s;
  };
  loss();
  std::vector<double> dr(n), dw(n), dk(n), dv(n), da(n), db(n), ds0(d.H * NN, 0.0);
  wkv7_backward(d, r.data(), w.data(), k.data(), v.data(), a.data(), b.data(), states.data(),
                cot.data(), dr.data(), dw.data(), dk.data(), dv.data(), da.data(), db.data(),
                ds0.data());
  struct In {
    const char* name;
    std::vector<double>* x;
    std::vector<double>* g;
  };
  for (const In& in : {In{"r", &r, &dr}, In{"w", &w, &dw}, In{"k", &k, &dk}, In{"v", &v, &dv},
                       In{"a", &a, &da}, In{"b", &b, &db}, In{"s0", &s0, &ds0}}) {
    const auto fd = numeric_grad(*in.x, loss);
    EXPECT_LT(rel_l2(*in.g, fd), kFdTol) << in.name;
  }
}

TEST(TrainFiniteDifference, LayerNormAndGroupNormBackward) {
  std::mt19937 rng(2);
  for (size_t groups : {1u, 3u}) {  // LayerNorm over 12 channels; GroupNorm 3 groups of 4
    const size_t n = 4, C = groups * n;
    const size_t nn = groups == 1 ? 12 : n, CC = groups == 1 ? 12 : C;
    auto x = randn(CC, rng, 2.0, 0.5), w = randn(CC, rng), b = randn(CC, rng), cot = randn(CC, rng);
    std::vector<double> y(CC), xhat(CC), rstd(groups);
    const double eps = 64e-5;
    auto loss = [&] {
      ops::norm_forward(x.data(), w.data(), b.data(), y.data(), xhat.data(), rstd.data(), groups,
                        nn, eps);
      double s = 0;
      for (size_t i = 0; i < CC; ++i) s += y[i] * cot[i];
      return s;
    };
    loss();
    std::vector<double> dx(CC), dw(CC, 0.0), db(CC, 0.0);
    ops::norm_backward(cot.data(), xhat.data(), rstd.data(), w.data(), dx.data(), dw.data(),
                       db.data(), groups, nn, false);
    EXPECT_LT(rel_l2(dx, numeric_grad(x, loss)), kFdTol) << groups;
    EXPECT_LT(rel_l2(dw, numeric_grad(w, loss)), kFdTol) << groups;
    EXPECT_LT(rel_l2(db, numeric_grad(b, loss)), kFdTol) << groups;
  }
}

// A small random RWKV-7 checkpoint: L 2, C 8 (H 2 × N 4), V 11, F 16, LoRA widths 3/2/3/4.
TensorMap tiny_model(std::mt19937& rng) {
  const int64_t C = 8, H = 2, N = 4, V = 11, F = 16, Dw = 3, Da = 2, Dv = 3, Dg = 4;
  TensorMap t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double sigma, double mean) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    auto v = randn(size_t(n), rng, sigma, mean);
    t[name] = Tensor::from_f32(shape, std::vector<float>(v.begin(), v.end()));
  };
  add("emb.weight", {V, C}, 1.0, 0);
  add("head.weight", {V, C}, 0.5, 0);
  add("ln_out.weight", {C}, 0.3, 1);
  add("ln_out.bias", {C}, 0.3, 0);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    for (const char* ln : {"ln1", "ln2", "ln0", "att.ln_x"}) {
      if (std::string(ln) == "ln0" && l > 0) continue;
      add(p + ln + ".weight", {C}, 0.3, 1);
      add(p + ln + ".bias", {C}, 0.3, 0);
    }
    for (const char* m : {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g",
                          "ffn.x_k", "att.k_k", "att.k_a", "att.w0", "att.a0", "att.v0"})
      add(p + m, {1, 1, C}, 0.4, 0.5);
    add(p + "att.w1", {C, Dw}, 0.5, 0);
    add(p + "att.w2", {Dw, C}, 0.5, 0);
    add(p + "att.a1", {C, Da}, 0.5, 0);
    add(p + "att.a2", {Da, C}, 0.5, 0);
    add(p + "att.v1", {C, Dv}, 0.5, 0);
    add(p + "att.v2", {Dv, C}, 0.5, 0);
    add(p + "att.g1", {C, Dg}, 0.5, 0);
    add(p + "att.g2", {Dg, C}, 0.5, 0);
    add(p + "att.r_k", {H, N}, 0.5, 0);
    for (const char* m :
         {"att.receptance.weight", "att.key.weight", "att.value.weight", "att.output.weight"})
      add(p + m, {C, C}, 0.4, 0);
    add(p + "ffn.key.weight", {F, C}, 0.4, 0);
    add(p + "ffn.value.weight", {C, F}, 0.3, 0);
  }
  return t;
}

TEST(TrainFiniteDifference, WholeModelEveryParameterAndInitialState) {
  std::mt19937 rng(3);
  auto p = params_from_tensors<double>(tiny_model(rng), "tiny");
  ASSERT_TRUE(p) << p.error().message;
  Batch b{2, 5, {1, 4, 4, 9, 0, 10, 2, 7, 3, 1}, {4, 4, 9, 0, 6, 2, 7, 3, 1, 5}};
  LayerStates<double> s0 = {randn(2 * 16, rng, 0.5), randn(2 * 16, rng, 0.5)};
  // With L2Wrap the backward is the gradient of CE + 1e-4/(2·rows)·Σ max(z)² (argmax fixed).
  auto objective = [&] {
    Rwkv7Trainer<double> tr(2);  // chunk 2 over 5 tokens
    std::vector<double> logits(10 * 11);
    tr.forward(*p, b.tokens.data(), b.B, b.T, &s0, logits.data());
    double f = cross_entropy(logits.data(), b.targets.data(), 10, 11, false,
                             static_cast<double*>(nullptr));
    for (size_t m = 0; m < 10; ++m) {
      double mx = logits[m * 11];
      for (size_t c = 1; c < 11; ++c) mx = std::max(mx, logits[m * 11 + c]);
      f += kL2WrapFactor / (2.0 * 10) * mx * mx;
    }
    return f;
  };
  auto r = run_model(*p, b, /*l2wrap=*/true, &s0, 2);
  EXPECT_NEAR(objective() - r.loss, 0.0, 1e-3);  // the L2Wrap term is small
  std::vector<const Param<double>*> grads;
  for_each_param(r.grads, [&](const std::string&, const Param<double>& g) { grads.push_back(&g); });
  size_t i = 0, checked = 0;
  for_each_param(*p, [&](const std::string& name, Param<double>& prm) {
    const auto fd = numeric_grad(prm.data, objective);
    const auto& an = grads[i++]->data;
    if (name == "blocks.0.att.v0" || name == "blocks.0.att.v1" || name == "blocks.0.att.v2") {
      for (double v : an) EXPECT_EQ(v, 0.0) << name;
      return;
    }
    EXPECT_LT(rel_l2(an, fd), kFdTol) << name;
    ++checked;
  });
  EXPECT_EQ(checked, 69u);
  for (size_t l = 0; l < 2; ++l)
    EXPECT_LT(rel_l2(r.ds0[l], numeric_grad(s0[l], objective)), kFdTol) << "s0 layer " << l;
}

}  // namespace
}  // namespace wkv::train::test
