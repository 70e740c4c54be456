// The draw itself: ChatRWKV PIPELINE.sample_logits (softmax, top-p cutoff with its ties,
// top-k, probs^(1/temperature), inverse-CDF draw), without sorting: each step that needs a
// prefix of the sorted order (the nucleus, the top k, the draw) finds it by selection.
#include <emmintrin.h>
#include <xmmintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <utility>

#include "sample/sampler.hpp"
#include "sample/softmax.hpp"

namespace wkv {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Tokens with exp(logit - max) below this are ranked only when the nucleus reaches them.
constexpr double kCandidateFloor = 1e-4;

constexpr size_t kUnknown = static_cast<size_t>(-1);

// at(0) + ... + at(n - 1) in four interleaved chains (a fixed order, so the same bits
// everywhere; one chain of dependent adds over a vocabulary took ~60 us).
template <class At>
double sum4(size_t n, At at) {
  double s[4] = {0, 0, 0, 0};
  const size_t n4 = n / 4 * 4;
  for (size_t i = 0; i < n4; i += 4)
    for (size_t j = 0; j < 4; ++j) s[j] += at(i + j);
  for (size_t i = n4; i < n; ++i) s[i % 4] += at(i);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// The argmax of x (the lowest index among ties), and the maximum; NaN is never the maximum
// (-inf and index 0 when nothing else is). Four SSE2 lanes in four chains, then the first
// index holding the maximum: a scalar loop of compares and branches took 40 us for 65536.
std::pair<size_t, float> argmax(std::span<const float> x) {
  const size_t n = x.size(), n16 = n / 16 * 16;
  __m128 m[4];
  for (auto& v : m) v = _mm_set1_ps(-kInf);
  for (size_t i = 0; i < n16; i += 16)
    for (int j = 0; j < 4; ++j)  // maxps(a, b) gives b when a is NaN: NaN never wins
      m[j] = _mm_max_ps(_mm_loadu_ps(x.data() + i + 4 * j), m[j]);
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, _mm_max_ps(_mm_max_ps(m[0], m[1]), _mm_max_ps(m[2], m[3])));
  float best = -kInf;
  for (float v : lanes) best = v > best ? v : best;
  for (size_t i = n16; i < n; ++i) best = x[i] > best ? x[i] : best;
  if (best == -kInf) return {0, best};
  size_t at = 0;
  while (!(x[at] == best)) ++at;
  return {at, best};
}

using Cand = Sampler::Cand;

// The sort order of the official sample_logits: probability descending, then (a strict total
// order, so the result is the same on every standard library) id ascending. (The official
// top_k uses np.argsort, whose order among ties is unspecified; here the lower id wins a tie
// at the k-th place.)
inline bool before(const Cand& a, const Cand& b) {
  return (a.p > b.p) | ((a.p == b.p) & (a.id < b.id));  // no branch: partitions mispredict it
}

// Among a[0, n) in the order `before`: the position of the first candidate at which the
// cumulative mass(.) of the candidates up to it reaches `target` (mass >= target, or > with
// `strict`), a[0, pos) rearranged to hold exactly the candidates before it (in no particular
// order); n if the total mass never reaches it. Quickselect with median-of-three pivots and
// masses summed per partition, so expected O(n) where sorting the 0.85 nucleus of a flat
// 65536-token distribution took ~5 ms; after 2 log2(n) + 8 rounds the rest is sorted instead
// (bounded work on any input). Deterministic: the same input gives the same arrangement and
// the same sums everywhere.
template <class Mass>
size_t select_by_mass(Cand* a, size_t n, Mass mass, double target, bool strict) {
  const auto reaches = [&](double m) { return strict ? m > target : m >= target; };
  size_t lo = 0, hi = n, rounds = 8;
  for (size_t k = n; k > 1; k /= 2) rounds += 2;
  double acc = 0;  // mass of a[0, lo), all before a[lo, hi)
  while (hi - lo > 16 && rounds-- > 0) {
    const size_t mid = lo + (hi - lo) / 2, last = hi - 1;
    if (before(a[mid], a[lo])) std::swap(a[mid], a[lo]);
    if (before(a[last], a[mid])) std::swap(a[last], a[mid]);
    if (before(a[mid], a[lo])) std::swap(a[mid], a[lo]);
    std::swap(a[mid], a[last]);  // the median of the three as the pivot, at the end
    const Cand pivot = a[last];
    size_t store = lo;  // a[lo, store) before the pivot, a[store, i) not: swapped either way
    double left = 0;    // (no branch to mispredict on random data), store advanced if before
    for (size_t i = lo; i < last; ++i) {
      const Cand x = a[i];
      const bool b = before(x, pivot);
      a[i] = a[store];
      a[store] = x;
      store += b;
      left += mass(x) * static_cast<double>(b);
    }
    std::swap(a[store], a[last]);
    if (reaches(acc + left)) {
      hi = store;
    } else if (reaches(acc + left + mass(a[store]))) {
      return store;
    } else {
      acc += left + mass(a[store]);
      lo = store + 1;
    }
  }
  std::sort(a + lo, a + hi, before);
  for (size_t i = lo; i < hi; ++i) {
    const double m = acc + mass(a[i]);
    if (reaches(m)) return i;
    acc = m;
  }
  // Not reached: the total mass falls short (hi == n), or the range was narrowed to [., hi)
  // because a sum in another order reached the target and these partial sums round below it;
  // then the crossing candidate is the range's last (a[0, hi - 1) are all before it).
  return hi < n ? hi - 1 : n;
}

constexpr auto kByProbability = [](const Cand& c) { return c.p; };
constexpr auto kByCount = [](const Cand&) { return 1.0; };
constexpr auto kByWeight = [](const Cand& c) { return c.w; };

// The top-p and top-k truncation over cand[0, n), the tokens that all precede every other
// token in the order (so their order is a prefix of the whole vocabulary's): the survivors
// moved to the front, their count returned; or kUnknown when the answer needs tokens outside
// `cand` (the nucleus reaches past them, or fewer than top_k of them). target: top_p times
// the total probability (infinite when top_p is off); limit: top_k (n or more when off).
size_t truncate(Cand* cand, size_t n, size_t limit, double target, bool all_tokens) {
  size_t keep = n;
  if (target < std::numeric_limits<double>::infinity()) {
    const size_t cut = select_by_mass(cand, n, kByProbability, target, false);
    if (cut == n) {                               // the nucleus reaches past these candidates
      if (all_tokens) return std::min(n, limit);  // rounding: the whole vocabulary
      if (n < limit) return kUnknown;
    } else {
      // probs[probs < cutoff] = 0: every token tied with the cutoff survives. (All of them are
      // candidates: a tie ranks before any token outside.)
      // (Moved up by this loop, not std::partition, whose arrangement, and so the order of
      // the later sums, would depend on the standard library.)
      const double cutoff = cand[cut].p;
      keep = cut + 1;
      for (size_t i = keep; i < n; ++i)
        if (cand[i].p == cutoff) std::swap(cand[i], cand[keep++]);
    }
  } else if (n < limit && !all_tokens) {
    return kUnknown;  // top_k reaches past these candidates
  }
  if (keep > limit) {  // top_k applies after top_p: the first `limit` survivors
    select_by_mass(cand, keep, kByCount, static_cast<double>(limit), false);
    keep = limit;
  }
  return keep;
}

}  // namespace

