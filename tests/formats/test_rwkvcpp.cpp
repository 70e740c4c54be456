// rwkv.cpp model files (.bin): the test files in ../shared/testdata/rwkvcpp load into exactly the
// official checkpoints (names, shapes, parameterisation), FP16 / Q5 files come close to FP32,
// every block type dequantizes exactly, canonicalisation rules on crafted files, and hostile
// files that must end in clean errors naming the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/formats.hpp"
#include "formats/rwkvcpp_builder.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

using test::BinHeader;
using test::BinRecord;

constexpr const char* kName = "crafted.bin";

struct Model {
  const char* tag;  // tiny-rwkv-<tag>-<TYPE>.bin
  const char* dir;  // models/<dir>/model.pth
};
const Model kFp32Models[] = {{"4v0-660K", "rwkvcpp_tiny_4v0_660K"},
                             {"5v1-730K", "rwkvcpp_tiny_5v1_730K"},
                             {"5v2-730K", "rwkvcpp_tiny_5v2_730K"},
                             {"7v0-834K", "rwkvcpp_tiny_7v0_834K"}};

std::string bin_path(const std::string& tag, const std::string& type) {
  return test::testdata("rwkvcpp/tiny-rwkv-" + tag + "-" + type + ".bin");
}

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string s((std::istreambuf_iterator<char>(in)), {});
  return std::vector<std::byte>(reinterpret_cast<const std::byte*>(s.data()),
                                reinterpret_cast<const std::byte*>(s.data()) + s.size());
}

// An exactly sized heap copy (so that ASan sees any read past the end).
std::vector<std::byte> heap(const std::string& s, size_t n = std::string::npos) {
  n = std::min(n, s.size());
  return std::vector<std::byte>(reinterpret_cast<const std::byte*>(s.data()),
                                reinterpret_cast<const std::byte*>(s.data()) + n);
}

// The bytes are handed over as the tensors' owner: records used in place (FP32, quantized
// blocks) point into them.
Expected<TensorMap> load(const std::string& file) {
  auto b = std::make_shared<const std::vector<std::byte>>(heap(file));
  return load_rwkvcpp_from_memory(kName, *b, b);
}

std::string error_of(const std::string& file) {
  auto r = load(file);
  if (r.ok()) return "(loaded)";
  EXPECT_NE(r.error().message.find(kName), std::string::npos) << r.error().message;
  return r.error().message;
}

#define EXPECT_LOAD_ERROR(file, text)                                 \
  do {                                                                \
    const std::string m_ = error_of(file);                            \
    EXPECT_NE(m_.find(text), std::string::npos) << "message: " << m_; \
  } while (0)

std::vector<std::string> keys(const TensorMap& m) {
  std::vector<std::string> k;
  for (const auto& e : m) k.push_back(e.first);
  return k;
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

// ---- the shared test files --------------------------------------------------------------------

TEST(RwkvCpp, Fp32FilesEqualTheOfficialCheckpoints) {
  for (const Model& m : kFp32Models) {
    SCOPED_TRACE(m.tag);
    auto bin = load_rwkvcpp(bin_path(m.tag, "FP32"));
    ASSERT_TRUE(bin.ok()) << bin.error().message;
    auto pth = load_pth(test::testdata(std::string("models/") + m.dir + "/model.pth"));
    ASSERT_TRUE(pth.ok()) << pth.error().message;
    ASSERT_EQ(keys(*bin), keys(*pth));
    size_t identical = 0;
    for (const auto& [name, want] : *pth) {
      const Tensor& got = bin->at(name);
      EXPECT_EQ(got.shape, want.shape) << name;
      EXPECT_EQ(got.dtype, DType::f32) << name;
      EXPECT_TRUE(got.is_contiguous()) << name;
      const auto a = to_f32(got), b = to_f32(want);
      ASSERT_EQ(a.size(), b.size()) << name;
      float worst = 0;
      for (size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::fabs(a[i] - b[i]) / std::max(std::fabs(b[i]), 1e-30f));
      EXPECT_LE(worst, 1e-6f) << name;
      identical += a == b;
    }
    // Only v5 time_decay (log(-log(x))) may differ, by an ulp or so.
    EXPECT_GE(identical + 2 * 12, pth->size());
  }
}

// Names and shapes as `ref`; values within `tol(ref values)` element by element.
template <class Tol>
void expect_close(const TensorMap& got, const TensorMap& ref, Tol tol) {
  ASSERT_EQ(keys(got), keys(ref));
  for (const auto& [name, want] : ref) {
    const Tensor& t = got.at(name);
    EXPECT_EQ(t.shape, want.shape) << name;
    const auto a = to_f32(t), b = to_f32(want);
    ASSERT_EQ(a.size(), b.size()) << name;
    const float amax = max_abs(b);
    float worst = 0, allowed = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const float d = std::fabs(a[i] - b[i]), lim = tol(b[i], amax);
      if (d - lim > worst - allowed) worst = d, allowed = lim;
    }
    EXPECT_LE(worst, allowed) << name;
  }
}

