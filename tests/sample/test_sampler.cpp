// Sampler tests on hand-made logits: seeding, greedy, top-p/top-k against a brute-force
// transcription of the official PIPELINE.sample_logits, empirical frequencies, penalties,
// bans, bias, and the whitespace/digit exemption rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "sample/sampler.hpp"
#include "sample/softmax.hpp"

namespace wkv {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

SamplerConfig config(float temperature, float top_p, int top_k = 0, uint64_t seed = 1) {
  SamplerConfig c;
  c.temperature = temperature;
  c.top_p = top_p;
  c.top_k = top_k;
  c.seed = seed;
  return c;
}

std::vector<int> counts(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<int> n(logits.size());
  for (int i = 0; i < draws; ++i) {
    int32_t t = s.sample_logits(logits);
    EXPECT_GE(t, 0);
    EXPECT_LT(t, static_cast<int32_t>(logits.size()));
    if (t >= 0 && t < static_cast<int32_t>(logits.size())) ++n[t];
  }
  return n;
}

// Pearson chi-square of observed counts against expected probabilities.
double chi_square(const std::vector<int>& observed, const std::vector<double>& expected) {
  double total = 0;
  for (int o : observed) total += o;
  double chi = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    if (expected[i] == 0) {
      EXPECT_EQ(observed[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double e = expected[i] * total;
    chi += (observed[i] - e) * (observed[i] - e) / e;
  }
  return chi;
}

std::map<int32_t, double> as_map(const std::vector<TokenProb>& d) {
  std::map<int32_t, double> m;
  for (const auto& tp : d) {
    EXPECT_EQ(m.count(tp.id), 0u) << "token " << tp.id << " listed twice";
    m[tp.id] = tp.p;
  }
  return m;
}

// The official sample_logits, transcribed with a full sort (ties ordered by id) and normalized
// probabilities: the distribution it draws from.
std::map<int32_t, double> reference_distribution(const std::vector<float>& logits, float temperature,
                                                 float top_p, int top_k) {
  const size_t V = logits.size();
  const double m = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probs(V);
  double sum = 0;
  for (size_t i = 0; i < V; ++i) sum += probs[i] = std::exp(logits[i] - m);
  for (double& p : probs) p /= sum;
  std::vector<int32_t> order(V);
  for (size_t i = 0; i < V; ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
  std::vector<bool> keep(V, true);
  if (top_p < 1) {
    double cum = 0, cutoff = probs[order[0]];
    for (size_t j = 0; j < V; ++j) {
      cum += probs[order[j]];
      if (cum >= top_p) {
        cutoff = probs[order[j]];
        break;
      }
    }
    for (size_t i = 0; i < V; ++i) keep[i] = probs[i] >= cutoff;
  }
  if (top_k > 0 && static_cast<size_t>(top_k) < V)
    for (size_t j = top_k; j < V; ++j) keep[order[j]] = false;
  std::map<int32_t, double> out;
  double total = 0;
  for (size_t i = 0; i < V; ++i)
    if (keep[i]) {
      const double w = std::pow(probs[i], 1.0 / temperature);
      if (w > 0) out[static_cast<int32_t>(i)] = w;
      total += w;
    }
  for (auto& [id, w] : out) w /= total;
  return out;
}

// ---- the softmax weights ----

// exp_nonpositive within 2 ulp of std::exp over [-708, 0] (both ends, powers of two, random
// points), 1 at +-0, 0 below -708 and for -inf and NaN.
TEST(Softmax, ExpNonpositiveIsWithinTwoUlp) {
  std::vector<double> d = {0.0,  -0.0,  -1e-300, -1e-17, -0.5, -std::log(2.0),
                           -1.0, -20.0, -707.9,  -708.0};
  std::mt19937_64 gen(9);
  for (int i = 0; i < 200000; ++i)
    d.push_back(-708.0 * static_cast<double>(gen() >> 11) * 0x1.0p-53);
  for (int e = -60; e <= 9; ++e) d.push_back(-std::ldexp(1.0, e));
  for (double x : d) {
    if (x < -708.0) continue;
    const double want = std::exp(x), got = exp_nonpositive(x);
    const double ulp = std::nextafter(want, kInf) - want;
    ASSERT_LE(std::fabs(got - want), 2 * ulp) << "exp(" << x << ") = " << got << ", want " << want;
  }
  EXPECT_EQ(exp_nonpositive(0.0), 1.0);
  EXPECT_EQ(exp_nonpositive(-0.0), 1.0);
  for (double x : {-708.0001, -745.0, -1e10, -static_cast<double>(kInf),
                   std::numeric_limits<double>::quiet_NaN()})
    EXPECT_EQ(exp_nonpositive(x), 0.0) << x;
}

// softmax_weights (built for several instruction sets, the CPU's best chosen at load) gives the
// bits this file's baseline build of exp_nonpositive gives, whatever the length and scale.
TEST(Softmax, WeightsAreTheSameBitsOnEveryInstructionSet) {
  std::mt19937 gen(4);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  for (size_t n : {0u, 1u, 3u, 17u, 1000u, 65536u})
    for (double scale : {1.0, 1.25, 10.0}) {
      std::vector<float> x(n);
      for (float& v : x) v = nd(gen);
      if (n > 3) x[1] = -kInf, x[2] = std::numeric_limits<float>::quiet_NaN();
      const double max = n ? *std::max_element(x.begin(), x.end()) : 0.0;
      std::vector<double> got(n + 1, -1.0);
      softmax_weights(x.data(), got.data(), n, max, scale);
      for (size_t i = 0; i < n; ++i) {
        const double want = exp_nonpositive((x[i] - max) * scale);
        ASSERT_EQ(std::memcmp(&got[i], &want, 8), 0)
            << "n " << n << " i " << i << ": " << got[i] << " vs " << want;
      }
      EXPECT_EQ(got[n], -1.0) << "wrote past n = " << n;
    }
}

// ---- seeding and the draw ----

// The draw is the inverse CDF in the sort order (probability descending, id ascending): with
// the sampler's own random stream replayed, each token drawn from a large, nearly flat
// vocabulary (the nucleus found by selection, never sorted) is the first of distribution()'s
// sorted list whose cumulative probability exceeds u. Logits in quarter steps, so many ties.
TEST(Sampler, DrawIsTheInverseCdfInSortOrder) {
  std::mt19937 gen(12);
  std::uniform_int_distribution<int> quarter(-8, 8);
  std::vector<float> logits(20000);
  for (float& x : logits) x = static_cast<float>(quarter(gen)) * 0.25f;
  for (float temperature : {1.0f, 0.7f})
    for (int top_k : {0, 3000}) {
      Sampler s(config(temperature, 0.9f, top_k, 33));
      const auto dist = s.distribution(logits);  // sorted, and consumes no randomness
      for (size_t i = 1; i < dist.size(); ++i)
        ASSERT_TRUE(logits[dist[i - 1].id] > logits[dist[i].id] ||
                    (logits[dist[i - 1].id] == logits[dist[i].id] && dist[i - 1].id < dist[i].id))
            << "distribution() out of order at " << i;
      Rng replay(33);
      for (int draw = 0; draw < 300; ++draw) {
        const double u = replay.next_unit();
        double cum = 0;
        int32_t want = dist.back().id;
        for (const auto& tp : dist)
          if ((cum += tp.p) > u) {
            want = tp.id;
            break;
          }
        ASSERT_EQ(s.sample_logits(logits), want)
            << "draw " << draw << " u " << u << " T " << temperature << " top_k " << top_k;
      }
    }
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDiffers) {
  const auto logits = logits_of({0.05, 0.1, 0.2, 0.15, 0.25, 0.1, 0.1, 0.05});
  Sampler a(config(1.0f, 1.0f, 0, 42)), b(config(1.0f, 1.0f, 0, 42)), c(config(1.0f, 1.0f, 0, 43));
  int differ = 0;
  for (int i = 0; i < 1000; ++i) {
    const int32_t ta = a.sample_logits(logits), tb = b.sample_logits(logits);
    ASSERT_EQ(ta, tb) << "draw " << i;
    differ += ta != c.sample_logits(logits);
  }
  // Two independent streams agree with probability sum p^2 = 0.165 per draw.
  EXPECT_GT(differ, 700);
}

TEST(Sampler, ResetRestartsTheStreamAndClearsOccurrences) {
  const auto logits = logits_of({0.3, 0.3, 0.2, 0.2});
  Sampler s(config(1.0f, 1.0f, 0, 9));
  std::vector<int32_t> first;
  for (int i = 0; i < 200; ++i) first.push_back(s.sample_logits(logits));
  s.accept(1);
  ASSERT_EQ(s.occurrence().size(), 1u);
  s.reset();
  EXPECT_TRUE(s.occurrence().empty());
  for (int i = 0; i < 200; ++i) ASSERT_EQ(s.sample_logits(logits), first[i]) << "draw " << i;
}

// With V = 256 equal logits every weight is exactly 1, so the inverse CDF of u = top 53 bits
// of mt19937_64 / 2^53 picks floor(u * 256) = the output's top 8 bits. This pins the draw to
// the standard-defined generator, independently of the implementation.
TEST(Sampler, UniformDrawMatchesMt19937TopBits) {
  const std::vector<float> logits(256, 0.0f);
  for (float top_p : {1.0f, 0.85f, 0.0001f}) {  // with top_p < 1 all 256 tie with the cutoff
    for (int top_k : {0, 256}) {
      Sampler s(config(1.0f, top_p, top_k, 12345));
      std::mt19937_64 gen(12345);
      for (int i = 0; i < 1000; ++i)
        ASSERT_EQ(s.sample_logits(logits), static_cast<int32_t>(gen() >> 56))
            << "draw " << i << " top_p " << top_p << " top_k " << top_k;
    }
  }
}

TEST(Sampler, DistributionDoesNotConsumeRandomness) {
  const auto logits = logits_of({0.4, 0.3, 0.2, 0.1});
  Sampler a(config(1.0f, 0.9f, 0, 5)), b(config(1.0f, 0.9f, 0, 5));
  for (int i = 0; i < 100; ++i) {
    (void)a.distribution(logits);
    ASSERT_EQ(a.sample_logits(logits), b.sample_logits(logits));
  }
}

// ---- greedy ----

TEST(Sampler, TemperatureZeroIsArgmaxLowestIdOnTies) {
  Sampler s(config(0.0f, 0.85f));
  const std::vector<float> logits = {1, 5, 3, 5, 2};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample_logits(logits), 1);
  const std::vector<float> last = {1, 2, 3, 4, 9};
  EXPECT_EQ(s.sample_logits(last), 4);
  const std::vector<float> with_nan = {std::nanf(""), -1, 7, std::nanf("")};
  EXPECT_EQ(s.sample_logits(with_nan), 2);
  auto d = s.distribution(logits);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].id, 1);
  EXPECT_EQ(d[0].p, 1.0);
}

TEST(Sampler, DegenerateLogitsFallBackToArgmax) {
  Sampler s(config(1.0f, 0.85f));
  EXPECT_EQ(s.sample_logits(std::vector<float>{-kInf, -kInf, -kInf}), 0);
  EXPECT_EQ(s.sample_logits(std::vector<float>{0, 3, kInf, kInf}), 2);
  // NaN logits are never drawn.
  const std::vector<float> nan_mix = {std::nanf(""), 0, std::nanf(""), 0};
  Sampler t(config(1.0f, 1.0f));
  auto n = counts(t, nan_mix, 2000);
  EXPECT_EQ(n[0] + n[2], 0);
  EXPECT_GT(n[1], 0);
  EXPECT_GT(n[3], 0);
}

// ---- top-p ----

TEST(Sampler, TopPKeepsTheNucleusOnly) {
  const auto logits = logits_of({0.5, 0.3, 0.15, 0.05});
  Sampler s(config(1.0f, 0.7f));  // cumsum 0.5, 0.8 >= 0.7: cutoff 0.3
  auto d = as_map(s.distribution(logits));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d[0], 0.5 / 0.8, 1e-6);
  EXPECT_NEAR(d[1], 0.3 / 0.8, 1e-6);
  auto n = counts(s, logits, 20000);
  EXPECT_EQ(n[2] + n[3], 0);
  EXPECT_GT(n[0], 0);
  EXPECT_GT(n[1], 0);
  EXPECT_LT(chi_square({n[0], n[1]}, {0.625, 0.375}), 20.0);
}

