// RWKV-7 (x070) training: the forward over a [B, T] token batch with every matrix product over
// all B·T positions, the activations it keeps, and the explicit backward of every layer.
// Math: ../shared/testdata/train/README.md "Forward, as computed" (official rwkv_v7_demo.py).
// Letters: B batch, T tokens, M = B·T rows, C channels, H heads, N head size, V vocab,
// F FFN width; r w k v a g kk as in the paper.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "train/batch.hpp"
#include "train/params.hpp"

namespace wkv::train {

constexpr double kLayerNormEps = 1e-5;   // every LayerNorm of the official model
constexpr double kGroupNormEps = 64e-5;  // ln_x GroupNorm
constexpr double kL2NormEps = 1e-12;     // F.normalize eps for kk
constexpr double kL2WrapFactor = 1e-4;   // official "fixed 1e-4 factor"

// Initial WKV state per layer, each [H, N, N] (value i, key j), shared by the batch. An empty
// vector (or an empty entry) means zero.
template <class Real>
using LayerStates = std::vector<std::vector<Real>>;

template <class Real>
class Rwkv7Trainer {
 public:
  // chunk: tokens between stored WKV states (the rest is recomputed in the backward).
  explicit Rwkv7Trainer(size_t chunk = 16) : chunk_(chunk) {}

  // Runs the model on tokens [B, T] (ids < V, checked by WKV_ASSERT: validate first, e.g. with
  // batch_from_tensors) and writes logits [B, T, V]; keeps what backward needs.
  void forward(const Params<Real>& p, const int32_t* tokens, size_t B, size_t T,
               const LayerStates<Real>* s0, Real* logits);

  // Back-propagates dlogits [B, T, V] through the last forward: adds the parameter gradients to
  // g (which has p's shapes) and, if ds0 is given, the initial-state gradients (resized to L
  // entries of H·N·N, summed over the batch) to ds0.
  void backward(const Params<Real>& p, const Real* dlogits, Grads<Real>& g, LayerStates<Real>* ds0);

 private:
  struct Acts;  // everything the backward needs, defined in rwkv7.cpp
  size_t chunk_;
  std::shared_ptr<Acts> acts_;
};

// Mean cross entropy over `rows` rows of logits [rows, V] and, if dlogits is not null, its
// gradient (softmax − onehot)/rows; with l2wrap the official L2Wrap term
// max(z)·1e-4/rows at the first argmax of each row is added to dlogits (the loss is unchanged).
template <class Real>
double cross_entropy(const Real* logits, const int32_t* targets, size_t rows, size_t V, bool l2wrap,
                     Real* dlogits);

// One forward, loss and backward over a batch in fp32: what `wkv grad` reports.
struct GradResult {
  double loss = 0;            // mean cross entropy
  std::vector<float> logits;  // [B, T, V]
  Grads<float> grads;         // dloss/dparam (with the L2Wrap term if asked)
  LayerStates<float> ds0;     // dloss/d(initial WKV state) per layer, [H, N, N]
};
GradResult compute_gradients(const Params<float>& p, const Batch& b, bool l2wrap,
                             const LayerStates<float>* s0 = nullptr);

}  // namespace wkv::train
