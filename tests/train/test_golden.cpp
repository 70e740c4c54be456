// RWKV-7 training forward/backward against the official reference (../shared/testdata/train):
// logits, loss, dlogits, every parameter gradient with and without L2Wrap, the L2Wrap term
// alone, and the initial-state gradients. Tolerances: testdata/train/README.md "Tolerances".
#include <set>

#include "train_test_util.hpp"

namespace wkv::train::test {
namespace {

constexpr double kLogitsTol = 1e-5;  // logits, dlogits, l2wrap.dlogits_term: rel_l2
constexpr double kLossTol = 1e-5;    // absolute
constexpr double kGradTol = 1e-4;    // every gradient tensor: rel_l2

std::string dir() { return wkv::test::testdata("train/"); }

struct Golden {
  Params<float> params;
  Batch batch;
  TensorMap ce, l2, st;
};

const Golden& golden() {
  static const Golden g = [] {
    Golden x;
    auto model = load_or_die(dir() + "model.safetensors");
    auto p = params_from_tensors<float>(model, "model.safetensors");
    if (!p)
      ADD_FAILURE() << p.error().message;
    else
      x.params = std::move(*p);
    x.ce = load_or_die(dir() + "grads_ce.safetensors");
    x.l2 = load_or_die(dir() + "grads_l2wrap.safetensors");
    x.st = load_or_die(dir() + "state_grad.safetensors");
    auto b = batch_from_tensors(x.ce, 256, "grads_ce.safetensors");
    if (!b)
      ADD_FAILURE() << b.error().message;
    else
      x.batch = std::move(*b);
    return x;
  }();
  return g;
}

// Parameters whose official gradient is exactly zero (never used by the model).
bool unused(const std::string& name) {
  return name == "blocks.0.att.v0" || name == "blocks.0.att.v1" || name == "blocks.0.att.v2";
}

// Compares every parameter gradient with `ref`'s `prefix + name`; unused parameters and the
// embedding rows of tokens absent from the batch must be exactly 0. Returns the worst rel.
double check_grads(const Grads<float>& g, const TensorMap& ref, const std::string& prefix,
                   const std::vector<int32_t>& tokens) {
  double worst = 0;
  size_t n = 0;
  const std::set<int32_t> present(tokens.begin(), tokens.end());
  for_each_param(g, [&](const std::string& name, const Param<float>& prm) {
    ++n;
    const std::vector<float> r = get(ref, prefix + name);
    if (unused(name)) {
      for (float v : prm.data) ASSERT_EQ(v, 0.0f) << name;
      for (float v : r) ASSERT_EQ(v, 0.0f) << "reference " << name;
      return;
    }
    const double e = rel_l2(prm.data, r);
    EXPECT_LT(e, kGradTol) << prefix << name;
    worst = std::max(worst, e);
    if (name == "emb.weight") {
      const size_t C = size_t(prm.shape[1]);
      size_t zero_rows = 0;
      for (size_t row = 0; row < size_t(prm.shape[0]); ++row) {
        if (present.count(int32_t(row))) continue;
        ++zero_rows;
        for (size_t c = 0; c < C; ++c) ASSERT_EQ(prm.data[row * C + c], 0.0f) << "emb row " << row;
      }
      EXPECT_GT(zero_rows, 0u);
    }
  });
  EXPECT_EQ(n, 72u);  // 546 048 parameters in 72 tensors (manifest.json parameters.order)
  return worst;
}

TEST(TrainGolden, CrossEntropyLogitsLossAndEveryGradientMatchOfficial) {
  const Golden& g = golden();
  auto r = run_model(g.params, g.batch, /*l2wrap=*/false);
  const double le = rel_l2(r.logits, get(g.ce, "logits"));
  EXPECT_LT(le, kLogitsTol);
  EXPECT_NEAR(r.loss, get(g.ce, "loss")[0], kLossTol);
  const double de = rel_l2(r.dlogits, get(g.ce, "dlogits"));
  EXPECT_LT(de, kLogitsTol);
  const double ge = check_grads(r.grads, g.ce, "grad.", g.batch.tokens);
  std::printf("[figures] ce: logits rel %.3g, loss |d| %.3g, dlogits rel %.3g, max grad rel %.3g\n",
              le, std::fabs(r.loss - get(g.ce, "loss")[0]), de, ge);
}

TEST(TrainGolden, L2WrapTermAndGradientsMatchOfficial) {
  const Golden& g = golden();
  auto ce = run_model(g.params, g.batch, false);
  auto r = run_model(g.params, g.batch, /*l2wrap=*/true);
  EXPECT_NEAR(r.loss, get(g.l2, "loss")[0], kLossTol);
  EXPECT_LT(rel_l2(r.dlogits, get(g.l2, "dlogits")), kLogitsTol);
  // The term alone, and its argmax: exactly one non-zero entry per row.
  const size_t V = 256, M = g.batch.B * g.batch.T;
  std::vector<float> term(r.dlogits.size());
  for (size_t i = 0; i < term.size(); ++i) term[i] = r.dlogits[i] - ce.dlogits[i];
  std::vector<float> exact_term(term.size(), 0.0f);
  const std::vector<float> ref_argmax = get(g.l2, "l2wrap.argmax");
  ASSERT_EQ(ref_argmax.size(), M);
  for (size_t m = 0; m < M; ++m) {
    size_t amax = 0;
    for (size_t c = 1; c < V; ++c)
      if (r.logits[m * V + c] > r.logits[m * V + amax]) amax = c;
    EXPECT_EQ(float(amax), ref_argmax[m]) << "row " << m;
    exact_term[m * V + amax] = float(r.logits[m * V + amax] * kL2WrapFactor / double(M));
  }
  const std::vector<float> ref_term = get(g.l2, "l2wrap.dlogits_term");
  const double te = rel_l2(exact_term, ref_term);
  EXPECT_LT(te, kLogitsTol);
  // dlogits(l2wrap) − dlogits(ce) is the term up to fp32 rounding of the CE part.
  EXPECT_LT(rel_l2(term, ref_term), 1e-2);
  const double ge = check_grads(r.grads, g.l2, "grad.", g.batch.tokens);
  // Back-propagation of the term alone.
  auto t = run_model(g.params, g.batch, false, nullptr, 16, &exact_term);
  const double tg = check_grads(t.grads, g.l2, "l2wrap_term.grad.", g.batch.tokens);
  std::printf("[figures] l2wrap: term rel %.3g, max grad rel %.3g, max term-grad rel %.3g\n", te,
              ge, tg);
}

TEST(TrainGolden, InitialStateGradientsMatchOfficial) {
  const Golden& g = golden();
  const size_t L = 2;
  // S_0 = 0
  auto z = run_model(g.params, g.batch, false);
  ASSERT_EQ(z.ds0.size(), L);
  double zw = 0;
  for (size_t l = 0; l < L; ++l) {
    const double e =
        rel_l2(z.ds0[l], get(g.st, "zero_state.grad.blocks." + std::to_string(l) + ".att.s0"));
    EXPECT_LT(e, kGradTol) << "layer " << l;
    zw = std::max(zw, e);
  }
  // a random S_0 per layer
  LayerStates<float> s0(L);
  for (size_t l = 0; l < L; ++l) s0[l] = get(g.st, "s0.blocks." + std::to_string(l) + ".att.s0");
  auto r = run_model(g.params, g.batch, false, &s0);
  const double le = rel_l2(r.logits, get(g.st, "rand_state.logits"));
  EXPECT_LT(le, kLogitsTol);
  EXPECT_NEAR(r.loss, get(g.st, "rand_state.loss")[0], kLossTol);
  double sw = 0;
  for (size_t l = 0; l < L; ++l) {
    const double e =
        rel_l2(r.ds0[l], get(g.st, "rand_state.grad.blocks." + std::to_string(l) + ".att.s0"));
    EXPECT_LT(e, kGradTol) << "layer " << l;
    sw = std::max(sw, e);
  }
  const double ge = check_grads(r.grads, g.st, "rand_state.grad.", g.batch.tokens);
  std::printf(
      "[figures] state: zero s0 grad rel %.3g; rand logits rel %.3g, s0 grad rel %.3g, "
      "max param grad rel %.3g\n",
      zw, le, sw, ge);
}

TEST(TrainGolden, StoredStateIntervalDoesNotChangeGradients) {
  const Golden& g = golden();
  auto a = run_model(g.params, g.batch, false, nullptr, 64);
  auto b = run_model(g.params, g.batch, false, nullptr, 5);
  // Recomputation from a stored state repeats the same fp32 operations: identical results.
  EXPECT_EQ(a.logits, b.logits);
  EXPECT_EQ(a.grads.layers[1].w1.data, b.grads.layers[1].w1.data);
  EXPECT_EQ(a.ds0[0], b.ds0[0]);
}

}  // namespace
}  // namespace wkv::train::test
