// RWKV-6 "Finch" (x060): data-dependent token shift (ddlerp LoRA) and per-token decay (LoRA),
// then the v5.2 WKV with bonus u. Math: ../shared/spec/RWKV_REFERENCE.md §2.3, §4.3 (official
// model.py att_one_v6_0). Letters: r receptance, w decay, k key, v value, u bonus, g gate.
#include <algorithm>
#include <cstring>

#include "kernels/kernels.hpp"
#include "model/common.hpp"
#include "model/versions.hpp"

namespace wkv {

namespace {

constexpr size_t kSlotsPerLayer = 3;  // att.x_prev, att.wkv, ffn.x_prev
constexpr int kMixes = 5;             // ddlerp LoRA outputs, in the official order w, k, v, r, g

struct Layer {
  std::vector<float> ln1_w, ln1_b;  // [C]
  std::vector<float> maa_x;         // [C] att.time_maa_x: mix of the LoRA input
  std::vector<float> maa[kMixes];   // [C] att.time_maa_w|k|v|r|g
  Matrix maa_w1;                    // [5*Dm, C] (time_maa_w1 [C, 5*Dm] transposed at load)
  Matrix maa_w2[kMixes];            // [C, Dm] each (time_maa_w2 [5, Dm, C], slices transposed)
  std::vector<float> decay;         // [C] att.time_decay
  Matrix decay_w1;                  // [Dd, C] (time_decay_w1 [C, Dd] transposed)
  Matrix decay_w2;                  // [C, Dd] (time_decay_w2 [Dd, C] transposed)
  std::vector<float> u;             // [C] att.time_faaaa [H, N]
  Matrix Wr, Wk, Wv, Wg, Wo;        // [C, C]
  std::vector<float> lnx_w, lnx_b;  // [C] GroupNorm affine
  ChannelMix ffn;
};

struct Work {
  std::vector<float> xx, sx, xin, mixed[kMixes], m, r, k, v, g, w, y, out, lora, part;
  void reserve(size_t T, size_t C, size_t Dm, size_t Dd) {
    if (xx.size() >= T * C) return;
    for (auto* b : {&xx, &sx, &xin, &m, &r, &k, &v, &g, &w, &y, &out}) b->assign(T * C, 0.0f);
    for (auto& b : mixed) b.assign(T * C, 0.0f);
    lora.assign(T * std::max(kMixes * Dm, Dd), 0.0f);
    part.assign(T * Dm, 0.0f);
  }
};

enum Mix { kW, kK, kV, kR, kG };

class ModelV6 final : public BlockModel {
 public:
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
  Status read_dims(const TensorMap& t, const std::string& where);
  void blocks(float* x, size_t T, State& state) override;
  void time_mix(const Layer& L, float* x, size_t T, float* att_prev, float* S);

