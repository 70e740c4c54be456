#include "runtime/generate.hpp"

#include <algorithm>

namespace wkv {

std::string StopMatcher::push(const std::string& text, bool* stopped) {
  *stopped = false;
  held_ += text;
  size_t first = std::string::npos;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    size_t p = held_.find(s);
    if (p != std::string::npos) first = std::min(first, p);
  }
  if (first != std::string::npos) {
    *stopped = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Keep the longest suffix of held_ that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_)
    for (size_t n = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); n > keep; --n)
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

Expected<GenerateStats> generate(Model& model, const Tokenizer& tok, Sampler& sampler,
                                 State& state, const std::vector<int32_t>& prompt,
                                 const GenerateOptions& opt,
                                 const std::function<void(const std::string&)>& on_text) {
  using clock = std::chrono::steady_clock;
  const int V = model.hparams().vocab_size;
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= V)
      return Error{"prompt token " + std::to_string(prompt[i]) + " at position " +
                   std::to_string(i) + " is outside the model's vocabulary (0.." +
                   std::to_string(V - 1) + ")"};
  if (prompt.empty()) return Error{"the prompt is empty: give at least one token of text"};

  GenerateStats st;
  std::vector<float> logits(V);
  auto t0 = clock::now();
  model.forward_seq(prompt, state, logits.data(), Logits::last);
  auto t1 = clock::now();
  st.prompt_tokens = static_cast<int>(prompt.size());
  st.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

  Utf8StreamDecoder utf8;
  StopMatcher stops(opt.stop);
  bool stopped = false;
  for (int i = 0; i < opt.max_tokens && !stopped; ++i) {
    const int32_t token = sampler.sample(logits);
    if (token == 0 && opt.stop_at_end_of_text) {
      st.reason = StopReason::end_of_text;
      break;
    }
    ++st.generated_tokens;
    auto bytes = tok.decode_bytes(std::span<const int32_t>(&token, 1));
    std::string piece = bytes ? *bytes : std::string();
    // Official PIPELINE.generate: tokens whose text is whitespace/digits add 0 to occurrence.
    sampler.accept(token, is_penalty_exempt_text(piece) ? 0.0f : 1.0f);
    std::string text = stops.push(utf8.push(piece), &stopped);
    if (!text.empty()) on_text(text);
    // Feed the token so the state always matches the text produced so far.
    const bool more = !stopped && i + 1 < opt.max_tokens;
    model.forward_one(token, state, more ? logits.data() : nullptr);
    if (stopped) st.reason = StopReason::stop_string;
  }
  if (!stopped) {
    std::string rest = stops.push(utf8.flush(), &stopped);
    rest += stopped ? "" : stops.flush();
    if (!rest.empty()) on_text(rest);
  }
  st.generate_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return st;
}

}  // namespace wkv
