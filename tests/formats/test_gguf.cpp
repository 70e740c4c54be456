// GGUF container: write -> read round trips of every metadata and tensor type, the exact byte
// layout against a spec-built encoder, hostile files (each rejected with a message naming the
// problem), the llama.cpp RWKV tokenizer escaping, and the rwkv6/rwkv7 name/shape mapping.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/quant.hpp"
#include "formats/formats.hpp"
#include "formats/gguf.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

std::string to_bytes(const GgufFile& f) {
  std::string out;
  ByteSink sink = [&](const void* d, size_t n) {
    out.append(static_cast<const char*>(d), n);
    return true;
  };
  Status s = write_gguf(sink, f);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return out;
}

std::span<const std::byte> span_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

Expected<GgufFile> parse(const std::string& bytes) {
  return parse_gguf_memory("test.gguf", span_of(bytes));
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// --- a GGUF encoder written from the spec, independent of write_gguf --------------------------
struct Raw {
  std::string b;
  template <class T>
  Raw& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Raw& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b += "GGUF";
    return put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  }
  Raw& kv_u32(const std::string& k, uint32_t v) { return str(k).put<uint32_t>(4).put<uint32_t>(v); }
  Raw& info(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Raw& pad(size_t align = 32) {
    while (b.size() % align) b += '\0';
    return *this;
  }
  Raw& data(size_t n, char fill = 1) {
    b.append(n, fill);
    return *this;
  }
};

// Two f32 tensors: a [2, 8] at offset 0 and b [8] at offset 64.
Raw valid_raw() {
  Raw r;
  r.header(2, 1).kv_u32("general.alignment", 32);
  r.info("a", {8, 2}, 0, 0).info("b", {8}, 0, 64).pad();
  r.data(64).data(32);
  return r;
}

void expect_error(const std::string& bytes, const std::string& needle) {
  auto r = parse(bytes);
  ASSERT_FALSE(r.ok()) << "accepted a file that should fail with: " << needle;
  EXPECT_NE(r.error().message.find("test.gguf"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST(Gguf, SpecBuiltFileParses) {
  auto r = parse(valid_raw().b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 2u);
  EXPECT_EQ(r->tensors[0].first, "a");
  EXPECT_EQ(r->tensors[0].second.shape, (std::vector<int64_t>{2, 8}));  // ne reversed
  EXPECT_EQ(r->tensors[1].second.shape, (std::vector<int64_t>{8}));
  EXPECT_EQ(r->alignment, 32u);
}

TEST(Gguf, WriterMatchesSpecLayoutByteForByte) {
  GgufFile f;
  f.set("general.alignment", GgufValue::of_u32(32));
  std::vector<float> a(16, 0.0f), b(8, 0.0f);
  std::memset(a.data(), 1, a.size() * 4);
  std::memset(b.data(), 1, b.size() * 4);
  f.tensors.emplace_back("a", Tensor::from_f32({2, 8}, a));
  f.tensors.emplace_back("b", Tensor::from_f32({8}, b));
  EXPECT_EQ(to_bytes(f), valid_raw().b);
  // ggml's writer pads after the last tensor too.
  GgufFile one;
  one.tensors.emplace_back("x", Tensor::from_f32({3}, {1, 2, 3}));
  EXPECT_EQ(to_bytes(one).size() % 32, 0u);
}

TEST(Gguf, RoundTripEveryMetadataType) {
  GgufFile f;
  f.alignment = 64;
  const GgufType scalars[] = {GgufType::u8,  GgufType::i8,  GgufType::u16, GgufType::i16,
                              GgufType::u32, GgufType::i32, GgufType::f32, GgufType::boolean,
                              GgufType::u64, GgufType::i64, GgufType::f64};
  for (GgufType t : scalars) {
    const double v = t == GgufType::boolean ? 1 : (t == GgufType::f32 || t == GgufType::f64) ? -2.5 : 100;
    f.set("s." + std::string(gguf_type_name(t)), GgufValue::scalar(t, v));
  }
  f.set("s.negative_i64", GgufValue::scalar(GgufType::i64, -9007199254740991.0));
  f.set("s.big_u64", [] { GgufValue v = GgufValue::scalar(GgufType::u64, 0); v.u = ~0ull; return v; }());
  f.set("s.string", GgufValue::of_str("h\xc3\xa9llo \n world"));
  f.set("s.empty_string", GgufValue::of_str(""));
  for (GgufType t : scalars) {
    std::vector<uint8_t> raw;
    const size_t size = t == GgufType::boolean || t == GgufType::u8 || t == GgufType::i8 ? 1
                        : t == GgufType::u16 || t == GgufType::i16                     ? 2
                        : t == GgufType::u64 || t == GgufType::i64 || t == GgufType::f64 ? 8 : 4;
    for (size_t i = 0; i < 3 * size; ++i) raw.push_back(t == GgufType::boolean ? i % 2 : static_cast<uint8_t>(i * 7 + 1));
    f.set("a." + std::string(gguf_type_name(t)), GgufValue::raw_array(t, 3, raw));
  }
  f.set("a.string", GgufValue::str_array({"x", "", "\\xe4"}));
  f.set("a.empty", GgufValue::raw_array(GgufType::u32, 0, {}));
  const std::string bytes = to_bytes(f);
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->alignment, 64u);
  ASSERT_EQ(r->metadata.size(), f.metadata.size() + 1);  // + general.alignment
  for (size_t i = 0; i < f.metadata.size(); ++i) {
    EXPECT_EQ(r->metadata[i].first, f.metadata[i].first);
    EXPECT_TRUE(r->metadata[i].second == f.metadata[i].second) << f.metadata[i].first;
  }
  EXPECT_EQ(r->metadata.back().first, "general.alignment");
  // Written again, the bytes are identical.
  EXPECT_EQ(to_bytes(*r), bytes);
}

TEST(Gguf, RoundTripEveryTensorTypeAndRank) {
  GgufFile f;
  const DType types[] = {DType::f32,  DType::f16,  DType::bf16, DType::q8_0, DType::q4_0,
                         DType::q4_1, DType::q5_0, DType::q5_1, DType::q2_k, DType::q3_k,
                         DType::q4_k, DType::q5_k, DType::q6_k};
  uint32_t seed = 1;
  for (DType t : types) {
    const int64_t cols = dtype_info(t).block == 256 ? 256 : 64;
    Tensor src = Tensor::from_f32({3, cols}, random_floats(static_cast<size_t>(3 * cols), seed++));
    f.tensors.emplace_back("t." + std::string(dtype_name(t)), cast_tensor(src, t));
  }
  f.tensors.emplace_back("r1", Tensor::from_f32({5}, random_floats(5, 9)));
  f.tensors.emplace_back("r3", Tensor::from_f32({2, 3, 4}, random_floats(24, 10)));
  f.tensors.emplace_back("r4", Tensor::from_f32({6, 1, 1, 7}, random_floats(42, 11)));
  f.tensors.emplace_back("empty", Tensor::from_f32({0, 4}, {}));
  // A transposed (strided) view is written in logical order.
  Tensor tr = Tensor::from_f32({2, 3}, {1, 2, 3, 4, 5, 6});
  std::swap(tr.shape[0], tr.shape[1]);
  std::swap(tr.strides[0], tr.strides[1]);
  f.tensors.emplace_back("transposed", tr);
  const std::string bytes = to_bytes(f);
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), f.tensors.size());
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const auto& [name, want] = f.tensors[i];
    const Tensor& got = r->tensors[i].second;
    EXPECT_EQ(r->tensors[i].first, name);
    EXPECT_EQ(got.dtype, want.dtype) << name;
    EXPECT_EQ(got.shape, want.shape) << name;
    EXPECT_EQ(contiguous_bytes(got), contiguous_bytes(want)) << name;
    // In place: the data lies inside the file's bytes, aligned.
    EXPECT_GE(got.data, reinterpret_cast<const std::byte*>(bytes.data()));
    EXPECT_EQ((got.data - reinterpret_cast<const std::byte*>(bytes.data())) % 32, 0) << name;
  }
  EXPECT_EQ(to_f32(r->tensors.back().second), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  // Quantized data dequantizes close to the source.
  const auto q8 = to_f32(r->tensors[3].second);
  const auto src = random_floats(192, 4);
  EXPECT_LT(test::max_abs_diff(q8, src), 0.05f);
}

TEST(Gguf, GgmlTypeIds) {
  EXPECT_EQ(ggml_type_of(DType::f32), 0u);
  EXPECT_EQ(ggml_type_of(DType::f16), 1u);
  EXPECT_EQ(ggml_type_of(DType::q4_0), 2u);
  EXPECT_EQ(ggml_type_of(DType::q4_1), 3u);
  EXPECT_EQ(ggml_type_of(DType::q5_0), 6u);
  EXPECT_EQ(ggml_type_of(DType::q5_1), 7u);
  EXPECT_EQ(ggml_type_of(DType::q8_0), 8u);
  EXPECT_EQ(ggml_type_of(DType::q2_k), 10u);
  EXPECT_EQ(ggml_type_of(DType::q3_k), 11u);
  EXPECT_EQ(ggml_type_of(DType::q4_k), 12u);
  EXPECT_EQ(ggml_type_of(DType::q5_k), 13u);
  EXPECT_EQ(ggml_type_of(DType::q6_k), 14u);
  EXPECT_EQ(ggml_type_of(DType::bf16), 30u);
  EXPECT_FALSE(ggml_type_of(DType::i64).has_value());
}

TEST(GgufHostile, EveryTruncationIsRejected) {
  const std::string good = valid_raw().b;
  ASSERT_TRUE(parse(good).ok());
  for (size_t n = 0; n < good.size(); ++n) {
    auto r = parse(good.substr(0, n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find("test.gguf"), std::string::npos);
      EXPECT_NE(r.error().message.find("at byte"), std::string::npos) << r.error().message;
    }
  }
}

TEST(GgufHostile, BadMagicAndVersion) {
  std::string b = valid_raw().b;
  b[0] = 'X';
  expect_error(b, "no GGUF magic");
  Raw v1;
  v1.header(0, 0, 1);
  expect_error(v1.b, "unsupported GGUF version 1");
  Raw v4;
  v4.header(0, 0, 4);
  expect_error(v4.b, "unsupported GGUF version 4");
}

TEST(GgufHostile, AbsurdCountsAreRejectedBeforeAllocating) {
  Raw t;
  t.header(1ull << 60, 0);
  expect_error(t.b, "tensor count 1152921504606846976 is impossible");
  Raw k;
  k.header(0, ~0ull >> 1);
  expect_error(k.b, "metadata count");
  Raw s;
  s.header(0, 1).put<uint64_t>(1ull << 62).data(64);
  expect_error(s.b, "string length 4611686018427387904 runs past the end");
  Raw a;  // an array of 2^40 u32 elements in a tiny file
  a.header(0, 1).str("big").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 40).data(64);
  expect_error(a.b, "array of 1099511627776 u32 elements runs past the end");
  Raw sa;  // strings: each at least 8 bytes
  sa.header(0, 1).str("big").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(1000).data(100);
  expect_error(sa.b, "array of 1000 string elements runs past the end");
}

