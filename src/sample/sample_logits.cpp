// The draw itself: ChatRWKV PIPELINE.sample_logits (softmax, top-p cutoff with its ties,
// top-k, probs^(1/temperature), inverse-CDF draw), without sorting the whole vocabulary.
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

// The first `chunk` positions searched for the top-p cutoff; doubled while it is not found.
constexpr size_t kFirstChunk = 64;

// Tokens with exp(logit - max) below this are ranked only when the nucleus reaches them.
constexpr double kCandidateFloor = 1e-4;

constexpr size_t kUnknown = static_cast<size_t>(-1);

// The sum of v in four interleaved chains (a fixed order, so the same bits everywhere; one
// chain of dependent adds over a vocabulary took ~60 us).
double sum(const std::vector<double>& v) {
  double s[4] = {0, 0, 0, 0};
  const size_t n = v.size(), n4 = n / 4 * 4;
  for (size_t i = 0; i < n4; i += 4)
    for (int j = 0; j < 4; ++j) s[j] += v[i + j];
  for (size_t i = n4; i < n; ++i) s[i % 4] += v[i];
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

// The top-p and top-k truncation over `cand`, token ids that all precede every other token in
// the sort order (probability desc, then id asc), so that their sorted order is a prefix of
// the whole vocabulary's. A strict total order: the result is the same on every standard
// library. (The official top_k uses np.argsort, whose order among ties is unspecified; here
// the lower id wins a tie at the k-th place.)
// Returns how many tokens survive, sorted at the front of `cand`; or kUnknown when the top-p
// cutoff lies past `cand` and before the top_k limit.
size_t truncate(std::span<int32_t> cand, const double* p, size_t limit, double target) {
  const auto before = [p](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); };
  const size_t n = cand.size(), end = std::min(limit, n);
  const auto first = cand.begin();

  // Sort only as long a prefix as needed: chunks of doubling size, each chosen by nth_element
  // over the unsorted rest, until the cumulative sum reaches top_p (or top_k tokens are sorted:
  // a cutoff past the k-th token keeps all k).
  size_t sorted = 0, next = 0, chunk = kFirstChunk, cut = kUnknown;
  double cum = 0;
  while (cut == kUnknown && sorted < end) {
    next = std::min(end, sorted + chunk);
    chunk *= 2;
    if (next < n) std::nth_element(first + sorted, first + next, cand.end(), before);
    std::sort(first + sorted, first + next, before);
    for (; sorted < next; ++sorted) {
      cum += p[cand[sorted]];
      if (cum >= target) {  // official: first index where cumsum >= top_p
        cut = sorted;
        break;
      }
    }
  }
  if (cut == kUnknown) return n >= limit ? limit : kUnknown;

  // probs[probs < cutoff] = 0: every token tied with the cutoff survives. (All of them are in
  // `cand`: a tie ranks before any token outside it.)
  const double cutoff = p[cand[cut]];
  size_t keep = cut + 1;
  while (keep < next && p[cand[keep]] == cutoff) ++keep;
  if (keep == next && next < end) {
    // Ties may continue into the unsorted rest (none there can exceed the cutoff).
    const auto ties_end = std::partition(first + next, cand.end(),
                                         [p, cutoff](int32_t id) { return p[id] == cutoff; });
    std::sort(first + next, ties_end, before);  // equal probabilities: by id
    keep = static_cast<size_t>(ties_end - first);
  }
  return std::min(keep, limit);  // top_k applies after top_p
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
    c.total = sum(probs_);
    return c;
  }

  // probs = softmax(logits), up to the constant factor 1/total. Tokens above the floor are
  // the first candidates for the nucleus.
  softmax_weights(logits.data(), probs_.data(), V, max_logit, 1.0);
  const double total = sum(probs_);
  order_.clear();
  order_.reserve(V);
  for (size_t i = 0; i < V; ++i)
    if (probs_[i] >= kCandidateFloor) order_.push_back(static_cast<int32_t>(i));

  const size_t limit = top_k_on ? static_cast<size_t>(cfg_.top_k) : V;
  const double target =
      top_p_on ? std::max(0.0, static_cast<double>(cfg_.top_p)) * total : kInf;
  size_t keep = truncate(order_, probs_.data(), limit, target);
  if (keep == kUnknown) {  // the nucleus reaches below the floor: rank every token
    order_.resize(V);
    std::iota(order_.begin(), order_.end(), 0);
    keep = truncate(order_, probs_.data(), limit, target);
    WKV_ASSERT(keep != kUnknown);  // every token is a candidate now, and limit <= V
  }

  // probs = probs ** (1 / temperature), applied after the truncations.
  double kept_total = 0;
  for (size_t i = 0; i < keep; ++i) {
    double& w = probs_[order_[i]];
    if (cfg_.temperature != 1.0f) w = std::pow(w, inv_t);
    kept_total += w;
  }
  c.ordered = true;
  c.count = keep;
  c.total = kept_total;
  return c;
}

int32_t Sampler::sample_logits(std::span<const float> logits) {
  const Candidates c = candidates(logits);
  if (c.greedy >= 0) return c.greedy;
  // Inverse CDF: the first candidate whose cumulative weight exceeds u * total.
  const double target = rng_.next_unit() * c.total;
  double cum = 0;
  int32_t last = -1;
  for (size_t i = 0; i < c.count; ++i) {
    const int32_t id = candidate_id(c, i);
    const double w = probs_[id];
    if (!(w > 0)) continue;
    cum += w;
    last = id;
    if (target < cum) return id;
  }
  WKV_ASSERT(last >= 0);  // the argmax always has weight exp(0) ** (1/T) = 1
  return last;            // u * total rounded up to total
}

std::vector<TokenProb> Sampler::distribution(std::span<const float> logits) {
  const Candidates c = candidates(logits);
  if (c.greedy >= 0) return {TokenProb{c.greedy, 1.0}};
  std::vector<TokenProb> out;
  for (size_t i = 0; i < c.count; ++i) {
    const int32_t id = candidate_id(c, i);
    if (probs_[id] > 0) out.push_back({id, probs_[id] / c.total});
  }
  return out;
}

}  // namespace wkv
