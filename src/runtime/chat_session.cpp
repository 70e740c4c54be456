#include "runtime/chat_session.hpp"

#include "runtime/chat_template.hpp"

namespace wkv {

ChatSession::ChatSession(Model& model, const Tokenizer& tok, SamplerConfig sampler, int max_tokens)
    : model_(model), tok_(tok), sc_(std::move(sampler)), max_tokens_(max_tokens),
      state_(model.new_state()) {
  for (int32_t id = tok_.vocab_size(); id < model_.hparams().vocab_size; ++id) sc_.banned.push_back(id);
}

void ChatSession::reset() {
  state_ = model_.new_state();
  transcript_.clear();
  before_.reset();
}

void ChatSession::restore(State state, std::string transcript) {
  state_ = std::move(state);
  transcript_ = std::move(transcript);
  before_.reset();
}

Expected<std::string> ChatSession::say(const std::string& user,
                                       const std::function<void(const std::string&)>& on_text) {
  std::string clean = clean_chat_text(user);
  if (clean.empty()) return Error{"the message is empty"};
  before_ = state_;
  before_transcript_ = transcript_;
  last_user_ = clean;
  return turn(clean, on_text);
}

Expected<std::string> ChatSession::retry(const std::function<void(const std::string&)>& on_text) {
  if (!before_) return Error{"nothing to retry: no reply yet in this conversation"};
  state_ = *before_;
  transcript_ = before_transcript_;
  return turn(last_user_, on_text);
}

Expected<std::string> ChatSession::turn(const std::string& user,
                                        const std::function<void(const std::string&)>& on_text) {
  const std::string prompt = "User: " + user + "\n\nAssistant:";
  SamplerConfig sc = sc_;
  sc.seed = sc_.seed + replies_++;
  Sampler sampler(sc);
  GenerateOptions opt;
  opt.max_tokens = max_tokens_;
  opt.stop = {kChatStop};
  std::string raw, shown;
  bool started = false;
  auto st = generate(model_, tok_, sampler, state_, tok_.encode(prompt), opt,
                     [&](const std::string& t) {
                       raw += t;
                       std::string s = t;
                       if (!started) {
                         size_t b = s.find_first_not_of(" \n");
                         s.erase(0, b == std::string::npos ? s.size() : b);
                         started = !s.empty();
                       }
                       if (!s.empty()) {
                         shown += s;
                         on_text(s);
                       }
                     });
  if (!st) return st.error();
  transcript_ += prompt + raw + "\n\n";
  // The stop string's tokens were fed; after a length or end-of-text stop the separator is not
  // in the state yet: feed it so the next turn starts in the format.
  if (st->reason != StopReason::stop_string) {
    auto sep = tok_.encode(kChatStop);
    model_.forward_seq(sep, state_, nullptr, Logits::none);
  }
  return shown;
}

}  // namespace wkv
