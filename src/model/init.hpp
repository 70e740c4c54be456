// Random RWKV-7 checkpoints of any size (for benchmarks and tests): realistic magnitudes so
// activations stay finite, official tensor names and shapes.
#pragma once

#include <cstdint>

#include "core/tensor.hpp"

namespace wkv {

struct V7Dims {
  int n_layer = 12;
  int n_embd = 768;
  int head_size = 64;
  int vocab_size = 65536;
  int ffn_size = 0;  // 0: 4 * n_embd
  int lora_w = 64, lora_a = 64, lora_v = 32, lora_g = 128;
};

// A tensor of `values` stored as f32, or rounded to bf16 when dt is bf16 (the dtypes `wkv init`
// writes).
Tensor f32_or_bf16_tensor(DType dt, std::vector<int64_t> shape, std::vector<float> values);

Expected<TensorMap> random_v7(const V7Dims& d, uint64_t seed, DType dtype);

}  // namespace wkv
