// Models loaded from rwkv.cpp .bin files (FP32, FP16, Q5_0, Q5_1; converted back to the official
// layout by load_rwkvcpp and dequantized exactly) against the official logits computed from the
// same weights (../shared/testdata/models/<case>/expected.safetensors), sequence mode, every
// position. One line per file in kCases; other versions are added there as the model grows.
#include <cstdio>

#include "formats/formats.hpp"
#include "model/model.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

struct BinCase {
  const char* bin;       // ../shared/testdata/rwkvcpp/<bin>
  const char* dir;       // ../shared/testdata/models/<dir>/expected.safetensors
  const char* expected;  // tensor in it: logits from these weights
};

const BinCase kCases[] = {
    {"tiny-rwkv-7v0-834K-FP32.bin", "rwkvcpp_tiny_7v0_834K", "logits"},
    {"tiny-rwkv-7v0-834K-FP16.bin", "rwkvcpp_tiny_7v0_834K", "logits_from_FP16"},
    {"tiny-rwkv-7v0-834K-Q5_0.bin", "rwkvcpp_tiny_7v0_834K", "logits_from_Q5_0"},
    {"tiny-rwkv-7v0-834K-Q5_1.bin", "rwkvcpp_tiny_7v0_834K", "logits_from_Q5_1"},
    {"tiny-rwkv-4v0-660K-FP32.bin", "rwkvcpp_tiny_4v0_660K", "logits"},
    {"tiny-rwkv-4v0-660K-FP16.bin", "rwkvcpp_tiny_4v0_660K", "logits_from_FP16"},
    {"tiny-rwkv-4v0-660K-Q5_0.bin", "rwkvcpp_tiny_4v0_660K", "logits_from_Q5_0"},
    {"tiny-rwkv-4v0-660K-Q5_1.bin", "rwkvcpp_tiny_4v0_660K", "logits_from_Q5_1"},
    {"tiny-rwkv-5v1-730K-FP32.bin", "rwkvcpp_tiny_5v1_730K", "logits"},
    {"tiny-rwkv-5v1-730K-FP16.bin", "rwkvcpp_tiny_5v1_730K", "logits_from_FP16"},
    {"tiny-rwkv-5v1-730K-Q5_0.bin", "rwkvcpp_tiny_5v1_730K", "logits_from_Q5_0"},
    {"tiny-rwkv-5v1-730K-Q5_1.bin", "rwkvcpp_tiny_5v1_730K", "logits_from_Q5_1"},
    {"tiny-rwkv-5v2-730K-FP32.bin", "rwkvcpp_tiny_5v2_730K", "logits"},
    {"tiny-rwkv-5v2-730K-FP16.bin", "rwkvcpp_tiny_5v2_730K", "logits_from_FP16"},
    {"tiny-rwkv-5v2-730K-Q5_0.bin", "rwkvcpp_tiny_5v2_730K", "logits_from_Q5_0"},
    {"tiny-rwkv-5v2-730K-Q5_1.bin", "rwkvcpp_tiny_5v2_730K", "logits_from_Q5_1"},
    // 6v0 ships only quantized: its `logits` are those of the Q5_1-dequantized weights.
    {"tiny-rwkv-6v0-3m-Q5_1.bin", "rwkvcpp_tiny_6v0_3m", "logits"},
    {"tiny-rwkv-6v0-3m-Q5_0.bin", "rwkvcpp_tiny_6v0_3m", "logits_from_Q5_0"},
};

constexpr float kLogitsTol =
    2e-4f;  // README "Recommended tolerances": fp32 math, dequantized weights

class RwkvCppLogits : public ::testing::TestWithParam<BinCase> {};

TEST_P(RwkvCppLogits, SeqModeMatchesOfficialLogitsFromTheSameWeights) {
  const BinCase& c = GetParam();
  const std::string bin = test::testdata(std::string("rwkvcpp/") + c.bin);
  auto exp =
      load_safetensors(test::testdata(std::string("models/") + c.dir + "/expected.safetensors"));
  ASSERT_TRUE(exp.ok()) << exp.error().message;
  ASSERT_TRUE(exp->count(c.expected)) << c.expected;
  auto tm = load_tensors(bin);  // by content: the rwkv.cpp magic
  ASSERT_TRUE(tm.ok()) << tm.error().message;
  auto m = load_model(std::move(*tm), bin);
  ASSERT_TRUE(m.ok()) << m.error().message;
  Model& model = **m;

  std::vector<int32_t> tokens;
  for (float f : to_f32(exp->at("tokens"))) tokens.push_back(static_cast<int32_t>(f));
  const size_t V = static_cast<size_t>(model.hparams().vocab_size);
  const std::vector<float> want = to_f32(exp->at(c.expected));
  ASSERT_EQ(want.size(), tokens.size() * V);

  State s = model.new_state();
  std::vector<float> got(tokens.size() * V);
  model.forward_seq(tokens, s, got.data(), Logits::all);
  float worst = 0;
  size_t worst_pos = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::vector<float> a(got.begin() + t * V, got.begin() + (t + 1) * V);
    const std::vector<float> b(want.begin() + t * V, want.begin() + (t + 1) * V);
    const float d = test::max_abs_diff(a, b);
    if (d > worst || std::isnan(d)) worst = d, worst_pos = t;
  }
  EXPECT_LE(worst, kLogitsTol) << c.bin << " vs " << c.expected << ", worst at position "
                               << worst_pos;
  std::printf("%s vs %s: max |logit diff| %.2e at position %zu (tolerance %.0e)\n", c.bin,
              c.expected, worst, worst_pos, kLogitsTol);
}

INSTANTIATE_TEST_SUITE_P(Files, RwkvCppLogits, ::testing::ValuesIn(kCases), [](const auto& info) {
  std::string n = info.param.bin;
  n = n.substr(0, n.size() - 4);  // no ".bin"
  for (char& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

}  // namespace
}  // namespace wkv