TEST(GgufHostile, MetadataTypeErrors) {
  Raw unknown;
  unknown.header(0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0);
  expect_error(unknown.b, "key 'k': unknown value type 13");
  Raw nested;
  nested.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1);
  expect_error(nested.b, "arrays of arrays");
  Raw boolean;
  boolean.header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2);
  expect_error(boolean.b, "bool value 2");
  Raw dup;
  dup.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
  expect_error(dup.b, "duplicate metadata key 'k'");
  Raw empty;
  empty.header(0, 1).kv_u32("", 1);
  expect_error(empty.b, "is empty");
  Raw align_type;
  align_type.header(0, 1).str("general.alignment").put<uint32_t>(10).put<uint64_t>(32);
  expect_error(align_type.b, "general.alignment has type u64, expected u32");
  Raw align_pow;
  align_pow.header(0, 1).kv_u32("general.alignment", 48);
  expect_error(align_pow.b, "general.alignment 48 is not a power of two");
  Raw align_zero;
  align_zero.header(0, 1).kv_u32("general.alignment", 0);
  expect_error(align_zero.b, "general.alignment 0 is not a power of two");
}

TEST(GgufHostile, TensorInfoErrors) {
  auto one = [](const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t off) {
    Raw r;
    r.header(1, 0).info(name, std::move(ne), type, off).pad().data(64);
    return r.b;
  };
  expect_error(one("t", {8}, 99, 0), "tensor 't': unknown ggml type 99");
  expect_error(one("t", {256}, 16, 0), "ggml type IQ2_XXS (16) is not supported");
  expect_error(one("t", {256}, 15, 0), "ggml type Q8_K (15) is not supported");
  expect_error(one("t", {128}, 12, 0), "not a multiple of the Q4_K block (256)");
  expect_error(one("t", {256, 2}, 14, 0), "exceeds the file");  // 2 x 210 bytes > 64
  expect_error(one("t", {8, 1, 1, 1, 1}, 0, 0), "n_dims 5 is outside 1..4");
  expect_error(one("t", {}, 0, 0), "n_dims 0");
  expect_error(one("t", {(1ull << 42) + 1, 1ull << 42}, 0, 0), "exceeds the file");
  expect_error(one("t", {~0ull}, 0, 0), "is negative");
  expect_error(one("t", {1ull << 62, 1}, 0, 0), "exceeds the file");          // bytes wrap to 0
  expect_error(one("t", {32, 0, 1ull << 40, 1ull << 40}, 0, 0), "exceeds the file");  // 0 bytes
  expect_error(one("t", {33}, 8, 0), "not a multiple of the Q8_0 block (32)");
  expect_error(one("t", {8}, 0, 16), "data offset 16 is not a multiple of the alignment 32");
  expect_error(one("t", {32}, 0, 0), "runs past the end of the data section");
  expect_error(one("t", {8}, 0, 1ull << 63), "runs past the end of the data section");
  expect_error(one(std::string(64, 'n'), {8}, 0, 0), "at most 63");
  expect_error(one("", {8}, 0, 0), "empty tensor name");

  Raw dup;
  dup.header(2, 0).info("t", {8}, 0, 0).info("t", {8}, 0, 32).pad().data(64);
  expect_error(dup.b, "tensor 't': duplicate tensor name");
  Raw overlap;
  overlap.header(2, 0).info("a", {16}, 0, 0).info("b", {8}, 0, 32).pad().data(64);
  expect_error(overlap.b, "tensors 'a' and 'b' overlap");
}

