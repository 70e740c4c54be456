// Scheduler, prefix cache and chat format: batching many sequences must give the tokens
// generate() gives alone; the cache must skip work, stay in budget and never change results.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "formats/formats.hpp"
#include "runtime/chat_session.hpp"
#include "runtime/chat_template.hpp"
#include "runtime/generate.hpp"
#include "runtime/scheduler.hpp"
#include "greedy_check.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

std::unique_ptr<Model> tiny_model() {
  auto t = load_tensors(test::testdata("models/rwkvcpp_tiny_7v0_834K/model.pth"));
  EXPECT_TRUE(bool(t));
  auto m = load_model(std::move(*t), "tiny");
  EXPECT_TRUE(bool(m));
  return std::move(*m);
}

struct Result {
  std::string text;
  std::vector<int32_t> tokens;
  Event done;
};

// Submits a request and returns a future with everything it produced.
struct Collector {
  std::promise<Result> p;
  Result r;
  Request wrap(Request q) {
    q.on_event = [this](Event&& e) {
      r.text += e.text;
      if (!e.done) r.tokens.push_back(e.token);
      else {
        r.done = e;
        p.set_value(r);
      }
    };
    return q;
  }
};

std::string alone(Model& m, const Tokenizer& tok, const std::string& prompt, SamplerConfig sc,
                  int n, std::vector<std::string> stop = {}) {
  Sampler s(sc);
  State st = m.new_state();
  GenerateOptions o;
  o.max_tokens = n;
  o.stop = std::move(stop);
  std::string out;
  auto r = generate(m, tok, s, st, tok.encode(prompt), o, [&](const std::string& t) { out += t; });
  EXPECT_TRUE(bool(r));
  return out;
}

const std::vector<std::string> kPrompts = {
    "In the beginning", "The quick brown fox", "Once upon a time there was", "a", "Hello, world",
    "It was a dark and stormy night; the rain fell in torrents", "1 2 3 4", "The king said"};

TEST(Scheduler, BatchedGreedyEqualsGenerateAlone) {
  auto m = tiny_model();
  auto tok = make_byte_tokenizer();
  SamplerConfig sc;
  sc.temperature = 0;
  SchedulerOptions so;
  so.max_active = 8;
  so.prompt_chunk = 5;  // prompts take several steps: prefill and generation mix in batches
  so.step_prompt_tokens = 12;  // and not every prompt gets tokens in every step
  so.cache_bytes = 0;
  Scheduler sched(*m, *tok, so);
  std::vector<std::unique_ptr<Collector>> cs;
  std::vector<std::future<Result>> fs;
  for (const auto& p : kPrompts) {
    cs.push_back(std::make_unique<Collector>());
    Request q;
    q.prompt = tok->encode(p);
    q.sampler = sc;
    q.max_tokens = 40;
    fs.push_back(cs.back()->p.get_future());
    ASSERT_EQ(sched.submit(cs.back()->wrap(std::move(q))).status, Submitted::Status::ok);
  }
  // Every request must be done before the model is used here: a Model serves one thread.
  std::vector<Result> results;
  for (auto& f : fs) results.push_back(f.get());
  int near_ties = 0;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    const Result& r = results[i];
    auto ref = test::greedy_alone(*m, tok->encode(kPrompts[i]), 40);
    EXPECT_EQ(test::greedy_mismatch(ref, r.tokens), "") << kPrompts[i];
    if (r.tokens != ref.tokens) ++near_ties;
    EXPECT_EQ(r.done.reason, FinishReason::length);
    EXPECT_EQ(r.done.completion_tokens, 40);
    EXPECT_EQ(r.done.prompt_tokens, static_cast<int>(kPrompts[i].size()));
  }
  EXPECT_LE(near_ties, 3);  // most sequences are token-for-token identical
  auto st = sched.stats();
  EXPECT_GT(st.batch_items, st.steps);  // sequences really shared steps
  EXPECT_EQ(st.generated_tokens, 40u * kPrompts.size());
}

