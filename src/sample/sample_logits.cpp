// The draw itself: ChatRWKV PIPELINE.sample_logits (softmax, top-p cutoff with its ties,
// top-k, probs^(1/temperature), inverse-CDF draw), without sorting the whole vocabulary.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "sample/sampler.hpp"

namespace wkv {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The first `chunk` positions searched for the top-p cutoff; doubled while it is not found.
constexpr size_t kFirstChunk = 64;

// Tokens with exp(logit - max) below this are ranked only when the nucleus reaches them.
constexpr double kCandidateFloor = 1e-4;

constexpr size_t kUnknown = static_cast<size_t>(-1);

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
  size_t best = 0;
  float m = -kInf;
  for (size_t i = 0; i < V; ++i)
    if (logits[i] > m) {
      m = logits[i];
      best = i;
    }
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
    double total = 0;
    for (size_t i = 0; i < V; ++i) {
      const float x = logits[i];
      const double w = x > -kInf ? std::exp((x - max_logit) * inv_t) : 0.0;  // NaN -> 0
      probs_[i] = w;
      total += w;
    }
    c.count = V;
    c.total = total;
    return c;
  }

  // probs = softmax(logits), up to the constant factor 1/total. Tokens above the floor are
  // the first candidates for the nucleus.
  double total = 0;
  order_.clear();
  order_.reserve(V);
  for (size_t i = 0; i < V; ++i) {
    const float x = logits[i];
    const double e = x > -kInf ? std::exp(x - max_logit) : 0.0;  // NaN -> 0
    probs_[i] = e;
    total += e;
    if (e >= kCandidateFloor) order_.push_back(static_cast<int32_t>(i));
  }

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
