// safetensors writing and reading: exact round trips, layout of written files, content
// detection in load_tensors, and hostile headers that must end in errors naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "builders.hpp"
#include "formats/formats.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

using test::as_bytes;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}


TEST(Safetensors, RoundTripExact) {
  TensorMap m;
  m["b.weight"] = Tensor::from_bf16({2, 3}, {0x3f80, 0x7fc0, 0xff80, 0x0001, 0x8000, 0x4049});
  m["a.f32"] = Tensor::from_f32({3}, {1.5f, -0.0f, 3.4e38f});
  m["c.tokens"] = Tensor::from_i32({2, 2}, {0, -1, 2147483647, -2147483647 - 1});
  m["empty"] = Tensor::from_f32({0, 4}, {});
  m["scalar"] = Tensor::from_i32({}, {42});
  const std::string path = test::temp_dir() + "/rt.safetensors";
  ASSERT_TRUE(save_safetensors(path, m, {{"format", "pt"}, {"note", "héllo"}}).ok());

  std::map<std::string, std::string> meta;
  auto r = load_safetensors(path, &meta);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"format", "pt"}, {"note", "héllo"}}));
  ASSERT_EQ(r->size(), m.size());
  for (const auto& [name, t] : m) {
    const Tensor& u = r->at(name);
    EXPECT_EQ(u.dtype, t.dtype) << name;
    EXPECT_EQ(u.shape, t.shape) << name;
    EXPECT_EQ(contiguous_bytes(u), contiguous_bytes(t)) << name;
  }

  // Layout: data section 8-byte aligned, tensors contiguous in sorted-name order.
  const std::string b = read_all(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(b.size(), 8 + n + 12 + 12 + 16 + 0 + 4);
  EXPECT_EQ(r->at("b.weight").data - r->at("a.f32").data, 12);
  EXPECT_EQ(r->at("c.tokens").data - r->at("b.weight").data, 12);
  std::filesystem::remove(path);
}

TEST(Safetensors, NonContiguousWrittenInLogicalOrder) {
  Tensor t = Tensor::from_f32({2, 3}, {0, 1, 2, 3, 4, 5});
  t.shape = {3, 2};  // the transpose
  t.strides = {1, 3};
  std::string out;
  ByteSink sink = [&](const void* d, size_t k) {
    out.append(static_cast<const char*>(d), k);
    return true;
  };
  ASSERT_TRUE(write_safetensors(sink, {{"t", t}}).ok());
  auto r = parse_safetensors_memory("mem", as_bytes(out));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(to_f32(r->at("t")), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_TRUE(r->at("t").is_contiguous());
}

TEST(Safetensors, SaveRejectsBadInput) {
  const std::string dir = test::temp_dir();
  EXPECT_FALSE(save_safetensors(dir + "/x.safetensors", {{"__metadata__", Tensor::from_f32({1}, {1})}}).ok());
  EXPECT_FALSE(save_safetensors(dir + "/x.safetensors", {{"bad\xff", Tensor::from_f32({1}, {1})}}).ok());
  auto st = save_safetensors(dir + "/no/such/dir/x.safetensors", {{"a", Tensor::from_f32({1}, {1})}});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("no/such/dir"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.safetensors"));
}

TEST(Safetensors, LoadTensorsPicksByContent) {
  const std::string dir = test::temp_dir();
  ASSERT_TRUE(save_safetensors(dir + "/a.bin", {{"x", Tensor::from_f32({2}, {1, 2})}}).ok());
  auto r = load_tensors(dir + "/a.bin");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(to_f32(r->at("x")), (std::vector<float>{1, 2}));
  std::ofstream(dir + "/junk.bin") << "this is neither a zip nor safetensors";
  auto j = load_tensors(dir + "/junk.bin");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find(dir + "/junk.bin"), std::string::npos) << j.error().message;
  EXPECT_NE(j.error().message.find("PyTorch"), std::string::npos) << j.error().message;
  EXPECT_NE(j.error().message.find("safetensors"), std::string::npos) << j.error().message;
  auto missing = load_tensors(dir + "/missing.bin");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("missing.bin"), std::string::npos);
}

// ---- hostile inputs -------------------------------------------------------------------------

std::string file_with_header(const std::string& header, size_t data_bytes = 16) {
  std::string s;
  test::put64(s, header.size());
  return s + header + std::string(data_bytes, '\x11');
}

std::string error_of(const std::string& bytes) {
  const std::string path = test::temp_dir() + "/hostile.safetensors";
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto r = load_safetensors(path);
  std::filesystem::remove(path);
  if (r.ok()) return "<loaded>";
  EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
  return r.error().message;
}

#define EXPECT_ERROR_HAS(bytes, text)                                    \
  do {                                                                   \
    const std::string m_ = error_of(bytes);                              \
    EXPECT_NE(m_.find(text), std::string::npos) << "message: " << m_;   \
  } while (0)