TEST(Scheduler, SeededSamplingAndStopStringsMatchGenerate) {
  auto m = tiny_model();
  auto tok = make_byte_tokenizer();
  SamplerConfig sc;
  sc.temperature = 1.0f;
  sc.top_p = 0.9f;
  sc.presence_penalty = 0.3f;
  sc.seed = 7;
  SchedulerOptions so;
  so.max_active = 3;
  Scheduler sched(*m, *tok, so);
  for (const auto& p : kPrompts) {
    Collector c;
    Request q;
    q.prompt = tok->encode(p);
    q.sampler = sc;
    q.max_tokens = 60;
    q.stop = {"e ", "\n"};
    auto f = c.p.get_future();
    ASSERT_EQ(sched.submit(c.wrap(std::move(q))).status, Submitted::Status::ok);
    Result r = f.get();
    EXPECT_EQ(r.text, alone(*m, *tok, p, sc, 60, {"e ", "\n"})) << p;
    if (r.done.reason == FinishReason::stop_string) {
      EXPECT_EQ(r.text.find("e "), std::string::npos);
    }
  }
}

TEST(Scheduler, PrefixCacheSkipsRepeatedPromptAndKeepsResults) {
  auto m = tiny_model();
  auto tok = make_byte_tokenizer();
  SamplerConfig sc;
  sc.temperature = 0;
  SchedulerOptions so;
  so.cache_block = 32;
  Scheduler sched(*m, *tok, so);
  std::string prompt;
  for (int i = 0; i < 6; ++i) prompt += "The cat sat on the mat. ";  // 144 bytes
  auto run = [&](const std::string& p) {
    Collector c;
    Request q;
    q.prompt = tok->encode(p);
    q.sampler = sc;
    q.max_tokens = 20;
    auto f = c.p.get_future();
    EXPECT_EQ(sched.submit(c.wrap(std::move(q))).status, Submitted::Status::ok);
    return f.get();
  };
  Result a = run(prompt);
  EXPECT_EQ(a.done.cached_tokens, 0);
  Result b = run(prompt);
  EXPECT_EQ(b.done.cached_tokens, 128);  // last multiple of 32 below 144
  EXPECT_EQ(a.text, b.text);
  // A continued conversation: the previous prompt + reply + more text reuses the final state.
  std::string more = prompt + a.text + " And then";
  Result c = run(more);
  EXPECT_GE(c.done.cached_tokens, static_cast<int>(prompt.size() + a.text.size()) - 1);
  EXPECT_EQ(c.text, alone(*m, *tok, more, sc, 20));
  auto st = sched.stats();
  EXPECT_EQ(st.cache.hits, 2u);
  EXPECT_GE(st.cache.tokens_skipped, 128u + prompt.size());
  EXPECT_LE(st.cache.bytes, st.cache.budget_bytes);
}

TEST(PrefixCache, NeverExceedsBudgetEvictsLeastRecentlyUsedAndFindsLongest) {
  auto m = tiny_model();
  State s = m->new_state();
  const size_t one = s.bytes() + 10 * sizeof(int32_t);
  PrefixCache cache(3 * one + 100);
  std::vector<int32_t> toks(10);
  for (int k = 0; k < 10; ++k) {
    for (int i = 0; i < 10; ++i) toks[i] = k * 10 + i;
    s.data[0] = static_cast<float>(k);
    cache.insert(toks, s);
    EXPECT_LE(cache.stats().bytes, cache.stats().budget_bytes);
  }
  EXPECT_EQ(cache.stats().entries, 3u);
  EXPECT_EQ(cache.stats().evictions, 7u);
  State out = m->new_state();
  std::vector<int32_t> q = {90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 5};
  EXPECT_EQ(cache.lookup(q, q.size(), out), 10u);
  EXPECT_EQ(out.data[0], 9.0f);
  q[3] = 0;  // a different prefix: no hit
  EXPECT_EQ(cache.lookup(q, q.size(), out), 0u);
  // Shorter prefix of the same tokens: the longest one that matches is chosen.
  std::vector<int32_t> shorter = {90, 91, 92, 93};
  s.data[0] = 42;
  cache.insert(shorter, s);  // evicts the least recently used (k = 7)
  q[3] = 93;
  EXPECT_EQ(cache.lookup(q, q.size(), out), 10u);
  EXPECT_EQ(out.data[0], 9.0f);
  EXPECT_EQ(cache.lookup(q, 9, out), 4u);  // max_len below the long entry
  EXPECT_EQ(out.data[0], 42.0f);
  for (int i = 0; i < 10; ++i) toks[i] = 70 + i;
  EXPECT_EQ(cache.lookup(toks, 10, out), 0u);
  // An entry larger than the whole budget is not stored at all.
  PrefixCache tiny(16);
  tiny.insert(toks, s);
  EXPECT_EQ(tiny.stats().entries, 0u);
  EXPECT_EQ(tiny.stats().bytes, 0u);
}

