// RWKV-7 "Goose" (x070, also the G1 checkpoints): weights, state and forward passes.
// Math: ../shared/spec/RWKV_REFERENCE.md §4.4 (official model.py RWKV_x070_TMix_one / CMix).
// Letters: r receptance, w decay, k key, v value, a in-context learning rate, g gate,
// kk the normalised removal key; T tokens, C channels, H heads, N head size, F FFN width.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

#include "kernels/kernels.hpp"
#include "model/common.hpp"
#include "model/versions.hpp"

namespace wkv {

namespace {

constexpr float kDecayScale = -0.606531f;  // -exp(-0.5): w = exp(kDecayScale * sigmoid(w_raw))
constexpr float kL2NormEps = 1e-12f;       // F.normalize eps for kk

struct Layer {
  std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;    // [C]
  std::vector<float> x_r, x_w, x_k, x_v, x_a, x_g;  // [C] token-shift mixes
  std::vector<float> w0, a0, v0;                    // [C] LoRA biases (v0 unused in layer 0)
  Matrix w1, w2, a1, a2, v1, v2, g1, g2;  // w1: [Dw, C] (transposed at load), w2: [C, Dw] ...
  std::vector<float> k_k, k_a, r_k;       // [C] (r_k is [H, N] flattened)
  Matrix Wr, Wk, Wv, Wo;                  // [C, C]
  std::vector<float> lnx_w, lnx_b;        // [C] GroupNorm affine
  std::vector<float> ffn_x_k;             // [C]
  Matrix ffn_k, ffn_v;                    // [F, C], [C, F]
};

// A run of consecutive rows of one chunk that belong to one sequence: rows [row0, row0+n) hold
// its tokens [tok0, tok0+n); its state is read before the first row and written after the last.
struct Segment {
  size_t row0 = 0, n = 0;
  size_t item = 0, tok0 = 0;
  State* state = nullptr;
};

// Scratch for one chunk of up to kChunk tokens (allocated once, reused).
struct Work {
  size_t cap = 0;
  std::vector<float> x, xx, xr, xw, xk, xv, xa, xg, r, w, k, v, a, g, kk, vfirst, y, lo, hid, ffn;
  std::vector<float> sel, head_out;  // rows that need logits, and their logits when scattered
  void reserve(size_t T, const Hparams& hp) {
    if (T <= cap) return;
    const size_t C = hp.n_embd, F = hp.ffn_size;
    for (auto* b :
         {&x, &xx, &xr, &xw, &xk, &xv, &xa, &xg, &r, &w, &k, &v, &a, &g, &kk, &vfirst, &y, &lo})
      b->assign(T * C, 0.0f);
    // the four LoRAs' hidden activations side by side (w, a, g, v)
    hid.assign(T * static_cast<size_t>(hp.lora_w + hp.lora_a + hp.lora_g + hp.lora_v), 0.0f);
    ffn.assign(T * F, 0.0f);
    sel.assign(T * C, 0.0f);
    head_out.clear();  // grown on first batched use only
    cap = T;
  }
};

class ModelV7 final : public Model {
 public:
  const Hparams& hparams() const override { return hp_; }

  State new_state() const override {
    State s;
    const int64_t C = hp_.n_embd, H = hp_.n_head, N = hp_.head_size;
    for (int i = 0; i < hp_.n_layer; ++i) {
      const std::string p = "blocks." + std::to_string(i) + ".";
      s.add_slot(p + "att.x_prev", {C});
      s.add_slot(p + "att.wkv", {H, N, N});
      s.add_slot(p + "ffn.x_prev", {C});
    }
    return s;
  }

  void forward_one(int32_t token, State& state, float* logits) override {
    forward_seq(std::span<const int32_t>(&token, 1), state, logits,
                logits ? Logits::last : Logits::none);
  }

  void forward_seq(std::span<const int32_t> tokens, State& state, float* logits,
                   Logits which) override {
    const BatchItem item{tokens, &state, logits, which};
    forward_batch(std::span<const BatchItem>(&item, 1));
  }

  void forward_batch(std::span<const BatchItem> items) override;

  Status load(WeightReader& rd, const TensorMap& t, const std::string& where);

