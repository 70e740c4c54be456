// RWKV-4, 5.0, 5.1, 5.2 and 6.0 against the official reference (../shared/testdata/models):
// logits at every position and the recurrent state after the first and the last token, in RNN
// mode (forward_one) and sequence mode (forward_seq); tolerances from each case's manifest.json.
// Also: version detection, sizes read from shapes, and errors that name a missing tensor.
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

std::string model_path(const std::string& name) {
  return test::testdata("models/" + name + "/model.pth");
}

Case load_case(const std::string& name) {
  Case c;
  c.name = name;
  const std::string dir = test::testdata("models/" + name);
  std::ifstream mf(dir + "/manifest.json");
  EXPECT_TRUE(mf.good()) << dir;
  c.manifest = nlohmann::json::parse(mf);
  auto exp = load_safetensors(dir + "/expected.safetensors");
  EXPECT_TRUE(exp.ok()) << (exp.ok() ? "" : exp.error().message);
  if (exp.ok()) c.expected = std::move(*exp);
  auto tm = load_tensors(model_path(name));
  EXPECT_TRUE(tm.ok()) << (tm.ok() ? "" : tm.error().message);
  if (!tm.ok()) return c;
  auto m = load_model(std::move(*tm), model_path(name));
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  if (m.ok()) c.model = std::move(*m);
  if (c.expected.count("tokens"))
    for (float f : to_f32(c.expected.at("tokens"))) c.tokens.push_back(static_cast<int32_t>(f));
  return c;
}

float logits_tol(const Case& c) {
  return c.manifest["recommended_tolerances"]["logits_fp32_compute"]["max_abs"].get<float>();
}
float state_tol(const Case& c) {
  return c.manifest["recommended_tolerances"]["state_fp32_compute"]["max_abs_relative"].get<float>();
}

// The official state entries (`state.<when>.L<i>.<name>`) and our slot names, in model.py order.
std::vector<std::pair<std::string, std::string>> state_names(ModelVersion v) {
  if (v == ModelVersion::v4)
    return {{"att_x_prev", "att.x_prev"}, {"att_aa", "att.aa"}, {"att_bb", "att.bb"},
            {"att_pp", "att.pp"}, {"ffn_x_prev", "ffn.x_prev"}};
  return {{"att_x_prev", "att.x_prev"}, {"att_kv", "att.wkv"}, {"ffn_x_prev", "ffn.x_prev"}};
}

// Compares every state tensor (max|got - exp| / max(1, max|exp|) per tensor); returns the worst.
// v4's (aa, bb, pp) is stored exactly as model.py's max-exponent representation, so it
// compares directly.
float expect_state(const Case& c, const State& s, const std::string& when) {
  const float tol = state_tol(c);
  const auto names = state_names(c.model->hparams().version);
  TensorMap got = s.to_tensors();
  EXPECT_EQ(got.size(), names.size() * c.model->hparams().n_layer);
  float worst = 0;
  for (int i = 0; i < c.model->hparams().n_layer; ++i) {
    for (const auto& [official, ours] : names) {
      const std::string key = "state." + when + ".L" + std::to_string(i) + "." + official;
      const std::string slot = "blocks." + std::to_string(i) + "." + ours;
      if (!c.expected.count(key) || !got.count(slot)) {
        ADD_FAILURE() << c.name << ": " << key << " or " << slot << " is missing";
        continue;
      }
      EXPECT_EQ(got.at(slot).shape, c.expected.at(key).shape) << key;
      const auto want = to_f32(c.expected.at(key));
      const auto have = to_f32(got.at(slot));
      float scale = 1.0f;
      for (float v : want) scale = std::max(scale, std::fabs(v));
      const float rel = test::max_abs_diff(have, want) / scale;
      EXPECT_LE(rel, tol) << c.name << " " << key;
      worst = std::max(worst, rel);
    }
  }
  return worst;
}

const std::string kCases[] = {"v4_random",           "v5.0_random",
                              "v5.1_random",         "v5.2_random",
                              "v6.0_random",         "v6.0_random_bf16",
                              "rwkvcpp_tiny_4v0_660K", "rwkvcpp_tiny_5v1_730K",
                              "rwkvcpp_tiny_5v2_730K"};

class VersionGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(VersionGolden, RnnModeMatchesOfficialLogitsAndState) {
  Case c = load_case(GetParam());
  ASSERT_TRUE(c.model);
  const size_t V = c.model->hparams().vocab_size;
  const auto want = to_f32(c.expected.at("logits"));
  ASSERT_EQ(want.size(), c.tokens.size() * V);
  State s = c.model->new_state();
  std::vector<float> row(V);
  float worst = 0, state1 = 0;
  for (size_t t = 0; t < c.tokens.size(); ++t) {
    c.model->forward_one(c.tokens[t], s, row.data());
    std::vector<float> w(want.begin() + t * V, want.begin() + (t + 1) * V);
    worst = std::max(worst, test::max_abs_diff(row, w));
    if (t == 0) state1 = expect_state(c, s, "after1");
  }
  EXPECT_LE(worst, logits_tol(c)) << c.name;
  const float statef = expect_state(c, s, "final");
  std::printf("%s rnn: max |logit diff| %.2e (tol %.0e); state rel diff after1 %.2e, final %.2e "
              "(tol %.0e)\n",
              c.name.c_str(), worst, logits_tol(c), state1, statef, state_tol(c));
}

TEST_P(VersionGolden, SeqModeMatchesOfficialLogitsAndState) {
  Case c = load_case(GetParam());
  ASSERT_TRUE(c.model);
  const size_t V = c.model->hparams().vocab_size;
  const auto want = to_f32(c.expected.at("logits"));
  ASSERT_EQ(want.size(), c.tokens.size() * V);
  // The first token alone (for the after1 state), then the rest as one sequence.
  State s = c.model->new_state();
  std::vector<float> got(c.tokens.size() * V);
  c.model->forward_seq(std::span<const int32_t>(c.tokens.data(), 1), s, got.data(), Logits::all);
  const float state1 = expect_state(c, s, "after1");
  c.model->forward_seq(std::span<const int32_t>(c.tokens).subspan(1), s, got.data() + V,
                       Logits::all);
  const float worst = test::max_abs_diff(got, want);
  EXPECT_LE(worst, logits_tol(c)) << c.name;
  const float statef = expect_state(c, s, "final");
  // The whole sequence in one call (chunks of 64 inside), all rows and last row only.
  State s2 = c.model->new_state();
  std::vector<float> all(c.tokens.size() * V);
  c.model->forward_seq(c.tokens, s2, all.data(), Logits::all);
  const float worst_all = test::max_abs_diff(all, want);
  EXPECT_LE(worst_all, logits_tol(c)) << c.name;
  expect_state(c, s2, "final");
  State s3 = c.model->new_state();
  std::vector<float> last(V);
  c.model->forward_seq(c.tokens, s3, last.data(), Logits::last);
  EXPECT_LE(test::max_abs_diff(last, std::vector<float>(want.end() - V, want.end())),
            logits_tol(c));
  EXPECT_EQ(s3.data, s2.data);
  std::printf("%s seq: max |logit diff| %.2e (one call %.2e) (tol %.0e); state rel diff after1 "
              "%.2e, final %.2e (tol %.0e)\n",
              c.name.c_str(), worst, worst_all, logits_tol(c), state1, statef, state_tol(c));
}

// Uneven chunks with the state carried give the same logits as one token at a time.
TEST_P(VersionGolden, ChunkedSequenceMatchesRnn) {
  Case c = load_case(GetParam());
  ASSERT_TRUE(c.model);
  const size_t V = c.model->hparams().vocab_size, T = c.tokens.size();
  State a = c.model->new_state(), b = c.model->new_state();
  std::vector<float> rnn(T * V), seq(T * V);
  for (size_t t = 0; t < T; ++t) c.model->forward_one(c.tokens[t], a, rnn.data() + t * V);
  size_t pos = 0;
  for (size_t n : {1u, 31u, 70u, 4u, 1000u}) {
    n = std::min(n, T - pos);
    c.model->forward_seq(std::span<const int32_t>(c.tokens).subspan(pos, n), b,
                         seq.data() + pos * V, Logits::all);
    pos += n;
  }
  ASSERT_EQ(pos, T);
  EXPECT_LE(test::max_abs_diff(seq, rnn), 5e-5f);  // official RNN vs chunked: up to 1.6e-5
  EXPECT_LE(test::max_abs_diff(a.data, b.data), 1e-4f);
}