TEST(Sampler, TopPKeepsTiesWithTheCutoff) {
  // cumsum 0.4, 0.6 >= 0.5: cutoff 0.2, and the other two 0.2s tie with it.
  const auto logits = logits_of({0.2, 0.4, 0.2, 0.2});
  Sampler s(config(1.0f, 0.5f));
  auto d = as_map(s.distribution(logits));
  EXPECT_EQ(d.size(), 4u);
  auto n = counts(s, logits, 4000);
  for (int t = 0; t < 4; ++t) EXPECT_GT(n[t], 0) << "token " << t;

  // Without the tie only two tokens survive the same top_p.
  const auto distinct = logits_of({0.2, 0.4, 0.3, 0.1});
  EXPECT_EQ(as_map(s.distribution(distinct)).size(), 2u);

  // top_p = 0: only the top probability and its ties.
  Sampler z(config(1.0f, 0.0f));
  auto dz = as_map(z.distribution(std::vector<float>{1, 3, 3, 2}));
  ASSERT_EQ(dz.size(), 2u);
  EXPECT_DOUBLE_EQ(dz[1], 0.5);
  EXPECT_DOUBLE_EQ(dz[2], 0.5);
}

TEST(Sampler, TopPTiesBeyondTheFirstSortedChunk) {
  // Token 500 holds half the mass; 999 tied tokens share the rest. top_p 0.55 cuts inside the
  // ties, so all 1000 survive, though the sampler only sorts a short prefix.
  std::vector<float> logits(1000, 0.0f);
  logits[500] = std::log(999.0f);
  Sampler s(config(1.0f, 0.55f, 0, 3));
  EXPECT_EQ(as_map(s.distribution(logits)).size(), 1000u);
  auto n = counts(s, logits, 4000);
  int distinct = 0, high = 0;
  for (int t = 0; t < 1000; ++t) {
    distinct += n[t] > 0;
    if (t >= 900) high += n[t];
  }
  EXPECT_GT(distinct, 500);
  EXPECT_GT(high, 0);

  // 100 tied tokens at logit 2 among 900 at 0: a cutoff at sorted position ~44 keeps all 100.
  std::vector<float> block(1000, 0.0f);
  for (int t = 0; t < 1000; t += 10) block[t] = 2.0f;
  Sampler b(config(1.0f, 0.2f));
  auto d = as_map(b.distribution(block));
  ASSERT_EQ(d.size(), 100u);
  for (const auto& [id, p] : d) {
    EXPECT_EQ(id % 10, 0);
    EXPECT_NEAR(p, 0.01, 1e-12);
  }
}

