// Prefix-state cache: recurrent states keyed by the exact token prefix they have consumed,
// bounded by a byte budget with least-recently-used eviction. An RNN's whole past is one
// fixed-size state, so a request whose prompt starts with a cached prefix copies that state and
// processes only the rest. Keys are found through a hash of the prefix, then verified token by
// token (a hash collision can never hand out a wrong state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "model/model.hpp"

namespace wkv {

struct PrefixCacheStats {
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t tokens_skipped = 0;  // prompt tokens not processed thanks to hits
  uint64_t inserts = 0;
  uint64_t evictions = 0;
  size_t entries = 0;
  size_t bytes = 0;         // states + keys held now
  size_t budget_bytes = 0;
};

class PrefixCache {
 public:
  explicit PrefixCache(size_t budget_bytes) : budget_(budget_bytes) {}

  // The longest cached prefix of `tokens` no longer than `max_len`: copies its state into
  // `state` and returns its length, or returns 0 (state untouched) when none matches.
  size_t lookup(std::span<const int32_t> tokens, size_t max_len, State& state);

  // Stores a copy of `state` as the state after `tokens` (replacing an equal key). Nothing is
  // stored when one entry alone would exceed the budget; older entries are evicted to fit.
  void insert(std::span<const int32_t> tokens, const State& state);

  void clear();
  PrefixCacheStats stats() const;

  // FNV-1a over the token ids, extendable one token at a time.
  static uint64_t hash_init() { return 1469598103934665603ull; }
  static uint64_t hash_step(uint64_t h, int32_t t) {
    for (int i = 0; i < 4; ++i) {
      h ^= (static_cast<uint32_t>(t) >> (8 * i)) & 0xffu;
      h *= 1099511628211ull;
    }
    return h;
  }

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    std::vector<float> data;
    uint64_t hash = 0;
    size_t bytes() const { return tokens.size() * sizeof(int32_t) + data.size() * sizeof(float); }
  };
  using List = std::list<Entry>;  // front = most recently used
  void erase(List::iterator it);

  mutable std::mutex mu_;
  size_t budget_;
  size_t bytes_ = 0;
  List lru_;
  std::unordered_multimap<uint64_t, List::iterator> by_hash_;
  std::map<size_t, size_t> lengths_;  // key length -> entries with that length
  PrefixCacheStats st_;
};

}  // namespace wkv