 private:
  void run_chunk(std::span<const BatchItem> items, const std::vector<Segment>& segs, size_t T);
  void time_mix(const Layer& L, int li, size_t T, const std::vector<Segment>& segs);
  void channel_mix(const Layer& L, int li, size_t T, const std::vector<Segment>& segs);

  Hparams hp_;
  EmbedHead eh_;
  std::vector<Layer> layers_;
  std::vector<std::shared_ptr<void>> buffers_;
  TensorMap tensors_;  // keeps in-place weights (mmap) alive
  Work wk_;

 public:
  static Expected<std::unique_ptr<Model>> create(TensorMap tensors, const std::string& where) {
    auto m = std::make_unique<ModelV7>();
    m->tensors_ = std::move(tensors);
    WeightReader rd(m->tensors_, where);
    Status st = m->load(rd, m->tensors_, where);
    if (!st) return st.error();
    m->buffers_ = std::move(rd.buffers());
    return std::unique_ptr<Model>(std::move(m));
  }
};

// Reads a LoRA width from the second dim of `name` ([C, D]).
Expected<int> lora_width(const TensorMap& t, const std::string& name, const std::string& where) {
  auto it = t.find(name);
  if (it == t.end()) return Error{where + ": missing tensor '" + name + "'"};
  if (it->second.shape.size() != 2 || it->second.shape[1] <= 0 || it->second.shape[1] > 65536)
    return Error{where + ": tensor '" + name + "' has shape " + it->second.shape_str() +
                 ", expected [n_embd, lora_width]"};
  return static_cast<int>(it->second.shape[1]);
}

Status ModelV7::load(WeightReader& rd, const TensorMap& t, const std::string& where) {
  WKV_TRY_STATUS(read_embed_dims(t, where, hp_));
  hp_.version = ModelVersion::v7_0;
  auto rk = t.find("blocks.0.att.r_k");
  if (rk == t.end()) return Error{where + ": missing tensor 'blocks.0.att.r_k'"};
  if (rk->second.shape.size() != 2 || rk->second.shape[0] <= 0 || rk->second.shape[1] <= 0 ||
      rk->second.shape[0] * rk->second.shape[1] != hp_.n_embd)
    return Error{where + ": tensor 'blocks.0.att.r_k' has shape " + rk->second.shape_str() +
                 ", expected [n_head, head_size] with n_head*head_size = n_embd = " +
                 std::to_string(hp_.n_embd)};
  hp_.n_head = static_cast<int>(rk->second.shape[0]);
  hp_.head_size = static_cast<int>(rk->second.shape[1]);
  auto fk = t.find("blocks.0.ffn.key.weight");
  if (fk == t.end()) return Error{where + ": missing tensor 'blocks.0.ffn.key.weight'"};
  if (fk->second.shape.size() != 2 || fk->second.shape[0] <= 0 || fk->second.shape[0] > (1 << 20))
    return Error{where + ": tensor 'blocks.0.ffn.key.weight' has shape " + fk->second.shape_str() +
                 ", expected [ffn_size, n_embd]"};
  hp_.ffn_size = static_cast<int>(fk->second.shape[0]);
  auto lw = lora_width(t, "blocks.0.att.w1", where);
  auto la = lora_width(t, "blocks.0.att.a1", where);
  auto lg = lora_width(t, "blocks.0.att.g1", where);
  if (!lw) return lw.error();
  if (!la) return la.error();
  if (!lg) return lg.error();
  hp_.lora_w = *lw;
  hp_.lora_a = *la;
  hp_.lora_g = *lg;
  if (hp_.n_layer > 1) {  // layer 0 may lack v1/v2: it never uses them
    auto lv = lora_width(t, "blocks.1.att.v1", where);
    if (!lv) return lv.error();
    hp_.lora_v = *lv;
  }

  const int64_t C = hp_.n_embd, F = hp_.ffn_size, V = hp_.vocab_size;
  WKV_TRY_STATUS(eh_.load(rd, V, C));
  layers_.resize(hp_.n_layer);
  for (int i = 0; i < hp_.n_layer; ++i) {
    Layer& L = layers_[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    struct VecSpec {
      const char* name;
      std::vector<float>* dst;
      bool any_shape;
    };
    const VecSpec vecs[] = {
        {"ln1.weight", &L.ln1_w, false},    {"ln1.bias", &L.ln1_b, false},
        {"ln2.weight", &L.ln2_w, false},    {"ln2.bias", &L.ln2_b, false},
        {"att.x_r", &L.x_r, false},         {"att.x_w", &L.x_w, false},
        {"att.x_k", &L.x_k, false},         {"att.x_v", &L.x_v, false},
        {"att.x_a", &L.x_a, false},         {"att.x_g", &L.x_g, false},
        {"att.w0", &L.w0, false},           {"att.a0", &L.a0, false},
        {"att.k_k", &L.k_k, false},         {"att.k_a", &L.k_a, false},
        {"att.r_k", &L.r_k, true},          {"att.ln_x.weight", &L.lnx_w, false},
        {"att.ln_x.bias", &L.lnx_b, false}, {"ffn.x_k", &L.ffn_x_k, false},
    };
    for (const auto& s : vecs) {
      auto v = rd.vec(p + s.name, C, s.any_shape);
      if (!v) return v.error();
      *s.dst = std::move(*v);
    }
    struct MatSpec {
      const char* name;
      Matrix* dst;
      int64_t rows, cols;
      bool transposed;
    };
    const int64_t Dw = hp_.lora_w, Da = hp_.lora_a, Dg = hp_.lora_g, Dv = hp_.lora_v;
    const MatSpec mats[] = {
        {"att.w1", &L.w1, Dw, C, true},
        {"att.w2", &L.w2, C, Dw, true},
        {"att.a1", &L.a1, Da, C, true},
        {"att.a2", &L.a2, C, Da, true},
        {"att.g1", &L.g1, Dg, C, true},
        {"att.g2", &L.g2, C, Dg, true},
        {"att.receptance.weight", &L.Wr, C, C, false},
        {"att.key.weight", &L.Wk, C, C, false},
        {"att.value.weight", &L.Wv, C, C, false},
        {"att.output.weight", &L.Wo, C, C, false},
        {"ffn.key.weight", &L.ffn_k, F, C, false},
        {"ffn.value.weight", &L.ffn_v, C, F, false},
    };
    for (const auto& s : mats) {
      auto m =
          s.transposed ? rd.mat_t(p + s.name, s.rows, s.cols) : rd.mat(p + s.name, s.rows, s.cols);
      if (!m) return m.error();
      *s.dst = *m;
    }
    if (i > 0) {  // value residual: layers >= 1 only
      auto v0 = rd.vec(p + "att.v0", C);
      if (!v0) return v0.error();
      L.v0 = std::move(*v0);
      auto v1 = rd.mat_t(p + "att.v1", Dv, C);
      if (!v1) return v1.error();
      L.v1 = *v1;
      auto v2 = rd.mat_t(p + "att.v2", C, Dv);
      if (!v2) return v2.error();
      L.v2 = *v2;
    }
  }
  hp_.params = rd.params();
  for (const auto& [name, ten] : t)
    if (name.find(".att.key.weight") != std::string::npos) {
      hp_.dtype = std::string(dtype_name(ten.dtype));
      break;
    }
  return Status::success();
}

// Packs the items' tokens into chunks of up to kChunk rows (a long item spans several chunks,
// its state carrying over; short items share a chunk), so every matrix product runs over the
// rows of all items at once. One item alone is chunked exactly as forward_seq always was.
void ModelV7::forward_batch(std::span<const BatchItem> items) {
  std::vector<Segment> segs;
  size_t rows = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    WKV_ASSERT(items[i].state && items[i].state->slots.size() == size_t(3 * hp_.n_layer));
    size_t done = 0;
    const size_t n_tok = items[i].tokens.size();
    while (done < n_tok) {
      const size_t n = std::min(kChunk - rows, n_tok - done);
      segs.push_back(Segment{rows, n, i, done, items[i].state});
      rows += n;
      done += n;
      if (rows == kChunk) {
        run_chunk(items, segs, rows);
        segs.clear();
        rows = 0;
      }
    }
  }
  if (rows > 0) run_chunk(items, segs, rows);
}

void ModelV7::run_chunk(std::span<const BatchItem> items, const std::vector<Segment>& segs,
                        size_t T) {
  const size_t C = hp_.n_embd, V = hp_.vocab_size;
  wk_.reserve(T, hp_);
  for (const Segment& sg : segs)
    for (size_t t = 0; t < sg.n; ++t)
      eh_.embed(items[sg.item].tokens[sg.tok0 + t], wk_.x.data() + (sg.row0 + t) * C);
  for (int i = 0; i < hp_.n_layer; ++i) {
    time_mix(layers_[i], i, T, segs);
    channel_mix(layers_[i], i, T, segs);
  }
  // The head, only for the rows that need logits: gathered into one matrix product, written
  // straight to the destination when the rows land there contiguously (one sequence), else
  // through a buffer.
  struct Want {
    size_t row;
    float* dst;
  };
  std::vector<Want> want;
  for (const Segment& sg : segs) {
    const BatchItem& it = items[sg.item];
    if (it.which == Logits::all) {
      for (size_t t = 0; t < sg.n; ++t)
        want.push_back({sg.row0 + t, it.logits + (sg.tok0 + t) * V});
    } else if (it.which == Logits::last && sg.tok0 + sg.n == it.tokens.size()) {
      want.push_back({sg.row0 + sg.n - 1, it.logits});
    }
  }
  if (want.empty()) return;
  bool direct = true;
  for (size_t j = 1; j < want.size(); ++j)
    direct = direct && want[j].dst == want[0].dst + j * V && want[j].row == want[0].row + j;
  const size_t R = want.size();
  if (direct) {
    eh_.logits(wk_.x.data() + want[0].row * C, R, wk_.xx.data(), want[0].dst);
    return;
  }
  for (size_t j = 0; j < R; ++j)
    std::memcpy(wk_.sel.data() + j * C, wk_.x.data() + want[j].row * C, C * sizeof(float));
  if (wk_.head_out.size() < R * V) wk_.head_out.resize(T * V);
  eh_.logits(wk_.sel.data(), R, wk_.xx.data(), wk_.head_out.data());
  for (size_t j = 0; j < R; ++j)
    std::memcpy(want[j].dst, wk_.head_out.data() + j * V, V * sizeof(float));
}

// Element-wise loops whose arrays GCC cannot prove apart (more pairs than it versions a loop
// for), so they ran scalar: y += b, out = a * b. The arrays must not overlap. (The token
// shift is common.hpp's lerp_row.)
void add_to(float* __restrict y, const float* __restrict b, size_t n) {
  for (size_t c = 0; c < n; ++c) y[c] = b[c] + y[c];
}
void mul(const float* __restrict a, const float* __restrict b, float* __restrict out, size_t n) {
  for (size_t c = 0; c < n; ++c) out[c] = a[c] * b[c];
}

// for_rows over the rows of each segment (for work that needs a row's predecessor).
template <class Fn>
void for_segment_rows(const std::vector<Segment>& segs, Fn&& fn) {
  for (const Segment& sg : segs)
    for_rows(sg.n, [&](size_t a, size_t b) { fn(sg, sg.row0 + a, sg.row0 + b); });
}

// x += Wo · ((GroupNorm(S·r) + bonus) ⊙ g), with S updated per token. Each segment's state
// gives the previous token's ln1 output (`att.x_prev` [C]) for its first row and its WKV
// matrix S [H, N, N]; both are updated.
void ModelV7::time_mix(const Layer& L, int li, size_t T, const std::vector<Segment>& segs) {
  const size_t C = hp_.n_embd, H = hp_.n_head, N = hp_.head_size;
  Work& W = wk_;
  // xx = ln1(x); token shift: previous row, or the state for the first token.
  for_rows(T, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t)
      kernels::layer_norm(W.x.data() + t * C, L.ln1_w.data(), L.ln1_b.data(), W.xx.data() + t * C,
                          C, kLayerNormEps);
  });
  for_segment_rows(segs, [&](const Segment& sg, size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const float* cur = W.xx.data() + t * C;
      const float* prev = t == sg.row0 ? sg.state->slot(3 * li) : W.xx.data() + (t - 1) * C;
      // official: xx = x_prev - x; x_* = x + xx * x_*
      const size_t o = t * C;
      lerp_row(cur, prev, L.x_r.data(), W.xr.data() + o, C);
      lerp_row(cur, prev, L.x_w.data(), W.xw.data() + o, C);
      lerp_row(cur, prev, L.x_k.data(), W.xk.data() + o, C);
      lerp_row(cur, prev, L.x_v.data(), W.xv.data() + o, C);
      lerp_row(cur, prev, L.x_a.data(), W.xa.data() + o, C);
      lerp_row(cur, prev, L.x_g.data(), W.xg.data() + o, C);
    }
  });
  for (const Segment& sg : segs)
    std::memcpy(sg.state->slot(3 * li), W.xx.data() + (sg.row0 + sg.n - 1) * C, C * sizeof(float));

  // r, k, v and the LoRAs' first halves all read the token-shifted inputs, then the second
  // halves read those: two batches (one hand-off to the threads each for one token).
  //   w = exp(kDecayScale * sigmoid(w0 + tanh(xw @ w1) @ w2))
  //   a = sigmoid(a0 + (xa @ a1) @ a2)
  //   g = sigmoid(xg @ g1) @ g2
  //   value residual gate: sigmoid(v0 + (xv @ v1) @ v2), layers >= 1
  float* hw = W.hid.data();
  float* ha = hw + T * L.w1.rows;
  float* hg = ha + T * L.a1.rows;
  float* hv = hg + T * L.g1.rows;
  // (the value-residual products, last in each list, only from layer 1 on)
  const size_t drop_v = li > 0 ? 0 : 1;
  const Product first[] = {{L.Wr, W.xr.data(), W.r.data()}, {L.Wk, W.xk.data(), W.k.data()},
                           {L.Wv, W.xv.data(), W.v.data()}, {L.w1, W.xw.data(), hw},
                           {L.a1, W.xa.data(), ha},         {L.g1, W.xg.data(), hg},
                           {L.v1, W.xv.data(), hv}};
  matmul_batch(std::span<const Product>(first, std::size(first) - drop_v), T);
  for (size_t i = 0; i < T * L.w1.rows; ++i) hw[i] = std::tanh(hw[i]);
  kernels::sigmoid_f32(hg, hg, T * L.g1.rows);
  const Product second[] = {{L.w2, hw, W.w.data()},
                            {L.a2, ha, W.a.data()},
                            {L.g2, hg, W.g.data()},
                            {L.v2, hv, W.lo.data()}};
  matmul_batch(std::span<const Product>(second, std::size(second) - drop_v), T);

  // Per token: decay, in-context rate, normalised key, value residual, and the recurrence's
  // a_ = -kk, b_ = kk * a (into xr/xw, free now).
  for_rows(T, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      float* w = W.w.data() + t * C;
      float* k = W.k.data() + t * C;
      float* v = W.v.data() + t * C;
      float* a = W.a.data() + t * C;
      float* kk = W.kk.data() + t * C;
      float* vf = W.vfirst.data() + t * C;
      // w = exp(kDecayScale * sigmoid(w0 + w)), a = sigmoid(a0 + a): vectorized exp
      add_to(w, L.w0.data(), C);
      add_to(a, L.a0.data(), C);
      mul(k, L.k_k.data(), kk, C);
      kernels::sigmoid_f32(w, w, C);
      for (size_t c = 0; c < C; ++c) w[c] *= kDecayScale;
      kernels::exp_f32(w, w, C);
      kernels::sigmoid_f32(a, a, C);
      // kk = L2-normalise per head
      for (size_t h = 0; h < H; ++h) {
        float ss = 0;
        for (size_t j = 0; j < N; ++j) ss += kk[h * N + j] * kk[h * N + j];
        const float inv = 1.0f / std::max(std::sqrt(ss), kL2NormEps);
        for (size_t j = 0; j < N; ++j) kk[h * N + j] *= inv;
      }
      for (size_t c = 0; c < C; ++c) k[c] = k[c] * (1.0f + (a[c] - 1.0f) * L.k_a[c]);
      if (li == 0) {
        std::memcpy(vf, v, C * sizeof(float));
      } else {
        float* gate = W.lo.data() + t * C;  // free until the output projection
        for (size_t c = 0; c < C; ++c) gate[c] += L.v0[c];
        kernels::sigmoid_f32(gate, gate, C);
        for (size_t c = 0; c < C; ++c) v[c] = v[c] + (vf[c] - v[c]) * gate[c];
      }
      float* neg_kk = W.xr.data() + t * C;
      float* kka = W.xw.data() + t * C;
      for (size_t c = 0; c < C; ++c) {
        neg_kk[c] = -kk[c];
        kka[c] = kk[c] * a[c];
      }
    }
  });

  // The recurrence, token by token within a segment; heads (and segments) are independent, so
  // a chunk of several rows spreads them over the pool (one token alone is not worth the
  // pool's hand-off: 5 % slower generation at 2 threads).
  float* y = W.y.data();
  const auto recur = [&](size_t i) {
    const Segment& sg = segs[i / H];
    const size_t h = i % H;
    float* S = sg.state->slot(3 * li + 1) + h * N * N;
    for (size_t t = sg.row0; t < sg.row0 + sg.n; ++t) {
      const size_t o = t * C + h * N;
      kernels::wkv7_step(S, W.r.data() + o, W.w.data() + o, W.k.data() + o, W.v.data() + o,
                         W.xr.data() + o, W.xw.data() + o, y + o, 1, N);
    }
  };
  if (T > 1) {
    kernels::parallel_for(segs.size() * H, recur);
  } else {
    for (size_t i = 0; i < segs.size() * H; ++i) recur(i);
  }

  // y = GroupNorm(y) + (sum_head r*k*r_k) * v; then (y * g) -> Wo
  for_rows(T, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const size_t o = t * C;
      float* yt = y + o;
      kernels::group_norm(yt, L.lnx_w.data(), L.lnx_b.data(), yt, H, N, kGroupNormEps);
      for (size_t h = 0; h < H; ++h) {
        float s = 0;
        for (size_t j = 0; j < N; ++j) {
          const size_t c = h * N + j;
          s += W.r[o + c] * W.k[o + c] * L.r_k[c];
        }
        for (size_t j = 0; j < N; ++j) yt[h * N + j] += s * W.v[o + h * N + j];
      }
      for (size_t c = 0; c < C; ++c) yt[c] *= W.g[o + c];
    }
  });
  matmul(L.Wo, y, W.lo.data(), T);
  for (size_t i = 0; i < T * C; ++i) W.x[i] += W.lo[i];
}

