// Helpers shared by the tokenizer tests: hex conversion, JSONL reading, and the World
// tokenizer loaded once from shared/vocab.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "tokenizer/tokenizer.hpp"

namespace wkv::test {

inline std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

inline std::string to_hex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out.push_back(d[static_cast<uint8_t>(c) >> 4]);
    out.push_back(d[static_cast<uint8_t>(c) & 15]);
  }
  return out;
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline std::string world_vocab_path() { return shared_dir() + "/vocab/rwkv_vocab_v20230424.txt"; }

// The official World tokenizer, loaded once per test binary (nullptr + a failure if not).
inline const Tokenizer* world() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto t = load_world_tokenizer(world_vocab_path());
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    return t.ok() ? std::move(t).value() : nullptr;
  }();
  return tok.get();
}

}  // namespace wkv::test
