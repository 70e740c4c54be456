// State tuning and LoRA (see finetune.hpp).
#include "train/finetune.hpp"

#include <cmath>
#include <cstdio>
#include <random>

#include "formats/formats.hpp"
#include "model/adapters.hpp"

namespace wkv::train {

FlatAdamW::FlatAdamW(const std::vector<size_t>& sizes, const AdamWConfig& cfg) : cfg_(cfg) {
  for (size_t n : sizes) {
    m_.emplace_back(n, 0.0f);
    v_.emplace_back(n, 0.0f);
  }
}

void FlatAdamW::step(const std::vector<std::span<float>>& params,
                     const std::vector<std::span<const float>>& grads, double lr) {
  WKV_ASSERT(params.size() == m_.size() && grads.size() == m_.size());
  double sq = 0;
  for (const auto& g : grads)
    for (float x : g) sq += double(x) * x;
  const float coef = float(clip_info(sq, cfg_.grad_clip).coef);
  ++steps;
  for (size_t t = 0; t < params.size(); ++t) {
    WKV_ASSERT(params[t].size() == m_[t].size() && grads[t].size() == m_[t].size());
    adamw_update(params[t].data(), grads[t].data(), coef, m_[t].data(), v_[t].data(),
                 params[t].size(), lr, 0.0, steps, cfg_);
  }
}

namespace {

std::map<std::string, std::string> dims_metadata(const Dims& d) {
  return {{"version", "7.0"},
          {"n_layer", std::to_string(d.L)},
          {"n_embd", std::to_string(d.C)},
          {"n_head", std::to_string(d.H)},
          {"head_size", std::to_string(d.N)},
          {"vocab_size", std::to_string(d.V)}};
}

class StateTuner final : public Tuner {
 public:
  StateTuner(const Params<float>& p, const AdamWConfig& cfg, LayerStates<float> s0)
      : d_(p.d), s0_(std::move(s0)), opt_(std::vector<size_t>(s0_.size(), s0_[0].size()), cfg) {}

  const Params<float>& weights(const Params<float>& base) const override { return base; }
  const LayerStates<float>* initial_state() const override { return &s0_; }
  bool needs_state_grad() const override { return true; }
  void step(const Grads<float>&, const LayerStates<float>& ds0, double lr) override {
    WKV_ASSERT(ds0.size() == s0_.size());
    std::vector<std::span<float>> ps;
    std::vector<std::span<const float>> gs;
    for (size_t l = 0; l < s0_.size(); ++l) {
      ps.emplace_back(s0_[l]);
      gs.emplace_back(ds0[l]);
    }
    opt_.step(ps, gs, lr);
  }
  size_t trainable_count() const override { return s0_.size() * s0_[0].size(); }
  const char* kind() const override { return "state"; }
  TensorMap tensors() const override {
    TensorMap t;
    for (size_t l = 0; l < s0_.size(); ++l)
      t[time_state_name(int(l))] = Tensor::from_f32({d_.H, d_.N, d_.N}, s0_[l]);
    return t;
  }
  std::map<std::string, std::string> metadata() const override {
    auto m = dims_metadata(d_);
    m["format"] = "wkv-state-tune";
    m["layout"] = "[head, value, key]";
    return m;
  }

 private:
  Dims d_;
  LayerStates<float> s0_;
  FlatAdamW opt_;
};

struct LoraSlot {
  std::string name;
  size_t out = 0, in = 0;
  const Param<float>* base = nullptr;  // W, frozen
  Param<float>* eff = nullptr;         // W + s·B·A, what the forward uses
  std::vector<float> A, B, dA, dB;
};

class LoraTuner final : public Tuner {
 public:
  LoraTuner(const Params<float>& base, const LoraConfig& lc, const AdamWConfig& cfg)
      : d_(base.d), lc_(lc), eff_(base), opt_(sizes(base, lc.rank), cfg) {
    const size_t R = size_t(lc.rank);
    std::mt19937_64 rng(lc.seed);
    for_each_param(eff_, [&](const std::string& name, Param<float>& x) {
      if (!is_lora_target(name)) return;
      LoraSlot s;
      s.name = name;
      s.out = size_t(x.shape[0]);
      s.in = size_t(x.shape[1]);
      s.eff = &x;
      std::uniform_real_distribution<double> u(-1.0, 1.0);
      const double bound = 1.0 / std::sqrt(double(s.in));
      s.A.resize(R * s.in);
      for (float& a : s.A) a = float(bound * u(rng));
      s.B.assign(s.out * R, 0.0f);
      s.dA.resize(s.A.size());
      s.dB.resize(s.B.size());
      slots_.push_back(std::move(s));
    });
    size_t k = 0;
    for_each_param(base, [&](const std::string& name, const Param<float>& x) {
      if (is_lora_target(name)) slots_[k++].base = &x;
    });
  }