TEST(Sampler, TopPReachingTheLongTail) {
  // One token at 0 and 1000 at -10 (each exp(-10) = 4.5e-5 of the top): the tail holds 4.3%
  // of the mass, so top_p 0.99 needs all of it while 0.9 keeps the top token alone.
  std::vector<float> logits(1001, -10.0f);
  logits[0] = 0.0f;
  Sampler wide(config(1.0f, 0.99f));
  EXPECT_EQ(as_map(wide.distribution(logits)).size(), 1001u);
  Sampler narrow(config(1.0f, 0.9f));
  EXPECT_EQ(as_map(narrow.distribution(logits)).size(), 1u);
  Sampler capped(config(1.0f, 0.99f, 500));
  auto d = as_map(capped.distribution(logits));
  ASSERT_EQ(d.size(), 500u);
  EXPECT_EQ(d.rbegin()->first, 499);
  for (float top_p : {0.9f, 0.99f})
    for (int top_k : {0, 500}) {
      Sampler s(config(0.5f, top_p, top_k));
      auto got = as_map(s.distribution(logits));
      auto want = reference_distribution(logits, 0.5f, top_p, top_k);
      ASSERT_EQ(got.size(), want.size());
      for (const auto& [id, p] : want) EXPECT_NEAR(got[id], p, 1e-12 + 1e-9 * p);
    }
}