// Built for AVX-512, AVX2 and the baseline, the CPU's best chosen at load (target_clones): the
// same operations in every version (this file is compiled with -ffp-contract=off, so no version
// fuses a multiply-add), so the same bits; 4 or 8 doubles a vector instead of SSE2's 2 (65536
// tokens: ~200 -> ~60 us).
__attribute__((target_clones("avx512f", "avx2", "default"))) void softmax_weights(
    const float* x, double* out, size_t n, double max, double scale) {
  for (size_t i = 0; i < n; ++i) out[i] = exp_nonpositive((x[i] - max) * scale);
}

// Official sample_logits(logits, temperature, top_p, top_k):
//   if temperature == 0: temperature = 1, top_p = 0
//   probs = softmax(logits); sorted = sort(probs, descending); cumsum = cumsum(sorted)
//   cutoff = sorted[argmax(cumsum >= top_p)]; probs[probs < cutoff] = 0
//   if 0 < top_k < V: probs[all but the top_k largest] = 0
//   if temperature != 1: probs = probs ** (1 / temperature)
//   probs /= sum(probs); return random.choice(V, p=probs)
// Here probabilities stay unnormalized (exp(logit - max)); "cumsum >= top_p" becomes
// "cumsum >= top_p * sum", and the draw scales its uniform number by the sum instead.
Sampler::Candidates Sampler::candidates(std::span<const float> logits) {
  WKV_ASSERT(!logits.empty());
  const size_t V = logits.size();
  Candidates c;

  // The argmax, lowest id among ties; NaN never compares greater so is never chosen.
  const auto [best, m] = argmax(logits);
  // Greedy for temperature 0 (deterministic, unlike the official top_p = 0 draw among ties),
  // and for the degenerate cases where a softmax is undefined: no logit above -inf, or +inf.
  if (!(cfg_.temperature > 0) || m == -kInf || m == kInf) {
    c.greedy = static_cast<int32_t>(best);
    return c;
  }

  const double max_logit = m;
  const double inv_t = 1.0 / static_cast<double>(cfg_.temperature);
  const bool top_p_on = cfg_.top_p < 1.0f;  // top_p >= 1 (or NaN) keeps everything
  const bool top_k_on = cfg_.top_k > 0 && static_cast<size_t>(cfg_.top_k) < V;
  probs_.resize(V);

  if (!top_p_on && !top_k_on) {
    // Nothing truncated: every token is a candidate, in id order. probs ** (1/T) equals
    // exp((logit - max) / T) up to the softmax's constant factor, which normalizing removes.
    softmax_weights(logits.data(), probs_.data(), V, max_logit, inv_t);  // -inf, NaN -> 0
    c.count = V;
    c.total = sum4(V, [&](size_t i) { return probs_[i]; });
    return c;
  }

  // probs = softmax(logits), up to the constant factor 1/total. Tokens above the floor are
  // the first candidates for the nucleus.
  softmax_weights(logits.data(), probs_.data(), V, max_logit, 1.0);
  const double total = sum4(V, [&](size_t i) { return probs_[i]; });
  // Tokens with p >= floor (or > 0) gathered without a branch (the test mispredicted often
  // enough to cost a fifth of a Zipf-like draw).
  ids_.resize(V);
  const auto gather = [&](double floor) {
    size_t n = 0;
    for (size_t i = 0; i < V; ++i) {
      ids_[n] = static_cast<int32_t>(i);
      n += probs_[i] >= floor;
    }
    kept_.resize(n);
    for (size_t j = 0; j < n; ++j) kept_[j] = {probs_[static_cast<size_t>(ids_[j])], 0.0, ids_[j]};
    return n;
  };

  const size_t limit = top_k_on ? static_cast<size_t>(cfg_.top_k) : V;
  const double target =
      top_p_on ? std::max(0.0, static_cast<double>(cfg_.top_p)) * total : kInf;
  size_t keep = truncate(kept_.data(), gather(kCandidateFloor), limit, target, false);
  if (keep == kUnknown)  // the answer reaches below the floor: every token with p > 0
    keep = truncate(kept_.data(), gather(std::numeric_limits<double>::denorm_min()), limit, target,
                    true);

  // probs = probs ** (1 / temperature), applied after the truncations, as exp((logit - max) / T)
  // (the same weights up to rounding): for a large nucleus over the whole vocabulary at once,
  // vectorized (std::pow per survivor took ~1 ms for a flat nucleus).
  // A small nucleus takes them one by one (the same bits: softmax_weights computes
  // exp_nonpositive the same way).
  const bool reweight = cfg_.temperature != 1.0f, whole = reweight && keep > V / 16;
  if (whole) {
    weights_.resize(V);
    softmax_weights(logits.data(), weights_.data(), V, max_logit, inv_t);
  }
  for (size_t i = 0; i < keep; ++i) {
    Cand& k = kept_[i];
    const auto id = static_cast<size_t>(k.id);
    k.w = !reweight ? k.p
          : whole   ? weights_[id]
                    : exp_nonpositive((logits[id] - max_logit) * inv_t);
  }
  c.truncated = true;
  c.count = keep;
  c.total = sum4(keep, [&](size_t i) { return kept_[i].w; });
  return c;
}