TEST(Scheduler, CancelFreesSlotAndQueueRejectsWhenFull) {
  auto m = tiny_model();
  auto tok = make_byte_tokenizer();
  SchedulerOptions so;
  so.max_active = 1;
  so.max_queue = 1;
  Scheduler sched(*m, *tok, so);
  std::mutex mu;
  std::condition_variable cv;
  int tokens_a = 0;
  bool done_a = false, done_b = false;
  FinishReason ra{}, rb{};
  Request a;
  a.prompt = tok->encode("Hello");
  a.max_tokens = 1 << 30;
  a.stop_at_end_of_text = false;
  a.on_event = [&](Event&& e) {
    std::lock_guard l(mu);
    if (e.done) {
      done_a = true;
      ra = e.reason;
    } else {
      ++tokens_a;
    }
    cv.notify_all();
  };
  Request b = a;
  b.on_event = [&](Event&& e) {
    std::lock_guard l(mu);
    if (e.done) {
      done_b = true;
      rb = e.reason;
    }
    cv.notify_all();
  };
  Submitted sa = sched.submit(std::move(a));
  ASSERT_EQ(sa.status, Submitted::Status::ok);
  {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return tokens_a >= 3; });
  }
  Submitted sb = sched.submit(b);  // waits in the queue (1 active)
  ASSERT_EQ(sb.status, Submitted::Status::ok);
  Submitted sc = sched.submit(b);  // queue full
  EXPECT_EQ(sc.status, Submitted::Status::queue_full);
  EXPECT_EQ(sched.stats().rejected, 1u);
  sched.cancel(sb.id);  // queued: ends at once, from this thread
  {
    std::lock_guard l(mu);
    EXPECT_TRUE(done_b);
    EXPECT_EQ(rb, FinishReason::cancelled);
  }
  sched.cancel(sa.id);
  {
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return done_a; }));
    EXPECT_EQ(ra, FinishReason::cancelled);
  }
  sched.drain();
  auto st = sched.stats();
  EXPECT_EQ(st.active, 0);
  EXPECT_EQ(st.queued, 0);
  EXPECT_EQ(st.cancelled, 2u);
}

TEST(Scheduler, DeadlineEndsRequestAndInvalidPromptsAreRejected) {
  auto m = tiny_model();
  auto tok = make_byte_tokenizer();
  Scheduler sched(*m, *tok, SchedulerOptions{});
  Collector c;
  Request q;
  q.prompt = tok->encode("x");
  q.max_tokens = 1 << 30;
  q.stop_at_end_of_text = false;
  q.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  auto f = c.p.get_future();
  ASSERT_EQ(sched.submit(c.wrap(std::move(q))).status, Submitted::Status::ok);
  ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(f.get().done.reason, FinishReason::timeout);
  Request empty;
  EXPECT_EQ(sched.submit(empty).status, Submitted::Status::invalid);
  Request bad;
  bad.prompt = {1, 256};
  EXPECT_EQ(sched.submit(bad).status, Submitted::Status::invalid);
}