// ---- top-k ----

TEST(Sampler, TopKKeepsTheKLargest) {
  const auto logits = logits_of({0.1, 0.4, 0.2, 0.3});
  Sampler s(config(1.0f, 1.0f, 2));
  auto d = as_map(s.distribution(logits));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d[1], 0.4 / 0.7, 1e-6);
  EXPECT_NEAR(d[3], 0.3 / 0.7, 1e-6);
  auto n = counts(s, logits, 4000);
  EXPECT_EQ(n[0] + n[2], 0);
  EXPECT_GT(n[1], 0);
  EXPECT_GT(n[3], 0);

  // Ties at the k-th place: lower ids first.
  Sampler t(config(1.0f, 1.0f, 2));
  auto dt = as_map(t.distribution(std::vector<float>{1, 2, 2, 2}));
  ASSERT_EQ(dt.size(), 2u);
  EXPECT_EQ(dt.count(1), 1u);
  EXPECT_EQ(dt.count(2), 1u);

  // Ties with the top-p cutoff are still cut to top_k (the lowest ids).
  Sampler tk(config(1.0f, 0.01f, 100));
  auto df = as_map(tk.distribution(std::vector<float>(1000, 0.0f)));
  ASSERT_EQ(df.size(), 100u);
  EXPECT_EQ(df.begin()->first, 0);
  EXPECT_EQ(df.rbegin()->first, 99);

  // top_k = 1 is greedy-like; top_k >= V is off.
  Sampler one(config(1.0f, 1.0f, 1));
  EXPECT_EQ(as_map(one.distribution(logits)).size(), 1u);
  Sampler all(config(1.0f, 1.0f, 4));
  EXPECT_EQ(as_map(all.distribution(logits)).size(), 4u);
}

