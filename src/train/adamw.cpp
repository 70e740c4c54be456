// AdamW with the official groups, clipping and LR schedule (see adamw.hpp).
#include "train/adamw.hpp"

#include <algorithm>
#include <cmath>

namespace wkv::train {

ParamGroup param_group(const std::string& name, const std::vector<int64_t>& shape,
                       double weight_decay) {
  if (name.find("att.w0") != std::string::npos) return ParamGroup::lr_2x;
  // model.py: len(p.squeeze().shape) >= 2 and ".weight" in name
  size_t dims = 0;
  for (int64_t s : shape) dims += s != 1;
  if (weight_decay > 0 && dims >= 2 && name.find(".weight") != std::string::npos)
    return ParamGroup::lr_decay;
  return ParamGroup::lr_1x;
}

const char* param_group_name(ParamGroup g) {
  switch (g) {
    case ParamGroup::lr_1x:
      return "lr_1x";
    case ParamGroup::lr_2x:
      return "lr_2x";
    case ParamGroup::lr_decay:
      return "lr_decay";
  }
  return "?";
}

ClipInfo clip_info(double sum_of_squares, double max_norm) {
  ClipInfo clip;
  clip.total_norm = std::sqrt(sum_of_squares);
  if (max_norm > 0) {
    const double coef = max_norm / (clip.total_norm + 1e-6);
    if (coef < 1) clip.coef = coef;
  }
  return clip;
}

void adamw_update(float* p, const float* g, float gscale, float* m, float* v, size_t n, double lr,
                  double wd, int64_t step, const AdamWConfig& cfg) {
  const double bc1 = 1 - std::pow(cfg.beta1, double(step));
  const double bc2 = 1 - std::pow(cfg.beta2, double(step));
  for (size_t j = 0; j < n; ++j) {
    const double gj = double(g[j] * gscale);  // fp32, as torch scales the gradients
    const double mj = cfg.beta1 * m[j] + (1 - cfg.beta1) * gj;
    const double vj = cfg.beta2 * v[j] + (1 - cfg.beta2) * gj * gj;
    m[j] = float(mj);
    v[j] = float(vj);
    // p ← p − lr·( m̂ / (sqrt(v̂) + eps) + wd·p )
    const double upd = (mj / bc1) / (std::sqrt(vj / bc2) + cfg.eps);
    p[j] = float(double(p[j]) - lr * (upd + wd * double(p[j])));
  }
}

AdamW::AdamW(const Params<float>& p, const AdamWConfig& cfg)
    : exp_avg(zeros_like(p)), exp_avg_sq(zeros_like(p)), cfg_(cfg) {
  for_each_param(p, [&](const std::string& name, const Param<float>& prm) {
    groups_.push_back(param_group(name, prm.shape, cfg_.weight_decay));
  });
}

ClipInfo AdamW::step(Params<float>& p, Grads<float>& g, double lr_base) {
  std::vector<Param<float>*> ps, gs, ms, vs;
  for_each_param(p, [&](const std::string&, Param<float>& x) { ps.push_back(&x); });
  for_each_param(g, [&](const std::string&, Param<float>& x) { gs.push_back(&x); });
  for_each_param(exp_avg, [&](const std::string&, Param<float>& x) { ms.push_back(&x); });
  for_each_param(exp_avg_sq, [&](const std::string&, Param<float>& x) { vs.push_back(&x); });
  WKV_ASSERT(ps.size() == groups_.size() && gs.size() == ps.size() && ms.size() == ps.size() &&
             vs.size() == ps.size());

  double sq = 0;
  for (auto* x : gs)
    for (float v : x->data) sq += double(v) * v;
  const ClipInfo clip = clip_info(sq, cfg_.grad_clip);
  if (clip.coef < 1) {  // in place, as clip_grad_norm_ does
    const float cf = float(clip.coef);
    for (auto* x : gs)
      for (float& v : x->data) v *= cf;
  }
  ++steps;
  for (size_t i = 0; i < ps.size(); ++i) {
    const ParamGroup grp = groups_[i];
    const double lr = grp == ParamGroup::lr_2x ? 2 * lr_base : lr_base;
    const double wd = grp == ParamGroup::lr_decay ? cfg_.weight_decay : 0.0;
    adamw_update(ps[i]->data.data(), gs[i]->data.data(), 1.0f, ms[i]->data.data(),
                 vs[i]->data.data(), ps[i]->data.size(), lr, wd, steps, cfg_);
  }
  return clip;
}

double LrSchedule::progress(int64_t real_step) const {
  const int64_t warm = warmup_steps * ctx_len * real_bsz;
  const double pr = double(real_step * ctx_len * real_bsz - warm) / double(exit_tokens - warm);
  return std::clamp(pr, 0.0, 1.0);
}

double LrSchedule::lr(int64_t global_step, int64_t real_step) const {
  const double f = lr_final / lr_init;
  double lr = lr_init * ((0.5 + f / 2) + (0.5 - f / 2) * std::cos(M_PI * progress(real_step)));
  if (global_step < warmup_steps)
    lr = lr * (0.01 + 0.99 * double(global_step) / double(warmup_steps));
  return lr;
}

}  // namespace wkv::train