TEST(Scheduler, EmbeddingIsUnitNormAndDeterministic) {
  auto m = tiny_model();
  auto tok = make_byte_tokenizer();
  Scheduler sched(*m, *tok, SchedulerOptions{});
  auto embed = [&](const std::string& p) {
    Collector c;
    Request q;
    q.prompt = tok->encode(p);
    q.embedding = true;
    auto f = c.p.get_future();
    EXPECT_EQ(sched.submit(c.wrap(std::move(q))).status, Submitted::Status::ok);
    return f.get().done;
  };
  Event a = embed("A sentence to embed."), b = embed("A sentence to embed."), c = embed("Other");
  ASSERT_EQ(a.embedding.size(), static_cast<size_t>(m->hparams().n_embd));
  double n2 = 0;
  for (float x : a.embedding) n2 += double(x) * x;
  EXPECT_NEAR(n2, 1.0, 1e-4);
  EXPECT_EQ(a.embedding, b.embedding);
  EXPECT_NE(a.embedding, c.embedding);
  EXPECT_EQ(a.completion_tokens, 0);
}

TEST(ChatTemplate, CleansTextAndBuildsWorldPrompt) {
  EXPECT_EQ(clean_chat_text("  a\r\n\r\n\n b \n"), "a\n b");
  auto p = chat_prompt_pieces({{"system", "Be brief."}, {"user", "Hi\n\n\nthere "},
                               {"assistant", " Hello!"}, {"user", "2+2?"}});
  ASSERT_TRUE(p && true);
  std::string all;
  for (auto& s : *p) all += s;
  EXPECT_EQ(all, "System: Be brief.\n\nUser: Hi\nthere\n\nAssistant: Hello!\n\nUser: 2+2?\n\nAssistant:");
  EXPECT_FALSE(chat_prompt_pieces({}) && true);
  EXPECT_FALSE(chat_prompt_pieces({{"user", "  \n"}}) && true);
  EXPECT_FALSE(chat_prompt_pieces({{"wizard", "x"}}) && true);
  EXPECT_FALSE(chat_prompt_pieces({{"user", "x"}, {"assistant", "y"}}) && true);
}

}  // namespace
}  // namespace wkv

namespace wkv {
namespace {

TEST(ChatSession, StateStaysInStepWithTranscriptAndRetryRestores) {
  auto m = tiny_model();
  auto tok = make_byte_tokenizer();
  SamplerConfig sc;
  sc.temperature = 0;
  ChatSession chat(*m, *tok, sc, 30);
  std::string streamed;
  auto r1 = chat.say("Hello\r\n\r\nthere  ", [&](const std::string& t) { streamed += t; });
  ASSERT_TRUE(bool(r1));
  EXPECT_EQ(*r1, streamed);
  EXPECT_EQ(chat.transcript().rfind("User: Hello\nthere\n\nAssistant:", 0), 0u);
  EXPECT_EQ(chat.transcript().substr(chat.transcript().size() - 2), "\n\n");
  EXPECT_TRUE(r1->empty() || r1->front() != ' ');
  auto r2 = chat.say("And then?", [](const std::string&) {});
  ASSERT_TRUE(bool(r2));
  // The state is exactly the transcript fed from scratch (byte tokens: one per byte).
  State fresh = m->new_state();
  m->forward_seq(tok->encode(chat.transcript()), fresh, nullptr, Logits::none);
  EXPECT_LT(test::max_abs_diff(fresh.data, chat.state().data), 1e-3f);
  const std::string t2 = chat.transcript();
  auto r3 = chat.retry([](const std::string&) {});  // greedy: the same reply again
  ASSERT_TRUE(bool(r3));
  EXPECT_EQ(*r3, *r2);
  EXPECT_EQ(chat.transcript(), t2);
  EXPECT_FALSE(bool(chat.say(" \n ", [](const std::string&) {})));
  chat.reset();
  EXPECT_TRUE(chat.transcript().empty());
  EXPECT_FALSE(bool(chat.retry([](const std::string&) {})));
}

}  // namespace
}  // namespace wkv
