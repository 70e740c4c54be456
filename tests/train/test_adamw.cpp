// AdamW with the official groups and clipping against adamw_step1/2.safetensors (reference
// gradients as input, as the README prescribes), and the LR schedule against lr_schedule.json.
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "train/adamw.hpp"
#include "train_test_util.hpp"

namespace wkv::train::test {
namespace {

std::string golden(const std::string& f) { return wkv::test::testdata("train/" + f); }

double scalar_f64(const TensorMap& m, const std::string& name) {
  auto it = m.find(name);
  if (it == m.end() || it->second.dtype != DType::f64) {
    ADD_FAILURE() << "missing F64 scalar " << name;
    return NAN;
  }
  double v;
  std::memcpy(&v, it->second.data, 8);
  return v;
}

// Parameters from `m` under `prefix + name` (the model's names and shapes).
Params<float> params_with_prefix(const TensorMap& m, const std::string& prefix) {
  TensorMap t;
  for (const auto& [name, ten] : m)
    if (name.rfind(prefix, 0) == 0) t[name.substr(prefix.size())] = ten;
  auto p = params_from_tensors<float>(t, prefix);
  if (!p) {
    ADD_FAILURE() << p.error().message;
    return {};
  }
  return std::move(*p);
}

// Per element |p − p_ref| ≤ 2e-6·(|p_in| + lr_group) (README "Tolerances"); moments rel_l2 < 1e-5.
void check_step(const Params<float>& p_in, const Params<float>& p, const AdamW& opt,
                const TensorMap& ref, double lr_base) {
  std::vector<const Param<float>*> in, m, v;
  for_each_param(p_in, [&](const std::string&, const Param<float>& x) { in.push_back(&x); });
  for_each_param(opt.exp_avg, [&](const std::string&, const Param<float>& x) { m.push_back(&x); });
  for_each_param(opt.exp_avg_sq,
                 [&](const std::string&, const Param<float>& x) { v.push_back(&x); });
  size_t i = 0, n = 0;
  double worst_p = 0, worst_m = 0;
  for_each_param(p, [&](const std::string& name, const Param<float>& x) {
    const double lr = param_group(name, x.shape, 0.1) == ParamGroup::lr_2x ? 2 * lr_base : lr_base;
    const auto pr = get(ref, "param." + name);
    ASSERT_EQ(pr.size(), x.data.size()) << name;
    size_t bad = 0;
    for (size_t j = 0; j < pr.size(); ++j) {
      const double tol = 2e-6 * (std::fabs(in[i]->data[j]) + lr);
      const double err = std::fabs(double(x.data[j]) - pr[j]);
      worst_p = std::max(worst_p, err / tol);
      bad += err > tol;
    }
    EXPECT_EQ(bad, 0u) << name;
    const double em = rel_l2(m[i]->data, get(ref, "exp_avg." + name));
    const double ev = rel_l2(v[i]->data, get(ref, "exp_avg_sq." + name));
    EXPECT_LT(em, 1e-5) << name;
    EXPECT_LT(ev, 1e-5) << name;
    worst_m = std::max({worst_m, em, ev});
    ++i;
    ++n;
  });
  EXPECT_EQ(n, 72u);
  std::printf("[figures] adamw: max |dp|/tol %.3g, max moment rel %.3g\n", worst_p, worst_m);
}

TEST(TrainAdamW, OfficialGroups) {
  const std::vector<int64_t> mat{8, 8}, vec{8}, mix{1, 1, 8};
  EXPECT_EQ(param_group("blocks.3.att.w0", mix, 0.1), ParamGroup::lr_2x);
  EXPECT_EQ(param_group("emb.weight", mat, 0.1), ParamGroup::lr_decay);
  EXPECT_EQ(param_group("blocks.0.att.key.weight", mat, 0.1), ParamGroup::lr_decay);
  EXPECT_EQ(param_group("blocks.0.att.key.weight", mat, 0.0), ParamGroup::lr_1x);
  EXPECT_EQ(param_group("blocks.0.att.w1", mat, 0.1), ParamGroup::lr_1x);
  EXPECT_EQ(param_group("blocks.0.att.ln_x.weight", vec, 0.1), ParamGroup::lr_1x);
  EXPECT_EQ(param_group("blocks.0.att.r_k", mat, 0.1), ParamGroup::lr_1x);
  // the manifest's lists
  std::ifstream f(golden("manifest.json"));
  const auto j = nlohmann::json::parse(f);
  auto model = load_or_die(golden("model.safetensors"));
  size_t n = 0;
  for (const auto& grp : j["adamw"]["groups"]) {
    const double wd = grp["weight_decay"], scale = grp["my_lr_scale"];
    const ParamGroup want = scale == 2.0 ? ParamGroup::lr_2x
                            : wd > 0     ? ParamGroup::lr_decay
                                         : ParamGroup::lr_1x;
    for (const auto& name : grp["names"]) {
      EXPECT_EQ(param_group(name, model.at(name).shape, 0.1), want) << name;
      ++n;
    }
  }
  EXPECT_EQ(n, 72u);
}

TEST(TrainAdamW, TwoOfficialStepsWithReferenceGradients) {
  auto model = load_or_die(golden("model.safetensors"));
  auto p0 = params_from_tensors<float>(model, "model");
  ASSERT_TRUE(p0) << p0.error().message;
  Params<float> p = *p0;
  AdamW opt(p, AdamWConfig{});
  // step 1: grads_l2wrap grad.*
  const auto s1 = load_or_die(golden("adamw_step1.safetensors"));
  Grads<float> g1 = params_with_prefix(load_or_die(golden("grads_l2wrap.safetensors")), "grad.");
  const double lr1 = scalar_f64(s1, "lr_base");
  ClipInfo c1 = opt.step(p, g1, lr1);
  EXPECT_NEAR(c1.total_norm / scalar_f64(s1, "clip.total_norm"), 1.0, 1e-6);
  EXPECT_NEAR(c1.coef / scalar_f64(s1, "clip.coef"), 1.0, 1e-6);
  check_step(*p0, p, opt, s1, lr1);

  // step 2 starts from the reference step-1 state (no chaining of our own rounding)
  Params<float> p1 = params_with_prefix(s1, "param.");
  AdamW opt2(p1, AdamWConfig{});
  opt2.exp_avg = params_with_prefix(s1, "exp_avg.");
  opt2.exp_avg_sq = params_with_prefix(s1, "exp_avg_sq.");
  opt2.steps = 1;
  const auto s2 = load_or_die(golden("adamw_step2.safetensors"));
  Grads<float> g2 = params_with_prefix(s2, "grad.");
  Params<float> p2 = p1;
  const double lr2 = scalar_f64(s2, "lr_base");
  ClipInfo c2 = opt2.step(p2, g2, lr2);
  EXPECT_NEAR(c2.total_norm / scalar_f64(s2, "clip.total_norm"), 1.0, 1e-6);
  EXPECT_NEAR(c2.coef / scalar_f64(s2, "clip.coef"), 1.0, 1e-6);
  check_step(p1, p2, opt2, s2, lr2);
}

TEST(TrainAdamW, SecondBatchLossAndGradientsAtStepOneParameters) {
  const auto s1 = load_or_die(golden("adamw_step1.safetensors"));
  const auto s2 = load_or_die(golden("adamw_step2.safetensors"));
  Params<float> p1 = params_with_prefix(s1, "param.");
  auto b = batch_from_tensors(s2, 256, "adamw_step2");
  ASSERT_TRUE(b) << b.error().message;
  GradResult r = compute_gradients(p1, *b, /*l2wrap=*/true);
  EXPECT_NEAR(r.loss, get(s2, "loss")[0], 1e-5);
  double worst = 0;
  for_each_param(r.grads, [&](const std::string& name, const Param<float>& g) {
    const auto ref = get(s2, "grad." + name);
    if (name == "blocks.0.att.v0" || name == "blocks.0.att.v1" || name == "blocks.0.att.v2") {
      EXPECT_EQ(rel_l2(g.data, std::vector<float>(g.data.size(), 0.0f)), 0.0);
      return;
    }
    const double e = rel_l2(g.data, ref);
    EXPECT_LT(e, 1e-4) << name;
    worst = std::max(worst, e);
  });
  std::printf("[figures] step2 batch: loss |d| %.3g, max grad rel %.3g\n",
              std::fabs(r.loss - get(s2, "loss")[0]), worst);
}

TEST(TrainAdamW, LrScheduleMatchesOfficialCallback) {
  std::ifstream f(golden("lr_schedule.json"));
  const auto j = nlohmann::json::parse(f);
  size_t n = 0;
  double worst = 0;
  for (const auto& tab : j["tables"]) {
    const auto& c = tab["config"];
    LrSchedule s;
    s.lr_init = c["lr_init"];
    s.lr_final = c["lr_final"];
    s.warmup_steps = c["warmup_steps"];
    s.ctx_len = c["ctx_len"];
    s.real_bsz = c["real_bsz"];
    s.exit_tokens = c["my_exit_tokens"];
    for (const auto& row : tab["table"]) {
      const int64_t step = row["global_step"];
      const double lr = s.lr(step);
      for (const auto& [key, mult] : {std::pair<const char*, double>{"lr", 1.0},
                                      {"group_lr_1x", 1.0},
                                      {"group_lr_2x", 2.0},
                                      {"group_lr_decay", 1.0}}) {
        const double ref = row[key];
        const double e = std::fabs(lr * mult - ref) / ref;
        EXPECT_LT(e, 1e-12) << tab["config"]["name"] << " step " << step << " " << key;
        worst = std::max(worst, e);
      }
      ++n;
    }
  }
  EXPECT_EQ(n, 62u);
  std::printf("[figures] lr schedule: %zu steps, max rel %.3g\n", n, worst);
}

}  // namespace
}  // namespace wkv::train::test
