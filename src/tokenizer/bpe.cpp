// Byte-level BPE (Hugging Face tokenizer.json, GPT-NeoX-20B): loading and validation, added
// token matching, NFC, the GPT-2 split pattern by hand, rank-ordered merges, decoding.
// Pipeline and rules: bpe.hpp.
#include "tokenizer/bpe.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/file.hpp"
#include "tokenizer/utf8.hpp"

namespace wkv {
namespace {

using json = nlohmann::json;

constexpr const char* kWhereToGetBpe =
    "get 20B_tokenizer.json (the GPT-NeoX-20B tokenizer of RWKV-4 Pile/Raven models) from "
    "https://github.com/BlinkDL/ChatRWKV (20B_tokenizer.json, also v2/) or BlinkDL/RWKV-LM "
    "(RWKV-v4neo/)";

constexpr int kMaxJsonDepth = 64;
constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();

// ---------------------------------------------------------------------------------------------
// Small UTF-8 and Unicode helpers.

// Decodes one well-formed character at s[i] (Unicode Table 3-7). Returns its length, or 0 if
// the bytes there are not a well-formed character (the caller then takes one byte).
size_t decode_utf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  const size_t left = s.size() - i;
  const uint8_t b = p[0];
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  uint32_t v;
  if (b < 0xC2) return 0;
  if (b < 0xE0) {
    need = 1;
    v = b & 0x1Fu;
  } else if (b < 0xF0) {
    need = 2;
    v = b & 0x0Fu;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b < 0xF5) {
    need = 3;
    v = b & 0x07u;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (left <= need) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 1; k <= need; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    v = v << 6 | (p[k] & 0x3Fu);
  }
  *cp = v;
  return need + 1;
}

// The Unicode White_Space property (what \s matches in the Hugging Face pattern).
bool is_white_space(uint32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// `\w` as Hugging Face uses it for single_word (Rust regex: Alphabetic, marks, decimal
// numbers, connector punctuation, joiners), approximated by general categories.
bool is_word_char(uint32_t cp) {
  if (cp == 0x200C || cp == 0x200D) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// The character ending just before byte `end` (at most 4 bytes back); false if none is valid.
bool char_before(std::string_view s, size_t end, uint32_t* cp, size_t* len) {
  for (size_t l = 1; l <= 4 && l <= end; ++l) {
    if (decode_utf8(s, end - l, cp) == l) {
      *len = l;
      return true;
    }
  }
  return false;
}

// Characters with a normalization boundary before them that are common in text: combining
// class 0, NFC_Quick_Check=Yes, and never the second character of a composition, so nothing
// before them interacts with them or anything after them, and a run of them is in NFC.
// (Checked for every code point of these ranges against the Unicode data; see test_bpe.cpp.)
bool nfc_boundary_before(uint32_t cp) {
  return cp < 0x300 ||                      // ASCII, Latin-1, Latin Extended, IPA
         (cp >= 0x400 && cp <= 0x482) ||    // Cyrillic letters
         (cp >= 0x2010 && cp <= 0x2027) ||  // dashes, quotes, ellipsis
         (cp >= 0x3000 && cp <= 0x3029) ||  // CJK symbols and punctuation
         (cp >= 0x3041 && cp <= 0x3096) ||  // Hiragana
         (cp >= 0x30A1 && cp <= 0x30FA) ||  // Katakana
         (cp >= 0x4E00 && cp <= 0x9FFF) ||  // CJK unified ideographs
         (cp >= 0xAC00 && cp <= 0xD7A3) ||  // Hangul syllables
         (cp >= 0xFF01 && cp <= 0xFF60);    // fullwidth forms
}

// Appends the NFC of valid UTF-8 `s` (utf8proc), `s` not split at a normalization boundary.
void append_nfc_utf8proc(std::string& out, std::string_view s) {
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
      &dst, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n >= 0 && dst)
    out.append(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  else
    out.append(s);  // cannot happen for valid UTF-8 (utf8proc out of memory): keep the text
  std::free(dst);
}

// Appends the NFC form of valid UTF-8 `s`. Text between boundaries (see above) that holds only
// boundary characters is copied; utf8proc normalizes each stretch that holds another
// character, from the boundary before it to the next boundary.
void append_nfc_valid(std::string& out, std::string_view s) {
  size_t i = 0;
  // Fast path: lead bytes below 0xCC are code points below U+0300.
  while (i < s.size() && static_cast<uint8_t>(s[i]) < 0xCC) ++i;
  if (i == s.size()) {
    out.append(s);
    return;
  }
  size_t copied = 0;     // s[0, copied) is in `out`
  size_t last_safe = 0;  // start of the latest boundary character
  i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    const size_t len = decode_utf8(s, i, &cp);
    WKV_ASSERT(len > 0);
    if (nfc_boundary_before(cp)) {
      last_safe = i;
      i += len;
      continue;
    }
    const size_t from = std::max(copied, last_safe);
    size_t to = i + len;
    while (to < s.size()) {
      const size_t l = decode_utf8(s, to, &cp);
      WKV_ASSERT(l > 0);
      if (nfc_boundary_before(cp)) break;
      to += l;
    }
    out.append(s.substr(copied, from - copied));
    append_nfc_utf8proc(out, s.substr(from, to - from));
    copied = i = to;
  }
  out.append(s.substr(copied));
}

// Appends the NFC form of any bytes: valid runs normalized, invalid bytes kept as they are.
void append_nfc(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size());
  size_t i = 0;
  while (i < s.size()) {
    const size_t valid = utf8_valid_prefix(s.substr(i));
    append_nfc_valid(out, s.substr(i, valid));
    i += valid;
    if (i < s.size()) out.push_back(s[i++]);  // one invalid byte
  }
}

// ---------------------------------------------------------------------------------------------
// The GPT-2 byte <-> unicode table: printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) map to
// the code point of the same value, the other 68 bytes to U+0100.. in byte order.

struct ByteTable {
  uint32_t byte_to_cp[256];
  int16_t cp_to_byte[324];  // -1: not the image of a byte

