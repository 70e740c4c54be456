// Fine-tuning RWKV-7 with the weights frozen: state tuning (the per-layer initial WKV states)
// and LoRA (low-rank adapters on the large matrices). A Tuner is what train_loop trains instead
// of the weights (TrainConfig::tuner): the loop runs the forward on tuner.weights() with
// tuner.initial_state(), the usual full backward, then tuner.step() on those gradients.
// Files written (model/adapters.hpp has the formats and applies them at load):
//   state: `blocks.{i}.att.time_state` [H, N, N] float32, layout [head, value, key]
//   LoRA:  `<weight>.lora_A` [R, in], `<weight>.lora_B` [out, R], metadata lora_rank/lora_alpha
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"
#include "train/adamw.hpp"
#include "train/params.hpp"
#include "train/rwkv7.hpp"

namespace wkv::train {

class Tuner {
 public:
  virtual ~Tuner() = default;
  // The weights the forward and backward run on: `base` itself, or base with adapters folded in.
  virtual const Params<float>& weights(const Params<float>& base) const = 0;
  // Initial WKV states of the forward (null: zero).
  virtual const LayerStates<float>* initial_state() const { return nullptr; }
  // Whether step() needs the initial-state gradient from the backward.
  virtual bool needs_state_grad() const { return false; }
  // One optimizer step from the last backward's gradients (g: weights, ds0: initial states).
  virtual void step(const Grads<float>& g, const LayerStates<float>& ds0, double lr) = 0;
  virtual size_t trainable_count() const = 0;
  virtual const char* kind() const = 0;  // "state", "lora"
  // What is saved: float32 tensors and metadata (model dims and the tuning's own settings).
  virtual TensorMap tensors() const = 0;
  virtual std::map<std::string, std::string> metadata() const = 0;
};

// AdamW over flat float tensors with no weight decay (the tuners' optimizer): global-norm
// clipping (torch clip_grad_norm_, cfg.grad_clip) and bias correction as AdamW::step.
class FlatAdamW {
 public:
  FlatAdamW(const std::vector<size_t>& sizes, const AdamWConfig& cfg);
  void step(const std::vector<std::span<float>>& params,
            const std::vector<std::span<const float>>& grads, double lr);
  int64_t steps = 0;

 private:
  AdamWConfig cfg_;
  std::vector<std::vector<float>> m_, v_;
};

// State tuning: trains s0 (L entries of [H, N, N]), starting from zero or from `init` (a state
// file's tensors, checked against p, errors naming `where`).
Expected<std::unique_ptr<Tuner>> make_state_tuner(const Params<float>& p, const AdamWConfig& cfg,
                                                  const TensorMap* init, const std::string& where);

// The matrices LoRA adapts (suffixes of the official names).
inline constexpr const char* kLoraTargets[] = {"att.receptance.weight", "att.key.weight",
                                               "att.value.weight",      "att.output.weight",
                                               "ffn.key.weight",        "ffn.value.weight"};
bool is_lora_target(const std::string& name);

struct LoraConfig {
  int64_t rank = 8;
  double alpha = 16;  // scale alpha / rank
  uint64_t seed = 1;  // A's random init
};

// LoRA: A [R, in] uniform in ±1/sqrt(in) (kaiming-uniform with a = sqrt(5), the nn.Linear /
// peft init), B [out, R] zero, so training starts exactly at `base`, which must outlive the
// tuner (its weights stay frozen). Only the LoRA factors are trained.
std::unique_ptr<Tuner> make_lora_tuner(const Params<float>& base, const LoraConfig& lc,
                                       const AdamWConfig& cfg);

// The LoRA gradients from the full weight gradient dW [out, in] of W_eff = W + s·B·A:
// dB = s·dW·Aᵀ [out, R], dA = s·Bᵀ·dW [R, in] (written, not added). Sums in double.
template <class Real>
void lora_grads(const Real* dW, const Real* A, const Real* B, size_t out, size_t in, size_t R,
                double s, Real* dA, Real* dB) {
  for (size_t o = 0; o < out; ++o)
    for (size_t r = 0; r < R; ++r) {
      double acc = 0;
      for (size_t i = 0; i < in; ++i) acc += double(dW[o * in + i]) * double(A[r * in + i]);
      dB[o * R + r] = Real(s * acc);
    }
  std::vector<double> acc(in);
  for (size_t r = 0; r < R; ++r) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (size_t o = 0; o < out; ++o) {
      const double b = double(B[o * R + r]);
      if (b == 0) continue;
      for (size_t i = 0; i < in; ++i) acc[i] += b * double(dW[o * in + i]);
    }
    for (size_t i = 0; i < in; ++i) dA[r * in + i] = Real(s * acc[i]);
  }
}

// Writes the tuner's tensors to `path` (safetensors, atomic), metadata plus "step".
Status save_tuned(const Tuner& t, const std::string& path, int64_t step);

}  // namespace wkv::train
