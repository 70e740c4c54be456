#include "model/common.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/kernels.hpp"

namespace wkv {

Status EmbedHead::load(WeightReader& r, int64_t V, int64_t C) {
  auto e = r.mat("emb.weight", V, C);
  if (!e) return e.error();
  emb = *e;
  for (auto [name, dst] : {std::pair{"blocks.0.ln0.weight", &ln0_w}, {"blocks.0.ln0.bias", &ln0_b},
                           {"ln_out.weight", &lnout_w}, {"ln_out.bias", &lnout_b}}) {
    auto v = r.vec(name, C);
    if (!v) return v.error();
    *dst = std::move(*v);
  }
  auto h = r.mat("head.weight", V, C);
  if (!h) return h.error();
  head = *h;
  return Status::success();
}

void EmbedHead::embed(int32_t token, float* x) const {
  const size_t C = emb.cols;
  WKV_ASSERT(token >= 0 && static_cast<size_t>(token) < emb.rows);
  emb.row(static_cast<size_t>(token), x);  // any dtype, quantized rows dequantized exactly
  kernels::layer_norm(x, ln0_w.data(), ln0_b.data(), x, C, kLayerNormEps);
}

void EmbedHead::logits(const float* x, size_t T, float* tmp, float* out) const {
  const size_t C = emb.cols;
  for (size_t t = 0; t < T; ++t)
    kernels::layer_norm(x + t * C, lnout_w.data(), lnout_b.data(), tmp + t * C, C, kLayerNormEps);
  matmul(head, tmp, out, T);
}

Status read_embed_dims(const TensorMap& t, const std::string& where, Hparams& hp) {
  auto it = t.find("emb.weight");
  if (it == t.end()) return Error{where + ": missing tensor 'emb.weight'"};
  if (it->second.shape.size() != 2 || it->second.shape[0] <= 0 || it->second.shape[1] <= 0)
    return Error{where + ": tensor 'emb.weight' has shape " + it->second.shape_str() +
                 ", expected [vocab, n_embd]"};
  if (it->second.shape[0] > (1 << 24) || it->second.shape[1] > (1 << 16))
    return Error{where + ": tensor 'emb.weight' has implausible shape " + it->second.shape_str()};
  hp.vocab_size = static_cast<int>(it->second.shape[0]);
  hp.n_embd = static_cast<int>(it->second.shape[1]);
  int n_layer = 0;
  for (const auto& [name, _] : t) {
    if (name.rfind("blocks.", 0) != 0) continue;
    size_t dot = name.find('.', 7);
    if (dot == std::string::npos) continue;
    const std::string idx = name.substr(7, dot - 7);
    if (idx.empty() || idx.size() > 6 || idx.find_first_not_of("0123456789") != std::string::npos)
      return Error{where + ": tensor '" + name + "' has a malformed block index"};
    n_layer = std::max(n_layer, std::stoi(idx) + 1);
  }
  if (n_layer == 0) return Error{where + ": no 'blocks.N.*' tensors: not an RWKV checkpoint"};
  hp.n_layer = n_layer;
  auto ed = it->second.dtype;
  hp.dtype = std::string(dtype_name(ed));
  return Status::success();
}

std::string matrix_dtype(const TensorMap& t) {
  for (const auto& [name, ten] : t)
    if (name.find(".att.key.weight") != std::string::npos) return std::string(dtype_name(ten.dtype));
  return "f32";
}

Expected<const Tensor*> find_tensor(const TensorMap& t, const std::string& name,
                                    const std::string& where) {
  auto it = t.find(name);
  if (it == t.end()) return Error{where + ": missing tensor '" + name + "'"};
  return &it->second;
}

Status read_ffn_size(const TensorMap& t, const std::string& where, Hparams& hp) {
  auto fk = find_tensor(t, "blocks.0.ffn.key.weight", where);
  if (!fk) return fk.error();
  const Tensor& k = **fk;
  if (k.shape.size() != 2 || k.shape[0] <= 0 || k.shape[0] > (1 << 20))
    return Error{where + ": tensor 'blocks.0.ffn.key.weight' has shape " + k.shape_str() +
                 ", expected [ffn_size, n_embd]"};
  hp.ffn_size = static_cast<int>(k.shape[0]);
  return Status::success();
}

Status read_vecs(WeightReader& rd, const std::string& prefix, std::initializer_list<VecSpec> specs) {
  for (const auto& s : specs) {
    auto v = rd.vec(prefix + s.name, s.n, s.any_shape);
    if (!v) return v.error();
    *s.dst = std::move(*v);
  }
  return Status::success();
}

Status read_mats(WeightReader& rd, const std::string& prefix, std::initializer_list<MatSpec> specs) {
  for (const auto& s : specs) {
    auto m = rd.mat(prefix + s.name, s.rows, s.cols);
    if (!m) return m.error();
    *s.dst = *m;
  }
  return Status::success();
}

void layer_norm_rows(const float* x, const std::vector<float>& w, const std::vector<float>& b,
                     float* y, size_t T, size_t C) {
  for_rows(T, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t)
      kernels::layer_norm(x + t * C, w.data(), b.data(), y + t * C, C, kLayerNormEps);
  });
}

void lerp_row(const float* __restrict cur, const float* __restrict prev,
              const float* __restrict mix, float* __restrict out, size_t n) {
  for (size_t c = 0; c < n; ++c) out[c] = cur[c] + (prev[c] - cur[c]) * mix[c];
}

