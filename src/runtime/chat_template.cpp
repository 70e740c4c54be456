#include "runtime/chat_template.hpp"

namespace wkv {

std::string clean_chat_text(const std::string& text) {
  std::string s;
  s.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    s += text[i];
  }
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '\n') {
      size_t j = i;
      while (j < s.size() && s[j] == '\n') ++j;
      out += '\n';
      i = j;
    } else {
      out += s[i++];
    }
  }
  // Python str.strip(): ASCII whitespace here (space, \t, \n, \v, \f, \r).
  auto ws = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  size_t b = 0, e = out.size();
  while (b < e && ws(out[b])) ++b;
  while (e > b && ws(out[e - 1])) --e;
  return out.substr(b, e - b);
}

Expected<std::vector<std::string>> chat_prompt_pieces(const std::vector<ChatMessage>& messages) {
  if (messages.empty()) return Error{"messages is empty: give at least one user message"};
  std::vector<std::string> pieces;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    std::string name;
    if (m.role == "system" || m.role == "developer") name = "System";
    else if (m.role == "user") name = "User";
    else if (m.role == "assistant") name = "Assistant";
    else if (m.role == "tool") name = "User";
    else
      return Error{"messages[" + std::to_string(i) + "].role: unknown role '" + m.role +
                   "' (system, user, assistant, tool)"};
    std::string text = clean_chat_text(m.content);
    if (m.role == "tool") text = "Function output:\n" + text;
    if (text.empty() && m.role != "assistant")
      return Error{"messages[" + std::to_string(i) + "].content is empty"};
    pieces.push_back(name + ": " + text + "\n\n");
  }
  if (messages.back().role == "assistant")
    return Error{"the last message is from the assistant: end with a user message"};
  pieces.push_back("Assistant:");
  return pieces;
}

}  // namespace wkv
