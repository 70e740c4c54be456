// RWKV-4: the time mix with the per-channel WKV in max-exponent form (state aa, bb, pp).
// Math: ../shared/spec/RWKV_REFERENCE.md §2.1, §4.1 (official model.py att_one / ffn_one).
// Letters: r receptance, w decay (-exp(time_decay)), k key, v value, u bonus (time_first).
#include <cstring>

#include "kernels/kernels.hpp"
#include "model/common.hpp"
#include "model/versions.hpp"

namespace wkv {

namespace {

constexpr float kInitialPp = -1e30f;  // model.py: the running max exponent starts "at -inf"
constexpr size_t kSlotsPerLayer = 5;  // att.x_prev, att.aa, att.bb, att.pp, ffn.x_prev

struct Layer {
  std::vector<float> ln1_w, ln1_b;      // [C]
  std::vector<float> m_k, m_v, m_r;     // [C] att.time_mix_k|v|r
  std::vector<float> w, u;              // [C] w = -exp(time_decay), u = time_first
  Matrix Wr, Wk, Wv, Wo;                // [C, C]
  ChannelMix ffn;
};

// Scratch for one chunk of up to kChunk tokens (grown once, reused).
struct Work {
  std::vector<float> xx, xk, xv, xr, r, k, v, y, out;
  void reserve(size_t T, size_t C) {
    if (xx.size() >= T * C) return;
    for (auto* b : {&xx, &xk, &xv, &xr, &r, &k, &v, &y, &out}) b->assign(T * C, 0.0f);
  }
};

class ModelV4 final : public BlockModel {
 public:
  State new_state() const override {
    State s;
    const int64_t C = hp_.n_embd;
    for (int i = 0; i < hp_.n_layer; ++i) {  // model.py order: state[5i + 0..4]
      const std::string p = "blocks." + std::to_string(i) + ".";
      s.add_slot(p + "att.x_prev", {C});
      s.add_slot(p + "att.aa", {C});
      s.add_slot(p + "att.bb", {C});
      s.add_slot(p + "att.pp", {C}, kInitialPp);
      s.add_slot(p + "ffn.x_prev", {C});
    }
    return s;
  }

 private:
  Status load(WeightReader& rd, const TensorMap& t, const std::string& where) override;
  void blocks(float* x, size_t T, State& state) override;
  void time_mix(const Layer& L, float* x, size_t T, float* state);

  std::vector<Layer> layers_;
  Work wk_;
};

Status ModelV4::load(WeightReader& rd, const TensorMap& t, const std::string& where) {
  WKV_TRY_STATUS(read_embed_dims(t, where, hp_));
  WKV_TRY_STATUS(read_ffn_size(t, where, hp_));
  hp_.version = ModelVersion::v4;
  hp_.n_head = 0;  // v4 has no heads: the WKV is per channel
  hp_.head_size = 0;
  const int64_t C = hp_.n_embd, F = hp_.ffn_size;
  WKV_TRY_STATUS(eh_.load(rd, hp_.vocab_size, C));
  layers_.resize(hp_.n_layer);
  for (int i = 0; i < hp_.n_layer; ++i) {
    Layer& L = layers_[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    std::vector<float> decay;
    Status st = read_vecs(rd, p, {{"ln1.weight", &L.ln1_w, C}, {"ln1.bias", &L.ln1_b, C},
                                  {"att.time_mix_k", &L.m_k, C}, {"att.time_mix_v", &L.m_v, C},
                                  {"att.time_mix_r", &L.m_r, C}, {"att.time_decay", &decay, C},
                                  {"att.time_first", &L.u, C}});
    if (!st) return st;
    st = read_mats(rd, p, {{"att.receptance.weight", &L.Wr, C, C},
                           {"att.key.weight", &L.Wk, C, C},
                           {"att.value.weight", &L.Wv, C, C},
                           {"att.output.weight", &L.Wo, C, C}});
    if (!st) return st;
    L.w.resize(C);
    for (int64_t c = 0; c < C; ++c) L.w[c] = -std::exp(decay[c]);
    WKV_TRY_STATUS(L.ffn.load(rd, p, C, F, MixStyle::time_mix));
  }
  return Status::success();
}

void ModelV4::blocks(float* x, size_t T, State& state) {
  WKV_ASSERT(state.slots.size() == kSlotsPerLayer * hp_.n_layer);
  for (int i = 0; i < hp_.n_layer; ++i) {
    const size_t s = kSlotsPerLayer * i;
    time_mix(layers_[i], x, T, state.slot(s));
    layers_[i].ffn.forward(x, T, state.slot(s + 4), ffn_work_);
  }
}

// x += Wo (r * wkv), r = sigmoid(Wr xr); `st` points at the layer's slots x_prev, aa, bb, pp
// (consecutive, C floats each).
void ModelV4::time_mix(const Layer& L, float* x, size_t T, float* st) {
  const size_t C = hp_.n_embd;
  float *x_prev = st, *aa = st + C, *bb = st + 2 * C, *pp = st + 3 * C;
  Work& W = wk_;
  W.reserve(T, C);
  layer_norm_rows(x, L.ln1_w, L.ln1_b, W.xx.data(), T, C);
  token_mix(MixStyle::time_mix, W.xx.data(), x_prev, L.m_k.data(), W.xk.data(), T, C);
  token_mix(MixStyle::time_mix, W.xx.data(), x_prev, L.m_v.data(), W.xv.data(), T, C);
  token_mix(MixStyle::time_mix, W.xx.data(), x_prev, L.m_r.data(), W.xr.data(), T, C);
  std::memcpy(x_prev, W.xx.data() + (T - 1) * C, C * sizeof(float));
  matmul_batch({{L.Wr, W.xr.data(), W.r.data()},
                {L.Wk, W.xk.data(), W.k.data()},
                {L.Wv, W.xv.data(), W.v.data()}},
               T);
  for (size_t t = 0; t < T; ++t) {
    const size_t o = t * C;
    kernels::wkv4_step(aa, bb, pp, L.w.data(), L.u.data(), W.k.data() + o, W.v.data() + o,
                       W.y.data() + o, C);
  }
  for (size_t i = 0; i < T * C; ++i) W.y[i] *= sigmoid(W.r[i]);
  matmul(L.Wo, W.y.data(), W.out.data(), T);
  for (size_t i = 0; i < T * C; ++i) x[i] += W.out[i];
}

}  // namespace

Expected<std::unique_ptr<Model>> load_v4(TensorMap tensors, const std::string& where) {
  auto m = std::make_unique<ModelV4>();
  WKV_TRY_STATUS(m->init(std::move(tensors), where));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace wkv
