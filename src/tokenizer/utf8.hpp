// UTF-8 helpers for the tokenizers: strict validation (Unicode Table 3-7: no overlongs,
// surrogates or code points above U+10FFFF), encoding a code point, and Utf8StreamDecoder,
// which turns a stream of token bytes into whole characters for printing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wkv {

// Length of the longest well-formed UTF-8 prefix of `s` (what Python's bytes.decode('utf-8')
// accepts); equals s.size() exactly when all of `s` is valid.
size_t utf8_valid_prefix(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return utf8_valid_prefix(s) == s.size(); }

// Appends the UTF-8 encoding of `cp`. Precondition: cp <= 0x10FFFF and not a surrogate.
void append_utf8(std::string& out, uint32_t cp);

// Streaming decoder: push() token bytes as they are generated and print what it returns.
//
// Rule: a complete, valid character is returned as soon as its last byte arrives; an
// incomplete trailing sequence is held until it completes. A byte sequence that can never
// become valid is replaced by U+FFFD, one per maximal ill-formed subpart (the Unicode
// "best practice" that Python's errors='replace' also follows), and decoding continues
// with the next byte; so the stream never stalls and the output is always valid UTF-8.
// For valid UTF-8 input the concatenated output (pushes + flush) equals the input.
//
// Difference from the official RWKV streaming loop (ChatRWKV PIPELINE.generate: print the
// pending text only when decode() has no U+FFFD): for valid UTF-8 without U+FFFD both
// print the same chunks per token; the official loop stalls forever after an invalid
// byte or after a literal U+FFFD in the text, where this decoder goes on.
class Utf8StreamDecoder {
 public:
  // Returns the characters completed by `bytes` (possibly empty).
  std::string push(std::string_view bytes);
  // End of stream: returns U+FFFD if an incomplete sequence is still held (else ""), and
  // resets the decoder. Use pending() before flush() to get the raw held bytes instead.
  std::string flush();
  // The raw bytes of the incomplete sequence being held (0..3 bytes).
  std::string_view pending() const { return {pending_, n_pending_}; }
  void reset() { n_pending_ = 0; need_ = 0; }

 private:
  char pending_[4] = {};
  size_t n_pending_ = 0;
  int need_ = 0;        // continuation bytes still needed for the held sequence
  uint8_t lo_ = 0x80;   // allowed range of the next continuation byte
  uint8_t hi_ = 0xBF;
};

}  // namespace wkv
