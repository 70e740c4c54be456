// The generate loop: prompt -> state (forward_seq), then sample / accept / decode / step,
// streaming whole UTF-8 text through an event callback and stopping on stop strings,
// end-of-document, or the token budget.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "model/model.hpp"
#include "sample/sampler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace wkv {

enum class StopReason { length, stop_string, end_of_text };

struct GenerateOptions {
  int max_tokens = 100;
  std::vector<std::string> stop;  // generation ends before any of these strings
  bool stop_at_end_of_text = true;  // token 0 ends a document in RWKV vocabularies
};

struct GenerateStats {
  int prompt_tokens = 0;
  int generated_tokens = 0;
  double prompt_seconds = 0;
  double generate_seconds = 0;
  StopReason reason = StopReason::length;
};

// Holds back text that might be the start of a stop string; emits the rest.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends `text`; returns what can be emitted now. Sets `stopped` when a stop string appeared
  // (the returned text then ends right before it).
  std::string push(const std::string& text, bool* stopped);
  // What is still held back (at the end of generation it is emitted).
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
};

// Runs generation from `state` (updated in place). `on_text` receives text as it is decoded.
Expected<GenerateStats> generate(Model& model, const Tokenizer& tok, Sampler& sampler,
                                 State& state, const std::vector<int32_t>& prompt,
                                 const GenerateOptions& opt,
                                 const std::function<void(const std::string&)>& on_text);

}  // namespace wkv