TEST(GgufHostile, MisalignedByFileAlignmentIsCopiedNotMisread) {
  // alignment 1 lets a tensor start at an odd address: it is copied (aligned), values intact.
  Raw r;
  r.header(1, 1).kv_u32("general.alignment", 1).info("t", {2}, 0, 1);
  std::string b = r.b + "Z";
  const float v[2] = {1.5f, -2.0f};
  b.append(reinterpret_cast<const char*>(v), 8);
  auto f = parse(b);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f->tensors[0].second.data) % 4, 0u);
  EXPECT_EQ(to_f32(f->tensors[0].second), (std::vector<float>{1.5f, -2.0f}));
}

TEST(GgufHostile, WriterRejectsWhatGgmlCannotRead) {
  GgufFile f;
  f.tensors.emplace_back(std::string(64, 'x'), Tensor::from_f32({1}, {1}));
  ByteSink sink = [](const void*, size_t) { return true; };
  EXPECT_FALSE(write_gguf(sink, f).ok());
  GgufFile g;
  g.tensors.emplace_back("a", Tensor::from_f32({1, 1, 1, 1, 1}, {1}));
  EXPECT_FALSE(write_gguf(sink, g).ok());
  GgufFile h;
  h.tensors.emplace_back("a", Tensor::from_f32({1}, {1}));
  h.tensors.emplace_back("a", Tensor::from_f32({1}, {1}));
  EXPECT_FALSE(write_gguf(sink, h).ok());
}

