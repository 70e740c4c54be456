// RWKV-5 "Eagle" (v5.0, v5.1, v5.2): the multi-head matrix-valued time mix; the sub-version,
// chosen once at load, sets the decay/bonus shape (per head or per channel) and the gate.
// Math: ../shared/spec/RWKV_REFERENCE.md §2.2, §4.2 (official model.py att_one_v5, _v5_1).
// Letters: r receptance, w decay, k key, v value, u bonus, g gate.
#include <cstring>

#include "kernels/kernels.hpp"
#include "model/common.hpp"
#include "model/versions.hpp"

namespace wkv {

namespace {

constexpr size_t kSlotsPerLayer = 3;  // att.x_prev, att.wkv, ffn.x_prev

struct Layer {
  std::vector<float> ln1_w, ln1_b;       // [C]
  std::vector<float> m_k, m_v, m_r, m_g; // [C] att.time_mix_k|v|r|g (m_g: v5.1, v5.2)
  std::vector<float> w, u;               // [C] per channel (v5.0/5.1 repeat each head's value)
  Matrix Wr, Wk, Wv, Wo, Wg;             // [C, C] (Wg: v5.1, v5.2)
  std::vector<float> lnx_w, lnx_b;       // [C] GroupNorm affine
  ChannelMix ffn;
};

struct Work {
  std::vector<float> xx, xk, xv, xr, xg, r, k, v, g, y, out;
  void reserve(size_t T, size_t C) {
    if (xx.size() >= T * C) return;
    for (auto* b : {&xx, &xk, &xv, &xr, &xg, &r, &k, &v, &g, &y, &out}) b->assign(T * C, 0.0f);
  }
};

class ModelV5 final : public BlockModel {
 public:
  explicit ModelV5(ModelVersion sub) { hp_.version = sub; }

  State new_state() const override {
    State s;
    const int64_t C = hp_.n_embd, H = hp_.n_head, N = hp_.head_size;
    for (int i = 0; i < hp_.n_layer; ++i) {
      const std::string p = "blocks." + std::to_string(i) + ".";
      s.add_slot(p + "att.x_prev", {C});
      s.add_slot(p + "att.wkv", {H, N, N});  // S[h, key, value]
      s.add_slot(p + "ffn.x_prev", {C});
    }
    return s;
  }

 private:
  Status load(WeightReader& rd, const TensorMap& t, const std::string& where) override;
  void blocks(float* x, size_t T, State& state) override;
  void time_mix(const Layer& L, float* x, size_t T, float* att_prev, float* S);
  bool gated() const { return hp_.version != ModelVersion::v5_0; }

