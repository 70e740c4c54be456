// libFuzzer target for the World vocab parser (tokenizer/world_vocab.cpp) and, when the input
// parses, the trie built from it: encode -> decode_bytes must give the input back.
// Input byte 0 picks the mode: odd = the rest is a whole vocab file; even = the rest is
// appended to a valid 256-byte base vocab, so that the trie and encoder get exercised too.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.hpp"

namespace {

const std::string& base_vocab() {
  static const std::string v = [] {
    std::string s;
    char buf[32];
    for (int b = 0; b < 256; ++b) {
      std::snprintf(buf, sizeof buf, "%d b'\\x%02x' 1\n", b + 1, b);
      s += buf;
    }
    return s;
  }();
  return v;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_vocab: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string contents = (data[0] & 1) ? std::string(rest) : base_vocab() + std::string(rest);

  auto tok = wkv::parse_world_tokenizer(contents, "fuzz.txt");
  if (!tok) {
    check(!tok.error().message.empty(), "empty error message");
    return 0;
  }
  // Any bytes encode, and decode back exactly.
  const auto ids = (*tok)->encode(rest);
  for (int32_t id : ids) check(id > 0 && id < (*tok)->vocab_size(), "id out of range");
  auto back = (*tok)->decode_bytes(ids);
  check(back.ok() && *back == rest, "encode/decode round trip failed");

  // The stream decoder's output is always valid UTF-8.
  wkv::Utf8StreamDecoder dec;
  std::string out;
  for (int32_t id : ids) {
    auto piece = (*tok)->decode_bytes(std::span<const int32_t>(&id, 1));
    check(piece.ok(), "single id failed to decode");
    out += dec.push(*piece);
  }
  out += dec.flush();
  check(wkv::is_valid_utf8(out), "stream decoder produced invalid UTF-8");
  if (wkv::is_valid_utf8(rest)) check(out == rest, "stream decoder changed valid UTF-8");
  return 0;
}
