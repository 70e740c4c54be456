// Pieces every RWKV version shares: embedding lookup with ln0, the output LayerNorm and head,
// and small element-wise helpers.
#pragma once

#include <cmath>
#include <vector>

#include "model/model.hpp"
#include "model/weights.hpp"

namespace wkv {

constexpr float kLayerNormEps = 1e-5f;  // every LayerNorm in the official model.py

struct EmbedHead {
  Matrix emb;                         // [V, C]
  std::vector<float> ln0_w, ln0_b;    // [C] blocks.0.ln0, applied to the embedding
  std::vector<float> lnout_w, lnout_b;  // [C]
  Matrix head;                        // [V, C]

  Status load(WeightReader& r, int64_t V, int64_t C);
  // x[C] = LN(emb[token]; ln0)
  void embed(int32_t token, float* x) const;
  // logits[T, V] = head · LN(x[t]; ln_out) for T rows of x; `tmp` holds T*C floats.
  void logits(const float* x, size_t T, float* tmp, float* out) const;
};

// Everything after the header: the common hyper-parameters.
Status read_embed_dims(const TensorMap& t, const std::string& where, Hparams& hp);

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace wkv
