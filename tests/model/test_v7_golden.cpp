// RWKV-7 against the official reference (../shared/testdata/models): logits at every position
// and the recurrent state, in RNN mode (forward_one) and sequence mode (forward_seq), from fp32
// and bf16 checkpoints; tolerances are read from each case's manifest.json.
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/formats.hpp"
#include "model/model.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

struct Case {
  std::string name;
  nlohmann::json manifest;
  TensorMap expected;
  std::unique_ptr<Model> model;
  std::vector<int32_t> tokens;
};

Case load_case(const std::string& name) {
  Case c;
  c.name = name;
  const std::string dir = test::testdata("models/" + name);
  std::ifstream mf(dir + "/manifest.json");
  EXPECT_TRUE(mf.good()) << dir;
  c.manifest = nlohmann::json::parse(mf);
  auto exp = load_safetensors(dir + "/expected.safetensors");
  EXPECT_TRUE(exp.ok()) << (exp.ok() ? "" : exp.error().message);
  c.expected = std::move(*exp);
  auto tm = load_tensors(dir + "/model.pth");
  EXPECT_TRUE(tm.ok()) << (tm.ok() ? "" : tm.error().message);
  auto m = load_model(std::move(*tm), dir + "/model.pth");
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  c.model = std::move(*m);
  for (float f : to_f32(c.expected.at("tokens"))) c.tokens.push_back(static_cast<int32_t>(f));
  return c;
}

float logits_tol(const Case& c) {
  return c.manifest["recommended_tolerances"]["logits_fp32_compute"]["max_abs"].get<float>();
}
float state_tol(const Case& c) {
  return c.manifest["recommended_tolerances"]["state_fp32_compute"]["max_abs_relative"].get<float>();
}

