// Pieces every RWKV version shares: embedding lookup with ln0, the output LayerNorm and head,
// small element-wise helpers, and for v4/v5.x/v6 the token shift, the channel mix and the
// chunked forward driver (BlockModel).
#pragma once

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/kernels.hpp"
#include "model/model.hpp"
#include "model/weights.hpp"

namespace wkv {

constexpr float kLayerNormEps = 1e-5f;  // every LayerNorm in the official model.py
constexpr float kGroupNormEps = 64e-5f; // ln_x GroupNorm eps of the official v5/v6/v7 code
constexpr size_t kChunk = 128;          // tokens per matrix-product chunk in forward_seq

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

// The dtype of the large matrices (that of the first `*.att.key.weight`).
std::string matrix_dtype(const TensorMap& t);
// F from `blocks.0.ffn.key.weight` [F, C].
Status read_ffn_size(const TensorMap& t, const std::string& where, Hparams& hp);
// The tensor `name`, or an error naming it.
Expected<const Tensor*> find_tensor(const TensorMap& t, const std::string& name,
                                    const std::string& where);

// Table-driven loading of one layer's tensors, each `prefix + name`.
struct VecSpec {
  const char* name;
  std::vector<float>* dst;
  int64_t n;
  bool any_shape = false;  // e.g. [H, N] read as [H*N]
};
struct MatSpec {
  const char* name;
  Matrix* dst;
  int64_t rows, cols;
};
Status read_vecs(WeightReader& rd, const std::string& prefix, std::initializer_list<VecSpec> specs);
Status read_mats(WeightReader& rd, const std::string& prefix, std::initializer_list<MatSpec> specs);

// fn(t0, t1) over the rows [0, T) of a chunk in blocks of a few rows on the matmul thread
// pool. The per-token work between the matrix products (norms, token shift, activations)
// would otherwise run on one thread while the others wait; each row is computed by the same
// code either way, so results do not depend on the threads.
template <class Fn>
void for_rows(size_t T, Fn&& fn) {
  constexpr size_t kRowsPerTask = 8;
  const size_t n = (T + kRowsPerTask - 1) / kRowsPerTask;
  if (n <= 1) return fn(size_t{0}, T);  // one task (generation): no pool hand-off
  kernels::parallel_for(n, [&](size_t b) {
    fn(b * kRowsPerTask, std::min(T, (b + 1) * kRowsPerTask));
  });
}

// The v5/v6 recurrence over T rows of [C = H*N] (kernels::wkv5_step token by token), heads
// spread over the pool when T > 1 (one token alone is not worth the hand-off). w advances by
// w_stride floats per row: 0 for v5's fixed decay, C for v6's per-token decay.
void wkv5_rows(float* S, const float* r, const float* w, size_t w_stride, const float* u,
               const float* k, const float* v, float* y, size_t T, size_t H, size_t N);

// y[t] = LN(x[t]; w, b) for T rows of C.
void layer_norm_rows(const float* x, const std::vector<float>& w, const std::vector<float>& b,
                     float* y, size_t T, size_t C);

// The two token-shift parameterisations. xx = this token's LN output, sx = the previous
// token's (the previous row, or the state `prev` for the first row of a chunk):
//   time_mix (v4, v5.x):  x* = xx*m + sx*(1-m)
//   time_maa (v6):        x* = xx + (sx-xx)*m
enum class MixStyle { time_mix, time_maa };
// One row of the time_maa form (also RWKV-7's token shift): out = cur + (prev - cur) * mix, the
// arrays not overlapping (restrict: with several outputs per loop GCC left the loop scalar).
void lerp_row(const float* __restrict cur, const float* __restrict prev,
              const float* __restrict mix, float* __restrict out, size_t n);
void token_mix(MixStyle style, const float* xx, const float* prev, const float* m, float* out,
               size_t T, size_t C);

// Scratch of the channel mix for a chunk of T tokens (grown once, reused).
struct FfnScratch {
  std::vector<float> xx, xk, xr, r, hid, out;
  void reserve(size_t T, size_t C, size_t F);
};

// The channel mix of v4, v5.x and v6 (RWKV_REFERENCE §4.1, §4.3):
//   x += sigmoid(Wr xr) * (Wv relu(Wk xk)^2),  xk, xr token-shifted from xx = LN(x; ln2).
struct ChannelMix {
  MixStyle style = MixStyle::time_mix;
  std::vector<float> ln_w, ln_b;  // [C] ln2
  std::vector<float> m_k, m_r;    // [C] ffn.time_mix_k|r (v4, v5.x) or ffn.time_maa_k|r (v6)
  Matrix Wk;                      // [F, C]
  Matrix Wr;                      // [C, C]
  Matrix Wv;                      // [C, F]

  // `prefix` is "blocks.{i}.".
  Status load(WeightReader& rd, const std::string& prefix, int64_t C, int64_t F, MixStyle s);
  // x [T, C] updated in place; `prev` [C] (the ffn token-shift state) set to the last xx.
  void forward(float* x, size_t T, float* prev, FfnScratch& w) const;
};

// What v4, v5.x and v6 share around their blocks: hyper-parameters, embedding and head, the
// tensors kept alive (weights used in place), and the driver: forward_seq embeds chunks of up
// to kChunk tokens, runs every block over a chunk (matrix products over all its tokens, the
// recurrence token by token), then the logits asked for; forward_one is a chunk of one token.
class BlockModel : public Model {
 public:
  const Hparams& hparams() const override { return hp_; }
  void forward_one(int32_t token, State& state, float* logits) override;
  void forward_seq(std::span<const int32_t> tokens, State& state, float* logits,
                   Logits which) override;

  // Keeps `tensors` and reads the weights through the version's load().
  Status init(TensorMap tensors, const std::string& where);

 protected:
  virtual Status load(WeightReader& rd, const TensorMap& t, const std::string& where) = 0;
  // Every block over the rows x [T, C] in place, updating `state`.
  virtual void blocks(float* x, size_t T, State& state) = 0;

  Hparams hp_;
  EmbedHead eh_;
  FfnScratch ffn_work_;

 private:
  void run(std::span<const int32_t> tokens, State& state, float* logits, Logits which);

  TensorMap tensors_;  // keeps in-place weights (mmap) alive
  std::vector<std::shared_ptr<void>> buffers_;
  std::vector<float> x_, tmp_;
};

}  // namespace wkv
