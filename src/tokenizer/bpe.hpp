// Byte-level BPE tokenizers read from a Hugging Face `tokenizer.json`: the GPT-NeoX-20B
// tokenizer (shared/vocab/20B_tokenizer.json) of the RWKV-4 Pile and Raven models, and other
// files of the same shape (GPT-2 style). Ids are identical to Hugging Face `tokenizers`.
//
// encode(text), in the order the Hugging Face pipeline applies it:
//   1. added tokens with `normalized: false` (here the special <|endoftext|>, <|padding|>) are
//      cut out of the raw text: leftmost match first, the longest one at that position;
//   2. each piece between them is NFC-normalized (utf8proc), and added tokens with
//      `normalized: true` (here the runs of 2..24 spaces) are cut out of the normalized text;
//   3. the ByteLevel pre-tokenizer splits each remaining piece with the GPT-2 pattern
//      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      (implemented by hand; \s is the Unicode White_Space property);
//   4. each word's bytes are merged by BPE, lowest merge rank first (leftmost on ties).
// `single_word`, `lstrip` and `rstrip` of added tokens are honoured like Hugging Face does
// (word characters as in its `\w`: letters, marks, decimal and letter numbers, connector
// punctuation). Supported: normalizer null or NFC; pre_tokenizer ByteLevel (add_prefix_space,
// use_regex); model BPE without dropout, continuing_subword_prefix or end_of_word_suffix;
// decoder and post_processor null or ByteLevel. Anything else is an Error naming the field.
//
// Input that is not valid UTF-8 (Hugging Face cannot take it) still encodes and never fails:
// each invalid byte is kept as it is (not normalized) and counts as a punctuation-like
// character for the split pattern. A byte without a token is dropped (as Hugging Face drops
// characters it cannot encode): 20B_tokenizer.json has none for C0, C1 and F5..FF, bytes that
// never occur in valid UTF-8. So decode_bytes(encode(x)) == nfc_normalize(x) for valid UTF-8,
// and for any x once those bytes are removed from nfc_normalize(x).
//
// decode_bytes: each token's string mapped back through the GPT-2 byte table (a character
// outside the table, e.g. the real spaces of the added space tokens, gives its UTF-8 bytes),
// exactly as the Hugging Face ByteLevel decoder; special tokens give their text
// ("<|endoftext|>"); an id without a token is an Error naming it. Use Utf8StreamDecoder to
// print streams (Hugging Face's own decode is lossy UTF-8 and skips unknown ids).
//
// A loaded tokenizer is immutable; encode and decode_bytes may run on several threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "tokenizer/tokenizer.hpp"

namespace wkv {

inline constexpr size_t kBpeMaxJsonBytes = 64u << 20;  // largest tokenizer.json accepted
inline constexpr int32_t kBpeMaxId = (1 << 24) - 1;    // largest token id accepted

// Loads a tokenizer.json (at most kBpeMaxJsonBytes). Errors name the file and the JSON field
// ("model.merges[12]: ..."); a missing file's error says where to get 20B_tokenizer.json.
// name() of the result is "bpe"; vocab_size() is one more than the largest id (50277 for
// 20B_tokenizer.json: model ids 0..50253 and added tokens up to 50276).
Expected<std::unique_ptr<Tokenizer>> load_bpe_tokenizer(const std::string& tokenizer_json_path);

// Same from the file's contents in memory; `source` names it in error messages.
Expected<std::unique_ptr<Tokenizer>> parse_bpe_tokenizer(std::string_view json_text,
                                                         std::string_view source);

// Unicode NFC (utf8proc, Unicode 15 data in Debian 12). Invalid UTF-8 bytes are kept as they
// are and the valid runs between them are normalized on their own. Exposed for tests/fuzzing.
std::string nfc_normalize(std::string_view s);

}  // namespace wkv
