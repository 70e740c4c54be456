// Shared by `wkv convert` and `wkv quantize`: loading a checkpoint, building the GGUF with its
// vocabulary, file sizes and progress lines.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "cli.hpp"
#include "formats/formats.hpp"
#include "formats/gguf.hpp"

namespace wkv::cli {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline std::string mb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

inline uint64_t file_size(const std::string& p) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

inline bool is_gguf_file(const std::string& p) {
  char magic[4] = {};
  return std::ifstream(p, std::ios::binary).read(magic, 4) && std::string(magic, 4) == "GGUF";
}

// The GGUF of `tensors` with an embedded vocabulary: copied from a GGUF input; else from the
// tokenizer options or the one the vocabulary size makes clear (bytes; World when its file is
// found). Without a tokenizer the file is written without vocabulary (a note on stderr) unless
// one was asked for explicitly, which is then an error.
inline Expected<GgufFile> build_gguf(const std::string& in, const TensorMap& tensors,
                                     const TokenizerOptions& to) {
  GgufExportOptions opt;
  std::string stem = std::filesystem::path(in).stem().string();
  opt.name = stem;
  std::optional<GgufFile> src;
  if (is_gguf_file(in)) {
    auto g = read_gguf(in);
    if (!g) return g.error();
    src = std::move(*g);
    if (const GgufValue* n = src->find("general.name"); n && n->type == GgufType::string) opt.name = n->str;
  }
  const bool explicit_tok = !to.vocab.empty() || !to.tokenizer_json.empty() || !to.tokenizer.empty();
  const int64_t V = tensors.count("emb.weight") ? tensors.at("emb.weight").shape.at(0) : 0;
  if (!src || explicit_tok) {
    auto tok = make_tokenizer(to, static_cast<int>(V), in);
    if (!tok) {
      if (explicit_tok) return tok.error();
      std::fprintf(stderr, "wkv: note: no vocabulary embedded (%s)\n", tok.error().message.c_str());
    } else if ((*tok)->name() == "bpe") {
      std::fprintf(stderr, "wkv: note: no vocabulary embedded (GGUF's rwkv tokenizer cannot hold "
                           "the GPT-NeoX BPE)\n");
    } else {
      const Tokenizer& t = **tok;
      const bool bytes = t.name() == "bytes";
      for (int64_t id = 0; id < V; ++id) {
        std::string b;
        int32_t type = 1;
        if (bytes) {
          b = id < 256 ? std::string(1, static_cast<char>(id)) : "[PAD" + std::to_string(id) + "]";
          type = id < 256 ? 1 : 5;
        } else if (id == 0) {
          b = "<s>";
          type = 3;
        } else {
          const int32_t one[1] = {static_cast<int32_t>(id)};
          auto d = id < t.vocab_size() ? t.decode_bytes(one) : Expected<std::string>(std::string());
          if (d && !d->empty()) {
            b = std::move(*d);
          } else {
            b = "[PAD" + std::to_string(id) + "]";
            type = 5;
          }
        }
        opt.token_bytes.push_back(std::move(b));
        opt.token_types.push_back(type);
      }
    }
  }
  auto f = rwkv_to_gguf(tensors, opt);
  if (!f) return f.error();
  if (src && opt.token_bytes.empty())
    for (const auto& [k, v] : src->metadata)
      if (k.rfind("tokenizer.", 0) == 0) f->set(k, v);
  return f;
}

}  // namespace wkv::cli
