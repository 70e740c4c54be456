// Data pipeline and training loop: documents and splits, seeded windows, a short run that
// lowers the validation loss, and determinism given the seed.
#include <fstream>

#include "model/init.hpp"
#include "train/data.hpp"
#include "train/loop.hpp"
#include "train_test_util.hpp"

namespace wkv::train::test {
namespace {

std::vector<int32_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

// A small repetitive corpus that a tiny model learns in a few dozen steps.
std::vector<std::string> corpus_docs() {
  std::vector<std::string> docs;
  const char* words[] = {"alpha", "beta", "gamma", "delta"};
  for (int d = 0; d < 40; ++d) {
    std::string s;
    for (int i = 0; i < 12; ++i) s += std::string(words[(d + i) % 4]) + " and ";
    docs.push_back(s + "end.");
  }
  return docs;
}

Params<float> tiny_model(uint64_t seed) {
  V7Dims d;
  d.n_layer = 2;
  d.n_embd = 32;
  d.head_size = 16;
  d.vocab_size = 256;
  d.lora_w = d.lora_a = d.lora_v = d.lora_g = 8;
  auto t = random_v7(d, seed, DType::f32);
  EXPECT_TRUE(t);
  auto p = params_from_tensors<float>(*t, "random_v7");
  EXPECT_TRUE(p) << (p ? "" : p.error().message);
  return std::move(*p);
}

TEST(TrainData, StreamSplitWindowsAndValidationBatches) {
  auto s = token_stream(std::vector<std::string>{"ab", "c"}, bytes);
  EXPECT_EQ(s, (std::vector<int32_t>{'a', 'b', 0, 'c', 0}));
  std::vector<int32_t> all(100);
  for (int i = 0; i < 100; ++i) all[size_t(i)] = i;
  auto c = split_corpus(all, 0.2, 8);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->train.size(), 80u);
  EXPECT_EQ(c->val.front(), 80);
  EXPECT_FALSE(split_corpus(std::vector<int32_t>(10, 1), 0.5, 8));
  WindowSampler a(c->train, 8, 7), b(c->train, 8, 7);
  Batch x = a.next(3), y = b.next(3);
  EXPECT_EQ(x.tokens, y.tokens);
  for (size_t i = 0; i < 3 * 8; ++i) EXPECT_EQ(x.targets[i], x.tokens[i] + 1);  // next token
  auto vb = validation_batches(c->val, 2, 8, 10);  // 20 tokens: 2 windows of 8 (+1)
  ASSERT_EQ(vb.size(), 1u);
  EXPECT_EQ(vb[0].B, 2u);
  EXPECT_EQ(vb[0].tokens[8], 88);
  EXPECT_EQ(vb[0].targets[15], 96);
}

TEST(TrainData, JsonlDocumentsAndErrors) {
  const std::string dir = wkv::test::temp_dir();
  std::ofstream(dir + "/d.jsonl") << "{\"text\": \"one\"}\n\n{\"text\": \"two\"}\n";
  auto docs = read_documents(dir + "/d.jsonl");
  ASSERT_TRUE(docs) << docs.error().message;
  EXPECT_EQ(*docs, (std::vector<std::string>{"one", "two"}));
  std::ofstream(dir + "/bad.jsonl") << "{\"text\": \"one\"}\n{\"txt\": 1}\n";
  auto bad = read_documents(dir + "/bad.jsonl");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("bad.jsonl:2"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(read_documents(dir + "/missing.txt"));
}

TEST(TrainLoop, ShortRunLowersValidationLossAndIsDeterministic) {
  auto stream = token_stream(corpus_docs(), bytes);
  auto corpus = split_corpus(stream, 0.1, 32);
  ASSERT_TRUE(corpus) << corpus.error().message;
  TrainConfig cfg;
  cfg.B = 4;
  cfg.T = 32;
  cfg.steps = 40;
  cfg.lr_init = 3e-3;
  cfg.lr_final = 3e-4;
  cfg.warmup_steps = 3;
  cfg.val_every = 20;
  std::vector<double> vals, losses;
  auto run = [&](Params<float>& p) {
    vals.clear();
    losses.clear();
    int saves = 0;
    AdamW opt(p, cfg.adamw);
    Status st = train_loop(
        p, opt, *corpus, cfg,
        [&](const StepReport& r) {
          if (r.val_loss) vals.push_back(*r.val_loss);
          if (r.step > 0) losses.push_back(r.loss);
        },
        [&](const Params<float>&, const AdamW&, int64_t step) {
          EXPECT_EQ(step, cfg.steps);
          ++saves;
          return Status::success();
        });
    EXPECT_TRUE(st) << (st ? "" : st.error().message);
    EXPECT_EQ(saves, 1);
  };
  Params<float> p = tiny_model(5);
  run(p);
  ASSERT_EQ(vals.size(), 3u);  // start, step 20, end
  std::printf("[figures] tiny run: val loss %.3f -> %.3f -> %.3f\n", vals[0], vals[1], vals[2]);
  EXPECT_LT(vals[2], vals[0] - 1.0);
  const std::vector<double> first_losses = losses;
  Params<float> q = tiny_model(5);
  run(q);
  EXPECT_EQ(losses, first_losses);
  EXPECT_EQ(p.layers[1].w1.data, q.layers[1].w1.data);
  EXPECT_EQ(p.head.data, q.head.data);
}

TEST(TrainLoop, ResumeFromSavedStateReproducesUninterruptedRun) {
  auto corpus = split_corpus(token_stream(corpus_docs(), bytes), 0.1, 16);
  ASSERT_TRUE(corpus);
  TrainConfig cfg;
  cfg.B = 2;
  cfg.T = 16;
  cfg.steps = 12;
  cfg.warmup_steps = 2;
  cfg.lr_init = 3e-3;
  cfg.val_every = 0;
  cfg.save_every = 5;
  // Uninterrupted, keeping what is saved at step 5 (through the tensor round trip).
  Params<float> p = tiny_model(9);
  AdamW opt(p, cfg.adamw);
  std::vector<double> losses;
  TensorMap saved_p, saved_o;
  auto record = [&](const StepReport& r) {
    if (!r.initial) losses.push_back(r.loss);
  };
  ASSERT_TRUE(train_loop(p, opt, *corpus, cfg, record,
                         [&](const Params<float>& q, const AdamW& o, int64_t step) {
                           if (step == 5) {
                             saved_p = params_to_tensors(q);
                             saved_o = optimizer_to_tensors(o);
                           }
                           return Status::success();
                         }));
  ASSERT_EQ(losses.size(), 12u);
  const std::vector<double> full = losses;
  // Resumed from step 5.
  auto q = params_from_tensors<float>(saved_p, "saved");
  ASSERT_TRUE(q);
  AdamW opt2(*q, cfg.adamw);
  ASSERT_TRUE(optimizer_from_tensors(opt2, *q, saved_o, 5, "saved"));
  losses.clear();
  ASSERT_TRUE(
      train_loop(*q, opt2, *corpus, cfg, record,
                 [](const Params<float>&, const AdamW&, int64_t) { return Status::success(); }));
  ASSERT_EQ(losses.size(), 7u);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(losses[i], full[5 + i]) << "step " << 6 + i;
  EXPECT_EQ(q->head.data, p.head.data);
  EXPECT_EQ(q->layers[0].w0.data, p.layers[0].w0.data);
  // A state of the wrong shape is an error.
  TensorMap bad = saved_o;
  bad.erase("exp_avg.head.weight");
  EXPECT_FALSE(optimizer_from_tensors(opt2, *q, bad, 5, "bad"));
}

}  // namespace
}  // namespace wkv::train::test