// x += Wv · relu(Wk · (xx + (prev - xx) ⊙ x_k))², xx = ln2(x).
void ModelV7::channel_mix(const Layer& L, int li, size_t T, const std::vector<Segment>& segs) {
  const size_t C = hp_.n_embd, F = hp_.ffn_size;
  Work& W = wk_;
  for_rows(T, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t)
      kernels::layer_norm(W.x.data() + t * C, L.ln2_w.data(), L.ln2_b.data(), W.xx.data() + t * C,
                          C, kLayerNormEps);
  });
  for_segment_rows(segs, [&](const Segment& sg, size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const float* cur = W.xx.data() + t * C;
      const float* prev = t == sg.row0 ? sg.state->slot(3 * li + 2) : W.xx.data() + (t - 1) * C;
      lerp_row(cur, prev, L.ffn_x_k.data(), W.xk.data() + t * C, C);
    }
  });
  for (const Segment& sg : segs)
    std::memcpy(sg.state->slot(3 * li + 2), W.xx.data() + (sg.row0 + sg.n - 1) * C,
                C * sizeof(float));
  matmul(L.ffn_k, W.xk.data(), W.ffn.data(), T);
  for_rows(T, [&](size_t t0, size_t t1) {
    float* h = W.ffn.data() + t0 * F;
    kernels::relu_sq_f32(h, h, (t1 - t0) * F);
  });
  matmul(L.ffn_v, W.ffn.data(), W.lo.data(), T);
  for (size_t i = 0; i < T * C; ++i) W.x[i] += W.lo[i];
}

}  // namespace

Expected<std::unique_ptr<Model>> load_v7(TensorMap tensors, const std::string& where) {
  return ModelV7::create(std::move(tensors), where);
}

}  // namespace wkv
