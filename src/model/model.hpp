// The model interface every RWKV version implements: hyper-parameters detected from tensor
// names and shapes, a recurrent State of fixed size, and forward passes that update it.
// Dims: T tokens, C channels (n_embd), H heads, N head size, F FFN width, V vocab.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"

namespace wkv {

enum class ModelVersion { v4, v5_0, v5_1, v5_2, v6_0, v7_0 };
std::string_view version_name(ModelVersion v);  // "4", "5.0", ..., "7.0"

struct Hparams {
  ModelVersion version = ModelVersion::v7_0;
  int n_layer = 0;
  int n_embd = 0;     // C
  int n_head = 0;     // H (0 for v4: no heads)
  int head_size = 0;  // N (0 for v4)
  int ffn_size = 0;   // F
  int vocab_size = 0; // V
  int lora_w = 0, lora_a = 0, lora_v = 0, lora_g = 0;  // v7 LoRA widths (0 where absent)
  int lora_maa = 0, lora_decay = 0;  // v6 LoRA widths: time_maa_w1 [C, 5*maa], time_decay_w1 [C, decay]
  int64_t params = 0;         // elements of all tensors the model uses
  std::string dtype;          // storage dtype of the large matrices: "f32", "bf16", "f16"
};

// Which version a checkpoint is, from tensor names and shapes alone (see RWKV_REFERENCE §2.5,
// extended with shape tests so v5.0/5.1/5.2 separate and v7 is found without a flag).
Expected<ModelVersion> detect_version(const TensorMap& tensors);

// The recurrent state: one fp32 buffer and named slots into it. Its size depends only on the
// model, never on how many tokens it has seen. Slot names (per layer i) are the tensor names
// of the state file: `blocks.{i}.att.x_prev` [C], `blocks.{i}.att.wkv` [H, N, N],
// `blocks.{i}.ffn.x_prev` [C] (wkv orientation: v7 S[h, value, key], v5/v6 S[h, key, value],
// as the official code); v4 has `att.aa`, `att.bb`, `att.pp` [C] instead of `att.wkv`.
struct State {
  struct Slot {
    std::string name;
    std::vector<int64_t> shape;
    size_t offset = 0;  // in floats
    size_t size = 0;
    float init = 0.0f;  // the value every element starts from (v4 att.pp: -1e30)
    // Per-element starting values instead of `init` (a tuned initial state, model/adapters.hpp);
    // shared, so copying a State does not copy them.
    std::shared_ptr<const std::vector<float>> init_values;
  };
  std::vector<float> data;
  std::vector<Slot> slots;

  // Appends a slot of `shape`, its elements set to `init`.
  void add_slot(std::string name, std::vector<int64_t> shape, float init = 0.0f);
  // Every slot back to its initial value(s).
  void reset();

  float* slot(size_t i) { return data.data() + slots[i].offset; }
  const float* slot(size_t i) const { return data.data() + slots[i].offset; }
  size_t bytes() const { return data.size() * sizeof(float); }

  // The state as tensors (copies), keyed by slot name; and the reverse, checking names/shapes.
  TensorMap to_tensors() const;
  Status from_tensors(const TensorMap& t, const std::string& where);
};

// Which rows of logits a forward pass must produce.
enum class Logits { none, last, all };

// One sequence's part of a batched step: its new tokens (any number, at least one), its state,
// and where its logits go ([T, V] for Logits::all, [V] for last, nothing for none).
struct BatchItem {
  std::span<const int32_t> tokens;
  State* state = nullptr;
  float* logits = nullptr;
  Logits which = Logits::none;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const Hparams& hparams() const = 0;
  // A fresh initial state (zeros, or what the version starts from).
  virtual State new_state() const = 0;
  // One RNN step: feeds `token`, updates `state`, writes V logits when `logits` is not null.
  virtual void forward_one(int32_t token, State& state, float* logits) = 0;
  // A whole prompt: matrix products over all tokens at once, the recurrence token by token.
  // `logits` receives [T, V] (Logits::all), [V] (Logits::last) or nothing.
  virtual void forward_seq(std::span<const int32_t> tokens, State& state, float* logits,
                           Logits which) = 0;
  // Many sequences, each at its own position, advanced together. The result for every item
  // equals forward_seq on it alone (to float rounding: a batched matrix product may sum in
  // another order). The default runs them one after another; versions override it with
  // matrix products over the rows of all items.
  virtual void forward_batch(std::span<const BatchItem> items) {
    for (const BatchItem& b : items) forward_seq(b.tokens, *b.state, b.logits, b.which);
  }
};

// Builds the model for whatever version the tensors hold. The model keeps `tensors` alive and
// uses fp32 data in place; other dtypes are converted once here.
Expected<std::unique_ptr<Model>> load_model(TensorMap tensors, const std::string& where);

}  // namespace wkv
