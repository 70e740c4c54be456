#include "runtime/prefix_cache.hpp"

#include <algorithm>

namespace wkv {

size_t PrefixCache::lookup(std::span<const int32_t> tokens, size_t max_len, State& state) {
  std::lock_guard lock(mu_);
  ++st_.lookups;
  max_len = std::min(max_len, tokens.size());
  if (lengths_.empty() || max_len == 0) return 0;
  // Prefix hashes at every length some entry has; the longest verified match wins.
  List::iterator best = lru_.end();
  size_t best_len = 0;
  uint64_t h = hash_init();
  size_t done = 0;
  for (const auto& [len, count] : lengths_) {
    (void)count;
    if (len > max_len) break;
    for (; done < len; ++done) h = hash_step(h, tokens[done]);
    auto [lo, hi] = by_hash_.equal_range(h);
    for (auto it = lo; it != hi; ++it) {
      const Entry& e = *it->second;
      if (e.tokens.size() == len && std::equal(e.tokens.begin(), e.tokens.end(), tokens.begin()) &&
          e.data.size() == state.data.size()) {
        best = it->second;
        best_len = len;
        break;
      }
    }
  }
  if (best == lru_.end()) return 0;
  std::copy(best->data.begin(), best->data.end(), state.data.begin());
  lru_.splice(lru_.begin(), lru_, best);
  ++st_.hits;
  st_.tokens_skipped += best_len;
  return best_len;
}

void PrefixCache::erase(List::iterator it) {
  auto [lo, hi] = by_hash_.equal_range(it->hash);
  for (auto m = lo; m != hi; ++m)
    if (m->second == it) {
      by_hash_.erase(m);
      break;
    }
  auto l = lengths_.find(it->tokens.size());
  if (l != lengths_.end() && --l->second == 0) lengths_.erase(l);
  bytes_ -= it->bytes();
  lru_.erase(it);
}

void PrefixCache::insert(std::span<const int32_t> tokens, const State& state) {
  if (tokens.empty()) return;
  const size_t need = tokens.size() * sizeof(int32_t) + state.data.size() * sizeof(float);
  std::lock_guard lock(mu_);
  if (need > budget_) return;
  uint64_t h = hash_init();
  for (int32_t t : tokens) h = hash_step(h, t);
  // An equal key is replaced (its state is the same by construction, but it is refreshed).
  auto [lo, hi] = by_hash_.equal_range(h);
  for (auto m = lo; m != hi; ++m)
    if (std::equal(m->second->tokens.begin(), m->second->tokens.end(), tokens.begin(),
                   tokens.end())) {
      erase(m->second);
      break;
    }
  while (bytes_ + need > budget_ && !lru_.empty()) {
    erase(std::prev(lru_.end()));
    ++st_.evictions;
  }
  lru_.push_front(Entry{std::vector<int32_t>(tokens.begin(), tokens.end()), state.data, h});
  by_hash_.emplace(h, lru_.begin());
  ++lengths_[tokens.size()];
  bytes_ += need;
  ++st_.inserts;
}

void PrefixCache::clear() {
  std::lock_guard lock(mu_);
  lru_.clear();
  by_hash_.clear();
  lengths_.clear();
  bytes_ = 0;
}

PrefixCacheStats PrefixCache::stats() const {
  std::lock_guard lock(mu_);
  PrefixCacheStats s = st_;
  s.entries = lru_.size();
  s.bytes = bytes_;
  s.budget_bytes = budget_;
  return s;
}

}  // namespace wkv
