// The World tokenizer: a byte trie built from the parsed vocabulary and greedy longest-match
// encoding (same ids as the official TRIE_TOKENIZER.encodeBytes), plus byte-exact decoding.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/file.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/world_vocab.hpp"

namespace wkv {
namespace {

constexpr const char* kWhereToGetVocab =
    "get rwkv_vocab_v20230424.txt from the official RWKV releases: "
    "https://github.com/BlinkDL/ChatRWKV/tree/main/rwkv_pip_package/src/rwkv "
    "(also inside the `rwkv` pip package, and in BlinkDL/RWKV-LM under RWKV-v7/)";

// Trie layout: nodes in breadth-first order, so the children of a node are the contiguous
// range [first_child, first_child + n_children), sorted by their byte label (labels_).
// The first two bytes of a match are looked up in dense tables (first_ and second_), which
// covers most of the branching; deeper nodes have few children and are searched directly.
struct Node {
  uint32_t first_child = 0;
  uint32_t n_children = 0;
  int32_t token = -1;  // id of the token ending here, -1 if none
};

class WorldTokenizer final : public Tokenizer {
 public:
  static Expected<std::unique_ptr<Tokenizer>> build(WorldVocab vocab, const std::string& src);

  std::vector<int32_t> encode(std::string_view bytes) const override;
  Expected<std::string> decode_bytes(std::span<const int32_t> ids) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(spans_.size()); }
  std::string name() const override { return "world"; }

 private:
  struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;  // 0: no such id (tokens are never empty)
  };

  uint32_t child(uint32_t node, uint8_t c) const {
    const Node& n = nodes_[node];
    const uint8_t* l = labels_.data() + n.first_child;
    if (n.n_children <= 8) {
      for (uint32_t k = 0; k < n.n_children; ++k)
        if (l[k] == c) return n.first_child + k;
      return 0;
    }
    const uint8_t* it = std::lower_bound(l, l + n.n_children, c);
    return it != l + n.n_children && *it == c ? n.first_child + static_cast<uint32_t>(it - l) : 0;
  }

  std::string pool_;          // token bytes
  std::vector<Span> spans_;   // by id, 0..max_id
  std::vector<Node> nodes_;   // [0] is the root
  std::vector<uint8_t> labels_;
  int32_t first_[256] = {};   // token id of each single byte
  std::vector<uint32_t> second_;  // (b0 << 8 | b1) -> node of that 2-byte prefix, 0 if none
};

