// libFuzzer target for the byte-level BPE tokenizer (tokenizer/bpe.cpp): any input encodes,
// every id is in range, and decode_bytes(encode(x)) is the NFC form of x (less the bytes the
// vocabulary has no token for, which only occur in invalid UTF-8); the stream decoder turns
// the tokens into valid UTF-8 that equals that text when it is valid.
// Uses the real 20B_tokenizer.json from $WKV_SHARED/vocab or ../shared/vocab (relative to the
// working directory, as scripts/fuzz.sh runs), else a small tokenizer.json built here.
// An input starting with '{' is also fed to the tokenizer.json parser (must not crash).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe.hpp"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_bpe: %s\n", what);
    std::abort();
  }
}

// GPT-2 byte table: printable bytes map to themselves, the other 68 to U+0100...
uint32_t byte_char(int b) {
  static const std::vector<uint32_t> table = [] {
    std::vector<uint32_t> t(256);
    uint32_t extra = 0;
    for (int i = 0; i < 256; ++i) {
      const bool printable = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
      t[static_cast<size_t>(i)] = printable ? static_cast<uint32_t>(i) : 256 + extra++;
    }
    return t;
  }();
  return table[static_cast<size_t>(b)];
}

// A JSON string literal of code points, every one escaped.
std::string json_string(const std::u32string& s) {
  std::string out = "\"";
  for (char32_t cp : s) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(cp));
    out += buf;
  }
  return out + "\"";
}

// Bytes as a token string (through the byte table).
std::u32string token(std::string_view bytes) {
  std::u32string s;
  for (char c : bytes) s.push_back(static_cast<char32_t>(byte_char(static_cast<uint8_t>(c))));
  return s;
}

// A small tokenizer of the same shape as 20B_tokenizer.json: 256 byte tokens, a few merges,
// a special token and two runs of spaces as added tokens.
std::string tiny_tokenizer_json() {
  const std::pair<std::string_view, std::string_view> merges[] = {
      {"t", "h"},   {" ", "t"}, {"th", "e"}, {" t", "h"}, {" th", "e"}, {"a", "a"},
      {"aa", "aa"}, {"e", "r"}, {" ", " "},  {"1", "2"},  {"\n", "\n"}};
  std::string vocab, merge_list;
  int id = 0;
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    vocab +=
        (b ? "," : "") + json_string(token(std::string_view(&c, 1))) + ":" + std::to_string(id++);
  }
  for (const auto& [l, r] : merges) {
    const std::u32string left = token(l), right = token(r);
    vocab += "," + json_string(left + right) + ":" + std::to_string(id++);
    merge_list += (merge_list.empty() ? "" : ",") + json_string(left + U" " + right);
  }
  const std::string added =
      "[{\"id\":" + std::to_string(id) + ",\"content\":\"<|endoftext|>\",\"special\":true," +
      "\"normalized\":false},{\"id\":" + std::to_string(id + 1) +
      ",\"content\":\"  \",\"normalized\":true},{\"id\":" + std::to_string(id + 2) +
      ",\"content\":\"   \",\"normalized\":true}]";
  return "{\"added_tokens\":" + added + ",\"normalizer\":{\"type\":\"NFC\"}," +
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}," +
         "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{" + vocab +
         "},\"merges\":[" + merge_list + "]}}";
}

struct Loaded {
  std::unique_ptr<wkv::Tokenizer> tok;
  bool dropped[256] = {};  // bytes without a token: encode drops them
};

const Loaded& loaded() {
  static const Loaded l = [] {
    Loaded out;
    std::vector<std::string> candidates;
    if (const char* e = std::getenv("WKV_SHARED"))
      candidates.push_back(std::string(e) + "/vocab/20B_tokenizer.json");
    candidates.push_back("../shared/vocab/20B_tokenizer.json");
    candidates.push_back("../../shared/vocab/20B_tokenizer.json");
    for (const auto& path : candidates) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(path, ec)) continue;
      auto t = wkv::load_bpe_tokenizer(path);
      if (t) {
        std::fprintf(stderr, "fuzz_bpe: using %s\n", path.c_str());
        out.tok = std::move(t).value();
        break;
      }
      std::fprintf(stderr, "fuzz_bpe: %s\n", t.error().message.c_str());
    }
    if (!out.tok) {
      std::fprintf(stderr, "fuzz_bpe: 20B_tokenizer.json not found; using a built-in tokenizer\n");
      auto t = wkv::parse_bpe_tokenizer(tiny_tokenizer_json(), "built-in tokenizer.json");
      if (!t) std::fprintf(stderr, "fuzz_bpe: %s\n", t.error().message.c_str());
      check(t.ok(), "the built-in tokenizer.json does not load");
      out.tok = std::move(t).value();
    }
    for (int b = 0; b < 256; ++b) {
      const char c = static_cast<char>(b);
      out.dropped[b] = out.tok->encode(std::string_view(&c, 1)).empty();
      // Only bytes that never occur in valid UTF-8 may lack a token.
      check(!out.dropped[b] || b == 0xC0 || b == 0xC1 || b >= 0xF5, "a UTF-8 byte has no token");
    }
    return out;
  }();
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Loaded& l = loaded();
  const wkv::Tokenizer& tok = *l.tok;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (!input.empty() && input[0] == '{') {
    auto t = wkv::parse_bpe_tokenizer(input, "fuzz.json");
    if (!t) check(!t.error().message.empty(), "empty error message");
  }

  const std::vector<int32_t> ids = tok.encode(input);
  for (int32_t id : ids) check(id >= 0 && id < tok.vocab_size(), "id out of range");
  auto back = tok.decode_bytes(ids);
  check(back.ok(), "encoded ids do not decode");

  std::string expected = wkv::nfc_normalize(input);
  std::erase_if(expected, [&](char c) { return l.dropped[static_cast<uint8_t>(c)]; });
  check(*back == expected, "decode(encode(x)) != NFC(x)");
  const bool valid = wkv::is_valid_utf8(input);
  if (valid) check(wkv::is_valid_utf8(*back), "NFC of valid UTF-8 is not valid UTF-8");

  // Streaming the tokens one by one gives valid UTF-8, equal to the text when it is valid.
  wkv::Utf8StreamDecoder dec;
  std::string out;
  for (int32_t id : ids) {
    auto piece = tok.decode_bytes(std::span<const int32_t>(&id, 1));
    check(piece.ok(), "single id failed to decode");
    out += dec.push(*piece);
  }
  out += dec.flush();
  check(wkv::is_valid_utf8(out), "stream decoder produced invalid UTF-8");
  if (valid) check(out == *back, "stream decoder changed valid UTF-8");
  return 0;
}
