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
  if (emb.dtype == DType::bf16) {
    const uint16_t* row = static_cast<const uint16_t*>(emb.data) + static_cast<size_t>(token) * C;
    for (size_t c = 0; c < C; ++c) x[c] = bf16_to_f32(row[c]);
  } else {
    std::memcpy(x, static_cast<const float*>(emb.data) + static_cast<size_t>(token) * C,
                C * sizeof(float));
  }
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

}  // namespace wkv