// ---- against the official algorithm ----

// Random logits quantized to quarters (so exact ties are common), every combination of
// top_p / top_k / temperature, compared with the full-sort transcription.
TEST(Sampler, MatchesOfficialSampleLogitsTranscription) {
  std::mt19937_64 gen(2024);
  for (size_t V : {10u, 1000u, 65536u}) {
    std::vector<float> logits(V);
    for (float& x : logits) {
      const double u = static_cast<double>(gen() >> 11) * 0x1.0p-53;
      const double v = static_cast<double>(gen() >> 11) * 0x1.0p-53;
      x = static_cast<float>(std::round((u + v - 1.0) * 24.0) / 4.0);  // [-6, 6] in 0.25 steps
    }
    for (float top_p : {0.0f, 0.1f, 0.5f, 0.85f, 0.999f, 1.0f})
      for (int top_k : {0, 1, 5, 100})
        for (float temperature : {1.0f, 0.5f, 2.0f}) {
          Sampler s(config(temperature, top_p, top_k));
          auto got = as_map(s.distribution(logits));
          auto want = reference_distribution(logits, temperature, top_p, top_k);
          ASSERT_EQ(got.size(), want.size())
              << "V " << V << " top_p " << top_p << " top_k " << top_k << " T " << temperature;
          for (const auto& [id, p] : want) {
            ASSERT_EQ(got.count(id), 1u) << "token " << id << " missing, V " << V;
            EXPECT_NEAR(got[id], p, 1e-12 + 1e-9 * p) << "token " << id << " V " << V;
          }
        }
  }
}

// ---- empirical frequencies ----

