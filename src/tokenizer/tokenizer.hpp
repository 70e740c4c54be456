// Tokenizer interface and its implementations: the RWKV "World" tokenizer (greedy longest
// byte match over rwkv_vocab_v20230424.txt, ids identical to the official TRIE_TOKENIZER)
// and a byte tokenizer (id = byte value); the GPT-NeoX-20B byte-level BPE of RWKV-4 Pile/Raven
// models is in bpe.hpp. Utf8StreamDecoder (utf8.hpp) prints streams.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "tokenizer/utf8.hpp"

namespace wkv {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids for any bytes (also invalid UTF-8); never fails.
  virtual std::vector<int32_t> encode(std::string_view bytes) const = 0;
  // The exact bytes of `ids` concatenated (may be invalid UTF-8: a character can be split
  // across tokens). An id the tokenizer does not know is an Error naming the id and its
  // position. World: id 0 (end of document, <|endoftext|>) decodes to "".
  virtual Expected<std::string> decode_bytes(std::span<const int32_t> ids) const = 0;
  // One more than the largest id: World 65530 (ids 0..65529), bytes 256, 20B BPE 50277.
  virtual int32_t vocab_size() const = 0;
  virtual std::string name() const = 0;  // "world" / "bytes" / "bpe"
};

// Loads a World vocabulary file (format: shared/vocab/README.md; at most 64 MB). Errors name
// the file and line; a missing file's error says where to get rwkv_vocab_v20230424.txt.
Expected<std::unique_ptr<Tokenizer>> load_world_tokenizer(const std::string& vocab_path);

// Same from the file's contents in memory; `source` names it in error messages.
Expected<std::unique_ptr<Tokenizer>> parse_world_tokenizer(std::string_view contents,
                                                           std::string_view source);

// id = byte value (0..255), vocab_size 256.
std::unique_ptr<Tokenizer> make_byte_tokenizer();

}  // namespace wkv