TEST_P(VersionGolden, DetectsVersionAndSizesFromShapes) {
  Case c = load_case(GetParam());
  ASSERT_TRUE(c.model);
  const Hparams& hp = c.model->hparams();
  const auto& d = c.manifest["dims"];
  EXPECT_EQ(std::string(version_name(hp.version)), c.manifest["architecture_version"].get<std::string>());
  EXPECT_EQ(hp.n_layer, d["n_layer"].get<int>());
  EXPECT_EQ(hp.n_embd, d["n_embd"].get<int>());
  EXPECT_EQ(hp.vocab_size, d["vocab_size"].get<int>());
  EXPECT_EQ(hp.ffn_size, d["dim_ffn"].get<int>());
  EXPECT_EQ(hp.n_head, d["n_head"].is_null() ? 0 : d["n_head"].get<int>());
  EXPECT_EQ(hp.head_size, d["head_size"].is_null() ? 0 : d["head_size"].get<int>());
  if (d.contains("lora")) {
    EXPECT_EQ(hp.lora_maa, d["lora"]["time_maa"].get<int>());
    EXPECT_EQ(hp.lora_decay, d["lora"]["time_decay"].get<int>());
  } else {
    EXPECT_EQ(hp.lora_maa, 0);
    EXPECT_EQ(hp.lora_decay, 0);
  }
  EXPECT_EQ(hp.dtype, c.manifest["model_dtype"].get<std::string>() == "bfloat16" ? "bf16" : "f32");
  int64_t params = 0;
  for (const auto& [name, shape] : c.manifest["parameters"].items()) {
    int64_t n = 1;
    for (const auto& x : shape) n *= x.get<int64_t>();
    params += n;
  }
  EXPECT_EQ(hp.params, params);  // every tensor of these files is used
}

// The fresh state: model.py's slots in order, all zero except v4's att.pp = -1e30; reset()
// brings a used state back to it.
TEST_P(VersionGolden, NewStateHasOfficialLayoutAndInitialValues) {
  Case c = load_case(GetParam());
  ASSERT_TRUE(c.model);
  const Hparams& hp = c.model->hparams();
  State s = c.model->new_state();
  const auto names = state_names(hp.version);
  ASSERT_EQ(s.slots.size(), names.size() * hp.n_layer);
  size_t floats_per_layer = 0;
  for (size_t j = 0; j < s.slots.size(); ++j) {
    const auto& slot = s.slots[j];
    EXPECT_EQ(slot.name, "blocks." + std::to_string(j / names.size()) + "." +
                             names[j % names.size()].second);
    const bool pp = slot.name.ends_with("att.pp");
    for (size_t e = 0; e < slot.size; ++e) ASSERT_EQ(s.slot(j)[e], pp ? -1e30f : 0.0f) << slot.name;
    if (j < names.size()) floats_per_layer += slot.size;
  }
  const size_t C = hp.n_embd, N = hp.head_size;
  EXPECT_EQ(floats_per_layer, hp.version == ModelVersion::v4 ? 5 * C : (2 + N) * C);
  EXPECT_EQ(s.data.size(), floats_per_layer * hp.n_layer);
  const State fresh = s;
  c.model->forward_seq(c.tokens, s, nullptr, Logits::none);
  EXPECT_NE(s.data, fresh.data);
  s.reset();
  EXPECT_EQ(s.data, fresh.data);
}

