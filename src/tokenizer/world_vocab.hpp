// Parser for the World vocabulary file (rwkv_vocab_v20230424.txt): lines `ID LITERAL LENGTH`
// read exactly as the official loader does, but strictly (unknown escapes, bad lengths and
// duplicate ids are errors naming the file and line). No trie here: see world_tokenizer.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace wkv {

inline constexpr int32_t kWorldMaxId = (1 << 21) - 1;      // largest id a vocab file may use
inline constexpr size_t kWorldMaxVocabBytes = 64u << 20;    // largest vocab file accepted

struct WorldVocab {
  struct Entry {
    int32_t id;
    uint32_t line;    // 1-based line in the file
    uint32_t offset;  // token bytes are bytes.substr(offset, length)
    uint32_t length;
  };
  std::string bytes;           // every token's bytes, back to back
  std::vector<Entry> entries;  // in file order
  int32_t max_id = 0;

  std::string_view token(const Entry& e) const {
    return std::string_view(bytes).substr(e.offset, e.length);
  }
};

// Parses a whole vocab file. Accepts LF or CRLF line ends and a missing final newline.
// Checks: valid UTF-8, `ID` decimal in 1..kWorldMaxId and unique, `LITERAL` (everything
// between the first and the last space) one Python str/bytes literal, its byte length
// (str literals are UTF-8 encoded) equal to `LENGTH`, no empty tokens.
// Errors read "<source>:<line>: <what>".
Expected<WorldVocab> parse_world_vocab(std::string_view contents, std::string_view source);

// Appends the bytes of one Python literal: '...' / "..." (optionally u-prefixed; a str,
// appended UTF-8 encoded, so \xhh is the code point U+00hh) or b'...' / b"..." (bytes, so
// \xhh is the raw byte). Escapes: \\ \' \" \a \b \f \n \r \t \v \ooo \xhh, and in str only
// \uhhhh \Uhhhhhhhh. Anything else (unknown escapes, \N{...}, raw/f/triple-quoted strings,
// surrogates, text after the closing quote) is an Error without location.
Status parse_python_literal(std::string_view literal, std::string& out);

}  // namespace wkv