TEST(GgufVocabEscape, PythonBytesRepr) {
  EXPECT_EQ(rwkv_escape_token("\n"), "\\n");
  EXPECT_EQ(rwkv_escape_token("\n\n"), "\\n\\n");
  EXPECT_EQ(rwkv_escape_token("\xe4\xbd\xa0"), "\\xe4\\xbd\\xa0");
  EXPECT_EQ(rwkv_escape_token("a\\b"), "a\\\\b");
  EXPECT_EQ(rwkv_escape_token("'"), "'");          // repr uses "..." then
  EXPECT_EQ(rwkv_escape_token("'\""), "\\'\"");    // both quotes: '...' with \'
  EXPECT_EQ(rwkv_escape_token(std::string("\0\x7f\t\r", 4)), "\\x00\\x7f\\t\\r");
  for (int c = 0; c < 256; ++c) {
    const std::string b(1, static_cast<char>(c));
    EXPECT_EQ(rwkv_unescape_token(rwkv_escape_token(b)), b) << c;
  }
  EXPECT_EQ(rwkv_unescape_token("\\x4A\\q\\"), "Jq\\");  // lenient on odd escapes, never crashes
  EXPECT_EQ(rwkv_unescape_token("\\x4"), "x4");
}

TEST(GgufVocab, ReadsEmbeddedVocabularyAndRejectsBadOnes) {
  GgufFile f;
  EXPECT_FALSE(gguf_vocab(f, "x").value().has_value());
  f.set("tokenizer.ggml.model", GgufValue::of_str("rwkv"));
  f.set("tokenizer.ggml.tokens", GgufValue::str_array({"<s>", "a", "\\n\\xe4"}));
  f.set("tokenizer.ggml.token_type", GgufValue::i32_array({3, 1, 1}));
  auto v = gguf_vocab(f, "x");
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((*v)->tokens, (std::vector<std::string>{"<s>", "a", "\n\xe4"}));
  EXPECT_EQ((*v)->types, (std::vector<int32_t>{3, 1, 1}));
  f.set("tokenizer.ggml.token_type", GgufValue::raw_array(GgufType::u8, 3, {1, 1, 1}));
  EXPECT_FALSE(gguf_vocab(f, "x").ok());  // element type must be i32
  f.set("tokenizer.ggml.token_type", GgufValue::i32_array({3, 1}));
  EXPECT_FALSE(gguf_vocab(f, "x").ok());  // too short
  f.set("tokenizer.ggml.token_type", GgufValue::i32_array({3, 1, 1}));
  f.set("tokenizer.ggml.tokens", GgufValue::str_array({"a", "a"}));
  EXPECT_FALSE(gguf_vocab(f, "x").ok());  // duplicates
}

