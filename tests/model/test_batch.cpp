// forward_batch: many sequences at their own positions in one call give what each gives alone.
#include <gtest/gtest.h>

#include <random>

#include "formats/formats.hpp"
#include "model/model.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

std::unique_ptr<Model> load(const std::string& rel) {
  auto t = load_tensors(wkv::test::testdata(rel));
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  auto m = load_model(std::move(*t), rel);
  EXPECT_TRUE(m) << (m ? "" : m.error().message);
  return std::move(*m);
}

std::vector<int32_t> random_tokens(std::mt19937& rng, size_t n, int V) {
  std::uniform_int_distribution<int32_t> d(0, V - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

// Each item: a history fed alone first (so states differ), then new tokens fed either alone
// (forward_seq) or together with the others (forward_batch); logits and states must agree.
void check_batch(const std::string& rel) {
  auto model = load(rel);
  const int V = model->hparams().vocab_size;
  std::mt19937 rng(7);
  const size_t lens[] = {1, 1, 5, 64, 70, 1, 130, 3, 1};  // crosses chunk edges
  const Logits which[] = {Logits::last, Logits::none, Logits::all, Logits::last, Logits::all,
                          Logits::last, Logits::last, Logits::all, Logits::last};
  const size_t n = std::size(lens);
  std::vector<State> solo, batch;
  std::vector<std::vector<int32_t>> toks;
  std::vector<std::vector<float>> want, got;
  for (size_t i = 0; i < n; ++i) {
    State s = model->new_state();
    auto hist = random_tokens(rng, i * 3, V);
    model->forward_seq(hist, s, nullptr, Logits::none);
    solo.push_back(s);
    batch.push_back(s);
    toks.push_back(random_tokens(rng, lens[i], V));
    const size_t rows = which[i] == Logits::all ? lens[i] : which[i] == Logits::last ? 1 : 0;
    want.emplace_back(rows * V, 0.0f);
    got.emplace_back(rows * V, -1.0f);
  }
  for (size_t i = 0; i < n; ++i)
    model->forward_seq(toks[i], solo[i], want[i].empty() ? nullptr : want[i].data(), which[i]);
  std::vector<BatchItem> items;
  for (size_t i = 0; i < n; ++i)
    items.push_back({toks[i], &batch[i], got[i].empty() ? nullptr : got[i].data(), which[i]});
  model->forward_batch(items);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_LE(test::max_abs_diff(want[i], got[i]), 1e-4f) << rel << " item " << i;
    EXPECT_LE(test::max_abs_diff(solo[i].data, batch[i].data), 1e-4f) << rel << " item " << i;
  }
}

TEST(ForwardBatch, V7EqualsEachSequenceAlone) { check_batch("models/v7.0_random/model.pth"); }
TEST(ForwardBatch, V7Bf16EqualsEachSequenceAlone) {
  check_batch("models/v7.0_random_bf16/model.pth");
}
TEST(ForwardBatch, DefaultLoopEqualsEachSequenceAlone) {
  check_batch("models/v6.0_random/model.pth");
}

}  // namespace
}  // namespace wkv
