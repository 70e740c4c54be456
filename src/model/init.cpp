#include "model/init.hpp"

#include <cmath>
#include <random>

namespace wkv {

Tensor f32_or_bf16_tensor(DType dt, std::vector<int64_t> shape, std::vector<float> v) {
  if (dt == DType::f32) return Tensor::from_f32(std::move(shape), std::move(v));
  std::vector<uint16_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) bits[i] = f32_to_bf16(v[i]);
  return Tensor::from_bf16(std::move(shape), std::move(bits));
}

Expected<TensorMap> random_v7(const V7Dims& d, uint64_t seed, DType dtype) {
  if (d.n_layer < 1 || d.n_layer > 256) return Error{"n_layer must be in 1..256"};
  if (d.head_size < 1 || d.n_embd < d.head_size || d.n_embd % d.head_size != 0 || d.n_embd > 16384)
    return Error{"n_embd must be a positive multiple of head_size, at most 16384"};
  if (d.vocab_size < 1 || d.vocab_size > (1 << 20)) return Error{"vocab_size must be in 1..2^20"};
  if (dtype != DType::f32 && dtype != DType::bf16) return Error{"dtype must be f32 or bf16"};
  const int64_t C = d.n_embd, H = C / d.head_size, N = d.head_size, V = d.vocab_size;
  const int64_t F = d.ffn_size > 0 ? d.ffn_size : 4 * C;
  std::mt19937_64 rng(seed);
  auto normal = [&](size_t n, float sd, float mean = 0.0f) {
    std::normal_distribution<float> nd(mean, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
  };
  auto uniform = [&](size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> ud(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = ud(rng);
    return v;
  };
  TensorMap m;
  auto put = [&](const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
    m[name] = f32_or_bf16_tensor(dtype, std::move(shape), std::move(v));
  };
  const float sc = 1.0f / std::sqrt(static_cast<float>(C));
  put("emb.weight", {V, C}, normal(V * C, 1.0f));
  put("blocks.0.ln0.weight", {C}, std::vector<float>(C, 1.0f));
  put("blocks.0.ln0.bias", {C}, std::vector<float>(C, 0.0f));
  for (int i = 0; i < d.n_layer; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    for (const char* ln : {"ln1", "ln2"}) {
      put(p + ln + ".weight", {C}, std::vector<float>(C, 1.0f));
      put(p + ln + ".bias", {C}, std::vector<float>(C, 0.0f));
    }
    for (const char* x : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"})
      put(p + "att." + x, {1, 1, C}, uniform(C, 0.0f, 1.0f));
    put(p + "att.w0", {1, 1, C}, uniform(C, -2.0f, 1.0f));
    put(p + "att.a0", {1, 1, C}, normal(C, 0.3f));
    put(p + "att.v0", {1, 1, C}, normal(C, 0.3f, 1.0f));
    const std::pair<const char*, int> loras[] = {
        {"w", d.lora_w}, {"a", d.lora_a}, {"v", d.lora_v}, {"g", d.lora_g}};
    for (auto [n, D] : loras) {
      put(p + "att." + n + "1", {C, D}, normal(C * D, 0.1f * sc));
      put(p + "att." + n + "2", {D, C}, normal(D * C, 0.1f / std::sqrt(static_cast<float>(D))));
    }
    put(p + "att.k_k", {1, 1, C}, uniform(C, 0.5f, 1.0f));
    put(p + "att.k_a", {1, 1, C}, uniform(C, 0.5f, 1.0f));
    put(p + "att.r_k", {H, N}, normal(H * N, 0.1f));
    for (const char* w : {"receptance", "key", "value", "output"})
      put(p + "att." + w + ".weight", {C, C}, normal(C * C, sc));
    put(p + "att.ln_x.weight", {C}, std::vector<float>(C, 1.0f));
    put(p + "att.ln_x.bias", {C}, std::vector<float>(C, 0.0f));
    put(p + "ffn.x_k", {1, 1, C}, uniform(C, 0.0f, 1.0f));
    put(p + "ffn.key.weight", {F, C}, normal(F * C, sc));
    put(p + "ffn.value.weight", {C, F}, normal(C * F, 0.5f / std::sqrt(static_cast<float>(F))));
  }
  put("ln_out.weight", {C}, std::vector<float>(C, 1.0f));
  put("ln_out.bias", {C}, std::vector<float>(C, 0.0f));
  put("head.weight", {V, C}, normal(V * C, sc));
  return m;
}

}  // namespace wkv
