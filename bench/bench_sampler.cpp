// Sampler micro-benchmarks: one draw from 65536 logits (the World vocabulary's size) shaped as
// a trained model's (Zipf-like: the k-th likeliest token has logit -1.2 ln k, so the 0.85
// nucleus holds a few hundred tokens) and as a random-weight model's (nearly flat: the
// nucleus holds most of the vocabulary), with the official chat settings (temperature 1,
// top_p 0.85), the README's (temperature 0.8), top_k 40, and greedy.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "sample/sampler.hpp"

namespace {

constexpr size_t kVocab = 65536;

std::vector<float> logits(bool flat) {
  std::mt19937 g(3);
  std::vector<float> out(kVocab);
  if (flat) {
    std::normal_distribution<float> d(0.0f, 0.3f);
    for (auto& x : out) x = d(g);
  } else {
    std::vector<int> rank(kVocab);
    std::iota(rank.begin(), rank.end(), 1);
    std::shuffle(rank.begin(), rank.end(), g);
    for (size_t i = 0; i < kVocab; ++i) out[i] = -1.2f * std::log(static_cast<float>(rank[i]));
  }
  return out;
}

void draw(benchmark::State& state, bool flat, float temperature, float top_p, int top_k) {
  const auto x = logits(flat);
  wkv::SamplerConfig cfg;
  cfg.temperature = temperature;
  cfg.top_p = top_p;
  cfg.top_k = top_k;
  cfg.seed = 1;
  wkv::Sampler s(cfg);
  for (auto _ : state) benchmark::DoNotOptimize(s.sample_logits(x));
}

BENCHMARK_CAPTURE(draw, zipf_t1_p085, false, 1.0f, 0.85f, 0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(draw, zipf_t08_p085, false, 0.8f, 0.85f, 0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(draw, zipf_t1_k40, false, 1.0f, 1.0f, 40)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(draw, zipf_greedy, false, 0.0f, 0.85f, 0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(draw, flat_t1_p085, true, 1.0f, 0.85f, 0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(draw, flat_t08_p085, true, 0.8f, 0.85f, 0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(draw, flat_t1_p1, true, 1.0f, 1.0f, 0)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