TEST(RwkvCpp, Fp16AndQuantizedFilesAreCloseToFp32) {
  for (const Model& m : kFp32Models) {
    SCOPED_TRACE(m.tag);
    auto ref = load_rwkvcpp(bin_path(m.tag, "FP32"));
    ASSERT_TRUE(ref.ok()) << ref.error().message;
    auto f16 = load_rwkvcpp(bin_path(m.tag, "FP16"));
    ASSERT_TRUE(f16.ok()) << f16.error().message;
    // fp16 rounding: half an ulp (2^-11 relative), subnormals 2^-25 absolute.
    expect_close(*f16, *ref, [](float x, float) { return std::fabs(x) * 0x1p-11f + 0x1p-25f; });
    size_t kept_f16 = 0;
    for (const auto& [name, t] : *f16) kept_f16 += t.dtype == DType::f16;
    EXPECT_GT(kept_f16, 0u);
    for (const char* q : {"Q5_0", "Q5_1"}) {
      SCOPED_TRACE(q);
      auto r = load_rwkvcpp(bin_path(m.tag, q));
      ASSERT_TRUE(r.ok()) << r.error().message;
      // 5-bit quantization of 32-value blocks: error at most 1/16 of the largest magnitude
      // (Q5_0 clamps q = 32 to 31), plus the fp16 rounding of the block scale d (and offset m)
      // times |q| <= 31: relative 2^-11, or absolute 2^-25 for the 4v0 weights (~1e-7, below
      // fp16's normal range).
      expect_close(*r, *ref,
                   [](float, float amax) { return amax * (1.0f / 16 + 1.0f / 1024) + 0x1p-19f; });
      // Quantized matrices stay quantized (in place); transformed tensors become f32.
      const DType qt = std::string(q) == "Q5_0" ? DType::q5_0 : DType::q5_1;
      size_t kept = 0;
      for (const auto& [name, t] : *r) {
        EXPECT_TRUE(t.dtype == DType::f32 || t.dtype == qt) << name;
        kept += t.dtype == qt;
      }
      EXPECT_GT(kept, 0u);
    }
  }
}

TEST(RwkvCpp, V6QuantizedFilesHaveTheOfficialNamesAndShapes) {
  std::ifstream mf(test::testdata("models/rwkvcpp_tiny_6v0_3m/manifest.json"));
  const auto manifest = nlohmann::json::parse(mf);
  auto q1 = load_rwkvcpp(bin_path("6v0-3m", "Q5_1"));
  ASSERT_TRUE(q1.ok()) << q1.error().message;
  const auto& params = manifest.at("parameters");
  EXPECT_EQ(q1->size(), params.size());
  for (const auto& [name, shape] : params.items()) {
    auto it = q1->find(name);
    ASSERT_NE(it, q1->end()) << name;
    EXPECT_EQ(it->second.shape, shape.get<std::vector<int64_t>>()) << name;
  }
  auto q0 = load_rwkvcpp(bin_path("6v0-3m", "Q5_0"));
  ASSERT_TRUE(q0.ok()) << q0.error().message;
  expect_close(*q0, *q1, [](float, float amax) { return amax / 8 + 0x1p-18f; });
}

TEST(RwkvCpp, LoadTensorsRecognisesTheMagic) {
  const std::string path = bin_path("7v0-834K", "Q5_0");
  auto a = load_tensors(path);
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = load_rwkvcpp(path);
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_EQ(keys(*a), keys(*b));
  for (const auto& [name, t] : *a) EXPECT_EQ(to_f32(t), to_f32(b->at(name))) << name;
}

TEST(RwkvCpp, AlignedFp32RecordsAreUsedInPlace) {
  const auto bytes = read_bytes(bin_path("4v0-660K", "FP32"));
  auto r = load_rwkvcpp_from_memory("mem.bin", bytes);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::byte* lo = bytes.data();
  const std::byte* hi = lo + bytes.size();
  size_t in_place = 0;
  for (const auto& [name, t] : *r) {
    if (t.data >= lo && t.data < hi) {
      ++in_place;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 4, 0u) << name;
      EXPECT_EQ(t.owner, nullptr) << name;  // no owner was given: the caller keeps the bytes
    } else {
      EXPECT_NE(t.owner, nullptr) << name;
    }
  }
  EXPECT_GT(in_place, 10u);
}

// ---- dequantization, one block type at a time (hand-made blocks, exact values) ----------------

std::string u16(uint16_t v) {
  return std::string{static_cast<char>(v & 0xff), static_cast<char>(v >> 8)};
}

// Loads a single [rows, 32 * blocks_per_row] record of `type` holding `data`.
std::vector<float> dequantized(int32_t type, std::vector<int32_t> shape, const std::string& data) {
  auto r = load(test::bin_file({{"q", type, std::move(shape), data}}));
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) return {};
  const Tensor& t = r->at("q");
  EXPECT_TRUE(dtype_is_quantized(t.dtype));  // handed out as blocks; to_f32 dequantizes
  return to_f32(t);
}

