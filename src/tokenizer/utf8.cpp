// UTF-8 validation, encoding and the streaming decoder (see utf8.hpp for the rules).
#include "tokenizer/utf8.hpp"

#include <cstring>

namespace wkv {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// What a lead byte starts: `need` continuation bytes, the first of which must lie in
// [lo, hi] (later ones in 80..BF). need < 0: the byte can never start a character.
struct Lead {
  int need;
  uint8_t lo, hi;
};

Lead classify_lead(uint8_t b) {
  if (b < 0x80) return {0, 0x80, 0xBF};
  if (b < 0xC2) return {-1, 0, 0};  // continuation byte or overlong 2-byte lead
  if (b < 0xE0) return {1, 0x80, 0xBF};
  if (b == 0xE0) return {2, 0xA0, 0xBF};  // no overlongs
  if (b == 0xED) return {2, 0x80, 0x9F};  // no surrogates
  if (b < 0xF0) return {2, 0x80, 0xBF};
  if (b == 0xF0) return {3, 0x90, 0xBF};  // no overlongs
  if (b < 0xF4) return {3, 0x80, 0xBF};
  if (b == 0xF4) return {3, 0x80, 0x8F};  // nothing above U+10FFFF
  return {-1, 0, 0};
}

}  // namespace

size_t utf8_valid_prefix(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    Lead l = classify_lead(p[i]);
    if (l.need < 0) return i;
    if (static_cast<size_t>(l.need) >= n - i) return i;  // truncated
    if (l.need > 0) {
      if (p[i + 1] < l.lo || p[i + 1] > l.hi) return i;
      for (int k = 2; k <= l.need; ++k)
        if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    i += static_cast<size_t>(l.need) + 1;
  }
  return n;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string Utf8StreamDecoder::push(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + n_pending_);
  for (char ch : bytes) {
    auto b = static_cast<uint8_t>(ch);
    if (need_ > 0) {
      if (b >= lo_ && b <= hi_) {
        pending_[n_pending_++] = ch;
        lo_ = 0x80;
        hi_ = 0xBF;
        if (--need_ == 0) {
          out.append(pending_, n_pending_);
          n_pending_ = 0;
        }
        continue;
      }
      // The held prefix can never complete: it is one maximal ill-formed subpart.
      // Replace it, then read this byte afresh as a lead byte.
      out.append(kReplacement);
      n_pending_ = 0;
      need_ = 0;
    }
    Lead l = classify_lead(b);
    if (l.need == 0) {
      out.push_back(ch);
    } else if (l.need < 0) {
      out.append(kReplacement);
    } else {
      pending_[0] = ch;
      n_pending_ = 1;
      need_ = l.need;
      lo_ = l.lo;
      hi_ = l.hi;
    }
  }
  return out;
}

std::string Utf8StreamDecoder::flush() {
  std::string out;
  if (n_pending_ > 0) out.assign(kReplacement);
  reset();
  return out;
}

}  // namespace wkv