Expected<std::unique_ptr<Tokenizer>> WorldTokenizer::build(WorldVocab vocab,
                                                           const std::string& src) {
  auto tok = std::unique_ptr<WorldTokenizer>(new WorldTokenizer());
  const auto& entries = vocab.entries;

  tok->spans_.resize(static_cast<size_t>(vocab.max_id) + 1);
  for (const auto& e : entries) tok->spans_[static_cast<size_t>(e.id)] = {e.offset, e.length};

  // Sort the tokens by their bytes; equal neighbours are duplicates. The key's first 8
  // bytes (big-endian, zero padded) order most pairs without touching the token bytes.
  struct Key {
    uint64_t head;
    uint32_t entry;
  };
  std::vector<Key> keys(entries.size());
  for (uint32_t i = 0; i < keys.size(); ++i) {
    const std::string_view t = vocab.token(entries[i]);
    uint64_t head = 0;
    for (size_t k = 0; k < 8; ++k)
      head = head << 8 | (k < t.size() ? static_cast<uint8_t>(t[k]) : 0u);
    keys[i] = {head, i};
  }
  std::sort(keys.begin(), keys.end(), [&](const Key& a, const Key& b) {
    if (a.head != b.head) return a.head < b.head;
    return vocab.token(entries[a.entry]) < vocab.token(entries[b.entry]);
  });
  std::vector<uint32_t> order(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) order[i] = keys[i].entry;
  keys = {};
  for (size_t i = 1; i < order.size(); ++i) {
    const auto& a = entries[order[i - 1]];
    const auto& b = entries[order[i]];
    if (vocab.token(a) == vocab.token(b)) {
      const auto& later = a.line > b.line ? a : b;
      const auto& earlier = a.line > b.line ? b : a;
      return Error{src + ":" + std::to_string(later.line) + ": token id " +
                   std::to_string(later.id) + " has the same bytes as id " +
                   std::to_string(earlier.id) + " (line " + std::to_string(earlier.line) + ")"};
    }
  }

  // Build level by level. At depth d the distinct d-byte prefixes of the sorted tokens
  // appear in sorted order, grouped by their (d-1)-byte parent, so each node's children
  // get consecutive ids, in label order.
  auto& nodes = tok->nodes_;
  auto& labels = tok->labels_;
  nodes.reserve(entries.size() * 2 + 1);
  labels.reserve(entries.size() * 2 + 1);
  nodes.emplace_back();
  labels.push_back(0);
  std::vector<uint32_t> at(entries.size(), 0);  // node of each token's prefix so far
  std::vector<uint32_t> active = std::move(order), next;
  for (size_t depth = 1; !active.empty(); ++depth) {
    next.clear();
    uint32_t prev_parent = UINT32_MAX;
    int prev_label = -1;
    for (uint32_t e : active) {
      const std::string_view t = vocab.token(entries[e]);
      const uint32_t parent = at[e];
      const auto label = static_cast<uint8_t>(t[depth - 1]);
      if (parent != prev_parent || label != prev_label) {
        const auto id = static_cast<uint32_t>(nodes.size());
        if (nodes[parent].n_children++ == 0) nodes[parent].first_child = id;
        nodes.emplace_back();
        labels.push_back(label);
        prev_parent = parent;
        prev_label = label;
      }
      at[e] = static_cast<uint32_t>(nodes.size() - 1);
      if (t.size() == depth)
        nodes.back().token = entries[e].id;
      else
        next.push_back(e);
    }
    active.swap(next);
  }

  // Dense tables for the first two bytes.
  std::fill(std::begin(tok->first_), std::end(tok->first_), -1);
  tok->second_.assign(65536, 0);
  const Node& root = nodes[0];
  for (uint32_t c1 = root.first_child; c1 < root.first_child + root.n_children; ++c1) {
    tok->first_[labels[c1]] = nodes[c1].token;
    const Node& n1 = nodes[c1];
    for (uint32_t c2 = n1.first_child; c2 < n1.first_child + n1.n_children; ++c2)
      tok->second_[static_cast<size_t>(labels[c1]) << 8 | labels[c2]] = c2;
  }
  // Greedy matching needs a token for every single byte (ids 1..256 in the World vocab).
  for (int b = 0; b < 256; ++b) {
    if (tok->first_[b] < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      return Error{src + ": vocabulary has no token for the single byte " + hex +
                   " (every byte needs one so that any input can be encoded)"};
    }
  }

  tok->pool_ = std::move(vocab.bytes);
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

std::vector<int32_t> WorldTokenizer::encode(std::string_view bytes) const {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  std::vector<int32_t> out;
  out.reserve(n / 3 + 8);
  size_t i = 0;
  while (i < n) {
    // Longest match starting at i: the single byte always matches; then walk the trie.
    int32_t best = first_[p[i]];
    size_t best_len = 1;
    if (n - i >= 2) {
      uint32_t node = second_[static_cast<size_t>(p[i]) << 8 | p[i + 1]];
      size_t len = 2;
      while (node != 0) {
        const int32_t t = nodes_[node].token;
        if (t >= 0) {
          best = t;
          best_len = len;
        }
        if (len == n - i) break;
        node = child(node, p[i + len]);
        ++len;
      }
    }
    out.push_back(best);
    i += best_len;
  }
  return out;
}

Expected<std::string> WorldTokenizer::decode_bytes(std::span<const int32_t> ids) const {
  size_t total = 0;
  for (size_t k = 0; k < ids.size(); ++k) {
    const int32_t id = ids[k];
    if (id == 0) continue;  // end of document: no bytes
    if (id < 0 || static_cast<size_t>(id) >= spans_.size() ||
        spans_[static_cast<size_t>(id)].length == 0)
      return Error{"token id " + std::to_string(id) + " (position " + std::to_string(k) +
                   ") is not in the World vocabulary (ids 0.." +
                   std::to_string(spans_.size() - 1) + ")"};
    total += spans_[static_cast<size_t>(id)].length;
  }
  std::string out(total, '\0');
  char* dst = out.data();
  for (int32_t id : ids) {
    const Span& s = spans_[static_cast<size_t>(id)];  // id 0 has length 0
    std::memcpy(dst, pool_.data() + s.offset, s.length);
    dst += s.length;
  }
  return out;
}

}  // namespace

Expected<std::unique_ptr<Tokenizer>> parse_world_tokenizer(std::string_view contents,
                                                           std::string_view source) {
  auto vocab = parse_world_vocab(contents, source);
  if (!vocab) return vocab.error();
  return WorldTokenizer::build(std::move(vocab).value(), std::string(source));
}

Expected<std::unique_ptr<Tokenizer>> load_world_tokenizer(const std::string& vocab_path) {
  std::error_code ec;
  if (!std::filesystem::exists(vocab_path, ec))
    return Error{vocab_path + ": World vocabulary file not found; " + kWhereToGetVocab};
  if (std::filesystem::is_directory(vocab_path, ec))
    return Error{vocab_path + ": is a directory, expected the World vocabulary file; " +
                 kWhereToGetVocab};
  auto text = read_text_file(vocab_path, kWorldMaxVocabBytes);
  if (!text) return text.error();
  return parse_world_tokenizer(*text, vocab_path);
}

}  // namespace wkv