  std::vector<Layer> layers_;
  Work wk_;
};

// n_head, head_size from time_faaaa [H, N]; LoRA widths from time_maa_w1 [C, 5*Dm] and
// time_decay_w1 [C, Dd] (never hard-coded).
Status ModelV6::read_dims(const TensorMap& t, const std::string& where) {
  const int64_t C = hp_.n_embd;
  auto fa = find_tensor(t, "blocks.0.att.time_faaaa", where);
  if (!fa) return fa.error();
  const Tensor& u = **fa;
  if (u.shape.size() != 2 || u.shape[0] <= 0 || u.shape[1] <= 0 || u.shape[0] * u.shape[1] != C)
    return Error{where + ": tensor 'blocks.0.att.time_faaaa' has shape " + u.shape_str() +
                 ", expected [n_head, head_size] with n_head*head_size = n_embd = " +
                 std::to_string(C)};
  hp_.n_head = static_cast<int>(u.shape[0]);
  hp_.head_size = static_cast<int>(u.shape[1]);
  auto w1 = find_tensor(t, "blocks.0.att.time_maa_w1", where);
  if (!w1) return w1.error();
  const Tensor& m1 = **w1;
  if (m1.shape.size() != 2 || m1.shape[0] != C || m1.shape[1] <= 0 || m1.shape[1] % kMixes != 0 ||
      m1.shape[1] > kMixes * 65536)
    return Error{where + ": tensor 'blocks.0.att.time_maa_w1' has shape " + m1.shape_str() +
                 ", expected [n_embd, 5 * lora_width] with n_embd = " + std::to_string(C)};
  hp_.lora_maa = static_cast<int>(m1.shape[1] / kMixes);
  auto d1 = find_tensor(t, "blocks.0.att.time_decay_w1", where);
  if (!d1) return d1.error();
  const Tensor& dw = **d1;
  if (dw.shape.size() != 2 || dw.shape[0] != C || dw.shape[1] <= 0 || dw.shape[1] > 65536)
    return Error{where + ": tensor 'blocks.0.att.time_decay_w1' has shape " + dw.shape_str() +
                 ", expected [n_embd, lora_width] with n_embd = " + std::to_string(C)};
  hp_.lora_decay = static_cast<int>(dw.shape[1]);
  return Status::success();
}

Status ModelV6::load(WeightReader& rd, const TensorMap& t, const std::string& where) {
  WKV_TRY_STATUS(read_embed_dims(t, where, hp_));
  WKV_TRY_STATUS(read_ffn_size(t, where, hp_));
  hp_.version = ModelVersion::v6_0;
  WKV_TRY_STATUS(read_dims(t, where));
  const int64_t C = hp_.n_embd, F = hp_.ffn_size, Dm = hp_.lora_maa, Dd = hp_.lora_decay;
  WKV_TRY_STATUS(eh_.load(rd, hp_.vocab_size, C));
  layers_.resize(hp_.n_layer);
  for (int i = 0; i < hp_.n_layer; ++i) {
    Layer& L = layers_[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    Status st = read_vecs(
        rd, p,
        {{"ln1.weight", &L.ln1_w, C}, {"ln1.bias", &L.ln1_b, C},
         {"att.time_maa_x", &L.maa_x, C}, {"att.time_maa_w", &L.maa[kW], C},
         {"att.time_maa_k", &L.maa[kK], C}, {"att.time_maa_v", &L.maa[kV], C},
         {"att.time_maa_r", &L.maa[kR], C}, {"att.time_maa_g", &L.maa[kG], C},
         {"att.time_decay", &L.decay, C}, {"att.time_faaaa", &L.u, C, true},
         {"att.ln_x.weight", &L.lnx_w, C}, {"att.ln_x.bias", &L.lnx_b, C}});
    if (!st) return st;
    st = read_mats(rd, p, {{"att.receptance.weight", &L.Wr, C, C},
                           {"att.key.weight", &L.Wk, C, C},
                           {"att.value.weight", &L.Wv, C, C},
                           {"att.gate.weight", &L.Wg, C, C},
                           {"att.output.weight", &L.Wo, C, C}});
    if (!st) return st;
    auto w1 = rd.mat_t(p + "att.time_maa_w1", kMixes * Dm, C);
    if (!w1) return w1.error();
    L.maa_w1 = *w1;
    auto d1 = rd.mat_t(p + "att.time_decay_w1", Dd, C);
    if (!d1) return d1.error();
    L.decay_w1 = *d1;
    auto d2 = rd.mat_t(p + "att.time_decay_w2", C, Dd);
    if (!d2) return d2.error();
    L.decay_w2 = *d2;
    // time_maa_w2 [5, Dm, C]: slice j is used as x @ w2[j], i.e. y = w2[j]^T x.
    const std::string w2name = p + "att.time_maa_w2";
    auto w2t = find_tensor(t, w2name, where);
    if (!w2t) return w2t.error();
    if ((*w2t)->shape != std::vector<int64_t>{kMixes, Dm, C})
      return rd.bad_shape(w2name, **w2t, "[5, " + std::to_string(Dm) + ", " + std::to_string(C) + "]");
    auto w2 = rd.vec(w2name, kMixes * Dm * C, true);
    if (!w2) return w2.error();
    for (int j = 0; j < kMixes; ++j) {
      auto buf = std::make_shared<std::vector<float>>(C * Dm);
      const float* src = w2->data() + j * Dm * C;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t d = 0; d < Dm; ++d) (*buf)[c * Dm + d] = src[d * C + c];
      L.maa_w2[j] = Matrix{DType::f32, buf->data(), static_cast<size_t>(C), static_cast<size_t>(Dm)};
      rd.buffers().push_back(buf);
    }
    WKV_TRY_STATUS(L.ffn.load(rd, p, C, F, MixStyle::time_maa));
  }
  return Status::success();
}

void ModelV6::blocks(float* x, size_t T, State& state) {
  WKV_ASSERT(state.slots.size() == kSlotsPerLayer * hp_.n_layer);
  for (int i = 0; i < hp_.n_layer; ++i) {
    const size_t s = kSlotsPerLayer * i;
    time_mix(layers_[i], x, T, state.slot(s), state.slot(s + 1));
    layers_[i].ffn.forward(x, T, state.slot(s + 2), ffn_work_);
  }
}

// x += Wo (GroupNorm(wkv) * silu(Wg xg)); `att_prev` [C] and `S` [H, N, N] updated.
void ModelV6::time_mix(const Layer& L, float* x, size_t T, float* att_prev, float* S) {
  const size_t C = hp_.n_embd, H = hp_.n_head, N = hp_.head_size;
  const size_t Dm = hp_.lora_maa, Dd = hp_.lora_decay;
  Work& W = wk_;
  W.reserve(T, C, Dm, Dd);
  layer_norm_rows(x, L.ln1_w, L.ln1_b, W.xx.data(), T, C);
  // sx = x_prev - xx; LoRA input xx + sx*maa_x
  for (size_t t = 0; t < T; ++t) {
    const float* cur = W.xx.data() + t * C;
    const float* prev = t == 0 ? att_prev : W.xx.data() + (t - 1) * C;
    for (size_t c = 0; c < C; ++c) {
      const size_t o = t * C + c;
      W.sx[o] = prev[c] - cur[c];
      W.xin[o] = cur[c] + W.sx[o] * L.maa_x[c];
    }
  }
  std::memcpy(att_prev, W.xx.data() + (T - 1) * C, C * sizeof(float));
  // lora[T, 5*Dm] = tanh(xin @ maa_w1); m_j = lora[:, j*Dm:(j+1)*Dm] @ maa_w2[j];
  // x_j = xx + sx*(maa_j + m_j)
  matmul(L.maa_w1, W.xin.data(), W.lora.data(), T);
  for (size_t i = 0; i < T * kMixes * Dm; ++i) W.lora[i] = std::tanh(W.lora[i]);
  for (int j = 0; j < kMixes; ++j) {
    for (size_t t = 0; t < T; ++t)
      std::memcpy(W.part.data() + t * Dm, W.lora.data() + t * kMixes * Dm + j * Dm,
                  Dm * sizeof(float));
    matmul(L.maa_w2[j], W.part.data(), W.m.data(), T);
    const float* mj = L.maa[j].data();
    for (size_t t = 0; t < T; ++t)
      for (size_t c = 0; c < C; ++c) {
        const size_t o = t * C + c;
        W.mixed[j][o] = W.xx[o] + W.sx[o] * (mj[c] + W.m[o]);
      }
  }
  // w = exp(-exp(time_decay + tanh(xw @ decay_w1) @ decay_w2)); decay_w1 reads a mixed input
  // as r, k, v, g do, so the five go to the threads together
  matmul_batch({{L.Wr, W.mixed[kR].data(), W.r.data()},
                {L.Wk, W.mixed[kK].data(), W.k.data()},
                {L.Wv, W.mixed[kV].data(), W.v.data()},
                {L.Wg, W.mixed[kG].data(), W.g.data()},
                {L.decay_w1, W.mixed[kW].data(), W.lora.data()}},
               T);
  // silu(g) = g sigmoid(g), the sigmoid into y (free until the recurrence)
  kernels::sigmoid_f32(W.g.data(), W.y.data(), T * C);
  for (size_t i = 0; i < T * C; ++i) W.g[i] *= W.y[i];
  for (size_t i = 0; i < T * Dd; ++i) W.lora[i] = std::tanh(W.lora[i]);
  matmul(L.decay_w2, W.lora.data(), W.w.data(), T);
  for_rows(T, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      float* w = W.w.data() + t * C;
      for (size_t c = 0; c < C; ++c) w[c] += L.decay[c];
      kernels::exp_f32(w, w, C);
      for (size_t c = 0; c < C; ++c) w[c] = -w[c];
      kernels::exp_f32(w, w, C);
    }
  });
  wkv5_rows(S, W.r.data(), W.w.data(), C, L.u.data(), W.k.data(), W.v.data(), W.y.data(), T, H,
            N);
  for_rows(T, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      float* y = W.y.data() + t * C;
      kernels::group_norm(y, L.lnx_w.data(), L.lnx_b.data(), y, H, N, kGroupNormEps);
      for (size_t c = 0; c < C; ++c) y[c] *= W.g[t * C + c];
    }
  });
  matmul(L.Wo, W.y.data(), W.out.data(), T);
  for (size_t i = 0; i < T * C; ++i) x[i] += W.out[i];
}

}  // namespace

Expected<std::unique_ptr<Model>> load_v6(TensorMap tensors, const std::string& where) {
  auto m = std::make_unique<ModelV6>();
  WKV_TRY_STATUS(m->init(std::move(tensors), where));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace wkv
