// Reading documents, splitting the token stream, sampling windows (see data.hpp).
#include "train/data.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace wkv::train {

Expected<std::vector<std::string>> read_documents(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error{path + ": cannot open"};
  std::vector<std::string> docs;
  const bool jsonl = path.size() >= 6 && path.substr(path.size() - 6) == ".jsonl";
  if (!jsonl) {
    std::stringstream ss;
    ss << f.rdbuf();
    docs.push_back(ss.str());
    return docs;
  }
  std::string line;
  size_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Error{path + ":" + std::to_string(lineno) + ": not valid JSON"};
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      return Error{path + ":" + std::to_string(lineno) +
                   ": expected an object with a \"text\" string"};
    docs.push_back(j["text"].get<std::string>());
  }
  if (f.bad()) return Error{path + ": read error"};
  return docs;
}

Expected<Corpus> split_corpus(std::vector<int32_t> stream, double val_fraction, size_t T) {
  if (!(val_fraction >= 0 && val_fraction < 1))
    return Error{"validation fraction must be in [0, 1), got " + std::to_string(val_fraction)};
  size_t n_val =
      val_fraction > 0 ? std::max(size_t(double(stream.size()) * val_fraction), T + 1) : 0;
  if (stream.size() < n_val + T + 1)
    return Error{"the data has " + std::to_string(stream.size()) + " tokens: too few for a " +
                 std::to_string(T + 1) + "-token training window" +
                 (n_val ? " plus " + std::to_string(n_val) + " validation tokens" : std::string())};
  Corpus c;
  c.val.assign(stream.end() - std::ptrdiff_t(n_val), stream.end());
  stream.resize(stream.size() - n_val);
  c.train = std::move(stream);
  return c;
}

Batch WindowSampler::next(size_t B) {
  Batch b;
  b.B = B;
  b.T = T_;
  b.tokens.resize(B * T_);
  b.targets.resize(B * T_);
  std::uniform_int_distribution<size_t> pos(0, stream_->size() - T_ - 1);
  for (size_t i = 0; i < B; ++i) {
    const size_t s = pos(rng_);
    for (size_t t = 0; t < T_; ++t) {
      b.tokens[i * T_ + t] = (*stream_)[s + t];
      b.targets[i * T_ + t] = (*stream_)[s + t + 1];
    }
  }
  return b;
}

std::vector<Batch> validation_batches(const std::vector<int32_t>& val, size_t B, size_t T,
                                      size_t max_batches) {
  std::vector<Batch> out;
  const size_t windows = val.size() > T ? (val.size() - 1) / T : 0;
  for (size_t w = 0; w < windows && out.size() < max_batches;) {
    Batch b;
    b.T = T;
    while (b.B < B && w < windows) {
      for (size_t t = 0; t < T; ++t) {
        b.tokens.push_back(val[w * T + t]);
        b.targets.push_back(val[w * T + t + 1]);
      }
      ++b.B;
      ++w;
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace wkv::train
