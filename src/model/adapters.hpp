// Fine-tuning results applied to a model at load time: a tuned initial WKV state (state tuning)
// and LoRA low-rank weight deltas. `wkv train --tune state|lora` writes the files; the commands
// that load a model take them with --state FILE / --lora FILE (apps/wkv/cli.hpp).
//
// State file (safetensors): one float tensor `blocks.{i}.att.time_state` [H, N, N] per layer, the
// name and layout of the official state-tuning tools: [head, value i, key j] (RWKV-LM
// wkv6state_cuda.cu; ../shared/spec/TRAINING_REFERENCE.md §10). The RWKV-7 inference state
// `blocks.{i}.att.wkv` and the training s0 use that same layout, so it is copied as is; the v5/v6
// inference state is [head, key, value], so it is transposed (as the official pip package does).
//
// LoRA file (safetensors): for each adapted matrix W [out, in] named `<name>` (e.g.
// `blocks.0.att.key.weight`), `<name>.lora_A` [R, in] and `<name>.lora_B` [out, R]; metadata
// `lora_rank` (R) and `lora_alpha`. The adapted weight is W + (alpha / R) · B · A.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"
#include "model/model.hpp"

namespace wkv {

std::string time_state_name(int layer);  // "blocks.{layer}.att.time_state"

// The time_state tensors of a state file `t` (read from `where`, named in every error), checked
// against a model of n_layer layers, H heads of size N: exactly one per layer, float, shape
// [H, N, N], finite. Returned per layer in the file's layout [head, value, key].
Expected<std::vector<std::vector<float>>> read_time_states(const TensorMap& t, int n_layer,
                                                           int64_t H, int64_t N,
                                                           const std::string& where);

// Checks `t` (read from `where`, named in every error) against the model: exactly one
// time_state per layer, shape [H, N, N]. Returns the model wrapped so that new_state() — and
// State::reset() on those states — starts every sequence from the tuned WKV states (the token
// shift states start at zero as usual). Everything else is the wrapped model's.
Expected<std::unique_ptr<Model>> with_initial_state(std::unique_ptr<Model> model,
                                                    const TensorMap& t, const std::string& where);

inline constexpr const char* kLoraA = ".lora_A";
inline constexpr const char* kLoraB = ".lora_B";

// W[out, in] += scale · B[out, R] · A[R, in], each sum over R in double: the LoRA delta of the
// loader, `wkv merge` and the trainer (so all three get the same float32 weights).
void add_lora_delta(float* W, const float* A, const float* B, size_t out, size_t in, size_t R,
                    double scale);

// alpha / rank from a LoRA file's metadata (`lora_alpha`, `lora_rank`), checked.
struct LoraScale {
  double alpha = 0;
  int64_t rank = 0;
  double scale() const { return alpha / double(rank); }
};
Expected<LoraScale> lora_scale_from_metadata(const std::map<std::string, std::string>& meta,
                                             const std::string& where);

// Folds the adapters of a LoRA file (tensors `lora`, metadata `meta`, from `where`) into
// `weights` in place: every adapted matrix becomes a float32 tensor W + (alpha/R)·B·A. Errors
// (naming `where` and the tensor): no adapters, a tensor that is not `.lora_A`/`.lora_B` or
// lacks its partner, a target that is not in the model, mismatched shapes, a rank other than
// `lora_rank`, or a quantized target.
Status apply_lora(TensorMap& weights, const TensorMap& lora,
                  const std::map<std::string, std::string>& meta, const std::string& where);

}  // namespace wkv