  ByteTable() {
    std::fill(std::begin(cp_to_byte), std::end(cp_to_byte), int16_t{-1});
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      byte_to_cp[b] = printable ? b : 256 + extra++;
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

// A token string as the ByteLevel decoder turns it into bytes: table characters become their
// byte, any other character (or invalid byte) stays as it is.
std::string token_bytes(std::string_view token) {
  const ByteTable& t = byte_table();
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    uint32_t cp = 0;
    const size_t len = decode_utf8(token, i, &cp);
    if (len == 0) {
      out.push_back(token[i++]);
      continue;
    }
    if (cp < 324 && t.cp_to_byte[cp] >= 0)
      out.push_back(static_cast<char>(t.cp_to_byte[cp]));
    else
      out.append(token.substr(i, len));
    i += len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizer character classes: the low two bits are the class of the split pattern, the
// flags mark the two ASCII characters the pattern names.

enum : uint8_t { kL = 0, kN = 1, kWS = 2, kOther = 3, kClassMask = 3, kSpace = 4, kApos = 8 };

struct AsciiClasses {
  uint8_t c[128];
  AsciiClasses() {
    for (int b = 0; b < 128; ++b) {
      uint8_t v = kOther;
      if ((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z')) v = kL;
      if (b >= '0' && b <= '9') v = kN;
      if ((b >= 0x09 && b <= 0x0D) || b == ' ') v = kWS;
      if (b == ' ') v |= kSpace;
      if (b == '\'') v |= kApos;
      c[b] = v;
    }
  }
};

const AsciiClasses& ascii_classes() {
  static const AsciiClasses t;
  return t;
}

uint8_t class_of(uint32_t cp) {
  if (cp < 128) return ascii_classes().c[cp];
  if (is_white_space(cp)) return kWS;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return kL;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return kN;
    default:
      return kOther;
  }
}

// ---------------------------------------------------------------------------------------------
// Added tokens: a byte trie over their contents, matched leftmost-longest.

struct AddedToken {
  int32_t id = 0;
  std::string content;  // the bytes matched (NFC-normalized first when `normalized`)
  bool single_word = false, lstrip = false, rstrip = false;
};

class AddedMatcher {
 public:
  void build(std::vector<AddedToken> tokens) {
    tokens_ = std::move(tokens);
    nodes_.assign(1, Node{});
    std::fill(std::begin(can_start_), std::end(can_start_), false);
    for (size_t t = 0; t < tokens_.size(); ++t) {
      uint32_t node = 0;
      for (char ch : tokens_[t].content) {
        const auto b = static_cast<uint8_t>(ch);
        uint32_t next = find_child(node, b);
        if (next == 0) {
          next = static_cast<uint32_t>(nodes_.size());
          nodes_.push_back(Node{});
          nodes_[next].label = b;
          nodes_[next].sibling = nodes_[node].child;
          nodes_[node].child = next;
        }
        node = next;
      }
      nodes_[node].token = static_cast<int32_t>(t);
      can_start_[static_cast<uint8_t>(tokens_[t].content[0])] = true;
    }
  }

  bool empty() const { return tokens_.empty(); }

  // Calls on_text(piece) for the (non-empty) text between matches and on_token(id) for each
  // match, in order.
  template <class OnText, class OnToken>
  void split(std::string_view text, OnText&& on_text, OnToken&& on_token) const {
    if (tokens_.empty()) {
      if (!text.empty()) on_text(text);
      return;
    }
    const auto* p = reinterpret_cast<const uint8_t*>(text.data());
    const size_t n = text.size();
    size_t emitted = 0, i = 0;
    while (i < n) {
      if (!can_start_[p[i]]) {
        ++i;
        continue;
      }
      int32_t best = -1;
      size_t best_len = 0;
      uint32_t node = 0;
      for (size_t k = i; k < n; ++k) {
        node = find_child(node, p[k]);
        if (node == 0) break;
        if (nodes_[node].token >= 0) {
          best = nodes_[node].token;
          best_len = k + 1 - i;
        }
      }
      if (best < 0) {
        ++i;
        continue;
      }
      const AddedToken& a = tokens_[static_cast<size_t>(best)];
      size_t start = i, stop = i + best_len;
      if (a.single_word &&
          !(word_boundary_before(text, start) && word_boundary_after(text, stop))) {
        i = stop;  // like a skipped Aho-Corasick match: the search goes on after it
        continue;
      }
      if (a.lstrip) {
        size_t s = start;
        uint32_t cp;
        size_t len;
        while (s > emitted && char_before(text, s, &cp, &len) && is_white_space(cp)) s -= len;
        start = std::max(s, emitted);
      }
      if (a.rstrip) {
        uint32_t cp;
        size_t len;
        while (stop < n && (len = decode_utf8(text, stop, &cp)) > 0 && is_white_space(cp))
          stop += len;
      }
      if (start > emitted) on_text(text.substr(emitted, start - emitted));
      on_token(a.id);
      emitted = i = stop;
    }
    if (emitted < n) on_text(text.substr(emitted));
  }

 private:
  struct Node {
    uint32_t child = 0;    // first child, 0 if none
    uint32_t sibling = 0;  // next sibling, 0 if none
    int32_t token = -1;    // index into tokens_ of the token ending here
    uint8_t label = 0;
  };

  uint32_t find_child(uint32_t node, uint8_t b) const {
    for (uint32_t c = nodes_[node].child; c != 0; c = nodes_[c].sibling)
      if (nodes_[c].label == b) return c;
    return 0;
  }

  static bool word_boundary_before(std::string_view s, size_t at) {
    uint32_t cp;
    size_t len;
    return at == 0 || !char_before(s, at, &cp, &len) || !is_word_char(cp);
  }
  static bool word_boundary_after(std::string_view s, size_t at) {
    uint32_t cp;
    return at >= s.size() || decode_utf8(s, at, &cp) == 0 || !is_word_char(cp);
  }

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;
  bool can_start_[256] = {};
};

// ---------------------------------------------------------------------------------------------
// Merge table: (left id, right id) -> (rank, merged id), open addressing.

class PairTable {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }

  // Inserts or overwrites (a later duplicate merge wins, as in Hugging Face).
  void put(int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    const uint64_t key = make_key(a, b);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty || slots_[i].key == key) {
        slots_[i] = {key, rank, merged};
        return;
      }
    }
  }

  // Rank of the pair (kNoRank if it does not merge); *merged receives the new id.
  uint32_t find(int32_t a, int32_t b, int32_t* merged) const {
    const uint64_t key = make_key(a, b);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) {
        *merged = s.merged;
        return s.rank;
      }
      if (s.key == kEmpty) return kNoRank;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    uint32_t rank = kNoRank;
    int32_t merged = -1;
  };
  static uint64_t make_key(int32_t a, int32_t b) {
    return static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 | static_cast<uint32_t>(b);
  }
  size_t hash(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Per-call working memory (encode is const and thread-safe: nothing is shared between calls).

struct WordCache {
  static constexpr size_t kMaxWords = 1 << 16;
  static constexpr size_t kMaxWordBytes = 64;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> map;  // -> [offset, count)
  std::vector<int32_t> ids;
};

// Pending merges of a long word, popped in (rank, position) order. One bucket of positions
// per rank, and a min-heap of the ranks that have a bucket. Positions mostly arrive in
// ascending order (the initial pairs, and the pairs a left-to-right sweep of one rank
// creates), so a bucket is a sorted run read from the front until a position arrives out of
// order, after which it becomes a min-heap. A run of one repeated character (10k "a"s)
// then costs O(1) per merge instead of a heap operation over every pair of the word.
class MergeQueue {
 public:
  void reset() {
    for (size_t b = 0; b < used_; ++b) buckets_[b].clear();
    used_ = 0;
    bucket_of_.clear();
    ranks_.clear();
    recent_rank_[0] = recent_rank_[1] = kNoRank;
  }

  void push(uint32_t rank, uint32_t pos) {
    Bucket& b = buckets_[bucket(rank)];
    if (b.sorted) {
      if (b.head == b.pos.size() || pos >= b.pos.back()) {
        b.pos.push_back(pos);
      } else {
        b.pos.erase(b.pos.begin(), b.pos.begin() + static_cast<ptrdiff_t>(b.head));
        b.head = 0;
        b.pos.push_back(pos);
        std::make_heap(b.pos.begin(), b.pos.end(), std::greater<uint32_t>());
        b.sorted = false;
      }
    } else {
      b.pos.push_back(pos);
      std::push_heap(b.pos.begin(), b.pos.end(), std::greater<uint32_t>());
    }
    if (!b.queued) {
      b.queued = true;
      ranks_.push_back(rank);
      std::push_heap(ranks_.begin(), ranks_.end(), std::greater<uint32_t>());
    }
  }

  // The smallest (rank, position); false when empty.
  bool pop(uint32_t* rank, uint32_t* pos) {
    while (!ranks_.empty()) {
      const uint32_t r = ranks_.front();
      Bucket& b = buckets_[bucket(r)];
      if (b.head == b.pos.size()) {  // drained
        std::pop_heap(ranks_.begin(), ranks_.end(), std::greater<uint32_t>());
        ranks_.pop_back();
        b.clear();
        continue;
      }
      *rank = r;
      if (b.sorted) {
        *pos = b.pos[b.head++];
      } else {
        std::pop_heap(b.pos.begin(), b.pos.end(), std::greater<uint32_t>());
        *pos = b.pos.back();
        b.pos.pop_back();
      }
      return true;
    }
    return false;
  }

 private:
  // The bucket of `rank`, created if needed. Consecutive calls mostly ask for the same few
  // ranks, so the last two answers are remembered.
  uint32_t bucket(uint32_t rank) {
    if (rank == recent_rank_[0]) return recent_bucket_[0];
    if (rank == recent_rank_[1]) {
      std::swap(recent_rank_[0], recent_rank_[1]);
      std::swap(recent_bucket_[0], recent_bucket_[1]);
      return recent_bucket_[0];
    }
    auto [it, fresh] = bucket_of_.try_emplace(rank, static_cast<uint32_t>(used_));
    if (fresh) {
      if (used_ == buckets_.size()) buckets_.emplace_back();
      ++used_;
    }
    recent_rank_[1] = recent_rank_[0];
    recent_bucket_[1] = recent_bucket_[0];
    recent_rank_[0] = rank;
    recent_bucket_[0] = it->second;
    return it->second;
  }

  struct Bucket {
    std::vector<uint32_t> pos;
    size_t head = 0;  // sorted: pos[head..] are pending; heap: always 0
    bool sorted = true;
    bool queued = false;  // its rank is in ranks_
    void clear() {
      pos.clear();
      head = 0;
      sorted = true;
      queued = false;
    }
  };
  std::vector<Bucket> buckets_;  // [0, used_) in use, the rest kept for their capacity
  size_t used_ = 0;
  std::unordered_map<uint32_t, uint32_t> bucket_of_;  // rank -> bucket
  std::vector<uint32_t> ranks_;                       // min-heap
  uint32_t recent_rank_[2] = {kNoRank, kNoRank};
  uint32_t recent_bucket_[2] = {0, 0};
};

struct Scratch {
  std::string normalized;
  std::string prefixed;
  std::vector<uint32_t> offsets;  // char k of a piece is bytes [offsets[k], offsets[k + 1])
  std::vector<uint8_t> classes;
  // BPE over one word: a doubly linked list of symbols.
  std::vector<int32_t> sym, prev, next, merged;
  std::vector<uint32_t> rank;  // rank of (sym[i], sym[next[i]]), kNoRank if none
  MergeQueue queue;
  WordCache cache;
};

class BpeTokenizer final : public Tokenizer {
 public:
  static Expected<std::unique_ptr<Tokenizer>> build(const json& root, const std::string& src);

  std::vector<int32_t> encode(std::string_view bytes) const override;
  Expected<std::string> decode_bytes(std::span<const int32_t> ids) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(spans_.size()); }
  std::string name() const override { return "bpe"; }

 private:
  struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;
    bool present = false;
  };