TEST(SafetensorsHostile, HeaderLength) {
  EXPECT_ERROR_HAS("", "too small");
  EXPECT_ERROR_HAS("1234567", "too small");
  std::string past;
  test::put64(past, 1000);
  EXPECT_ERROR_HAS(past + "{}", "past the end");
  std::string huge;
  test::put64(huge, 1ull << 40);
  EXPECT_ERROR_HAS(huge + "{}", "exceeds the limit");
  std::string wrap;
  test::put64(wrap, ~0ull - 3);
  EXPECT_ERROR_HAS(wrap + "{}", "exceeds the limit");
}

TEST(SafetensorsHostile, BadJson) {
  EXPECT_ERROR_HAS(file_with_header("{\"a\": "), "invalid JSON");
  EXPECT_ERROR_HAS(file_with_header("\xff\xfe garbage"), "invalid JSON");
  EXPECT_ERROR_HAS(file_with_header("[1, 2]"), "not a JSON object");
  EXPECT_ERROR_HAS(file_with_header(std::string(100000, '[')), "nested too deeply");
  EXPECT_ERROR_HAS(file_with_header("{\"a\": 5}"), "tensor 'a': entry is not an object");
  EXPECT_ERROR_HAS(file_with_header("{\"__metadata__\": {\"k\": 1}}"), "metadata value 'k'");
  EXPECT_ERROR_HAS(file_with_header("{\"__metadata__\": 3}"), "__metadata__");
}

std::string one_tensor(const std::string& dtype, const std::string& shape, const std::string& offsets,
                       size_t data_bytes = 16) {
  return file_with_header("{\"t\": {\"dtype\": \"" + dtype + "\", \"shape\": " + shape +
                              ", \"data_offsets\": " + offsets + "}}",
                          data_bytes);
}

TEST(SafetensorsHostile, TensorEntries) {
  EXPECT_EQ(error_of(one_tensor("F32", "[2, 2]", "[0, 16]")), "<loaded>");
  EXPECT_ERROR_HAS(one_tensor("F8_E9", "[2, 2]", "[0, 16]"), "tensor 't': unsupported dtype \"F8_E9\"");
  EXPECT_ERROR_HAS(one_tensor("F32", "[2, 2]", "[0, 17]"), "outside the data section");
  EXPECT_ERROR_HAS(one_tensor("F32", "[2, 2]", "[16, 32]"), "outside the data section");
  EXPECT_ERROR_HAS(one_tensor("F32", "[2, 2]", "[8, 4]"), "outside the data section");
  EXPECT_ERROR_HAS(one_tensor("F32", "[2, 2]", "[18446744073709551615, 16]"), "data_offsets");
  EXPECT_ERROR_HAS(one_tensor("F32", "[3, 2]", "[0, 16]"), "does not match");
  EXPECT_ERROR_HAS(one_tensor("F32", "[1099511627776]", "[0, 16]"), "does not match");
  EXPECT_ERROR_HAS(one_tensor("F32", "[1099511627776, 1099511627776]", "[0, 16]"), "does not match");
  EXPECT_ERROR_HAS(one_tensor("F32", "[4611686018427387904]", "[0, 16]"), "does not match");
  EXPECT_ERROR_HAS(one_tensor("F32", "[-4]", "[0, 16]"), "not a non-negative integer");
  EXPECT_ERROR_HAS(one_tensor("F32", "[4.0]", "[0, 16]"), "not a non-negative integer");
  EXPECT_ERROR_HAS(one_tensor("F32", "[18446744073709551615]", "[0, 16]"), "not a non-negative integer");
  EXPECT_ERROR_HAS(one_tensor("F32", "4", "[0, 16]"), "shape");
  EXPECT_ERROR_HAS(one_tensor("F32", "[4]", "[0]"), "data_offsets");
  EXPECT_ERROR_HAS(file_with_header("{\"t\": {\"shape\": [], \"data_offsets\": [0, 0]}}"), "dtype");
}

TEST(SafetensorsHostile, OverlapsAndDuplicates) {
  const std::string a = "\"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]}";
  const std::string b = "\"b\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [4, 12]}";
  EXPECT_ERROR_HAS(file_with_header("{" + a + ", " + b + "}"), "overlap");
  const std::string a2 = "\"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [8, 10]}";
  EXPECT_ERROR_HAS(file_with_header("{" + a + ", " + a2 + "}"), "duplicate tensor name 'a'");
  // Empty tensors may sit anywhere.
  const std::string e = "\"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]}";
  EXPECT_EQ(error_of(file_with_header("{" + a + ", " + e + "}")), "<loaded>");
}

TEST(SafetensorsHostile, MisalignedDataIsCopied) {
  // Header padded so that the data section starts at an odd offset, misaligned for F32.
  std::string s;
  std::string h = "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
  while ((8 + h.size()) % 4 != 1) h += ' ';
  test::put64(s, h.size());
  s += h;
  std::vector<float> v{1.5f, 2.5f};
  s += test::raw(v);
  auto r = parse_safetensors_memory("mem", as_bytes(s));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r->at("t").data) % 4, 0u);
  EXPECT_EQ(to_f32(r->at("t")), v);
}

}  // namespace
}  // namespace wkv