TEST(Sampler, FrequenciesMatchAtTemperatureOne) {
  const std::vector<double> p = {0.4, 0.3, 0.2, 0.1};
  Sampler s(config(1.0f, 1.0f, 0, 77));
  auto n = counts(s, logits_of(p), 100000);
  // chi-square, 3 degrees of freedom: 25 is exceeded with probability ~1.7e-5.
  EXPECT_LT(chi_square(n, p), 25.0);
}

TEST(Sampler, FrequenciesMatchAtTemperatureHalf) {
  // Temperature 0.5: probs ** 2, normalized.
  const std::vector<double> p = {0.4, 0.3, 0.2, 0.1};
  std::vector<double> sq;
  for (double x : p) sq.push_back(x * x / 0.30);
  for (float top_p : {1.0f, 0.99f}) {  // no truncation, and the sorted path keeping everything
    Sampler s(config(0.5f, top_p, 0, 78));
    auto n = counts(s, logits_of(p), 100000);
    EXPECT_LT(chi_square(n, sq), 25.0) << "top_p " << top_p;
    EXPECT_GT(chi_square(n, p), 1000.0) << "temperature had no effect";
  }
}

TEST(Sampler, TemperatureAppliesAfterTopP) {
  // top_p 0.7 keeps {0.5, 0.3} (cut on the untempered probabilities); T 0.5 gives 25:9.
  const auto logits = logits_of({0.5, 0.3, 0.15, 0.05});
  Sampler s(config(0.5f, 0.7f));
  auto d = as_map(s.distribution(logits));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d[0], 25.0 / 34.0, 1e-6);
  EXPECT_NEAR(d[1], 9.0 / 34.0, 1e-6);
}

// ---- penalties ----

TEST(Sampler, PenaltiesFollowTheOfficialFormula) {
  SamplerConfig c = config(0.0f, 0.85f);
  c.presence_penalty = 0.5f;
  c.frequency_penalty = 0.25f;
  c.penalty_decay = 0.5f;
  Sampler s(c);
  s.accept(3);       // {3: 1}
  s.accept(5, 1.0f); // decay, then {3: 0.5, 5: 1}
  s.accept(3, 0.0f); // {3: 0.25, 5: 0.5}: exempt token adds 0
  s.accept(7, 0.0f); // {3: 0.125, 5: 0.25, 7: 0}
  const std::map<int32_t, float> want_occ = {{3, 0.125f}, {5, 0.25f}, {7, 0.0f}};
  EXPECT_EQ(s.occurrence(), want_occ);

  std::vector<float> logits(10, 1.0f);
  s.apply_penalties(logits);
  for (int t = 0; t < 10; ++t) {
    float want = 1.0f;
    if (want_occ.count(t)) want -= 0.5f + want_occ.at(t) * 0.25f;
    EXPECT_FLOAT_EQ(logits[t], want) << "token " << t;
  }
  EXPECT_FLOAT_EQ(logits[3], 1.0f - 0.53125f);
  EXPECT_FLOAT_EQ(logits[7], 0.5f);  // an exempt token still pays the presence penalty

  // Ids beyond the span are skipped.
  std::vector<float> small(4, 0.0f);
  s.apply_penalties(small);
  EXPECT_FLOAT_EQ(small[3], -0.53125f);
}

TEST(Sampler, NoDecayAccumulatesCounts) {
  SamplerConfig c = config(0.0f, 0.85f);
  c.frequency_penalty = 1.0f;
  Sampler s(c);
  for (int i = 0; i < 3; ++i) s.accept(2);
  s.accept(4, 0.5f);
  EXPECT_FLOAT_EQ(s.occurrence().at(2), 3.0f);
  EXPECT_FLOAT_EQ(s.occurrence().at(4), 0.5f);
}

