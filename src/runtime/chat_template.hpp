// The RWKV World / G1 chat format (RWKV_REFERENCE.md section 3.4):
//   "System: ...\n\nUser: ...\n\nAssistant: ...\n\nUser: ...\n\nAssistant:"
// with no space after the final "Assistant:", message text cleaned as the reference does
// (CRLF -> LF, runs of blank lines collapsed to one newline, trimmed), and "\n\n" as the turn
// separator and stop string. The model's reply starts with a space, which is stripped.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"

namespace wkv {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (also "developer" = system, "tool")
  std::string content;
};

// re.sub(r'\n{2,}', '\n', text.replace('\r\n', '\n')).strip()
std::string clean_chat_text(const std::string& text);

// The prompt as pieces whose concatenation is the whole prompt: one per message
// ("User: text\n\n"), then "Assistant:". Cache-friendly: a conversation's next prompt starts
// with the previous one's pieces. Errors: no messages, an unknown role, an empty message after
// cleaning (except an assistant turn), or the last message not from the user/system/tool.
Expected<std::vector<std::string>> chat_prompt_pieces(const std::vector<ChatMessage>& messages);

inline constexpr const char* kChatStop = "\n\n";

}  // namespace wkv
