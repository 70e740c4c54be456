// Sampler: picks the next token from a span of logits the way ChatRWKV's PIPELINE does
// (bans, presence/frequency penalties with decay, then sample_logits: top-p, top-k,
// temperature), with an explicitly seeded RNG it owns. Spec: RWKV_REFERENCE.md section 3.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "sample/rng.hpp"

namespace wkv {

struct SamplerConfig {
  // 0 => greedy: the exact argmax, ties -> lowest id. (The official sample_logits instead turns
  // temperature 0 into top_p = 0 and so draws at random among tokens tied for the maximum.)
  float temperature = 1.0f;
  // Nucleus mass, official default 0.85. 0 => keep only the top probability and its ties;
  // >= 1 => off.
  float top_p = 0.85f;
  int top_k = 0;  // 0 => off
  // Official alpha_presence, alpha_frequency, alpha_decay (PIPELINE_ARGS).
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float penalty_decay = 1.0f;
  std::vector<int32_t> banned;         // logits set to -inf; ids outside the vocab are ignored
  std::map<int32_t, float> logit_bias;  // added to logits after the penalties (OpenAI-style)
  uint64_t seed = 0;  // same seed + same logits sequence => same tokens, on every platform
};

// An Error naming the first field out of range: temperature, top_p or penalty_decay negative
// or not finite, top_p > 1, top_k < 0, a penalty not finite, a bias NaN or +inf.
// The Sampler itself accepts any config (out-of-range values fall back to documented
// behaviour), so call this on user input to report mistakes instead of hiding them.
Status validate_sampler_config(const SamplerConfig& cfg);

// The official PIPELINE.generate rule for the frequency weight `www`: 0 when decode([token]) is
// a Python substring of " \t0123456789" (so " ", "\t", "7", "123" and "" are exempt, "  " and
// "21" are not), else 1. Pass the result as accept()'s weight.
bool is_penalty_exempt_text(std::string_view token_text);

// One token of the distribution a draw is made from.
struct TokenProb {
  int32_t id;
  double p;
};

// Not thread-safe: sample() mutates the RNG and reusable buffers.
class Sampler {
 public:
  explicit Sampler(SamplerConfig cfg);

  // Picks the next token. Edits `logits` in place, in the official PIPELINE.generate order:
  // bans (-inf), penalties from the occurrence table, then logit_bias; then sample_logits().
  // Does not record the token: call accept() with what was actually emitted.
  int32_t sample(std::span<float> logits);

  // The official sample_logits (top-p, top-k, temperature, draw) on logits as given: no bans,
  // penalties or bias. Degenerate inputs: if no logit is above -inf (all banned or NaN), or
  // one is +inf, the result is the argmax (lowest id first). NaN logits are never drawn.
  int32_t sample_logits(std::span<const float> logits);

  // The distribution sample_logits() would draw from (normalized, the order it is scanned in),
  // without consuming randomness. Greedy gives one token with p = 1. For tests and probes.
  std::vector<TokenProb> distribution(std::span<const float> logits);

  // Official PIPELINE.generate step 3: out[n] -= presence + occurrence[n] * frequency for every
  // n in the occurrence table (ids outside the span are skipped).
  void apply_penalties(std::span<float> logits) const;

  // Official PIPELINE.generate steps 7-8: every occurrence *= penalty_decay, then
  // occurrence[token] += weight (created if absent). `weight` is the official www: pass
  // is_penalty_exempt_text(decoded token) ? 0 : 1. An exempt token still pays the presence
  // penalty afterwards, as officially. API_DEMO_CHAT.py instead always passes 1. `token` is a
  // vocabulary id (what sample() returned): the table is indexed by it.
  void accept(int32_t token, float weight = 1.0f);

  // Back to the freshly constructed state: occurrence table cleared and the RNG reseeded.
  void reset();

  const SamplerConfig& config() const { return cfg_; }
  // The occurrence table, token -> decayed count (a copy; for tests and probes).
  std::map<int32_t, float> occurrence() const;

 private:
  // The tokens a draw chooses among and their unnormalized weights (after temperature).
  struct Candidates {
    int32_t greedy = -1;     // >= 0: the answer is this token, no draw
    bool truncated = false;  // kept_[0..count) (in no order); else ids 0..count, probs_[id]
    size_t count = 0;
    double total = 0;  // sum of the weights
  };
  Candidates candidates(std::span<const float> logits);

 public:
  // A token that survived the truncations: softmax weight p (its place in the order) and
  // draw weight w (p ** (1/T)). Public for the selection helpers in sample_logits.cpp.
  struct Cand {
    double p, w;
    int32_t id;
  };

 private:
  SamplerConfig cfg_;
  Rng rng_;
  // The occurrence table of PIPELINE.generate (token -> decayed count), flat: counts by id,
  // whether an id has an entry, and the ids with one (a std::map walked per token cost
  // ~50 ns an entry in cache misses).
  std::vector<float> occ_;
  std::vector<uint8_t> present_;
  std::vector<int32_t> occ_ids_;
  // Reused between calls, sized to the vocabulary on first use.
  std::vector<double> probs_;    // exp(logit - max) per token (the draw weights untruncated)
  std::vector<double> weights_;  // exp((logit - max) / T) per token, when T != 1 and truncated
  std::vector<Cand> kept_;       // the candidates, survivors first
  std::vector<int32_t> ids_;     // scratch: the candidates' ids
};

}  // namespace wkv
