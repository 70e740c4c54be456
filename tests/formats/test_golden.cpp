// The shared test data loads: every model.pth matches its manifest (names, shapes, dtype) and is
// memory-mapped, bf16 checkpoints are the rounded fp32 ones, expected.safetensors files load.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/formats.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> cases() {
  std::vector<std::string> out;
  for (const auto& d : fs::directory_iterator(test::testdata("models")))
    if (d.is_directory()) out.push_back(d.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json manifest(const std::string& c) {
  std::ifstream in(test::testdata("models/" + c + "/manifest.json"));
  return nlohmann::json::parse(in);
}

// True if p lies inside a mapping of `path` in this process (/proc/self/maps).
bool in_file_mapping(const void* p, const std::string& path) {
  const std::string canon = fs::canonical(path).string();
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto a = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos || line.substr(slash) != canon) continue;
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) return true;
  }
  return false;
}

TEST(Golden, EveryCheckpointMatchesItsManifest) {
  int checked = 0;
  for (const std::string& c : cases()) {
    const std::string path = test::testdata("models/" + c + "/model.pth");
    if (!fs::exists(path)) continue;
    SCOPED_TRACE(c);
    const auto m = manifest(c);
    auto r = load_pth(path);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const std::string dt = m.at("model_dtype").get<std::string>();
    const DType want = dt == "bfloat16" ? DType::bf16 : DType::f32;
    ASSERT_TRUE(dt == "bfloat16" || dt == "float32") << dt;
    const auto& params = m.at("parameters");
    EXPECT_EQ(r->size(), params.size());
    for (const auto& [name, shape] : params.items()) {
      auto it = r->find(name);
      ASSERT_NE(it, r->end()) << name;
      EXPECT_EQ(it->second.shape, shape.get<std::vector<int64_t>>()) << name;
      EXPECT_EQ(it->second.dtype, want) << name;
      EXPECT_TRUE(it->second.is_contiguous()) << name;
      EXPECT_TRUE(in_file_mapping(it->second.data, path)) << name << " is not memory-mapped";
    }
    // Same through the content-sniffing entry point.
    auto again = load_tensors(path);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again->size(), r->size());
    ++checked;
  }
  EXPECT_GE(checked, 12);
}

TEST(Golden, Bf16CheckpointsAreRoundedFp32Ones) {
  for (const char* v : {"v6.0_random", "v7.0_random"}) {
    SCOPED_TRACE(v);
    auto f = load_pth(test::testdata(std::string("models/") + v + "/model.pth"));
    auto b = load_pth(test::testdata(std::string("models/") + v + "_bf16/model.pth"));
    ASSERT_TRUE(f.ok()) << f.error().message;
    ASSERT_TRUE(b.ok()) << b.error().message;
    ASSERT_EQ(f->size(), b->size());
    for (const auto& [name, t] : *f) {
      const Tensor& tb = b->at(name);
      const auto vf = to_f32(t);
      const auto vb = to_f32(tb);
      ASSERT_EQ(vf.size(), vb.size()) << name;
      for (size_t i = 0; i < vf.size(); ++i)
        ASSERT_EQ(bf16_to_f32(f32_to_bf16(vf[i])), vb[i]) << name << "[" << i << "]";
    }
  }
}

TEST(Golden, ExpectedSafetensorsLoad) {
  int checked = 0;
  for (const std::string& c : cases()) {
    SCOPED_TRACE(c);
    const std::string path = test::testdata("models/" + c + "/expected.safetensors");
    std::map<std::string, std::string> meta;
    auto r = load_safetensors(path, &meta);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const auto m = manifest(c);
    const auto& tokens = r->at("tokens");
    EXPECT_EQ(tokens.dtype, DType::i32);
    EXPECT_EQ(tokens.numel(), static_cast<int64_t>(m.at("tokens").size()));
    EXPECT_EQ(r->at("logits").dtype, DType::f32);
    EXPECT_EQ(r->at("logits").shape.size(), 2u);
    if (m.contains("expected_tensors_shapes")) {
      // name -> [shape, "float32" | "int32"]
      for (const auto& [name, sd] : m.at("expected_tensors_shapes").items()) {
        ASSERT_TRUE(r->count(name)) << name;
        EXPECT_EQ(r->at(name).shape, sd.at(0).get<std::vector<int64_t>>()) << name;
        EXPECT_EQ(r->at(name).dtype, sd.at(1) == "int32" ? DType::i32 : DType::f32) << name;
      }
      EXPECT_EQ(r->size(), m.at("expected_tensors_shapes").size());
    }
    EXPECT_TRUE(in_file_mapping(r->at("logits").data, path));
    ++checked;
  }
  EXPECT_GE(checked, 13);
}

TEST(Golden, ExpectedSafetensorsRoundTrip) {
  const std::string src = test::testdata("models/v7.0_random/expected.safetensors");
  auto a = load_safetensors(src);
  ASSERT_TRUE(a.ok()) << a.error().message;
  const std::string out = test::temp_dir() + "/roundtrip.safetensors";
  ASSERT_TRUE(save_safetensors(out, *a, {{"source", "v7.0_random"}}).ok());
  std::map<std::string, std::string> meta;
  auto b = load_safetensors(out, &meta);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(meta.at("source"), "v7.0_random");
  ASSERT_EQ(a->size(), b->size());
  for (const auto& [name, t] : *a) {
    const Tensor& u = b->at(name);
    EXPECT_EQ(u.dtype, t.dtype);
    EXPECT_EQ(u.shape, t.shape);
    EXPECT_EQ(contiguous_bytes(u), contiguous_bytes(t)) << name;
  }
  fs::remove(out);
}

}  // namespace
}  // namespace wkv