TEST(Sampler, SampleAppliesPenaltiesButDoesNotRecord) {
  SamplerConfig c = config(0.0f, 0.85f);
  c.presence_penalty = 0.4f;
  c.frequency_penalty = 0.4f;
  Sampler s(c);
  std::vector<float> logits = {0.0f, 2.0f, 1.5f, 0.0f};
  EXPECT_EQ(s.sample(logits), 1);
  EXPECT_TRUE(s.occurrence().empty());  // sample() does not record
  s.accept(1);  // penalty 0.4 + 0.4 = 0.8: 2.0 -> 1.2 < 1.5
  logits = {0.0f, 2.0f, 1.5f, 0.0f};
  EXPECT_EQ(s.sample(logits), 2);
  EXPECT_FLOAT_EQ(logits[1], 1.2f);  // logits are edited in place
  EXPECT_FLOAT_EQ(logits[2], 1.5f);
}

// ---- bans and bias ----

TEST(Sampler, BannedTokensAreNeverChosen) {
  SamplerConfig c = config(0.0f, 0.85f);
  c.banned = {2, 99, -1};  // out-of-range ids are ignored
  Sampler greedy(c);
  std::vector<float> logits = {0.0f, 1.0f, 5.0f, 2.0f};
  EXPECT_EQ(greedy.sample(logits), 3);
  EXPECT_EQ(logits[2], -kInf);

  c.temperature = 1.0f;
  c.top_p = 1.0f;
  c.logit_bias = {{2, 100.0f}};  // bias cannot lift a ban
  Sampler s(c);
  int zero_or_more = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> l = {0.0f, 1.0f, 5.0f, 2.0f};
    const int32_t t = s.sample(l);
    ASSERT_NE(t, 2);
    zero_or_more += t == 0;
  }
  EXPECT_GT(zero_or_more, 0);  // still a real draw among the rest
}

TEST(Sampler, LogitBiasIsAddedAfterPenalties) {
  SamplerConfig c = config(0.0f, 0.85f);
  c.presence_penalty = 1.0f;
  c.logit_bias = {{0, 3.0f}, {1, -0.5f}, {1000, 5.0f}};
  Sampler s(c);
  s.accept(0);
  std::vector<float> logits = {1.0f, 2.5f, 2.0f};
  EXPECT_EQ(s.sample(logits), 0);  // 1 - 1 + 3 = 3 > 2.5 - 0.5, 2
  EXPECT_FLOAT_EQ(logits[0], 3.0f);
  EXPECT_FLOAT_EQ(logits[1], 2.0f);
  EXPECT_FLOAT_EQ(logits[2], 2.0f);
}

// ---- helpers ----

TEST(Sampler, PenaltyExemptTextIsAPythonSubstringTest) {
  for (const char* t : {" ", "\t", "7", "123", "", " \t0", "89", " \t0123456789"})
    EXPECT_TRUE(is_penalty_exempt_text(t)) << '"' << t << '"';
  for (const char* t : {"  ", "21", "a", "\n", "1 ", "0a", " 7"})
    EXPECT_FALSE(is_penalty_exempt_text(t)) << '"' << t << '"';
}

TEST(Sampler, ValidateConfig) {
  EXPECT_TRUE(validate_sampler_config(SamplerConfig{}).ok());
  const auto bad = [](auto edit) {
    SamplerConfig c;
    edit(c);
    return !validate_sampler_config(c).ok();
  };
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.temperature = -0.1f; }));
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.temperature = std::nanf(""); }));
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.top_p = 1.5f; }));
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.top_p = -0.5f; }));
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.top_k = -1; }));
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.presence_penalty = kInf; }));
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.frequency_penalty = std::nanf(""); }));
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.penalty_decay = -1.0f; }));
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.logit_bias = {{3, std::nanf("")}}; }));
  EXPECT_TRUE(bad([](SamplerConfig& c) { c.logit_bias = {{3, kInf}}; }));
  EXPECT_FALSE(bad([](SamplerConfig& c) {
    c.temperature = 0;
    c.top_p = 0;
    c.logit_bias = {{3, -kInf}};
    c.penalty_decay = 0.996f;
  }));
  auto st = validate_sampler_config([] {
    SamplerConfig c;
    c.top_p = 2;
    return c;
  }());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("top_p"), std::string::npos);
}

}  // namespace
}  // namespace wkv