TEST(GgufQuantRule, OnlyLargeLinearLayers) {
  const Tensor m = Tensor::from_f32({64, 64}, std::vector<float>(64 * 64));
  const Tensor odd = Tensor::from_f32({64, 48}, std::vector<float>(64 * 48));
  const Tensor v = Tensor::from_f32({64}, std::vector<float>(64));
  EXPECT_TRUE(gguf_should_quantize("blk.3.time_mix_key.weight", m, false));
  EXPECT_TRUE(gguf_should_quantize("blk.3.channel_mix_value.weight", m, false));
  EXPECT_TRUE(gguf_should_quantize("blocks.0.ffn.key.weight", m, false));
  EXPECT_FALSE(gguf_should_quantize("blk.3.time_mix_key.weight", odd, false));
  EXPECT_FALSE(gguf_should_quantize("blk.3.time_mix_w1.weight", m, false));
  EXPECT_FALSE(gguf_should_quantize("blk.3.time_mix_lerp_fused.weight", m, false));
  EXPECT_FALSE(gguf_should_quantize("token_embd.weight", m, true));
  EXPECT_FALSE(gguf_should_quantize("blk.3.attn_norm.weight", v, false));
  EXPECT_FALSE(gguf_should_quantize("output.weight", m, false));
  EXPECT_TRUE(gguf_should_quantize("output.weight", m, true));
  EXPECT_TRUE(gguf_should_quantize("head.weight", m, true));
}

TEST(GgufCast, F16Bf16AndQuantized) {
  const auto src = random_floats(64, 7);
  const Tensor t = Tensor::from_f32({2, 32}, src);
  EXPECT_LT(test::max_abs_diff(to_f32(cast_tensor(t, DType::f16)), src), 3e-3f);
  EXPECT_LT(test::max_abs_diff(to_f32(cast_tensor(t, DType::bf16)), src), 2e-2f);
  const Tensor q = cast_tensor(t, DType::q4_0);
  EXPECT_EQ(q.nbytes(), 2u * 18u);
  EXPECT_LT(test::max_abs_diff(to_f32(q), src), 0.6f);
}

}  // namespace
}  // namespace wkv