TEST_P(VersionGolden, StateRoundTripsThroughSafetensors) {
  Case c = load_case(GetParam());
  ASSERT_TRUE(c.model);
  const size_t V = c.model->hparams().vocab_size;
  State s = c.model->new_state();
  c.model->forward_seq(std::span<const int32_t>(c.tokens).first(10), s, nullptr, Logits::none);
  const std::string path = test::temp_dir() + "/state_" + c.name + ".safetensors";
  ASSERT_TRUE(save_safetensors(path, s.to_tensors()).ok());
  auto loaded = load_safetensors(path);
  ASSERT_TRUE(loaded.ok());
  State s2 = c.model->new_state();
  ASSERT_TRUE(s2.from_tensors(*loaded, path).ok());
  EXPECT_EQ(s2.data, s.data);
  std::vector<float> a(V), b(V);
  c.model->forward_one(c.tokens[10], s, a.data());
  c.model->forward_one(c.tokens[10], s2, b.data());
  EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(Cases, VersionGolden, ::testing::ValuesIn(kCases),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// rwkv.cpp's own expected logits (after the bytes '"', 'i', 'n') for its tiny v4 model. (Its
// v5 files differ by ~1 because rwkv.cpp uses GroupNorm eps 1e-5; the golden data follows the
// official 64e-5.)
TEST(VersionGoldenRwkvCpp, TinyV4MatchesRwkvCppExpectedLogits) {
  Case c = load_case("rwkvcpp_tiny_4v0_660K");
  ASSERT_TRUE(c.model);
  std::ifstream f(test::testdata("rwkvcpp/expected-logits-4v0-660K.bin"), std::ios::binary);
  std::vector<float> want(256);
  f.read(reinterpret_cast<char*>(want.data()), 256 * sizeof(float));
  ASSERT_TRUE(f.good());
  State s = c.model->new_state();
  std::vector<float> got(256);
  const int32_t toks[] = {'"', 'i', 'n'};
  c.model->forward_seq(toks, s, got.data(), Logits::last);
  EXPECT_LE(test::max_abs_diff(got, want), 2e-4f);
}

// A v5.2 file with a tensor missing or renamed: the error names the file and the tensor.
TEST(VersionModel, V52MissingOrRenamedTensorIsNamed) {
  const std::string path = model_path("v5.2_random");
  for (const char* name :
       {"blocks.1.att.gate.weight", "blocks.0.att.time_mix_g", "blocks.1.att.ln_x.bias",
        "blocks.1.att.time_decay", "blocks.1.att.time_faaaa", "blocks.1.ffn.receptance.weight",
        "blocks.0.ffn.time_mix_r", "head.weight", "blocks.0.ln0.weight"}) {
    for (bool rename : {false, true}) {
      auto tm = load_tensors(path);
      ASSERT_TRUE(tm.ok());
      auto node = tm->extract(name);
      ASSERT_FALSE(node.empty()) << name;
      if (rename) {
        node.key() = std::string(name) + "_renamed";
        tm->insert(std::move(node));
      }
      auto v = detect_version(*tm);
      ASSERT_TRUE(v.ok());
      EXPECT_EQ(*v, ModelVersion::v5_2) << name;
      auto m = load_model(std::move(*tm), "model.pth");
      ASSERT_FALSE(m.ok()) << name;
      EXPECT_NE(m.error().message.find(std::string("'") + name + "'"), std::string::npos)
          << m.error().message;
      EXPECT_NE(m.error().message.find("model.pth"), std::string::npos) << m.error().message;
      EXPECT_NE(m.error().message.find("missing"), std::string::npos) << m.error().message;
    }
  }
}

TEST(VersionModel, MisShapedTensorsAreNamedWithShapes) {
  struct Bad {
    const char* file;
    const char* name;
    std::vector<int64_t> shape;
  };
  const Bad bad[] = {
      {"v4_random", "blocks.1.att.time_first", {127}},
      {"v5.0_random", "blocks.1.att.time_decay", {3}},
      {"v5.2_random", "blocks.0.att.time_decay", {2, 63}},
      {"v6.0_random", "blocks.1.att.time_maa_w2", {5, 31, 128}},
      {"v6.0_random", "blocks.0.att.time_maa_w1", {128, 161}},
      {"v6.0_random", "blocks.1.att.time_decay_w2", {64, 127}},
  };
  for (const auto& b : bad) {
    auto tm = load_tensors(model_path(b.file));
    ASSERT_TRUE(tm.ok());
    int64_t n = 1;
    for (int64_t d : b.shape) n *= d;
    (*tm)[b.name] = Tensor::from_f32(b.shape, std::vector<float>(n));
    auto m = load_model(std::move(*tm), "model.pth");
    ASSERT_FALSE(m.ok()) << b.name;
    Tensor shown;
    shown.shape = b.shape;
    EXPECT_NE(m.error().message.find(b.name), std::string::npos) << m.error().message;
    EXPECT_NE(m.error().message.find(shown.shape_str()), std::string::npos) << m.error().message;
  }
}

}  // namespace
}  // namespace wkv
