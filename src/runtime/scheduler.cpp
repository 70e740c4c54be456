#include "runtime/scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "runtime/generate.hpp"

namespace wkv {

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::length: return "length";
    case FinishReason::stop_string: return "stop";
    case FinishReason::end_of_text: return "eos";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::timeout: return "timeout";
  }
  return "?";
}

struct Scheduler::Slot {
  uint64_t id = 0;
  Request req;
  State state;
  std::unique_ptr<Sampler> sampler;
  std::vector<float> logits;
  std::vector<size_t> save_points;  // ascending, each in (cached, prompt.size())
  size_t pos = 0;                   // prompt tokens in the state
  int cached = 0;
  std::vector<int32_t> generated;   // sampled tokens; all but the last are in the state
  Utf8StreamDecoder utf8;
  StopMatcher stops{{}};
  bool done = false;
  // The current step's input.
  size_t feed_begin = 0, feed_end = 0;
  bool feeding_prompt = false;
};

Scheduler::Scheduler(Model& model, const Tokenizer& tok, SchedulerOptions opt)
    : model_(model), tok_(tok), opt_(opt), cache_(opt.cache_bytes) {
  opt_.max_active = std::max(1, opt_.max_active);
  opt_.max_queue = std::max(0, opt_.max_queue);
  opt_.prompt_chunk = std::max(1, opt_.prompt_chunk);
  opt_.step_prompt_tokens = std::max(1, opt_.step_prompt_tokens);
  opt_.cache_block = std::max(1, opt_.cache_block);
  State s = model_.new_state();
  const std::string want = "blocks." + std::to_string(model_.hparams().n_layer - 1) + ".ffn.x_prev";
  for (size_t i = 0; i < s.slots.size(); ++i)
    if (s.slots[i].name == want) embed_slot_ = static_cast<int>(i);
  thread_ = std::thread([this] { worker(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    accepting_ = false;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Submitted Scheduler::submit(Request r) {
  Submitted res;
  const int V = model_.hparams().vocab_size;
  if (r.prompt.empty()) {
    res.status = Submitted::Status::invalid;
    res.message = "the prompt is empty: give at least one token of text";
    return res;
  }
  for (size_t i = 0; i < r.prompt.size(); ++i)
    if (r.prompt[i] < 0 || r.prompt[i] >= V) {
      res.status = Submitted::Status::invalid;
      res.message = "prompt token " + std::to_string(r.prompt[i]) + " at position " +
                    std::to_string(i) + " is outside the model's vocabulary";
      return res;
    }
  if (r.max_tokens < 0) r.max_tokens = 0;
  if (r.embedding && embed_slot_ < 0) {
    res.status = Submitted::Status::invalid;
    res.message = "this model's state has no hidden-state slot for embeddings";
    return res;
  }
  {
    std::lock_guard lock(mu_);
    if (!accepting_) {
      res.status = Submitted::Status::shutting_down;
      res.message = "the server is shutting down";
      return res;
    }
    const size_t busy = active_ids_.size();
    if (busy >= static_cast<size_t>(opt_.max_active) &&
        queue_.size() >= static_cast<size_t>(opt_.max_queue)) {
      ++st_.rejected;
      res.status = Submitted::Status::queue_full;
      res.message = "the request queue is full (" + std::to_string(opt_.max_queue) +
                    " waiting); retry later";
      return res;
    }
    res.id = next_id_++;
    ++st_.submitted;
    queue_.emplace_back(res.id, std::move(r));
  }
  cv_.notify_all();
  return res;
}

void Scheduler::cancel(uint64_t id) {
  Request r;
  bool found = false;
  {
    std::lock_guard lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      if (it->first == id) {
        r = std::move(it->second);
        queue_.erase(it);
        found = true;
        ++st_.cancelled;
        ++st_.completed;
        break;
      }
    if (!found && active_ids_.count(id)) cancel_ids_.insert(id);
  }
  if (found) {
    idle_cv_.notify_all();
    Event e;
    e.done = true;
    e.reason = FinishReason::cancelled;
    e.prompt_tokens = static_cast<int>(r.prompt.size());
    if (r.on_event) r.on_event(std::move(e));
  } else {
    cv_.notify_all();
  }
}

void Scheduler::drain() {
  std::unique_lock lock(mu_);
  accepting_ = false;
  idle_cv_.wait(lock, [&] { return queue_.empty() && active_ids_.empty(); });
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mu_);
  SchedulerStats s = st_;
  s.active = static_cast<int>(active_ids_.size());
  s.queued = static_cast<int>(queue_.size());
  s.cache = cache_.stats();
  return s;
}

void Scheduler::start_slot(Slot& s) {
  const auto& p = s.req.prompt;
  s.state = model_.new_state();
  s.sampler = std::make_unique<Sampler>(s.req.sampler);
  s.logits.assign(static_cast<size_t>(model_.hparams().vocab_size), 0.0f);
  s.stops = StopMatcher(s.req.stop);
  // At least the last prompt token is always processed: its logits are needed.
  if (opt_.cache_bytes > 0) s.pos = cache_.lookup(p, p.size() - 1, s.state);
  s.cached = static_cast<int>(s.pos);
  std::vector<size_t> pts = s.req.save_points;
  pts.push_back((p.size() - 1) / opt_.cache_block * opt_.cache_block);
  std::sort(pts.begin(), pts.end());
  pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
  for (size_t x : pts)
    if (x > s.pos && x < p.size()) s.save_points.push_back(x);
  if (opt_.cache_bytes == 0) s.save_points.clear();
}

void Scheduler::finish(Slot& s, FinishReason r, std::vector<Event>& out) {
  s.done = true;
  Event e;
  e.done = true;
  e.reason = r;
  if (r != FinishReason::stop_string && r != FinishReason::cancelled) {
    bool stopped = false;
    e.text = s.stops.push(s.utf8.flush(), &stopped);
    if (!stopped) e.text += s.stops.flush();
    else e.reason = FinishReason::stop_string;
  }
  e.prompt_tokens = static_cast<int>(s.req.prompt.size());
  e.cached_tokens = s.cached;
  e.completion_tokens = static_cast<int>(s.generated.size());
  if (s.req.embedding && embed_slot_ >= 0 && s.pos == s.req.prompt.size()) {
    const auto& sl = s.state.slots[static_cast<size_t>(embed_slot_)];
    const float* v = s.state.slot(static_cast<size_t>(embed_slot_));
    double n2 = 0;
    for (size_t i = 0; i < sl.size; ++i) n2 += double(v[i]) * v[i];
    const float inv = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.0f;
    e.embedding.resize(sl.size);
    for (size_t i = 0; i < sl.size; ++i) e.embedding[i] = v[i] * inv;
  }
  // The state now holds the prompt and every generated token but the last: a conversation that
  // continues with this text starts from here.
  if (opt_.cache_bytes > 0 && s.pos == s.req.prompt.size() && s.generated.size() > 1 &&
      r != FinishReason::cancelled && r != FinishReason::timeout) {
    std::vector<int32_t> key = s.req.prompt;
    key.insert(key.end(), s.generated.begin(), s.generated.end() - 1);
    cache_.insert(key, s.state);
  }
  out.push_back(std::move(e));
}

void Scheduler::worker() {
  std::vector<std::unique_ptr<Slot>> active;
  std::vector<BatchItem> items;
  std::vector<std::pair<Slot*, Event>> events;
  while (true) {
    std::vector<std::unique_ptr<Slot>> admitted;
    std::unordered_set<uint64_t> cancels;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || !active.empty(); });
      if (stop_) {
        // Hard stop: everything still running or queued is cancelled.
        for (auto& s : active) cancels.insert(s->id);
        for (auto& [id, r] : queue_) {
          auto s = std::make_unique<Slot>();
          s->id = id;
          s->req = std::move(r);
          active_ids_.insert(id);
          cancels.insert(id);
          admitted.push_back(std::move(s));
        }
        queue_.clear();
      } else {
        while (!queue_.empty() && active.size() + admitted.size() < size_t(opt_.max_active)) {
          auto s = std::make_unique<Slot>();
          s->id = queue_.front().first;
          s->req = std::move(queue_.front().second);
          queue_.pop_front();
          active_ids_.insert(s->id);
          admitted.push_back(std::move(s));
        }
      }
      cancels.insert(cancel_ids_.begin(), cancel_ids_.end());
      cancel_ids_.clear();
    }
    const bool stopping = [&] {
      std::lock_guard lock(mu_);
      return stop_;
    }();
    for (auto& s : admitted) {
      if (!stopping) start_slot(*s);
      active.push_back(std::move(s));
    }

    std::vector<Event> out;
    std::vector<Slot*> out_slot;
    auto emit_finish = [&](Slot& s, FinishReason r) {
      finish(s, r, out);
      out_slot.push_back(&s);
    };
    const auto now = std::chrono::steady_clock::now();
    for (auto& s : active) {
      if (cancels.count(s->id)) emit_finish(*s, FinishReason::cancelled);
      else if (now > s->req.deadline) emit_finish(*s, FinishReason::timeout);
    }

    // Build one batch over every live slot.
    items.clear();
    std::vector<Slot*> in_batch;
    size_t prompt_budget = static_cast<size_t>(opt_.step_prompt_tokens);
    for (auto& sp : active) {
      Slot& s = *sp;
      if (s.done) continue;
      BatchItem b;
      b.state = &s.state;
      const auto& p = s.req.prompt;
      if (s.pos < p.size()) {
        if (prompt_budget == 0) continue;  // waits for the next step
        size_t end = std::min({p.size(), s.pos + static_cast<size_t>(opt_.prompt_chunk),
                               s.pos + prompt_budget});
        for (size_t x : s.save_points)
          if (x > s.pos && x < end) {
            end = x;
            break;
          }
        prompt_budget -= end - s.pos;
        s.feed_begin = s.pos;
        s.feed_end = end;
        s.feeding_prompt = true;
        b.tokens = std::span<const int32_t>(p.data() + s.pos, end - s.pos);
        const bool last = end == p.size() && !s.req.embedding;
        b.which = last ? Logits::last : Logits::none;
        b.logits = last ? s.logits.data() : nullptr;
      } else {
        s.feeding_prompt = false;
        b.tokens = std::span<const int32_t>(&s.generated.back(), 1);
        b.which = Logits::last;
        b.logits = s.logits.data();
      }
      items.push_back(b);
      in_batch.push_back(&s);
    }
    if (!items.empty()) {
      model_.forward_batch(items);
      uint64_t prompt_fed = 0, gen = 0;
      for (Slot* sp : in_batch) {
        Slot& s = *sp;
        const auto& p = s.req.prompt;
        if (s.feeding_prompt) {
          prompt_fed += s.feed_end - s.feed_begin;
          s.pos = s.feed_end;
          if (std::binary_search(s.save_points.begin(), s.save_points.end(), s.pos))
            cache_.insert(std::span<const int32_t>(p.data(), s.pos), s.state);
          if (s.pos < p.size()) continue;
          if (s.req.embedding) {
            emit_finish(s, FinishReason::length);
            continue;
          }
        }
        // Logits are ready: sample the next token, exactly as generate() does.
        if (static_cast<int>(s.generated.size()) >= s.req.max_tokens) {
          emit_finish(s, FinishReason::length);
          continue;
        }
        const int32_t token = s.sampler->sample(s.logits);
        if (token == 0 && s.req.stop_at_end_of_text) {
          emit_finish(s, FinishReason::end_of_text);
          continue;
        }
        s.generated.push_back(token);
        ++gen;
        auto bytes = tok_.decode_bytes(std::span<const int32_t>(&token, 1));
        std::string piece = bytes ? *bytes : std::string();
        s.sampler->accept(token, is_penalty_exempt_text(piece) ? 0.0f : 1.0f);
        bool stopped = false;
        Event e;
        e.token = token;
        e.text = s.stops.push(s.utf8.push(piece), &stopped);
        out.push_back(std::move(e));
        out_slot.push_back(&s);
        if (stopped) emit_finish(s, FinishReason::stop_string);
        else if (static_cast<int>(s.generated.size()) >= s.req.max_tokens)
          emit_finish(s, FinishReason::length);
      }
      std::lock_guard lock(mu_);
      ++st_.steps;
      st_.batch_items += items.size();
      st_.last_batch_size = static_cast<int>(items.size());
      st_.prompt_tokens += prompt_fed;
      st_.generated_tokens += gen;
    }

    // Deliver events without holding the lock, in order.
    for (size_t i = 0; i < out.size(); ++i)
      if (out_slot[i]->req.on_event) out_slot[i]->req.on_event(std::move(out[i]));

    bool removed = false;
    {
      std::lock_guard lock(mu_);
      for (auto& s : active)
        if (s->done) {
          active_ids_.erase(s->id);
          ++st_.completed;
          removed = true;
        }
      for (size_t i = 0; i < out.size(); ++i)
        if (out[i].done && out[i].reason == FinishReason::cancelled) ++st_.cancelled;
    }
    std::erase_if(active, [](const auto& s) { return s->done; });
    if (removed) idle_cv_.notify_all();
    if (stopping && active.empty()) {
      std::lock_guard lock(mu_);
      if (queue_.empty()) break;
    }
  }
}

}  // namespace wkv