void token_mix(MixStyle style, const float* xx, const float* prev, const float* m, float* out,
               size_t T, size_t C) {
  for_rows(T, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const float* cur = xx + t * C;
      const float* sx = t == 0 ? prev : xx + (t - 1) * C;
      float* o = out + t * C;
      if (style == MixStyle::time_mix) {
        for (size_t c = 0; c < C; ++c) o[c] = cur[c] * m[c] + sx[c] * (1.0f - m[c]);
      } else {
        lerp_row(cur, sx, m, o, C);
      }
    }
  });
}

void wkv5_rows(float* S, const float* r, const float* w, size_t w_stride, const float* u,
               const float* k, const float* v, float* y, size_t T, size_t H, size_t N) {
  const size_t C = H * N;
  const auto head = [&](size_t h) {
    float* Sh = S + h * N * N;
    for (size_t t = 0; t < T; ++t) {
      const size_t o = t * C + h * N;
      kernels::wkv5_step(Sh, r + o, w + t * w_stride + h * N, u + h * N, k + o, v + o, y + o, 1,
                         N);
    }
  };
  if (T > 1) {
    kernels::parallel_for(H, head);
  } else {
    for (size_t h = 0; h < H; ++h) head(h);
  }
}

void FfnScratch::reserve(size_t T, size_t C, size_t F) {
  if (xx.size() >= T * C && hid.size() >= T * F) return;
  for (auto* b : {&xx, &xk, &xr, &r, &out}) b->assign(T * C, 0.0f);
  hid.assign(T * F, 0.0f);
}

Status ChannelMix::load(WeightReader& rd, const std::string& prefix, int64_t C, int64_t F,
                        MixStyle s) {
  style = s;
  const bool maa = s == MixStyle::time_maa;
  Status st = read_vecs(rd, prefix, {{"ln2.weight", &ln_w, C}, {"ln2.bias", &ln_b, C},
                                     {maa ? "ffn.time_maa_k" : "ffn.time_mix_k", &m_k, C},
                                     {maa ? "ffn.time_maa_r" : "ffn.time_mix_r", &m_r, C}});
  if (!st) return st;
  return read_mats(rd, prefix, {{"ffn.key.weight", &Wk, F, C},
                                {"ffn.receptance.weight", &Wr, C, C},
                                {"ffn.value.weight", &Wv, C, F}});
}

void ChannelMix::forward(float* x, size_t T, float* prev, FfnScratch& w) const {
  const size_t C = Wr.rows, F = Wk.rows;
  w.reserve(T, C, F);
  layer_norm_rows(x, ln_w, ln_b, w.xx.data(), T, C);
  token_mix(style, w.xx.data(), prev, m_k.data(), w.xk.data(), T, C);
  token_mix(style, w.xx.data(), prev, m_r.data(), w.xr.data(), T, C);
  std::memcpy(prev, w.xx.data() + (T - 1) * C, C * sizeof(float));
  matmul_batch({{Wr, w.xr.data(), w.r.data()}, {Wk, w.xk.data(), w.hid.data()}}, T);
  for_rows(T, [&](size_t t0, size_t t1) {
    float* h = w.hid.data() + t0 * F;
    kernels::relu_sq_f32(h, h, (t1 - t0) * F);
  });
  matmul(Wv, w.hid.data(), w.out.data(), T);
  for_rows(T, [&](size_t t0, size_t t1) {
    float* r = w.r.data() + t0 * C;
    kernels::sigmoid_f32(r, r, (t1 - t0) * C);
    for (size_t i = t0 * C; i < t1 * C; ++i) x[i] += w.r[i] * w.out[i];
  });
}

Status BlockModel::init(TensorMap tensors, const std::string& where) {
  tensors_ = std::move(tensors);
  WeightReader rd(tensors_, where);
  WKV_TRY_STATUS(load(rd, tensors_, where));
  hp_.params = rd.params();
  hp_.dtype = matrix_dtype(tensors_);
  buffers_ = std::move(rd.buffers());
  return Status::success();
}

void BlockModel::forward_one(int32_t token, State& state, float* logits) {
  run(std::span<const int32_t>(&token, 1), state, logits, logits ? Logits::last : Logits::none);
}

void BlockModel::forward_seq(std::span<const int32_t> tokens, State& state, float* logits,
                             Logits which) {
  run(tokens, state, logits, which);
}

void BlockModel::run(std::span<const int32_t> tokens, State& state, float* logits,
                     Logits which) {
  const size_t C = hp_.n_embd, V = hp_.vocab_size;
  const size_t total = tokens.size();
  for (size_t start = 0; start < total; start += kChunk) {
    const size_t T = std::min(kChunk, total - start);
    if (x_.size() < T * C) {
      x_.assign(T * C, 0.0f);
      tmp_.assign(T * C, 0.0f);
    }
    for (size_t t = 0; t < T; ++t) eh_.embed(tokens[start + t], x_.data() + t * C);
    blocks(x_.data(), T, state);
    if (which == Logits::all) {
      eh_.logits(x_.data(), T, tmp_.data(), logits + start * V);
    } else if (which == Logits::last && start + T == total) {
      eh_.logits(x_.data() + (T - 1) * C, 1, tmp_.data(), logits);
    }
  }
}

}  // namespace wkv
