// A terminal-chat conversation on one recurrent state (G1/World format, RWKV_REFERENCE §3.4):
// each turn feeds "User: text\n\nAssistant:" to the state and generates until "\n\n", so the
// state always holds exactly the transcript (the reference's rule: keep state and text in step).
// The state before the last turn is kept so the last reply can be regenerated.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "model/model.hpp"
#include "runtime/generate.hpp"
#include "sample/sampler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace wkv {

class ChatSession {
 public:
  // `sampler` is used afresh for each reply (occurrence table cleared, as the reference does),
  // its seed advanced per reply so /retry gives another answer.
  ChatSession(Model& model, const Tokenizer& tok, SamplerConfig sampler, int max_tokens);

  // One turn: the user's text (cleaned like the reference) in, the reply streamed to `on_text`
  // (leading space stripped) and returned. Errors: empty message after cleaning.
  Expected<std::string> say(const std::string& user,
                            const std::function<void(const std::string&)>& on_text);
  // Regenerates the last reply from the state before it. Error when there is no turn.
  Expected<std::string> retry(const std::function<void(const std::string&)>& on_text);
  void reset();  // empty conversation, fresh state

  const State& state() const { return state_; }
  const std::string& transcript() const { return transcript_; }  // the text the state consumed
  // Replaces the conversation (e.g. loaded from a file); /retry is unavailable until next turn.
  void restore(State state, std::string transcript);

 private:
  Expected<std::string> turn(const std::string& user_clean,
                             const std::function<void(const std::string&)>& on_text);
  Model& model_;
  const Tokenizer& tok_;
  SamplerConfig sc_;
  int max_tokens_;
  uint64_t replies_ = 0;
  State state_;
  std::string transcript_;
  std::optional<State> before_;      // state before the last turn
  std::string before_transcript_, last_user_;
};

}  // namespace wkv
