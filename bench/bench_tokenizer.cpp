// Tokenizer micro-benchmarks: World encode/decode throughput over the concatenated inputs of
// shared/testdata/tokenizer/world.jsonl, and World vocabulary load time; GPT-NeoX-20B BPE
// encode throughput over the concatenated texts of neox20b.jsonl, and its load time.
// Data is read at run time from $WKV_SHARED (default: the WKV_SHARED_DEFAULT definition).
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tokenizer/bpe.hpp"
#include "tokenizer/tokenizer.hpp"

#ifndef WKV_SHARED_DEFAULT
#define WKV_SHARED_DEFAULT "../shared"
#endif

namespace {

std::string shared_dir() {
  if (const char* e = std::getenv("WKV_SHARED")) return e;
  return WKV_SHARED_DEFAULT;
}

std::string vocab_path() { return shared_dir() + "/vocab/rwkv_vocab_v20230424.txt"; }

// Every encode input of world.jsonl (text, or the raw bytes when text is null), concatenated.
const std::string& corpus() {
  static const std::string text = [] {
    std::string out;
    std::ifstream in(shared_dir() + "/testdata/tokenizer/world.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto c = nlohmann::json::parse(line);
      if (!c["text"].is_null()) {
        out += c["text"].get<std::string>();
      } else {
        const std::string hex = c["bytes_hex"];
        for (size_t i = 0; i + 1 < hex.size(); i += 2)
          out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
      }
    }
    return out;
  }();
  return text;
}

const wkv::Tokenizer* world() {
  static std::unique_ptr<wkv::Tokenizer> tok = [] {
    auto t = wkv::load_world_tokenizer(vocab_path());
    if (!t) {
      std::fprintf(stderr, "%s\n", t.error().message.c_str());
      return std::unique_ptr<wkv::Tokenizer>();
    }
    return std::move(t).value();
  }();
  return tok.get();
}

void BM_WorldEncode(benchmark::State& state) {
  const auto* tok = world();
  const std::string& text = corpus();
  if (!tok || text.empty()) return state.SkipWithError("World vocab or world.jsonl missing");
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(text);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["bytes"] = static_cast<double>(text.size());
  state.counters["tokens"] = static_cast<double>(n_tokens);
}
BENCHMARK(BM_WorldEncode)->Unit(benchmark::kMicrosecond);

void BM_WorldDecode(benchmark::State& state) {
  const auto* tok = world();
  const std::string& text = corpus();
  if (!tok || text.empty()) return state.SkipWithError("World vocab or world.jsonl missing");
  const auto ids = tok->encode(text);
  for (auto _ : state) {
    auto bytes = tok->decode_bytes(ids);
    benchmark::DoNotOptimize(bytes.value().data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_WorldDecode)->Unit(benchmark::kMicrosecond);

// Whole load: read the 1 MB file, parse every line, build the trie.
void BM_WorldVocabLoad(benchmark::State& state) {
  for (auto _ : state) {
    auto t = wkv::load_world_tokenizer(vocab_path());
    if (!t) return state.SkipWithError(t.error().message.c_str());
    benchmark::DoNotOptimize(t.value().get());
  }
}
BENCHMARK(BM_WorldVocabLoad)->Unit(benchmark::kMillisecond);

std::string neox_path() { return shared_dir() + "/vocab/20B_tokenizer.json"; }

// Every text of neox20b.jsonl (all valid UTF-8: it has no byte inputs), concatenated.
const std::string& neox_corpus() {
  static const std::string text = [] {
    std::string out;
    std::ifstream in(shared_dir() + "/testdata/tokenizer/neox20b.jsonl");
    std::string line;
    while (std::getline(in, line)) out += nlohmann::json::parse(line)["text"].get<std::string>();
    return out;
  }();
  return text;
}

const wkv::Tokenizer* neox() {
  static std::unique_ptr<wkv::Tokenizer> tok = [] {
    auto t = wkv::load_bpe_tokenizer(neox_path());
    if (!t) {
      std::fprintf(stderr, "%s\n", t.error().message.c_str());
      return std::unique_ptr<wkv::Tokenizer>();
    }
    return std::move(t).value();
  }();
  return tok.get();
}

// Each iteration is one encode() call on the whole corpus (NFC, added tokens, split, BPE);
// the word cache lives for one call, so every iteration starts cold.
void BM_Neox20bEncode(benchmark::State& state) {
  const auto* tok = neox();
  const std::string& text = neox_corpus();
  if (!tok || text.empty())
    return state.SkipWithError("20B_tokenizer.json or neox20b.jsonl missing");
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(text);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["bytes"] = static_cast<double>(text.size());
  state.counters["tokens"] = static_cast<double>(n_tokens);
}
BENCHMARK(BM_Neox20bEncode)->Unit(benchmark::kMicrosecond);

void BM_Neox20bDecode(benchmark::State& state) {
  const auto* tok = neox();
  const std::string& text = neox_corpus();
  if (!tok || text.empty())
    return state.SkipWithError("20B_tokenizer.json or neox20b.jsonl missing");
  const auto ids = tok->encode(text);
  for (auto _ : state) {
    auto bytes = tok->decode_bytes(ids);
    benchmark::DoNotOptimize(bytes.value().data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Neox20bDecode)->Unit(benchmark::kMicrosecond);

// Whole load: read the 2.4 MB JSON, parse it, build the merge table.
void BM_Neox20bLoad(benchmark::State& state) {
  for (auto _ : state) {
    auto t = wkv::load_bpe_tokenizer(neox_path());
    if (!t) return state.SkipWithError(t.error().message.c_str());
    benchmark::DoNotOptimize(t.value().get());
  }
}
BENCHMARK(BM_Neox20bLoad)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