TEST(RwkvCppDequant, Q4_0) {
  // d = 0.5 (fp16 0x3800); qs[j] = j | (15 - j) << 4.
  std::string b = u16(0x3800);
  for (int j = 0; j < 16; ++j) b += static_cast<char>(j | (15 - j) << 4);
  // second block: d = -2 (0xc000), all nibbles 0 -> (0 - 8) * -2 = 16.
  b += u16(0xc000) + std::string(16, '\0');
  const auto v = dequantized(2, {2, 32}, b);
  ASSERT_EQ(v.size(), 64u);
  EXPECT_EQ(v[0], -4.0f);
  EXPECT_EQ(v[15], 3.5f);
  EXPECT_EQ(v[16], 3.5f);
  EXPECT_EQ(v[31], -4.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], (j - 8) * 0.5f) << j;
    EXPECT_EQ(v[j + 16], (7 - j) * 0.5f) << j;
  }
  for (int j = 32; j < 64; ++j) EXPECT_EQ(v[j], 16.0f) << j;
}

TEST(RwkvCppDequant, Q4_1) {
  // d = 0.25 (0x3400), m = -1 (0xbc00); qs[j] = j | (15 - j) << 4.
  std::string b = u16(0x3400) + u16(0xbc00);
  for (int j = 0; j < 16; ++j) b += static_cast<char>(j | (15 - j) << 4);
  const auto v = dequantized(3, {1, 32}, b);
  ASSERT_EQ(v.size(), 32u);
  EXPECT_EQ(v[0], -1.0f);
  EXPECT_EQ(v[15], 2.75f);
  EXPECT_EQ(v[16], 2.75f);
  EXPECT_EQ(v[31], -1.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], j * 0.25f - 1) << j;
    EXPECT_EQ(v[j + 16], (15 - j) * 0.25f - 1) << j;
  }
}

TEST(RwkvCppDequant, Q5_0) {
  // d = 1 (0x3c00); qh = 0xaaaa5555: bit j set for even j < 16, for odd j + 16.
  std::string b = u16(0x3c00) + std::string("\x55\x55\xaa\xaa", 4);
  for (int j = 0; j < 16; ++j) b += static_cast<char>(j | (15 - j) << 4);
  const auto v = dequantized(7, {32}, b);
  ASSERT_EQ(v.size(), 32u);
  EXPECT_EQ(v[0], 0.0f);    // (0 | 16) - 16
  EXPECT_EQ(v[1], -15.0f);  // 1 - 16
  EXPECT_EQ(v[16], -1.0f);  // 15 - 16 (bit 16 clear)
  EXPECT_EQ(v[17], 14.0f);  // (14 | 16) - 16
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], static_cast<float>((j | (j % 2 == 0 ? 16 : 0)) - 16)) << j;
    EXPECT_EQ(v[j + 16], static_cast<float>(((15 - j) | (j % 2 == 1 ? 16 : 0)) - 16)) << j;
  }
}

TEST(RwkvCppDequant, Q5_1) {
  // d = 0.5 (0x3800), m = 2 (0x4000); qh = 0xffff0000: bit 4 set for the high half only.
  std::string b = u16(0x3800) + u16(0x4000) + std::string("\x00\x00\xff\xff", 4);
  for (int j = 0; j < 16; ++j) b += static_cast<char>(j | (15 - j) << 4);
  const auto v = dequantized(8, {1, 32}, b);
  ASSERT_EQ(v.size(), 32u);
  EXPECT_EQ(v[0], 2.0f);
  EXPECT_EQ(v[16], 17.5f);  // (15 | 16) * 0.5 + 2
  EXPECT_EQ(v[31], 10.0f);  // (0 | 16) * 0.5 + 2
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], j * 0.5f + 2) << j;
    EXPECT_EQ(v[j + 16], ((15 - j) + 16) * 0.5f + 2) << j;
  }
}

TEST(RwkvCppDequant, Q8_0) {
  // d = 0.125 (0x3000), qs[j] = 8 j - 128; then d = 2^-24 (fp16 subnormal 0x0001), qs = j - 16.
  std::string b = u16(0x3000);
  for (int j = 0; j < 32; ++j) b += static_cast<char>(static_cast<int8_t>(8 * j - 128));
  b += u16(0x0001);
  for (int j = 0; j < 32; ++j) b += static_cast<char>(static_cast<int8_t>(j - 16));
  const auto v = dequantized(9, {64}, b);
  ASSERT_EQ(v.size(), 64u);
  EXPECT_EQ(v[0], -16.0f);
  EXPECT_EQ(v[31], 15.0f);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(v[j], static_cast<float>(j - 16)) << j;
    EXPECT_EQ(v[32 + j], std::ldexp(static_cast<float>(j - 16), -24)) << j;
  }
}