int32_t Sampler::sample_logits(std::span<const float> logits) {
  const Candidates c = candidates(logits);
  if (c.greedy >= 0) return c.greedy;
  // Inverse CDF in the sort order: the first candidate whose cumulative weight exceeds
  // u * total.
  const double target = rng_.next_unit() * c.total;
  if (c.truncated) {
    const size_t at = select_by_mass(kept_.data(), c.count, kByWeight, target, true);
    if (at < c.count) return kept_[at].id;
    // u * total rounded up to total: the last candidate in the order with a weight
    const Cand* last = nullptr;
    for (size_t i = 0; i < c.count; ++i)
      if (kept_[i].w > 0 && (!last || before(*last, kept_[i]))) last = &kept_[i];
    WKV_ASSERT(last != nullptr);  // the argmax always has weight exp(0) ** (1/T) = 1
    return last->id;
  }
  double cum = 0;  // no truncation: every token, in id order
  int32_t last = -1;
  for (size_t i = 0; i < c.count; ++i) {
    const double w = probs_[i];
    if (!(w > 0)) continue;
    cum += w;
    last = static_cast<int32_t>(i);
    if (target < cum) return last;
  }
  WKV_ASSERT(last >= 0);
  return last;
}

std::vector<TokenProb> Sampler::distribution(std::span<const float> logits) {
  const Candidates c = candidates(logits);
  if (c.greedy >= 0) return {TokenProb{c.greedy, 1.0}};
  std::vector<TokenProb> out;
  if (c.truncated) {
    std::sort(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(c.count), before);
    for (size_t i = 0; i < c.count; ++i)
      if (kept_[i].w > 0) out.push_back({kept_[i].id, kept_[i].w / c.total});
  } else {
    for (size_t i = 0; i < c.count; ++i)
      if (probs_[i] > 0) out.push_back({static_cast<int32_t>(i), probs_[i] / c.total});
  }
  return out;
}

}  // namespace wkv
