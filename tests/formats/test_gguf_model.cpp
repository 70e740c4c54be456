// GGUF <-> canonical RWKV mapping on real checkpoints: llama.cpp's rwkv6/rwkv7 names, shapes
// (ne) and metadata types as ../shared/spec/GGUF_RWKV.md lists them, canonical round trips, and
// logits of a model loaded from GGUF equal to the official reference (expected.safetensors).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "formats/formats.hpp"
#include "formats/gguf.hpp"
#include "model/init.hpp"
#include "model/model.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

std::string model_path(const std::string& c) { return test::testdata("models/" + c + "/model.pth"); }

std::string write_temp(const GgufFile& f, const std::string& name) {
  const std::string p = test::temp_dir() + "/" + name;
  Status s = save_gguf(p, f);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return p;
}

const GgufValue& meta(const GgufFile& f, const std::string& k) {
  const GgufValue* v = f.find(k);
  EXPECT_NE(v, nullptr) << k;
  static const GgufValue none;
  return v ? *v : none;
}

std::vector<int64_t> ne(const GgufFile& f, const std::string& name) {
  const Tensor* t = f.tensor(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  return {t->shape.rbegin(), t->shape.rend()};
}

TEST(GgufRwkv7, NamesShapesAndMetadataFollowLlamaCpp) {
  auto t = load_pth(model_path("v7.0_random"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  GgufExportOptions opt;
  opt.name = "v7 test";
  auto f = rwkv_to_gguf(*t, opt);
  ASSERT_TRUE(f.ok()) << f.error().message;
  const int64_t C = 128, V = 512, F = 512;
  EXPECT_EQ(meta(*f, "general.architecture").str, "rwkv7");
  for (const char* k : {"rwkv7.context_length", "rwkv7.embedding_length", "rwkv7.block_count",
                        "rwkv7.feed_forward_length", "rwkv7.attention.head_count",
                        "rwkv7.wkv.head_size", "rwkv7.attention.decay_lora_rank",
                        "rwkv7.attention.iclr_lora_rank",
                        "rwkv7.attention.value_residual_mix_lora_rank",
                        "rwkv7.attention.gate_lora_rank", "general.quantization_version"})
    EXPECT_EQ(meta(*f, k).type, GgufType::u32) << k;
  EXPECT_EQ(meta(*f, "rwkv7.attention.layer_norm_epsilon").type, GgufType::f32);
  EXPECT_EQ(meta(*f, "rwkv7.embedding_length").u, 128u);
  EXPECT_EQ(meta(*f, "rwkv7.block_count").u, 3u);
  EXPECT_EQ(meta(*f, "rwkv7.context_length").u, 1048576u);
  EXPECT_EQ(meta(*f, "rwkv7.attention.head_count").u, 0u);
  EXPECT_EQ(meta(*f, "rwkv7.wkv.head_size").u, 64u);
  EXPECT_EQ(meta(*f, "rwkv7.attention.gate_lora_rank").u, 64u);
  EXPECT_EQ(ne(*f, "token_embd.weight"), (std::vector<int64_t>{C, V}));
  EXPECT_EQ(ne(*f, "token_embd_norm.weight"), (std::vector<int64_t>{C}));
  EXPECT_EQ(ne(*f, "blk.1.time_mix_lerp_fused.weight"), (std::vector<int64_t>{C, 1, 1, 6}));
  EXPECT_EQ(ne(*f, "blk.1.time_mix_w0.weight"), (std::vector<int64_t>{C}));
  EXPECT_EQ(ne(*f, "blk.1.time_mix_w1.weight"), (std::vector<int64_t>{C, 32}));
  EXPECT_EQ(ne(*f, "blk.1.time_mix_w2.weight"), (std::vector<int64_t>{32, C}));
  EXPECT_EQ(ne(*f, "blk.1.time_mix_g1.weight"), (std::vector<int64_t>{C, 64}));
  EXPECT_EQ(ne(*f, "blk.1.time_mix_r_k.weight"), (std::vector<int64_t>{C}));
  EXPECT_EQ(ne(*f, "blk.1.time_mix_key.weight"), (std::vector<int64_t>{C, C}));
  EXPECT_EQ(ne(*f, "blk.1.channel_mix_key.weight"), (std::vector<int64_t>{C, F}));
  EXPECT_EQ(ne(*f, "blk.1.channel_mix_value.weight"), (std::vector<int64_t>{F, C}));
  EXPECT_EQ(ne(*f, "blk.1.channel_mix_lerp_k.weight"), (std::vector<int64_t>{C}));
  EXPECT_EQ(ne(*f, "output.weight"), (std::vector<int64_t>{C, V}));
  EXPECT_EQ(ne(*f, "output_norm.bias"), (std::vector<int64_t>{C}));
  // 28 tensors per layer (incl. the fused lerp), 6 global ones; no extras.
  EXPECT_EQ(f->tensors.size(), 3u * 28u + 6u);
  // Fused lerp order r, w, k, v, a, g: component 1 is x_w.
  const auto fused = to_f32(*f->tensor("blk.1.time_mix_lerp_fused.weight"));
  const auto xw = to_f32(t->at("blocks.1.att.x_w"));
  EXPECT_EQ(std::vector<float>(fused.begin() + C, fused.begin() + 2 * C), xw);
  // w1 transposed: GGUF element (ne0 = c, ne1 = d) is official w1[c][d].
  const auto w1 = to_f32(*f->tensor("blk.2.time_mix_w1.weight"));
  const auto w1o = to_f32(t->at("blocks.2.att.w1"));
  EXPECT_EQ(w1[5 * C + 7], w1o[7 * 32 + 5]);
  // Layer 0's value LoRA: copies of its iclr LoRA.
  EXPECT_EQ(to_f32(*f->tensor("blk.0.time_mix_v1.weight")), to_f32(*f->tensor("blk.0.time_mix_a1.weight")));
  EXPECT_EQ(to_f32(*f->tensor("blk.0.time_mix_v0.weight")), to_f32(*f->tensor("blk.0.time_mix_a0.weight")));
  EXPECT_NE(to_f32(*f->tensor("blk.1.time_mix_v1.weight")), to_f32(*f->tensor("blk.1.time_mix_a1.weight")));
}

TEST(GgufRwkv6, NamesShapesAndMetadataFollowLlamaCpp) {
  auto t = load_pth(model_path("v6.0_random"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto f = rwkv_to_gguf(*t);
  ASSERT_TRUE(f.ok()) << f.error().message;
  const int64_t C = 128;
  EXPECT_EQ(meta(*f, "general.architecture").str, "rwkv6");
  EXPECT_EQ(meta(*f, "rwkv6.time_mix_extra_dim").u, 32u);
  EXPECT_EQ(meta(*f, "rwkv6.time_decay_extra_dim").u, 64u);
  EXPECT_EQ(meta(*f, "rwkv6.rescale_every_n_layers").u, 0u);
  EXPECT_EQ(meta(*f, "rwkv6.feed_forward_length").u, 448u);
  EXPECT_EQ(ne(*f, "blk.0.time_mix_lerp_x.weight"), (std::vector<int64_t>{C}));
  EXPECT_EQ(ne(*f, "blk.0.time_mix_lerp_fused.weight"), (std::vector<int64_t>{C, 1, 1, 5}));
  EXPECT_EQ(ne(*f, "blk.0.time_mix_w1.weight"), (std::vector<int64_t>{C, 160}));
  EXPECT_EQ(ne(*f, "blk.0.time_mix_w2.weight"), (std::vector<int64_t>{32, C, 5}));
  EXPECT_EQ(ne(*f, "blk.0.time_mix_decay.weight"), (std::vector<int64_t>{C}));
  EXPECT_EQ(ne(*f, "blk.0.time_mix_decay_w1.weight"), (std::vector<int64_t>{C, 64}));
  EXPECT_EQ(ne(*f, "blk.0.time_mix_decay_w2.weight"), (std::vector<int64_t>{64, C}));
  EXPECT_EQ(ne(*f, "blk.0.time_mix_first.weight"), (std::vector<int64_t>{64, 2}));
  EXPECT_EQ(ne(*f, "blk.0.channel_mix_receptance.weight"), (std::vector<int64_t>{C, C}));
  // w2 permuted (0, 2, 1): GGUF (ne0 = d, ne1 = c, ne2 = j) is official w2[j][d][c].
  const auto w2 = to_f32(*f->tensor("blk.1.time_mix_w2.weight"));
  const auto w2o = to_f32(t->at("blocks.1.att.time_maa_w2"));
  EXPECT_EQ(w2[(3 * C + 9) * 32 + 4], w2o[(3 * 32 + 4) * C + 9]);
  // Fused order w, k, v, r, g: component 3 is time_maa_r.
  const auto fused = to_f32(*f->tensor("blk.1.time_mix_lerp_fused.weight"));
  EXPECT_EQ(std::vector<float>(fused.begin() + 3 * C, fused.begin() + 4 * C),
            to_f32(t->at("blocks.1.att.time_maa_r")));
}

// Canonical -> GGUF file -> canonical gives back every tensor (shape, values), except layer 0's
// unused v7 value LoRA.
void expect_round_trip(const std::string& c) {
  auto t = load_tensors(model_path(c));
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto f = rwkv_to_gguf(*t);
  ASSERT_TRUE(f.ok()) << f.error().message;
  const std::string p = write_temp(*f, c + ".gguf");
  auto back = load_tensors(p);  // detection by magic
  ASSERT_TRUE(back.ok()) << back.error().message;
  for (const auto& [name, want] : *t) {
    if ((name == "blocks.0.att.v0" || name == "blocks.0.att.v1" || name == "blocks.0.att.v2") &&
        c.find("7") != std::string::npos) {
      EXPECT_EQ(back->count(name), 0u) << name;
      continue;
    }
    auto it = back->find(name);
    ASSERT_NE(it, back->end()) << c << ": " << name;
    EXPECT_EQ(it->second.shape, want.shape) << name;
    EXPECT_EQ(to_f32(it->second), to_f32(want)) << name;
  }
}

TEST(GgufMapping, CanonicalRoundTrips) {
  for (const char* c : {"v7.0_random", "v7.0_random_bf16", "v6.0_random", "v6.0_random_bf16",
                        "rwkvcpp_tiny_7v0_834K", "v5.2_random", "v4_random"})
    expect_round_trip(c);
}

TEST(GgufMapping, Rwkv6RescaleIsUndone) {
  auto t = load_pth(model_path("v6.0_random"));
  ASSERT_TRUE(t.ok());
  auto f = rwkv_to_gguf(*t);
  ASSERT_TRUE(f.ok());
  // As llama.cpp's converter with rescale_every = 1: layer 1's output and FFN value halved.
  f->set("rwkv6.rescale_every_n_layers", GgufValue::of_u32(1));
  for (auto& [name, ten] : f->tensors)
    if (name == "blk.1.time_mix_output.weight" || name == "blk.1.channel_mix_value.weight") {
      auto v = to_f32(ten);
      for (float& x : v) x /= 2;
      ten = Tensor::from_f32(ten.shape, v);
    }
  auto back = gguf_to_rwkv(*f, "rescaled");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(to_f32(back->at("blocks.1.att.output.weight")), to_f32(t->at("blocks.1.att.output.weight")));
  EXPECT_EQ(to_f32(back->at("blocks.1.ffn.value.weight")), to_f32(t->at("blocks.1.ffn.value.weight")));
  f->set("rwkv6.rescale_every_n_layers", GgufValue::scalar(GgufType::u64, 1));
  auto wrong = gguf_to_rwkv(*f, "rescaled");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("has type u64, expected u32"), std::string::npos);
}

TEST(GgufMapping, RejectsForeignOrExtraTensors) {
  auto t = load_pth(model_path("v7.0_random"));
  ASSERT_TRUE(t.ok());
  auto f = rwkv_to_gguf(*t);
  ASSERT_TRUE(f.ok());
  GgufFile extra = *f;
  extra.tensors.emplace_back("blk.0.mystery.weight", Tensor::from_f32({1}, {0}));
  auto r = gguf_to_rwkv(extra, "x.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unexpected tensor 'blk.0.mystery.weight'"), std::string::npos);
  GgufFile arch = *f;
  arch.set("general.architecture", GgufValue::of_str("llama"));
  r = gguf_to_rwkv(arch, "x.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("architecture 'llama' is not supported"), std::string::npos);
  GgufFile layers = *f;
  layers.set("rwkv7.block_count", GgufValue::of_u32(1u << 30));
  r = gguf_to_rwkv(layers, "x.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("block_count 1073741824 is absurd"), std::string::npos);
  GgufFile head = *f;
  head.set("rwkv7.wkv.head_size", GgufValue::of_u32(0));
  r = gguf_to_rwkv(head, "x.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("time_mix_r_k"), std::string::npos) << r.error().message;
  TensorMap bad = *t;
  bad.emplace("blocks.0.att.surprise", Tensor::from_f32({1}, {0}));
  auto w = rwkv_to_gguf(bad);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("blocks.0.att.surprise"), std::string::npos);
}

// The logits of a model loaded from GGUF equal the official reference.
void expect_golden_logits(const std::string& c, DType dtype = DType::f32, bool dequant = false) {
  auto t = load_tensors(model_path(c));
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto f = rwkv_to_gguf(*t);
  ASSERT_TRUE(f.ok()) << f.error().message;
  if (dtype != DType::f32)
    for (auto& [name, ten] : f->tensors)
      if (ten.shape.size() == 2 && ten.dtype == DType::f32 && name.find("time_mix_w") == std::string::npos)
        ten = cast_tensor(ten, dtype);
  const std::string p = write_temp(*f, c + "_golden.gguf");
  auto g = load_tensors(p);
  ASSERT_TRUE(g.ok()) << g.error().message;
  if (dequant)
    for (auto& [name, ten] : *g) ten = cast_tensor(ten, DType::f32);
  auto m = load_model(std::move(*g), p);
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto exp = load_safetensors(test::testdata("models/" + c + "/expected.safetensors"));
  ASSERT_TRUE(exp.ok());
  std::vector<int32_t> tokens;
  for (float x : to_f32(exp->at("tokens"))) tokens.push_back(static_cast<int32_t>(x));
  const auto want = to_f32(exp->at("logits"));
  const size_t V = static_cast<size_t>((*m)->hparams().vocab_size);
  std::vector<float> got(tokens.size() * V);
  State s = (*m)->new_state();
  (*m)->forward_seq(tokens, s, got.data(), Logits::all);
  const float tol = dtype == DType::f32 ? 2e-4f : 0.25f;
  EXPECT_LE(test::max_abs_diff(got, want), tol) << c << " " << dtype_name(dtype);
}

TEST(GgufMapping, GoldenLogitsV7) { expect_golden_logits("v7.0_random"); }
TEST(GgufMapping, GoldenLogitsV6) { expect_golden_logits("v6.0_random"); }
TEST(GgufMapping, GoldenLogitsTinyTrainedV7) { expect_golden_logits("rwkvcpp_tiny_7v0_834K"); }
TEST(GgufMapping, GoldenLogitsV5OwnArch) { expect_golden_logits("v5.2_random"); }
TEST(GgufMapping, GoldenLogitsV7F16Matrices) { expect_golden_logits("v7.0_random", DType::f16); }
TEST(GgufMapping, GoldenLogitsV7F16MatricesDequantized) {
  expect_golden_logits("v7.0_random", DType::f16, true);
}

}  // namespace
}  // namespace wkv

namespace wkv {
namespace {

// A quantized GGUF runs with its blocks in place; its logits equal those of the same weights
// dequantized to f32 before load (to float rounding of the kernels' summation order).
TEST(GgufMapping, QuantizedInPlaceMatchesDequantized) {
  auto t = load_tensors(model_path("rwkvcpp_tiny_7v0_834K"));
  ASSERT_TRUE(t.ok());
  const std::vector<int32_t> tokens{105, 110, 32, 116, 104, 101, 32, 109, 111, 114, 110, 105};
  for (DType q : {DType::q8_0, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1, DType::q2_k,
                  DType::q3_k, DType::q4_k, DType::q5_k, DType::q6_k}) {
    auto f = rwkv_to_gguf(*t);
    ASSERT_TRUE(f.ok());
    size_t n = 0, k = 0;
    for (auto& [name, ten] : f->tensors)
      if (gguf_should_quantize(name, ten, true)) {
        // C = 64: only the FFN value rows (256) take a k-quant; the rest fall back.
        const DType qt = quant_type_for_row(q, ten.shape.back());
        ten = cast_tensor(ten, qt);
        ++n;
        k += qt == q && dtype_info(q).block == 256;
      }
    EXPECT_EQ(n, 12u * 6u + 1u);
    if (dtype_info(q).block == 256) {
      EXPECT_EQ(k, 12u) << dtype_name(q);
    }
    const std::string p = write_temp(*f, "tiny_q.gguf");
    auto a = load_tensors(p), b = load_tensors(p);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->at("blocks.0.att.key.weight").dtype, quant_type_for_row(q, 64));
    EXPECT_EQ(a->at("blocks.0.ffn.value.weight").dtype, q);
    for (auto& [name, ten] : *b) ten = cast_tensor(ten, DType::f32);
    auto ma = load_model(std::move(*a), p), mb = load_model(std::move(*b), p);
    ASSERT_TRUE(ma.ok() && mb.ok());
    const size_t V = 256;
    std::vector<float> la(tokens.size() * V), lb(tokens.size() * V);
    State sa = (*ma)->new_state(), sb = (*mb)->new_state();
    (*ma)->forward_seq(tokens, sa, la.data(), Logits::all);
    (*mb)->forward_seq(tokens, sb, lb.data(), Logits::all);
    EXPECT_LE(test::max_abs_diff(la, lb), 1e-3f) << dtype_name(q);
  }
}

// A file laid out as llama.cpp's Q4_K_M makes it for RWKV-7: every matrix in q4_k, the token
// embedding too (llama.cpp quantizes it; wkv dequantizes the one row each token needs), the
// head in q6_k. Its logits equal those of the same weights dequantized before load.
TEST(GgufMapping, LlamaCppStyleQ4KMWithQuantizedEmbeddingRuns) {
  V7Dims d;
  d.n_layer = 2;
  d.n_embd = 256;
  d.head_size = 64;
  d.vocab_size = 512;
  d.lora_w = d.lora_a = d.lora_v = d.lora_g = 32;
  auto t = random_v7(d, 11, DType::f32);
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto f = rwkv_to_gguf(*t);
  ASSERT_TRUE(f.ok()) << f.error().message;
  size_t k = 0;
  for (auto& [name, ten] : f->tensors) {
    DType q = DType::f32;
    if (name == "token_embd.weight") q = DType::q4_k;
    else if (name == "output.weight") q = DType::q6_k;
    else if (gguf_should_quantize(name, ten, false)) q = DType::q4_k;
    if (q == DType::f32) continue;
    ASSERT_EQ(ten.shape.back() % 256, 0) << name;
    ten = cast_tensor(ten, q);
    ++k;
  }
  EXPECT_EQ(k, 2u * 6u + 2u);  // per layer att r k v o, ffn key value; embedding; head
  const std::string p = write_temp(*f, "v7_q4km.gguf");
  auto a = load_tensors(p), b = load_tensors(p);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->at("emb.weight").dtype, DType::q4_k);
  EXPECT_EQ(a->at("head.weight").dtype, DType::q6_k);
  for (auto& [name, ten] : *b) ten = cast_tensor(ten, DType::f32);
  auto ma = load_model(std::move(*a), p), mb = load_model(std::move(*b), p);
  ASSERT_TRUE(ma.ok()) << ma.error().message;
  ASSERT_TRUE(mb.ok()) << mb.error().message;
  const std::vector<int32_t> tokens{1, 17, 300, 511, 0, 42, 42, 7};
  const size_t V = 512;
  std::vector<float> la(tokens.size() * V), lb(tokens.size() * V);
  State sa = (*ma)->new_state(), sb = (*mb)->new_state();
  (*ma)->forward_seq(tokens, sa, la.data(), Logits::all);
  (*mb)->forward_seq(tokens, sb, lb.data(), Logits::all);
  float mag = 0;
  for (float v : lb) mag = std::max(mag, std::fabs(v));
  EXPECT_LE(test::max_abs_diff(la, lb), 1e-4f * mag + 1e-3f);
}

}  // namespace
}  // namespace wkv
