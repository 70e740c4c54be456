// Models loaded from rwkv.cpp .bin files (FP32, FP16, Q5_0, Q5_1; converted back to the official
// layout by load_rwkvcpp, the Q5 matrices kept quantized and multiplied by the quantized-weight
// kernels) against the official logits computed from the same (dequantized) weights
// (../shared/testdata/models/<case>/expected.safetensors), sequence mode, every position. One line
// per file in kCases; other versions are added there as the model grows.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string_view>

#include "formats/formats.hpp"
#include "kernels/kernels.hpp"
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

// How far [T, V] logits are from the expected ones: the worst and mean |difference| and the
// fraction of positions whose argmax agrees.
struct LogitsDiff {
  float max = 0, mean = 0, argmax_agree = 0;
  size_t max_pos = 0;
};
LogitsDiff compare(const std::vector<float>& got, const std::vector<float>& want, size_t V) {
  LogitsDiff d;
  const size_t T = want.size() / V;
  double sum = 0;
  size_t agree = 0;
  for (size_t t = 0; t < T; ++t) {
    const float* a = got.data() + t * V;
    const float* b = want.data() + t * V;
    for (size_t i = 0; i < V; ++i) {
      const float e = std::fabs(a[i] - b[i]);
      sum += e;
      if (e > d.max || std::isnan(e)) d.max = e, d.max_pos = t;
    }
    agree += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
  }
  d.mean = static_cast<float>(sum / static_cast<double>(T * V));
  d.argmax_agree = static_cast<float>(agree) / static_cast<float>(T);
  return d;
}

// Sets the prompt mode for one test and restores the one before.
struct PromptMode {
  explicit PromptMode(bool q8) : before(kernels::prompt_q8()) { kernels::set_prompt_q8(q8); }
  ~PromptMode() { kernels::set_prompt_q8(before); }
  bool before;
};

class RwkvCppLogits : public ::testing::TestWithParam<BinCase> {
 protected:
  void SetUp() override {
    const BinCase& c = GetParam();
    bin = test::testdata(std::string("rwkvcpp/") + c.bin);
    auto exp =
        load_safetensors(test::testdata(std::string("models/") + c.dir + "/expected.safetensors"));
    ASSERT_TRUE(exp.ok()) << exp.error().message;
    ASSERT_TRUE(exp->count(c.expected)) << c.expected;
    auto tm = load_tensors(bin);  // by content: the rwkv.cpp magic
    ASSERT_TRUE(tm.ok()) << tm.error().message;
    auto m = load_model(std::move(*tm), bin);
    ASSERT_TRUE(m.ok()) << m.error().message;
    model = std::move(*m);
    for (float f : to_f32(exp->at("tokens"))) tokens.push_back(static_cast<int32_t>(f));
    V = static_cast<size_t>(model->hparams().vocab_size);
    want = to_f32(exp->at(c.expected));
    ASSERT_EQ(want.size(), tokens.size() * V);
  }
  std::vector<float> seq_logits() {
    State s = model->new_state();
    std::vector<float> got(tokens.size() * V);
    model->forward_seq(tokens, s, got.data(), Logits::all);
    return got;
  }
  std::vector<float> step_logits() {
    State s = model->new_state();
    std::vector<float> got(tokens.size() * V);
    for (size_t t = 0; t < tokens.size(); ++t) model->forward_one(tokens[t], s, got.data() + t * V);
    return got;
  }
  bool quantized() const {
    return std::string_view(GetParam().bin).find("-Q") != std::string::npos;
  }

  std::string bin;
  std::unique_ptr<Model> model;
  std::vector<int32_t> tokens;
  size_t V = 0;
  std::vector<float> want;
};

// Prompts computed in fp32 (the quantized matrices dequantized block by block, never the
// tokens): the golden tolerance of an engine doing fp32 math on the dequantized weights.
TEST_P(RwkvCppLogits, SeqModeMatchesOfficialLogitsFromTheSameWeights) {
  const PromptMode fp32(false);
  const LogitsDiff d = compare(seq_logits(), want, V);
  EXPECT_LE(d.max, kLogitsTol) << GetParam().bin << " vs " << GetParam().expected
                               << ", worst at position " << d.max_pos;
  std::printf("%s vs %s, fp32 prompts: max |logit diff| %.2e at position %zu (tolerance %.0e)\n",
              GetParam().bin, GetParam().expected, d.max, d.max_pos, kLogitsTol);
}

// One token at a time, the quantized matrices multiply the token quantized to q8 per block (as
// ggml does): the golden tolerance of quantized dot products is the rough guide (max <= 0.5,
// mean <= 0.05, argmax agreement >= 90 %). The FP32/FP16 files have no quantized products
// and are held to the fp32 tolerance.
TEST_P(RwkvCppLogits, StepModeWithQuantizedDotsMatchesOfficialLogitsToTheRoughGuide) {
  const LogitsDiff d = compare(step_logits(), want, V);
  if (quantized()) {
    EXPECT_LE(d.max, 0.5f) << GetParam().bin << ", worst at position " << d.max_pos;
    EXPECT_LE(d.mean, 0.05f) << GetParam().bin;
    EXPECT_GE(d.argmax_agree, 0.9f) << GetParam().bin;
  } else {
    EXPECT_LE(d.max, kLogitsTol) << GetParam().bin << ", worst at position " << d.max_pos;
  }
  std::printf(
      "%s vs %s, one token at a time: max %.2e at position %zu, mean %.2e, argmax "
      "agreement %.1f %%\n",
      GetParam().bin, GetParam().expected, d.max, d.max_pos, d.mean, 100 * d.argmax_agree);
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