// Our slot name for the official state entry `state.<when>.L<i>.<name>`.
void expect_state(const Case& c, const State& s, const std::string& when) {
  const std::map<std::string, std::string> names = {
      {"att_x_prev", "att.x_prev"}, {"att_kv", "att.wkv"}, {"ffn_x_prev", "ffn.x_prev"}};
  const float tol = state_tol(c);
  TensorMap got = s.to_tensors();
  int checked = 0;
  for (int i = 0; i < c.model->hparams().n_layer; ++i) {
    for (const auto& [official, ours] : names) {
      const std::string key = "state." + when + ".L" + std::to_string(i) + "." + official;
      ASSERT_TRUE(c.expected.count(key)) << key;
      const auto want = to_f32(c.expected.at(key));
      const auto have = to_f32(got.at("blocks." + std::to_string(i) + "." + ours));
      float scale = 1.0f;
      for (float v : want) scale = std::max(scale, std::fabs(v));
      EXPECT_LE(test::max_abs_diff(have, want) / scale, tol) << c.name << " " << key;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * c.model->hparams().n_layer);
}

class V7Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(V7Golden, RnnModeMatchesOfficialLogitsAndState) {
  Case c = load_case(GetParam());
  ASSERT_TRUE(c.model);
  const size_t V = c.model->hparams().vocab_size;
  const auto want = to_f32(c.expected.at("logits"));
  ASSERT_EQ(want.size(), c.tokens.size() * V);
  State s = c.model->new_state();
  std::vector<float> row(V);
  float worst = 0;
  for (size_t t = 0; t < c.tokens.size(); ++t) {
    c.model->forward_one(c.tokens[t], s, row.data());
    std::vector<float> w(want.begin() + t * V, want.begin() + (t + 1) * V);
    worst = std::max(worst, test::max_abs_diff(row, w));
    if (t == 0) expect_state(c, s, "after1");
  }
  EXPECT_LE(worst, logits_tol(c)) << c.name;
  std::printf("%s rnn: max |logit diff| %.2e (tolerance %.0e)\n", c.name.c_str(), worst, logits_tol(c));
  expect_state(c, s, "final");
}

TEST_P(V7Golden, SeqModeMatchesOfficialLogitsAndState) {
  Case c = load_case(GetParam());
  ASSERT_TRUE(c.model);
  const size_t V = c.model->hparams().vocab_size;
  const auto want = to_f32(c.expected.at("logits"));
  State s = c.model->new_state();
  std::vector<float> got(c.tokens.size() * V);
  c.model->forward_seq(c.tokens, s, got.data(), Logits::all);
  const float worst = test::max_abs_diff(got, want);
  EXPECT_LE(worst, logits_tol(c)) << c.name;
  std::printf("%s seq: max |logit diff| %.2e (tolerance %.0e)\n", c.name.c_str(), worst, logits_tol(c));
  expect_state(c, s, "final");
  // Last-row-only mode gives the same last row.
  State s2 = c.model->new_state();
  std::vector<float> last(V);
  c.model->forward_seq(c.tokens, s2, last.data(), Logits::last);
  std::vector<float> w(want.end() - V, want.end());
  EXPECT_LE(test::max_abs_diff(last, w), logits_tol(c));
}

INSTANTIATE_TEST_SUITE_P(Cases, V7Golden,
                         ::testing::Values("v7.0_random", "v7.0_random_bf16",
                                           "rwkvcpp_tiny_7v0_834K"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// rwkv.cpp's own expected logits (after the bytes '"', 'i', 'n') for its tiny v7 model.
TEST(V7Golden, TinyModelMatchesRwkvCppExpectedLogits) {
  Case c = load_case("rwkvcpp_tiny_7v0_834K");
  ASSERT_TRUE(c.model);
  std::ifstream f(test::testdata("rwkvcpp/expected-logits-7v0-834K.bin"), std::ios::binary);
  std::vector<float> want(256);
  f.read(reinterpret_cast<char*>(want.data()), 256 * sizeof(float));
  ASSERT_TRUE(f.good());
  State s = c.model->new_state();
  std::vector<float> got(256);
  const int32_t toks[] = {'"', 'i', 'n'};
  c.model->forward_seq(toks, s, got.data(), Logits::last);
  EXPECT_LE(test::max_abs_diff(got, want), 2e-4f);
}

TEST(V7Model, DetectsSizesFromShapes) {
  Case c = load_case("v7.0_random");
  const Hparams& hp = c.model->hparams();
  const auto& d = c.manifest["dims"];
  EXPECT_EQ(hp.version, ModelVersion::v7_0);
  EXPECT_EQ(hp.n_layer, d["n_layer"].get<int>());
  EXPECT_EQ(hp.n_embd, d["n_embd"].get<int>());
  EXPECT_EQ(hp.n_head, d["n_head"].get<int>());
  EXPECT_EQ(hp.head_size, d["head_size"].get<int>());
  EXPECT_EQ(hp.ffn_size, d["dim_ffn"].get<int>());
  EXPECT_EQ(hp.vocab_size, d["vocab_size"].get<int>());
  EXPECT_EQ(hp.lora_w, d["lora"]["w"].get<int>());
  EXPECT_EQ(hp.lora_a, d["lora"]["a"].get<int>());
  EXPECT_EQ(hp.lora_v, d["lora"]["v"].get<int>());
  EXPECT_EQ(hp.lora_g, d["lora"]["g"].get<int>());
  EXPECT_EQ(hp.dtype, "f32");
}

TEST(V7Model, StateSizeIsConstantAfter10And10000Tokens) {
  Case c = load_case("rwkvcpp_tiny_7v0_834K");
  State s = c.model->new_state();
  std::vector<int32_t> toks(10);
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int32_t>((i * 37) % 256);
  c.model->forward_seq(toks, s, nullptr, Logits::none);
  const size_t after10 = s.bytes();
  const size_t slots10 = s.slots.size();
  std::vector<int32_t> more(9990);
  for (size_t i = 0; i < more.size(); ++i) more[i] = static_cast<int32_t>((i * 91) % 256);
  c.model->forward_seq(more, s, nullptr, Logits::none);
  EXPECT_EQ(s.bytes(), after10);
  EXPECT_EQ(s.slots.size(), slots10);
  for (float v : s.data) ASSERT_TRUE(std::isfinite(v));
}

TEST(V7Model, StateRoundTripsThroughSafetensors) {
  Case c = load_case("rwkvcpp_tiny_7v0_834K");
  State s = c.model->new_state();
  const int32_t toks[] = {'h', 'e', 'l', 'l', 'o'};
  c.model->forward_seq(toks, s, nullptr, Logits::none);
  const std::string path = test::temp_dir() + "/state.safetensors";
  ASSERT_TRUE(save_safetensors(path, s.to_tensors()).ok());
  auto loaded = load_safetensors(path);
  ASSERT_TRUE(loaded.ok());
  State s2 = c.model->new_state();
  ASSERT_TRUE(s2.from_tensors(*loaded, path).ok());
  EXPECT_EQ(s2.data, s.data);
  // Continuing from the restored state gives the same logits as continuing the original.
  std::vector<float> a(256), b(256);
  c.model->forward_one(' ', s, a.data());
  c.model->forward_one(' ', s2, b.data());
  EXPECT_EQ(a, b);
}

TEST(V7Model, StateFromAnotherModelIsRejectedWithName) {
  Case small = load_case("rwkvcpp_tiny_7v0_834K");
  Case big = load_case("v7.0_random");
  State s = big.model->new_state();
  Status st = s.from_tensors(small.model->new_state().to_tensors(), "x.safetensors");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("x.safetensors"), std::string::npos);
}

TEST(V7Model, MissingTensorIsNamed) {
  auto tm = load_tensors(test::testdata("models/v7.0_random/model.pth"));
  ASSERT_TRUE(tm.ok());
  tm->erase("blocks.1.att.key.weight");
  auto m = load_model(std::move(*tm), "model.pth");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("blocks.1.att.key.weight"), std::string::npos)
      << m.error().message;
  EXPECT_NE(m.error().message.find("missing"), std::string::npos);
}

TEST(V7Model, MisShapedTensorIsNamedWithShapes) {
  auto tm = load_tensors(test::testdata("models/v7.0_random/model.pth"));
  ASSERT_TRUE(tm.ok());
  (*tm)["blocks.2.ffn.value.weight"] = Tensor::from_f32({128, 100}, std::vector<float>(12800));
  auto m = load_model(std::move(*tm), "model.pth");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("blocks.2.ffn.value.weight"), std::string::npos);
  EXPECT_NE(m.error().message.find("[128, 100]"), std::string::npos) << m.error().message;
}

// Every case in the index is recognised as its own version from names and shapes alone.
TEST(ModelVersion, DetectedForEveryTestCheckpoint) {
  std::ifstream f(test::testdata("models/index.json"));
  auto index = nlohmann::json::parse(f);
  int checked = 0;
  for (const auto& e : index["cases"]) {
    const std::string path = test::testdata("models/" + e["dir"].get<std::string>() + "/model.pth");
    if (!std::ifstream(path).good()) continue;  // rwkvcpp_tiny_6v0_3m ships no .pth
    auto tm = load_tensors(path);
    ASSERT_TRUE(tm.ok()) << path;
    auto v = detect_version(*tm);
    ASSERT_TRUE(v.ok()) << path;
    EXPECT_EQ(std::string(version_name(*v)), e["architecture_version"].get<std::string>()) << path;
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

}  // namespace
}  // namespace wkv