  const Params<float>& weights(const Params<float>&) const override { return eff_; }
  void step(const Grads<float>& g, const LayerStates<float>&, double lr) override {
    const size_t R = size_t(lc_.rank);
    const double s = lc_.alpha / double(lc_.rank);
    size_t k = 0;
    for_each_param(g, [&](const std::string& name, const Param<float>& dW) {
      if (!is_lora_target(name)) return;
      LoraSlot& sl = slots_[k++];
      WKV_ASSERT(sl.name == name);
      lora_grads(dW.data.data(), sl.A.data(), sl.B.data(), sl.out, sl.in, R, s, sl.dA.data(),
                 sl.dB.data());
    });
    std::vector<std::span<float>> ps;
    std::vector<std::span<const float>> gs;
    for (LoraSlot& sl : slots_) {
      ps.emplace_back(sl.A);
      gs.emplace_back(sl.dA);
      ps.emplace_back(sl.B);
      gs.emplace_back(sl.dB);
    }
    opt_.step(ps, gs, lr);
    for (LoraSlot& sl : slots_) {  // W_eff = W + s·B·A
      sl.eff->data = sl.base->data;
      add_lora_delta(sl.eff->data.data(), sl.A.data(), sl.B.data(), sl.out, sl.in, R, s);
    }
  }
  size_t trainable_count() const override {
    size_t n = 0;
    for (const LoraSlot& sl : slots_) n += sl.A.size() + sl.B.size();
    return n;
  }
  const char* kind() const override { return "lora"; }
  TensorMap tensors() const override {
    TensorMap t;
    const int64_t R = lc_.rank;
    for (const LoraSlot& sl : slots_) {
      t[sl.name + kLoraA] = Tensor::from_f32({R, int64_t(sl.in)}, sl.A);
      t[sl.name + kLoraB] = Tensor::from_f32({int64_t(sl.out), R}, sl.B);
    }
    return t;
  }
  std::map<std::string, std::string> metadata() const override {
    auto m = dims_metadata(d_);
    char alpha[64];
    std::snprintf(alpha, sizeof alpha, "%.17g", lc_.alpha);
    m["format"] = "wkv-lora";
    m["lora_rank"] = std::to_string(lc_.rank);
    m["lora_alpha"] = alpha;
    std::string targets;
    for (const char* t : kLoraTargets) targets += (targets.empty() ? "" : ",") + std::string(t);
    m["lora_targets"] = targets;
    return m;
  }

 private:
  static std::vector<size_t> sizes(const Params<float>& p, int64_t rank) {
    std::vector<size_t> s;
    for_each_param(p, [&](const std::string& name, const Param<float>& x) {
      if (!is_lora_target(name)) return;
      s.push_back(size_t(rank * x.shape[1]));  // A
      s.push_back(size_t(x.shape[0] * rank));  // B
    });
    return s;
  }

  Dims d_;
  LoraConfig lc_;
  Params<float> eff_;
  FlatAdamW opt_;
  std::vector<LoraSlot> slots_;
};

}  // namespace

bool is_lora_target(const std::string& name) {
  for (const char* t : kLoraTargets)
    if (name.ends_with(std::string(".") + t)) return true;
  return false;
}

Expected<std::unique_ptr<Tuner>> make_state_tuner(const Params<float>& p, const AdamWConfig& cfg,
                                                  const TensorMap* init, const std::string& where) {
  LayerStates<float> s0(size_t(p.d.L), std::vector<float>(size_t(p.d.H * p.d.N * p.d.N), 0.0f));
  if (init) {
    auto st = read_time_states(*init, int(p.d.L), p.d.H, p.d.N, where);
    if (!st) return st.error();
    s0 = std::move(*st);
  }
  return std::unique_ptr<Tuner>(new StateTuner(p, cfg, std::move(s0)));
}

std::unique_ptr<Tuner> make_lora_tuner(const Params<float>& base, const LoraConfig& lc,
                                       const AdamWConfig& cfg) {
  WKV_ASSERT(lc.rank > 0);
  return std::unique_ptr<Tuner>(new LoraTuner(base, lc, cfg));
}

Status save_tuned(const Tuner& t, const std::string& path, int64_t step) {
  auto meta = t.metadata();
  meta["step"] = std::to_string(step);
  return save_safetensors(path, t.tensors(), meta);
}

}  // namespace wkv::train