  std::vector<Layer> layers_;
  Work wk_;
};

Status ModelV5::load(WeightReader& rd, const TensorMap& t, const std::string& where) {
  WKV_TRY_STATUS(read_embed_dims(t, where, hp_));
  WKV_TRY_STATUS(read_ffn_size(t, where, hp_));
  // H from time_decay: [H] (v5.0, v5.1) or [H, N] (v5.2).
  const bool per_channel = hp_.version == ModelVersion::v5_2;
  auto td = find_tensor(t, "blocks.0.att.time_decay", where);
  if (!td) return td.error();
  const Tensor& d = **td;
  const int64_t C = hp_.n_embd, F = hp_.ffn_size;
  const size_t want_dims = per_channel ? 2 : 1;
  if (d.shape.size() != want_dims || d.shape[0] <= 0 || C % d.shape[0] != 0 ||
      (per_channel && d.shape[0] * d.shape[1] != C))
    return Error{where + ": tensor 'blocks.0.att.time_decay' has shape " + d.shape_str() +
                 ", expected " + (per_channel ? "[n_head, head_size]" : "[n_head]") +
                 " with n_head*head_size = n_embd = " + std::to_string(C)};
  hp_.n_head = static_cast<int>(d.shape[0]);
  hp_.head_size = static_cast<int>(C / d.shape[0]);
  const int64_t N = hp_.head_size;
  const int64_t n_wu = per_channel ? C : hp_.n_head;  // decay/bonus values per layer

  WKV_TRY_STATUS(eh_.load(rd, hp_.vocab_size, C));
  layers_.resize(hp_.n_layer);
  for (int i = 0; i < hp_.n_layer; ++i) {
    Layer& L = layers_[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    Status st = read_vecs(rd, p, {{"ln1.weight", &L.ln1_w, C}, {"ln1.bias", &L.ln1_b, C},
                                  {"att.time_mix_k", &L.m_k, C}, {"att.time_mix_v", &L.m_v, C},
                                  {"att.time_mix_r", &L.m_r, C},
                                  {"att.ln_x.weight", &L.lnx_w, C}, {"att.ln_x.bias", &L.lnx_b, C}});
    if (!st) return st;
    st = read_mats(rd, p, {{"att.receptance.weight", &L.Wr, C, C},
                           {"att.key.weight", &L.Wk, C, C},
                           {"att.value.weight", &L.Wv, C, C},
                           {"att.output.weight", &L.Wo, C, C}});
    if (!st) return st;
    if (gated()) {
      st = read_vecs(rd, p, {{"att.time_mix_g", &L.m_g, C}});
      if (!st) return st;
      st = read_mats(rd, p, {{"att.gate.weight", &L.Wg, C, C}});
      if (!st) return st;
    }
    // w = exp(-exp(time_decay)); u = time_faaaa as is, or exp(time_first) (v5.0 files).
    auto decay = rd.vec(p + "att.time_decay", n_wu, per_channel);
    if (!decay) return decay.error();
    const bool faaaa = rd.has(p + "att.time_faaaa");
    if (!faaaa && !rd.has(p + "att.time_first"))
      return Error{where + ": missing tensor '" + p + "att.time_faaaa' (or '" + p +
                   "att.time_first')"};
    auto bonus = rd.vec(p + (faaaa ? "att.time_faaaa" : "att.time_first"), n_wu, per_channel);
    if (!bonus) return bonus.error();
    L.w.resize(C);
    L.u.resize(C);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t j = per_channel ? c : c / N;
      L.w[c] = std::exp(-std::exp((*decay)[j]));
      L.u[c] = faaaa ? (*bonus)[j] : std::exp((*bonus)[j]);
    }
    WKV_TRY_STATUS(L.ffn.load(rd, p, C, F, MixStyle::time_mix));
  }
  return Status::success();
}

void ModelV5::blocks(float* x, size_t T, State& state) {
  WKV_ASSERT(state.slots.size() == kSlotsPerLayer * hp_.n_layer);
  for (int i = 0; i < hp_.n_layer; ++i) {
    const size_t s = kSlotsPerLayer * i;
    time_mix(layers_[i], x, T, state.slot(s), state.slot(s + 1));
    layers_[i].ffn.forward(x, T, state.slot(s + 2), ffn_work_);
  }
}

// x += Wo (GroupNorm(wkv) [* silu(Wg xg)]); `att_prev` [C] and `S` [H, N, N] updated.
void ModelV5::time_mix(const Layer& L, float* x, size_t T, float* att_prev, float* S) {
  const size_t C = hp_.n_embd, H = hp_.n_head, N = hp_.head_size;
  Work& W = wk_;
  W.reserve(T, C);
  layer_norm_rows(x, L.ln1_w, L.ln1_b, W.xx.data(), T, C);
  token_mix(MixStyle::time_mix, W.xx.data(), att_prev, L.m_k.data(), W.xk.data(), T, C);
  token_mix(MixStyle::time_mix, W.xx.data(), att_prev, L.m_v.data(), W.xv.data(), T, C);
  token_mix(MixStyle::time_mix, W.xx.data(), att_prev, L.m_r.data(), W.xr.data(), T, C);
  if (gated()) token_mix(MixStyle::time_mix, W.xx.data(), att_prev, L.m_g.data(), W.xg.data(), T, C);
  std::memcpy(att_prev, W.xx.data() + (T - 1) * C, C * sizeof(float));
  const Product rkvg[] = {{L.Wr, W.xr.data(), W.r.data()},
                          {L.Wk, W.xk.data(), W.k.data()},
                          {L.Wv, W.xv.data(), W.v.data()},
                          {L.Wg, W.xg.data(), W.g.data()}};  // g: v5.2 only
  matmul_batch(std::span<const Product>(rkvg, gated() ? 4 : 3), T);
  if (gated()) {
    // silu(g) = g sigmoid(g), the sigmoid into y (free until the recurrence)
    kernels::sigmoid_f32(W.g.data(), W.y.data(), T * C);
    for (size_t i = 0; i < T * C; ++i) W.g[i] *= W.y[i];
  }
  wkv5_rows(S, W.r.data(), L.w.data(), 0, L.u.data(), W.k.data(), W.v.data(), W.y.data(), T, H,
            N);
  for_rows(T, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      float* y = W.y.data() + t * C;
      kernels::group_norm(y, L.lnx_w.data(), L.lnx_b.data(), y, H, N, kGroupNormEps);
      if (gated())
        for (size_t c = 0; c < C; ++c) y[c] *= W.g[t * C + c];
    }
  });
  matmul(L.Wo, W.y.data(), W.out.data(), T);
  for (size_t i = 0; i < T * C; ++i) x[i] += W.out[i];
}

}  // namespace

Expected<std::unique_ptr<Model>> load_v5(TensorMap tensors, const std::string& where,
                                         ModelVersion sub) {
  WKV_ASSERT(sub == ModelVersion::v5_0 || sub == ModelVersion::v5_1 || sub == ModelVersion::v5_2);
  auto m = std::make_unique<ModelV5>(sub);
  WKV_TRY_STATUS(m->init(std::move(tensors), where));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace wkv