TEST(RwkvCppDequant, Fp16RecordsStayF16) {
  auto r =
      load(test::bin_file({{"h", 1, {2, 2}, test::f16_data({0x3c00, 0xc000, 0x0001, 0x7bff})}}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Tensor& t = r->at("h");
  EXPECT_EQ(t.dtype, DType::f16);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(to_f32(t), (std::vector<float>{1.0f, -2.0f, 0x1p-24f, 65504.0f}));
}

// ---- canonicalisation on crafted files ---------------------------------------------------------

// rwkv.cpp key -> shape and values (row-major) after loading `records`.
TensorMap load_ok(const std::vector<BinRecord>& records, const BinHeader& h = {}) {
  auto r = load(test::bin_file(records, h));
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(*r) : TensorMap{};
}

TEST(RwkvCppCanonical, MisalignedRecordsAreCopied) {
  // Header 24 + record head 12 + 4 + key: key "a" leaves the data 1 byte past alignment.
  std::vector<BinRecord> recs{test::f32_record("a", {3}), test::f32_record("bbb", {2})};
  const std::string f = test::bin_file(recs);
  const auto b = heap(f);
  auto r = load_rwkvcpp_from_memory(kName, b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(to_f32(r->at("a")), (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(to_f32(r->at("bbb")), (std::vector<float>{0, 1}));
  // "bbb" starts at 24 + 12 + 4 + 1 + 12 + 12 + 4 + 3 = 72: aligned, so in place.
  EXPECT_EQ(r->at("bbb").data, b.data() + 72);
  EXPECT_NE(r->at("a").owner, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r->at("a").data) % 4, 0u);
}

TEST(RwkvCppCanonical, V4) {
  const std::vector<float> td = {-1.5f, 0.0f, 0.25f, 2.0f};
  std::vector<float> stored;
  for (float x : td) stored.push_back(-std::exp(x));
  auto m = load_ok({{"blocks.0.att.time_decay", 0, {4}, test::f32_data(stored)},
                    test::f32_record("blocks.0.att.time_first", {4}),
                    test::f32_record("blocks.0.att.time_mix_k", {4}),
                    test::f32_record("blocks.0.ffn.time_mix_r", {4}),
                    test::f32_record("blocks.0.att.key.weight", {4, 4})});
  ASSERT_EQ(m.size(), 5u);
  const auto got = to_f32(m.at("blocks.0.att.time_decay"));
  EXPECT_EQ(m.at("blocks.0.att.time_decay").shape, (std::vector<int64_t>{4}));
  for (size_t i = 0; i < td.size(); ++i) EXPECT_NEAR(got[i], td[i], 1e-6) << i;
  EXPECT_EQ(m.at("blocks.0.att.time_first").shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(m.at("blocks.0.att.time_mix_k").shape, (std::vector<int64_t>{1, 1, 4}));
  EXPECT_EQ(m.at("blocks.0.ffn.time_mix_r").shape, (std::vector<int64_t>{1, 1, 4}));
  EXPECT_EQ(m.at("blocks.0.att.key.weight").shape, (std::vector<int64_t>{4, 4}));
  // -0 and tiny magnitudes mean a decay of -inf (exp underflowed in the converter).
  auto z = load_ok({{"blocks.0.att.time_decay", 0, {2}, test::f32_data({-0.0f, 0.0f})}});
  EXPECT_EQ(to_f32(z.at("blocks.0.att.time_decay")), (std::vector<float>{-INFINITY, -INFINITY}));
}

TEST(RwkvCppCanonical, V5) {
  const std::vector<float> td = {-2.0f, -0.5f, 0.0f, 1.0f};
  std::vector<float> w, u;
  for (float x : td) w.push_back(std::exp(-std::exp(x)));
  for (float x : td) u.push_back(std::exp(x));
  // v5.0: [H,1,1] decay and first; v5.1 as rwkv.cpp writes it: [H,1]; v5.2: [H,N,1].
  auto m = load_ok({{"blocks.0.att.time_decay", 0, {4, 1, 1}, test::f32_data(w)},
                    {"blocks.0.att.time_first", 0, {4, 1, 1}, test::f32_data(u)},
                    {"blocks.1.att.time_decay", 0, {4, 1}, test::f32_data(w)},
                    test::f32_record("blocks.1.att.time_faaaa", {4, 1}),
                    {"blocks.2.att.time_decay", 0, {2, 2, 1}, test::f32_data(w)},
                    test::f32_record("blocks.2.att.time_faaaa", {2, 2, 1}),
                    test::f32_record("blocks.0.att.time_mix_g", {4}),
                    test::f32_record("blocks.0.att.ln_x.weight", {4})});
  EXPECT_EQ(m.at("blocks.0.att.time_decay").shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(m.at("blocks.0.att.time_first").shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(m.at("blocks.1.att.time_decay").shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(m.at("blocks.1.att.time_faaaa").shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(m.at("blocks.2.att.time_decay").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(m.at("blocks.2.att.time_faaaa").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(m.at("blocks.0.att.time_mix_g").shape, (std::vector<int64_t>{1, 1, 4}));
  for (const char* k :
       {"blocks.0.att.time_decay", "blocks.0.att.time_first", "blocks.2.att.time_decay"}) {
    const auto got = to_f32(m.at(k));
    for (size_t i = 0; i < td.size(); ++i) EXPECT_NEAR(got[i], td[i], 1e-6) << k << " " << i;
  }
  EXPECT_EQ(to_f32(m.at("blocks.2.att.time_faaaa")), (std::vector<float>{0, 1, 2, 3}));
}

TEST(RwkvCppCanonical, V6) {
  // C = 4, H = 2, N = 2, Dmix = 2, Ddecay = 3.
  auto m = load_ok({test::f32_record("blocks.0.att.time_maa_x", {4}),
                    test::f32_record("blocks.0.att.time_maa_w1", {10, 4}),    // [5*Dmix, C]
                    test::f32_record("blocks.0.att.time_maa_w2", {5, 4, 2}),  // [5, C, Dmix]
                    test::f32_record("blocks.0.att.time_decay", {2, 2, 1}),
                    test::f32_record("blocks.0.att.time_decay_w1", {3, 4}),  // [D, C]
                    test::f32_record("blocks.0.att.time_decay_w2", {4, 3}),  // [C, D]
                    test::f32_record("blocks.0.att.time_faaaa", {2, 2, 1}),
                    test::f32_record("blocks.0.ffn.time_maa_k", {4})});
  EXPECT_EQ(m.at("blocks.0.att.time_maa_x").shape, (std::vector<int64_t>{1, 1, 4}));
  EXPECT_EQ(m.at("blocks.0.ffn.time_maa_k").shape, (std::vector<int64_t>{1, 1, 4}));
  EXPECT_EQ(m.at("blocks.0.att.time_maa_w1").shape, (std::vector<int64_t>{4, 10}));
  EXPECT_EQ(m.at("blocks.0.att.time_maa_w2").shape, (std::vector<int64_t>{5, 2, 4}));
  EXPECT_EQ(m.at("blocks.0.att.time_decay").shape, (std::vector<int64_t>{1, 1, 4}));
  EXPECT_EQ(m.at("blocks.0.att.time_decay_w1").shape, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(m.at("blocks.0.att.time_decay_w2").shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(m.at("blocks.0.att.time_faaaa").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(to_f32(m.at("blocks.0.att.time_decay")), (std::vector<float>{0, 1, 2, 3}));
  // w1: out[c][j] = stored[j][c] = 4 j + c.
  const auto w1 = to_f32(m.at("blocks.0.att.time_maa_w1"));
  for (int c = 0; c < 4; ++c)
    for (int j = 0; j < 10; ++j) EXPECT_EQ(w1[c * 10 + j], static_cast<float>(4 * j + c));
  // w2: out[i][d][c] = stored[i][c][d] = 8 i + 2 c + d.
  const auto w2 = to_f32(m.at("blocks.0.att.time_maa_w2"));
  for (int i = 0; i < 5; ++i)
    for (int d = 0; d < 2; ++d)
      for (int c = 0; c < 4; ++c)
        EXPECT_EQ(w2[i * 8 + d * 4 + c], static_cast<float>(8 * i + 2 * c + d));
  const auto d2 = to_f32(m.at("blocks.0.att.time_decay_w2"));
  for (int d = 0; d < 3; ++d)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(d2[d * 4 + c], static_cast<float>(3 * c + d));
}

TEST(RwkvCppCanonical, V7) {
  // C = 32 (head size 32), LoRA width 2; the LoRA matrix stored as FP16 becomes f32.
  std::vector<uint16_t> a1(2 * 32);
  for (size_t i = 0; i < a1.size(); ++i) a1[i] = static_cast<uint16_t>(0x3c00 + i);  // 1 + i/1024
  auto m = load_ok({test::f32_record("blocks.0.att.x_rwkvag", {6, 1, 32}),
                    test::f32_record("blocks.0.att.w1", {2, 32}),  // [D, C]
                    test::f32_record("blocks.0.att.w2", {32, 2}),  // [C, D]
                    {"blocks.0.att.a1", 1, {2, 32}, test::f16_data(a1)},
                    test::f32_record("blocks.0.att.w0", {1, 1, 32}),
                    test::f32_record("blocks.0.att.k_k", {32}),
                    test::f32_record("blocks.0.att.r_k", {1, 32}),
                    test::f32_record("blocks.0.ffn.x_k", {1, 1, 32})});
  const char* parts[] = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};
  for (int p = 0; p < 6; ++p) {
    const Tensor& t = m.at(std::string("blocks.0.att.") + parts[p]);
    EXPECT_EQ(t.shape, (std::vector<int64_t>{1, 1, 32})) << parts[p];
    const auto v = to_f32(t);
    for (int c = 0; c < 32; ++c) EXPECT_EQ(v[c], static_cast<float>(32 * p + c)) << parts[p];
  }
  EXPECT_EQ(m.count("blocks.0.att.x_rwkvag"), 0u);
  EXPECT_EQ(m.at("blocks.0.att.w1").shape, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(m.at("blocks.0.att.w2").shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(m.at("blocks.0.att.w0").shape, (std::vector<int64_t>{1, 1, 32}));
  EXPECT_EQ(m.at("blocks.0.att.k_k").shape, (std::vector<int64_t>{1, 1, 32}));
  EXPECT_EQ(m.at("blocks.0.att.r_k").shape, (std::vector<int64_t>{1, 32}));
  const auto w1 = to_f32(m.at("blocks.0.att.w1"));
  for (int c = 0; c < 32; ++c)
    for (int d = 0; d < 2; ++d) EXPECT_EQ(w1[c * 2 + d], static_cast<float>(32 * d + c));
  const Tensor& ta1 = m.at("blocks.0.att.a1");
  EXPECT_EQ(ta1.dtype, DType::f32);
  EXPECT_EQ(ta1.shape, (std::vector<int64_t>{32, 2}));
  const auto va1 = to_f32(ta1);
  for (int c = 0; c < 32; ++c)
    for (int d = 0; d < 2; ++d) EXPECT_EQ(va1[c * 2 + d], 1.0f + (32 * d + c) / 1024.0f);
}

// ---- hostile files ------------------------------------------------------------------------------

std::vector<BinRecord> sample_records() {
  return {test::f32_record("emb.weight", {4, 32}),
          {"blocks.0.att.key.weight", 7, {1, 64}, std::string(22 * 2, '\x11')},
          {"blocks.0.att.value.weight", 1, {2, 2}, test::f16_data({1, 2, 3, 4})},
          test::f32_record("blocks.0.att.time_decay", {4}, -1.0f)};
}
std::string sample_file() { return test::bin_file(sample_records()); }

TEST(RwkvCppHostile, TruncatedAnywhere) {
  const std::string f = sample_file();
  ASSERT_TRUE(load(f).ok());
  // Cutting at a record boundary leaves a valid file with fewer tensors; anywhere else fails.
  std::vector<size_t> ends;
  size_t pos = 24;
  for (const BinRecord& r : sample_records()) ends.push_back(pos += test::bin_record(r).size());
  ASSERT_EQ(ends.back(), f.size());
  for (size_t cut = 0; cut < f.size(); ++cut) {
    const auto b = heap(f, cut);
    auto r = load_rwkvcpp_from_memory(kName, b);
    const auto at = std::find(ends.begin(), ends.end(), cut);
    if (at != ends.end()) {
      ASSERT_TRUE(r.ok()) << cut << ": " << r.error().message;
      EXPECT_EQ(r->size(), static_cast<size_t>(at - ends.begin()) + 1) << cut;
      continue;
    }
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_NE(r.error().message.find(kName), std::string::npos) << r.error().message;
  }
  EXPECT_LOAD_ERROR(f.substr(0, 10), "too small");
  EXPECT_LOAD_ERROR(f.substr(0, 24), "no tensors");
  EXPECT_LOAD_ERROR(f.substr(0, 30), "truncated record header");
  EXPECT_LOAD_ERROR(f.substr(0, 40), "truncated");
  EXPECT_LOAD_ERROR(f.substr(0, f.size() - 1), "left in the file");
}

TEST(RwkvCppHostile, TruncatedRealFiles) {
  for (const char* type : {"Q5_0", "FP16"}) {
    const auto full = read_bytes(bin_path("7v0-834K", type));
    ASSERT_GT(full.size(), 100000u);
    size_t failed = 0;
    for (size_t cut = 0; cut < full.size(); cut += 1 + cut / 3 + (cut % 7)) {
      const std::vector<std::byte> b(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
      auto r = load_rwkvcpp_from_memory("cut.bin", b);
      if (!r.ok()) {
        ++failed;
        EXPECT_NE(r.error().message.find("cut.bin"), std::string::npos) << r.error().message;
      }
    }
    EXPECT_GT(failed, 10u);
    const std::vector<std::byte> last(full.begin(), full.end() - 1);
    EXPECT_FALSE(load_rwkvcpp_from_memory("cut.bin", last).ok());
  }
}

TEST(RwkvCppHostile, Header) {
  const std::string body = test::bin_record(test::f32_record("a", {2}));
  EXPECT_LOAD_ERROR(test::bin_header({.magic = 0x67676d67}) + body, "bad magic 0x67676d67");
  EXPECT_LOAD_ERROR(test::bin_header({.magic = 0x666d6767}) + body, "bad magic");
  EXPECT_LOAD_ERROR(test::bin_header({.version = 99}) + body, "unsupported file version 99");
  EXPECT_LOAD_ERROR(test::bin_header({.version = 102}) + body, "unsupported file version 102");
  EXPECT_LOAD_ERROR(test::bin_header({.n_vocab = 0}) + body, "must be positive");
  EXPECT_LOAD_ERROR(test::bin_header({.n_embed = -5}) + body, "must be positive");
  EXPECT_LOAD_ERROR(test::bin_header({.n_layer = INT32_MIN}) + body, "must be positive");
  EXPECT_LOAD_ERROR(test::bin_header({.data_type = 4}) + body, "Q4_1_O");
  EXPECT_LOAD_ERROR(test::bin_header({.data_type = 5}) + body, "Q4_2");
  EXPECT_LOAD_ERROR(test::bin_header({.data_type = 42}) + body, "unknown data type 42");
  EXPECT_LOAD_ERROR(test::bin_header({.version = 100, .data_type = 7}) + body, "re-quantize");
  // Version 100 FP32/FP16 files are fine (the 4v0 test files are version 100).
  EXPECT_TRUE(load(test::bin_header({.version = 100, .data_type = 1}) + body).ok());
  EXPECT_LOAD_ERROR("", "too small");
  EXPECT_LOAD_ERROR("fmgg", "too small");
}

// A record header with raw fields: n_dims, key length, type, dims as written (innermost first).
std::string raw_record(int32_t n_dims, int32_t key_len, int32_t type, std::vector<int32_t> dims,
                       const std::string& key, const std::string& data) {
  std::string s;
  for (int32_t v : {n_dims, key_len, type}) test::put_i32(s, v);
  for (int32_t d : dims) test::put_i32(s, d);
  return s + key + data;
}

TEST(RwkvCppHostile, DimensionCount) {
  const std::string h = test::bin_header();
  const std::string data(4096, '\0');
  EXPECT_LOAD_ERROR(h + raw_record(5, 1, 0, {1, 1, 1, 1, 1}, "a", data),
                    "dimension count 5 is outside 1..4");
  EXPECT_LOAD_ERROR(h + raw_record(0, 1, 0, {}, "a", data), "dimension count 0");
  EXPECT_LOAD_ERROR(h + raw_record(-1, 1, 0, {}, "a", data), "dimension count -1");
  EXPECT_LOAD_ERROR(h + raw_record(INT32_MAX, 1, 0, {}, "a", data), "dimension count");
  EXPECT_LOAD_ERROR(h + raw_record(INT32_MIN, 1, 0, {}, "a", data), "dimension count");
  EXPECT_TRUE(load(h + raw_record(4, 1, 0, {2, 1, 2, 1}, "a", std::string(16, '\0'))).ok());
}

TEST(RwkvCppHostile, KeyLength) {
  const std::string h = test::bin_header();
  const std::string data(64, '\0');
  EXPECT_LOAD_ERROR(h + raw_record(1, 0, 0, {1}, "", data), "key length 0 is outside 1..1024");
  EXPECT_LOAD_ERROR(h + raw_record(1, -4, 0, {1}, "", data), "key length -4");
  EXPECT_LOAD_ERROR(h + raw_record(1, INT32_MAX, 0, {1}, "a", data), "key length 2147483647");
  EXPECT_LOAD_ERROR(h + raw_record(1, 1025, 0, {1}, std::string(1025, 'a'), data),
                    "key length 1025");
  EXPECT_LOAD_ERROR(h + raw_record(1, 1000, 0, {1}, "abc", ""), "truncated");
  EXPECT_LOAD_ERROR(h + raw_record(1, 3, 0, {1}, std::string("a\0b", 3), data), "not valid UTF-8");
  EXPECT_LOAD_ERROR(h + raw_record(1, 2, 0, {1}, "\xc3(", data), "not valid UTF-8");
  EXPECT_LOAD_ERROR(h + raw_record(1, 3, 0, {1}, "\xed\xa0\x80", data), "not valid UTF-8");
  EXPECT_TRUE(
      load(h + raw_record(1, 1024, 0, {1}, std::string(1024, 'k'), std::string(4, '\0'))).ok());
  EXPECT_TRUE(load(h + raw_record(1, 5, 0, {1}, "h\xc3\xa9ll", std::string(4, '\0'))).ok());
}

TEST(RwkvCppHostile, Dimensions) {
  const std::string h = test::bin_header();
  const std::string data(4096, '\0');
  EXPECT_LOAD_ERROR(h + raw_record(2, 1, 0, {4, -1}, "a", data), "dimension -1 is not positive");
  EXPECT_LOAD_ERROR(h + raw_record(2, 1, 0, {0, 4}, "a", data), "dimension 0 is not positive");
  // 2^31-1 ^ 4 overflows 64 bits; 2^31-1 ^ 2 * 4 bytes does not, but exceeds the file.
  EXPECT_LOAD_ERROR(
      h + raw_record(4, 1, 0, {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX}, "a", data),
      "more than 2^64");
  EXPECT_LOAD_ERROR(h + raw_record(3, 1, 0, {INT32_MAX, INT32_MAX, 4}, "a", data), "only 4096");
  EXPECT_LOAD_ERROR(h + raw_record(2, 1, 0, {65536, 65536}, "a", data),
                    "needs 17179869184 data bytes but only 4096");
  EXPECT_LOAD_ERROR(h + raw_record(1, 1, 1, {2049}, "a", data), "needs 4098 data bytes");
  // Quantized: byte count from blocks, also checked.
  EXPECT_LOAD_ERROR(
      h + raw_record(4, 1, 7, {INT32_MAX - 31, INT32_MAX, INT32_MAX, INT32_MAX}, "a", data),
      "only 4096");
  EXPECT_LOAD_ERROR(h + raw_record(2, 1, 8, {64, 1000}, "a", data), "needs 48000 data bytes");
}

TEST(RwkvCppHostile, DataTypes) {
  const std::string h = test::bin_header();
  const std::string data(4096, '\0');
  for (int32_t t : {10, 99, -1, INT32_MIN})
    EXPECT_LOAD_ERROR(h + raw_record(1, 1, t, {32}, "a", data),
                      "unknown data type " + std::to_string(t));
  EXPECT_LOAD_ERROR(h + raw_record(1, 1, 4, {32}, "a", data),
                    "data type 4 (Q4_1_O) is a removed legacy format");
  EXPECT_LOAD_ERROR(h + raw_record(1, 1, 5, {32}, "a", data), "Q4_2");
  EXPECT_LOAD_ERROR(h + raw_record(1, 1, 6, {32}, "a", data), "Q4_3");
  // Quantized rows must be whole 32-value blocks.
  for (auto [t, block] : {std::pair{2, 18}, {3, 20}, {7, 22}, {8, 24}, {9, 34}}) {
    EXPECT_LOAD_ERROR(h + raw_record(2, 1, t, {48, 2}, "a", data), "not a multiple of 32");
    EXPECT_LOAD_ERROR(h + raw_record(1, 1, t, {16}, "a", data), "not a multiple of 32");
    const std::string four_blocks = data.substr(0, 4 * static_cast<size_t>(block));
    auto r = load(h + raw_record(2, 1, t, {64, 2}, "a", four_blocks));
    ASSERT_TRUE(r.ok()) << t << ": " << r.error().message;
    EXPECT_EQ(r->at("a").shape, (std::vector<int64_t>{2, 64}));
    EXPECT_LOAD_ERROR(h + raw_record(2, 1, t, {64, 2}, "a", four_blocks.substr(1)),
                      "left in the file");
  }
  // Quantized tensors in version-100 files have an older block layout.
  EXPECT_LOAD_ERROR(test::bin_header({.version = 100}) + raw_record(1, 1, 7, {32}, "a", data),
                    "version-100");
}

TEST(RwkvCppHostile, NamesAndShapes) {
  EXPECT_LOAD_ERROR(test::bin_file({test::f32_record("a", {2}), test::f32_record("a", {2})}),
                    "already holds");
  // The split of x_rwkvag must not collide with a tensor of the same name.
  EXPECT_LOAD_ERROR(test::bin_file({test::f32_record("blocks.0.att.x_k", {1, 1, 4}),
                                    test::f32_record("blocks.0.att.x_rwkvag", {6, 1, 4})}),
                    "'blocks.0.att.x_k', which the file already holds");
  EXPECT_LOAD_ERROR(test::bin_file({test::f32_record("blocks.0.att.x_rwkvag", {5, 1, 4})}),
                    "should be [6, 1, C]");
  EXPECT_LOAD_ERROR(test::bin_file({test::f32_record("blocks.0.att.x_rwkvag", {24})}),
                    "should be [6, 1, C]");
  EXPECT_LOAD_ERROR(test::bin_file({test::f32_record("blocks.0.att.k_k", {4}),
                                    test::f32_record("blocks.0.att.w1", {2, 2, 2})}),
                    "should be 2-D");
  EXPECT_LOAD_ERROR(test::bin_file({test::f32_record("blocks.0.att.time_maa_x", {4}),
                                    test::f32_record("blocks.0.att.time_maa_w2", {8, 4})}),
                    "should be 3-D");
  EXPECT_LOAD_ERROR(test::bin_file({test::f32_record("emb.weight", {5, 32})}),
                    "disagrees with the header's n_vocab 4 and n_embed 32");
}

TEST(RwkvCppHostile, ValuesOutsideTheConvertersRange) {
  const std::string ln = "blocks.0.att.ln_x.weight";
  EXPECT_LOAD_ERROR(
      test::bin_file({{"blocks.0.att.time_decay", 0, {2}, test::f32_data({-1.0f, 0.5f})}}),
      "value 0.500000 at index 1 is outside (-inf, 0]");
  EXPECT_LOAD_ERROR(test::bin_file({{"blocks.0.att.time_decay", 0, {1}, test::f32_data({NAN})}}),
                    "outside (-inf, 0]");
  EXPECT_LOAD_ERROR(
      test::bin_file({test::f32_record(ln, {2}),
                      {"blocks.0.att.time_decay", 0, {2, 1, 1}, test::f32_data({0.5f, 1.5f})}}),
      "outside [0, 1]");
  EXPECT_LOAD_ERROR(
      test::bin_file({test::f32_record(ln, {2}),
                      {"blocks.0.att.time_first", 0, {2, 1, 1}, test::f32_data({-0.5f, 1.5f})}}),
      "outside [0, inf)");
}

TEST(RwkvCppHostile, ErrorsNameTheFile) {
  const std::string dir = test::temp_dir();
  const std::string path = dir + "/broken-model.bin";
  std::string f = sample_file();
  f.resize(f.size() - 3);
  std::ofstream(path, std::ios::binary).write(f.data(), static_cast<std::streamsize>(f.size()));
  for (auto r : {load_rwkvcpp(path), load_tensors(path)}) {
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("blocks.0.att.time_decay"), std::string::npos)
        << r.error().message;
  }
  auto missing = load_rwkvcpp(dir + "/no-such-model.bin");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no-such-model.bin"), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace wkv