  void encode_segment(std::string_view raw, Scratch& s, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, Scratch& s, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, Scratch& s, std::vector<int32_t>& out) const;
  void merge_word(std::string_view word, Scratch& s, std::vector<int32_t>& out) const;

  bool nfc_ = false;
  bool add_prefix_space_ = false;
  bool use_regex_ = true;
  AddedMatcher raw_added_;         // normalized: false, matched in the raw text
  AddedMatcher normalized_added_;  // normalized: true, matched after NFC
  int32_t byte_id_[256] = {};
  PairTable pairs_;
  std::string pool_;         // every id's decoded bytes
  std::vector<Span> spans_;  // by id
};

// ---------------------------------------------------------------------------------------------
// Encoding.

std::vector<int32_t> BpeTokenizer::encode(std::string_view bytes) const {
  std::vector<int32_t> out;
  out.reserve(bytes.size() / 3 + 8);
  Scratch s;
  raw_added_.split(
      bytes, [&](std::string_view seg) { encode_segment(seg, s, out); },
      [&](int32_t id) { out.push_back(id); });
  return out;
}

void BpeTokenizer::encode_segment(std::string_view raw, Scratch& s,
                                  std::vector<int32_t>& out) const {
  std::string_view text = raw;
  if (nfc_) {
    s.normalized.clear();
    append_nfc(s.normalized, raw);
    text = s.normalized;
  }
  normalized_added_.split(
      text, [&](std::string_view piece) { encode_piece(piece, s, out); },
      [&](int32_t id) { out.push_back(id); });
}

// One piece of text without added tokens: the ByteLevel pre-tokenizer, then BPE per word.
void BpeTokenizer::encode_piece(std::string_view piece, Scratch& s,
                                std::vector<int32_t>& out) const {
  if (add_prefix_space_ && piece[0] != ' ') {
    s.prefixed.assign(1, ' ');
    s.prefixed.append(piece);
    piece = s.prefixed;
  }
  if (!use_regex_) {
    encode_word(piece, s, out);
    return;
  }
  // Classify every character (an invalid byte is one character of class kOther).
  auto& off = s.offsets;
  auto& cls = s.classes;
  off.clear();
  cls.clear();
  const auto& ascii = ascii_classes();
  for (size_t i = 0; i < piece.size();) {
    const auto b = static_cast<uint8_t>(piece[i]);
    off.push_back(static_cast<uint32_t>(i));
    if (b < 0x80) {
      cls.push_back(ascii.c[b]);
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t len = decode_utf8(piece, i, &cp);
    cls.push_back(len ? class_of(cp) : uint8_t{kOther});
    i += len ? len : 1;
  }
  off.push_back(static_cast<uint32_t>(piece.size()));

  // The split pattern: at each position the first alternative that matches, greedily.
  const size_t n = cls.size();
  size_t k = 0;
  while (k < n) {
    size_t end = 0;
    const uint8_t c = cls[k];
    if (c & kApos) {  // 's 't 're 've 'm 'll 'd (ASCII, case-sensitive)
      const size_t b = off[k] + 1;
      const char c1 = b < piece.size() ? piece[b] : 0;
      const char c2 = b + 1 < piece.size() ? piece[b + 1] : 0;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        end = k + 2;
      else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        end = k + 3;
    }
    if (end == 0) {
      if ((c & kSpace) && k + 1 < n && (cls[k + 1] & kClassMask) != kWS) {
        // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" with the space.
        const uint8_t run = cls[k + 1] & kClassMask;
        end = k + 2;
        while (end < n && (cls[end] & kClassMask) == run) ++end;
      } else if ((c & kClassMask) != kWS) {
        const uint8_t run = c & kClassMask;
        end = k + 1;
        while (end < n && (cls[end] & kClassMask) == run) ++end;
      } else {
        // "\s+(?!\S)" then "\s+": a whitespace run up to the end of the piece is one word;
        // before anything else it leaves its last character for the next word (if it has
        // more than one).
        size_t j = k + 1;
        while (j < n && (cls[j] & kClassMask) == kWS) ++j;
        end = (j == n || j - k == 1) ? j : j - 1;
      }
    }
    encode_word(piece.substr(off[k], off[end] - off[k]), s, out);
    k = end;
  }
}

void BpeTokenizer::encode_word(std::string_view word, Scratch& s, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    const int32_t id = byte_id_[static_cast<uint8_t>(word[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  WordCache& cache = s.cache;
  const bool cacheable = word.size() <= WordCache::kMaxWordBytes;
  if (cacheable) {
    auto it = cache.map.find(std::string(word));
    if (it != cache.map.end()) {
      const int32_t* p = cache.ids.data() + it->second.first;
      out.insert(out.end(), p, p + it->second.second);
      return;
    }
  }
  const size_t before = out.size();
  merge_word(word, s, out);
  if (cacheable && cache.map.size() < WordCache::kMaxWords) {
    const auto offset = static_cast<uint32_t>(cache.ids.size());
    cache.ids.insert(cache.ids.end(), out.begin() + static_cast<ptrdiff_t>(before), out.end());
    cache.map.emplace(std::string(word),
                      std::make_pair(offset, static_cast<uint32_t>(out.size() - before)));
  }
}

// BPE on one word: repeatedly merge the adjacent pair with the lowest rank (the leftmost one
// on ties), the order Hugging Face's priority queue gives. Short words scan the list; long
// ones use a MergeQueue with lazy deletion.
void BpeTokenizer::merge_word(std::string_view word, Scratch& s, std::vector<int32_t>& out) const {
  auto& sym = s.sym;
  auto& prev = s.prev;
  auto& next = s.next;
  auto& merged = s.merged;
  auto& rank = s.rank;
  sym.clear();
  for (char c : word) {
    const int32_t id = byte_id_[static_cast<uint8_t>(c)];
    if (id >= 0) sym.push_back(id);  // bytes without a token are dropped
  }
  const size_t n = sym.size();
  if (n == 0) return;
  prev.resize(n);
  next.resize(n);
  merged.resize(n);
  rank.resize(n);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  auto update = [&](int32_t i) {
    const int32_t j = next[static_cast<size_t>(i)];
    rank[static_cast<size_t>(i)] =
        j < 0 ? kNoRank
              : pairs_.find(sym[static_cast<size_t>(i)], sym[static_cast<size_t>(j)],
                            &merged[static_cast<size_t>(i)]);
  };
  // Merges the pair at i (with its right neighbour); returns the new left neighbour of i.
  auto merge_at = [&](int32_t i) {
    const auto ui = static_cast<size_t>(i);
    const int32_t j = next[ui];
    const auto uj = static_cast<size_t>(j);
    sym[ui] = merged[ui];
    sym[uj] = -1;  // dead
    next[ui] = next[uj];
    if (next[uj] >= 0) prev[static_cast<size_t>(next[uj])] = i;
    update(i);
    if (prev[ui] >= 0) update(prev[ui]);
  };
  for (size_t i = 0; i < n; ++i) update(static_cast<int32_t>(i));

  constexpr size_t kScanMax = 48;
  if (n <= kScanMax) {
    for (;;) {
      uint32_t best = kNoRank;
      int32_t at = -1;
      for (int32_t i = 0; i >= 0; i = next[static_cast<size_t>(i)]) {
        if (rank[static_cast<size_t>(i)] < best) {
          best = rank[static_cast<size_t>(i)];
          at = i;
        }
      }
      if (at < 0) break;
      merge_at(at);
    }
  } else {
    MergeQueue& q = s.queue;
    q.reset();
    for (size_t i = 0; i < n; ++i)
      if (rank[i] != kNoRank) q.push(rank[i], static_cast<uint32_t>(i));
    uint32_t r, at;
    while (q.pop(&r, &at)) {
      if (sym[at] < 0 || rank[at] != r) continue;  // stale: `at` died or its pair changed
      merge_at(static_cast<int32_t>(at));
      if (rank[at] != kNoRank) q.push(rank[at], at);
      const int32_t p = prev[at];
      if (p >= 0 && rank[static_cast<size_t>(p)] != kNoRank)
        q.push(rank[static_cast<size_t>(p)], static_cast<uint32_t>(p));
    }
  }
  for (int32_t i = 0; i >= 0; i = next[static_cast<size_t>(i)])
    out.push_back(sym[static_cast<size_t>(i)]);
}

Expected<std::string> BpeTokenizer::decode_bytes(std::span<const int32_t> ids) const {
  size_t total = 0;
  for (size_t k = 0; k < ids.size(); ++k) {
    const int32_t id = ids[k];
    if (id < 0 || static_cast<size_t>(id) >= spans_.size() ||
        !spans_[static_cast<size_t>(id)].present)
      return Error{"token id " + std::to_string(id) + " (position " + std::to_string(k) +
                   ") is not in the BPE vocabulary (ids 0.." + std::to_string(spans_.size() - 1) +
                   ")"};
    total += spans_[static_cast<size_t>(id)].length;
  }
  std::string out(total, '\0');
  char* dst = out.data();
  for (int32_t id : ids) {
    const Span& sp = spans_[static_cast<size_t>(id)];
    std::memcpy(dst, pool_.data() + sp.offset, sp.length);
    dst += sp.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Loading.

// Nesting depth of JSON text (brackets outside strings), checked before parsing.
int json_depth(std::string_view s) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

std::string quote_token(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 60)) {
    const auto b = static_cast<uint8_t>(c);
    if (b < 0x20 || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", b);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > 60) out += "...";
  return out + "\"";
}

std::string type_name(const json* j) { return j ? std::string(j->type_name()) : "missing"; }

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// The "type" of a component object, or "" if the component is null.
Expected<std::string> component_type(const json& root, const char* field, const std::string& src) {
  const json* c = member(root, field);
  if (!c || c->is_null()) return std::string();
  if (!c->is_object())
    return Error{src + ": " + field + ": expected an object or null, got " + type_name(c)};
  const json* t = member(*c, "type");
  if (!t || !t->is_string())
    return Error{src + ": " + field + ".type: expected a string, got " + type_name(t)};
  return t->get<std::string>();
}

Expected<bool> optional_bool(const json& obj, const char* key, bool fallback,
                             const std::string& where) {
  const json* v = member(obj, key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_boolean())
    return Error{where + "." + key + ": expected true or false, got " + type_name(v)};
  return v->get<bool>();
}

Expected<std::unique_ptr<Tokenizer>> BpeTokenizer::build(const json& root, const std::string& src) {
  if (!root.is_object()) return Error{src + ": expected a JSON object at the top level"};
  auto tok = std::unique_ptr<BpeTokenizer>(new BpeTokenizer());
  const ByteTable& table = byte_table();

  // normalizer
  auto norm = component_type(root, "normalizer", src);
  if (!norm) return norm.error();
  if (*norm == "NFC")
    tok->nfc_ = true;
  else if (!norm->empty())
    return Error{src + ": normalizer.type: unsupported normalizer \"" + *norm +
                 "\" (supported: NFC or null)"};

  // pre_tokenizer
  auto pre = component_type(root, "pre_tokenizer", src);
  if (!pre) return pre.error();
  if (pre->empty())
    return Error{src + ": pre_tokenizer: expected a ByteLevel pre-tokenizer, got null or missing"};
  if (*pre != "ByteLevel")
    return Error{src + ": pre_tokenizer.type: unsupported pre-tokenizer \"" + *pre +
                 "\" (supported: ByteLevel)"};
  {
    const json& p = *member(root, "pre_tokenizer");
    auto aps = optional_bool(p, "add_prefix_space", true, src + ": pre_tokenizer");
    if (!aps) return aps.error();
    auto regex = optional_bool(p, "use_regex", true, src + ": pre_tokenizer");
    if (!regex) return regex.error();
    tok->add_prefix_space_ = *aps;
    tok->use_regex_ = *regex;
  }
  for (const char* field : {"decoder", "post_processor"}) {
    auto t = component_type(root, field, src);
    if (!t) return t.error();
    if (!t->empty() && *t != "ByteLevel")
      return Error{src + ": " + field + ".type: unsupported " + field + " \"" + *t +
                   "\" (supported: ByteLevel or null)"};
  }

  // model
  const json* model = member(root, "model");
  if (!model || !model->is_object())
    return Error{src + ": model: expected an object, got " + type_name(model)};
  {
    const json* t = member(*model, "type");
    if (t && !(t->is_string() && t->get<std::string>() == "BPE"))
      return Error{src + ": model.type: unsupported model " +
                   (t->is_string() ? "\"" + t->get<std::string>() + "\"" : type_name(t)) +
                   " (supported: BPE)"};
    const json* dropout = member(*model, "dropout");
    if (dropout && !dropout->is_null() && !(dropout->is_number() && dropout->get<double>() == 0.0))
      return Error{src + ": model.dropout: BPE dropout is not supported (expected null)"};
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const json* v = member(*model, key);
      if (v && !v->is_null() && !(v->is_string() && v->get<std::string>().empty()))
        return Error{src + ": model." + key + ": not supported (expected null)"};
    }
    for (const char* key : {"byte_fallback", "ignore_merges"}) {
      auto v = optional_bool(*model, key, false, src + ": model");
      if (!v) return v.error();
      if (*v) return Error{src + ": model." + key + ": true is not supported"};
    }
  }
  const json* vocab = member(*model, "vocab");
  if (!vocab || !vocab->is_object())
    return Error{src + ": model.vocab: expected an object of token -> id, got " + type_name(vocab)};
  const json* merges = member(*model, "merges");
  if (!merges || !merges->is_array())
    return Error{src + ": model.merges: expected an array, got " + type_name(merges)};
  if (merges->size() >= kNoRank) return Error{src + ": model.merges: too many merges"};

  // Ids: the model vocabulary, then the added tokens (which win for decoding, as in HF).
  int32_t max_id = -1;
  std::vector<std::pair<int32_t, std::string>> entries;  // (id, decoded bytes)
  std::vector<std::string_view> by_id;                   // id -> vocab token (duplicates)
  entries.reserve(vocab->size());
  for (const auto& [token, value] : vocab->items()) {
    if (!value.is_number_integer())
      return Error{src + ": model.vocab[" + quote_token(token) + "]: id is not an integer"};
    const auto id = value.get<int64_t>();
    if (id < 0 || id > kBpeMaxId)
      return Error{src + ": model.vocab[" + quote_token(token) + "]: id " + std::to_string(id) +
                   " is out of range (0.." + std::to_string(kBpeMaxId) + ")"};
    if (token.empty()) return Error{src + ": model.vocab: the empty string is not a token"};
    const auto id32 = static_cast<int32_t>(id);
    if (by_id.size() <= static_cast<size_t>(id32)) by_id.resize(static_cast<size_t>(id32) + 1);
    if (!by_id[static_cast<size_t>(id32)].empty())
      return Error{src + ": model.vocab: id " + std::to_string(id) + " is used by both " +
                   quote_token(by_id[static_cast<size_t>(id32)]) + " and " + quote_token(token)};
    by_id[static_cast<size_t>(id32)] = token;
    max_id = std::max(max_id, id32);
    entries.emplace_back(id32, token_bytes(token));
  }
  // token -> id; the views point into the parsed JSON, which outlives this map.
  std::unordered_map<std::string_view, int32_t> ids_by_token;
  ids_by_token.reserve(vocab->size());
  for (const auto& [token, value] : vocab->items())
    ids_by_token.emplace(token, static_cast<int32_t>(value.get<int64_t>()));
  auto vocab_id = [&](std::string_view token) -> int32_t {
    auto it = ids_by_token.find(token);
    return it == ids_by_token.end() ? -1 : it->second;
  };

  // Every byte that valid UTF-8 can contain needs a token. The others (C0, C1, F5..FF: the
  // 20B vocabulary has none) can only come from invalid input and are dropped by encode,
  // as Hugging Face drops characters it has no token for when there is no unk_token.
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, table.byte_to_cp[b]);
    const int32_t id = vocab_id(ch);
    tok->byte_id_[b] = id;
    if (id < 0 && (b <= 0xBF || (b >= 0xC2 && b <= 0xF4))) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      return Error{src + ": model.vocab: no token for the byte " + hex + " (" + quote_token(ch) +
                   "; a byte-level vocabulary needs one for every byte of valid UTF-8)"};
    }
  }

  // Merges, in rank order: "left right" strings or ["left", "right"] pairs.
  tok->pairs_.reserve(merges->size());
  std::string joined;
  for (size_t r = 0; r < merges->size(); ++r) {
    const json& m = (*merges)[r];
    const std::string where = src + ": model.merges[" + std::to_string(r) + "]";
    std::string_view left, right;
    if (m.is_string()) {
      const std::string_view line = m.get_ref<const std::string&>();
      const size_t sp = line.find(' ');
      if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
        return Error{where + ": " + quote_token(line) +
                     " is not two tokens separated by one space"};
      left = line.substr(0, sp);
      right = line.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get_ref<const std::string&>();
      right = m[1].get_ref<const std::string&>();
    } else {
      return Error{where + ": expected \"left right\" or [\"left\", \"right\"], got " +
                   std::string(m.type_name())};
    }
    if (left.empty() || right.empty()) return Error{where + ": empty token in merge"};
    joined.assign(left).append(right);
    const int32_t a = vocab_id(left), b = vocab_id(right), c = vocab_id(joined);
    if (a < 0) return Error{where + ": token " + quote_token(left) + " is not in model.vocab"};
    if (b < 0) return Error{where + ": token " + quote_token(right) + " is not in model.vocab"};
    if (c < 0)
      return Error{where + ": merged token " + quote_token(joined) + " is not in model.vocab"};
    tok->pairs_.put(a, b, static_cast<uint32_t>(r), c);
  }

  // Added tokens.
  std::vector<AddedToken> raw, normalized;
  if (const json* added = member(root, "added_tokens"); added && !added->is_null()) {
    if (!added->is_array())
      return Error{src + ": added_tokens: expected an array, got " + type_name(added)};
    std::unordered_map<std::string, size_t> seen[2];
    for (size_t i = 0; i < added->size(); ++i) {
      const json& a = (*added)[i];
      const std::string where = src + ": added_tokens[" + std::to_string(i) + "]";
      if (!a.is_object()) return Error{where + ": expected an object"};
      const json* id = member(a, "id");
      const json* content = member(a, "content");
      if (!id || !id->is_number_integer())
        return Error{where + ".id: expected an integer, got " + type_name(id)};
      const auto id64 = id->get<int64_t>();
      if (id64 < 0 || id64 > kBpeMaxId)
        return Error{where + ".id: " + std::to_string(id64) + " is out of range (0.." +
                     std::to_string(kBpeMaxId) + ")"};
      if (!content || !content->is_string() || content->get_ref<const std::string&>().empty())
        return Error{where + ".content: expected a non-empty string"};
      auto special = optional_bool(a, "special", false, where);
      if (!special) return special.error();
      AddedToken t;
      t.id = static_cast<int32_t>(id64);
      t.content = content->get<std::string>();
      auto sw = optional_bool(a, "single_word", false, where);
      auto ls = optional_bool(a, "lstrip", false, where);
      auto rs = optional_bool(a, "rstrip", false, where);
      auto nz = optional_bool(a, "normalized", !*special, where);
      for (auto* e : {&sw, &ls, &rs, &nz})
        if (!*e) return e->error();
      t.single_word = *sw;
      t.lstrip = *ls;
      t.rstrip = *rs;
      max_id = std::max(max_id, t.id);
      entries.emplace_back(t.id, token_bytes(t.content));
      if (*nz && tok->nfc_) t.content = nfc_normalize(t.content);
      auto [it, fresh] = seen[*nz ? 1 : 0].emplace(t.content, i);
      if (!fresh)
        return Error{where + ".content: " + quote_token(t.content) +
                     " is the same as added_tokens[" + std::to_string(it->second) + "]"};
      (*nz ? normalized : raw).push_back(std::move(t));
    }
  }
  tok->raw_added_.build(std::move(raw));
  tok->normalized_added_.build(std::move(normalized));

  // Decoding table; later entries (added tokens) replace earlier ones for the same id.
  tok->spans_.assign(static_cast<size_t>(max_id) + 1, Span{});
  std::vector<size_t> last(static_cast<size_t>(max_id) + 1, SIZE_MAX);
  for (size_t e = 0; e < entries.size(); ++e) last[static_cast<size_t>(entries[e].first)] = e;
  for (size_t id = 0; id < last.size(); ++id) {
    if (last[id] == SIZE_MAX) continue;
    const std::string& bytes = entries[last[id]].second;
    tok->spans_[id] = {static_cast<uint32_t>(tok->pool_.size()),
                       static_cast<uint32_t>(bytes.size()), true};
    tok->pool_ += bytes;
  }
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

}  // namespace

std::string nfc_normalize(std::string_view s) {
  std::string out;
  append_nfc(out, s);
  return out;
}

Expected<std::unique_ptr<Tokenizer>> parse_bpe_tokenizer(std::string_view json_text,
                                                         std::string_view source) {
  const std::string src(source);
  if (json_text.size() > kBpeMaxJsonBytes)
    return Error{src + ": file too large (" + std::to_string(json_text.size()) + " bytes, limit " +
                 std::to_string(kBpeMaxJsonBytes) + ")"};
  if (json_depth(json_text) > kMaxJsonDepth)
    return Error{src + ": JSON is nested too deeply (more than " + std::to_string(kMaxJsonDepth) +
                 " levels)"};
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    return Error{src + ": invalid JSON: " + e.what()};
  }
  try {
    return BpeTokenizer::build(root, src);
  } catch (const json::exception& e) {  // a type check missed above; never expected
    return Error{src + ": unexpected JSON structure: " + e.what()};
  }
}

Expected<std::unique_ptr<Tokenizer>> load_bpe_tokenizer(const std::string& tokenizer_json_path) {
  std::error_code ec;
  if (!std::filesystem::exists(tokenizer_json_path, ec))
    return Error{tokenizer_json_path + ": tokenizer.json file not found; " + kWhereToGetBpe};
  if (std::filesystem::is_directory(tokenizer_json_path, ec))
    return Error{tokenizer_json_path + ": is a directory, expected a tokenizer.json file; " +
                 kWhereToGetBpe};
  auto text = read_text_file(tokenizer_json_path, kBpeMaxJsonBytes);
  if (!text) return text.error();
  return parse_bpe_tokenizer(*text, tokenizer_json_path);
}

}  // namespace wkv
