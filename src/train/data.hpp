// Training data: documents read from plain text or JSONL ({"text": ...}), a token stream with
// token 0 after every document (the official end_of_doc), a held-out validation tail, and
// seeded random fixed-length windows (T + 1 tokens: inputs and next-token targets).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "train/batch.hpp"

namespace wkv::train {

// A .jsonl file gives one document per non-empty line (its "text" string); any other file is
// one document. Errors name the file and line.
Expected<std::vector<std::string>> read_documents(const std::string& path);

// Concatenates the documents' ids with token 0 after each (encode: document -> ids).
template <class Encode>
std::vector<int32_t> token_stream(const std::vector<std::string>& docs, Encode&& encode) {
  std::vector<int32_t> out;
  for (const auto& d : docs) {
    std::vector<int32_t> ids = encode(d);
    out.insert(out.end(), ids.begin(), ids.end());
    out.push_back(0);
  }
  return out;
}

struct Corpus {
  std::vector<int32_t> train, val;
};

// The last `val_fraction` of the stream (at least T + 1 tokens when val_fraction > 0) becomes
// the validation split; the rest must hold at least one window of T + 1 tokens.
Expected<Corpus> split_corpus(std::vector<int32_t> stream, double val_fraction, size_t T);

// Random windows from a stream, reproducible from the seed (std::mt19937_64).
class WindowSampler {
 public:
  WindowSampler(const std::vector<int32_t>& stream, size_t T, uint64_t seed)
      : stream_(&stream), T_(T), rng_(seed) {}
  Batch next(size_t B);

 private:
  const std::vector<int32_t>* stream_;
  size_t T_;
  std::mt19937_64 rng_;
};

// Consecutive non-overlapping windows of the validation stream, B per batch, at most
// max_batches batches (the last batch may hold fewer rows).
std::vector<Batch> validation_batches(const std::vector<int32_t>& val, size_t B, size_t T,
                                      size_t max_batches);

}  // namespace wkv::train
