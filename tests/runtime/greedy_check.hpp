// Greedy equality "to float tolerance": batching may change the order of float sums, so a
// batched run may pick another token only where the reference's two candidates are within
// `tol` of each other (a near-tie that rounding can flip); before that step the tokens must be
// identical. Shared by the runtime and server tests.
#pragma once

#include <string>
#include <vector>

#include "model/model.hpp"

namespace wkv::test {

struct GreedyRun {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;  // the logits each token was chosen from
};

// Greedy decoding of `prompt` alone, as generate() does it (forward_seq, then forward_one),
// stopping after n tokens or at token 0.
inline GreedyRun greedy_alone(Model& m, const std::vector<int32_t>& prompt, int n) {
  GreedyRun r;
  const size_t V = static_cast<size_t>(m.hparams().vocab_size);
  State st = m.new_state();
  std::vector<float> lg(V);
  m.forward_seq(prompt, st, lg.data(), Logits::last);
  for (int i = 0; i < n; ++i) {
    int32_t best = 0;
    for (size_t v = 1; v < V; ++v)
      if (lg[v] > lg[static_cast<size_t>(best)]) best = static_cast<int32_t>(v);
    r.logits.push_back(lg);
    if (best == 0) break;
    r.tokens.push_back(best);
    m.forward_one(best, st, lg.data());
  }
  return r;
}

// "" when `got` matches `ref` to tolerance, else what differs.
inline std::string greedy_mismatch(const GreedyRun& ref, const std::vector<int32_t>& got,
                                   float tol = 2e-3f) {
  for (size_t i = 0; i < got.size() && i < ref.tokens.size(); ++i) {
    if (got[i] == ref.tokens[i]) continue;
    const float a = ref.logits[i][static_cast<size_t>(ref.tokens[i])];
    const float b = got[i] >= 0 && static_cast<size_t>(got[i]) < ref.logits[i].size()
                        ? ref.logits[i][static_cast<size_t>(got[i])]
                        : -1e30f;
    if (a - b <= tol) return "";  // a near-tie: from here on the runs may differ
    return "token " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", alone " +
           std::to_string(ref.tokens[i]) + " (logit margin " + std::to_string(a - b) + ")";
  }
  if (got.size() != ref.tokens.size() && got.size() < ref.tokens.size())
    return "got " + std::to_string(got.size()) + " tokens, alone " +
           std::to_string(ref.tokens.size());
  return "";
}

}  // namespace wkv::test
