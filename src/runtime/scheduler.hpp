// The scheduler: one worker thread owns the Model and advances every active sequence together,
// one Model::forward_batch call per step. Each sequence is at its own position: some are still
// processing their prompt (a chunk of tokens, logits for the last one only when the chunk ends
// the prompt), others generate (one token, logits for it). After each step the worker samples,
// decodes whole UTF-8, matches stop strings and sends events to the request's callback.
// Prompts start from the longest prefix found in the PrefixCache, and states are stored back
// into it at chosen prefix lengths, so repeated prefixes are processed once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "model/model.hpp"
#include "runtime/prefix_cache.hpp"
#include "sample/sampler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace wkv {

enum class FinishReason {
  length,       // max_tokens reached
  stop_string,  // a stop string appeared (it is not part of the text)
  end_of_text,  // token 0 was sampled
  cancelled,    // cancel() or shutdown
  timeout,      // the request's deadline passed
};
std::string_view finish_reason_name(FinishReason r);  // "length", "stop", "eos", ...

// What a request's callback receives, on the worker thread (or on the thread calling cancel()
// for a request still queued). A request gets zero or more token events, then one done event.
struct Event {
  bool done = false;
  int32_t token = -1;       // token events: the token just generated
  std::string text;         // text released now (whole UTF-8; stop-string look-ahead held back)
  FinishReason reason = FinishReason::length;  // done events
  int prompt_tokens = 0;    // done events: usage
  int cached_tokens = 0;    //   prompt tokens taken from the prefix cache
  int completion_tokens = 0;
  std::vector<float> embedding;  // done events of embedding requests
};

struct Request {
  std::vector<int32_t> prompt;  // at least one token, all inside the model's vocabulary
  SamplerConfig sampler;
  int max_tokens = 16;
  std::vector<std::string> stop;
  bool stop_at_end_of_text = true;
  // Process the prompt only and return its embedding: the last layer's channel-mix input
  // (ln2 output, `blocks.{L-1}.ffn.x_prev` of the state) after the final token, L2-normalized.
  bool embedding = false;
  // Prompt lengths after which the state is worth caching (e.g. message boundaries); the
  // scheduler adds the last multiple of its cache block below the prompt's length.
  std::vector<size_t> save_points;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::function<void(Event&&)> on_event;
};

struct SchedulerOptions {
  int max_active = 4;      // sequences advanced together (--parallel)
  int max_queue = 64;      // waiting requests beyond those; more are rejected
  int prompt_chunk = 256;  // prompt tokens per sequence per step
  // Prompt tokens per step over all sequences (generating sequences always get their token), so
  // long prompts arriving together do not stall the streams already generating. Sequences
  // reading prompts share it in arrival order; the first always gets at least one token.
  int step_prompt_tokens = 1024;
  size_t cache_bytes = 64u << 20;  // prefix-state cache budget (0 = no cache)
  int cache_block = 32;    // prompts are cached at multiples of this many tokens
};

struct SchedulerStats {
  uint64_t submitted = 0, rejected = 0, completed = 0, cancelled = 0;
  uint64_t prompt_tokens = 0;     // prompt tokens processed (not counting cache hits)
  uint64_t generated_tokens = 0;
  uint64_t steps = 0, batch_items = 0;  // forward_batch calls and sequences in them
  int last_batch_size = 0;
  int active = 0, queued = 0;
  PrefixCacheStats cache;
};

struct Submitted {
  enum class Status { ok, queue_full, shutting_down, invalid } status = Status::ok;
  uint64_t id = 0;
  std::string message;  // for invalid / queue_full / shutting_down
};

class Scheduler {
 public:
  Scheduler(Model& model, const Tokenizer& tok, SchedulerOptions opt);
  ~Scheduler();  // cancels everything still running and joins the worker
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  Submitted submit(Request r);
  // Ends a request: a queued one at once (its done event is sent from this thread), an active
  // one before the next step. Unknown or finished ids are ignored.
  void cancel(uint64_t id);
  // Stops accepting requests and waits until every accepted one has finished.
  void drain();
  SchedulerStats stats() const;
  PrefixCache& cache() { return cache_; }
  const Model& model() const { return model_; }

 private:
  struct Slot;
  void worker();
  void start_slot(Slot& s);
  void finish(Slot& s, FinishReason r, std::vector<Event>& out);

  Model& model_;
  const Tokenizer& tok_;
  SchedulerOptions opt_;
  PrefixCache cache_;
  int embed_slot_ = -1;  // index of the last layer's ffn.x_prev in State::slots

  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::pair<uint64_t, Request>> queue_;
  std::unordered_set<uint64_t> active_ids_, cancel_ids_;
  uint64_t next_id_ = 1;
  bool accepting_ = true, stop_ = false;
  SchedulerStats st_;
  std::thread thread_;
};

}  // namespace wkv
