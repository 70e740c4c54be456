#include "cli.hpp"

#include <algorithm>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "formats/formats.hpp"
#include "formats/gguf.hpp"
#include "model/adapters.hpp"
#include "tokenizer/bpe.hpp"

namespace wkv::cli {

int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << app.get_name() << ": error: " << e.what() << "\n" << app.help();
    return kExitUsage;
  }
  return body();
}

int fail(const Error& e) {
  std::cerr << "wkv: error: " << e.message << "\n";
  return kExitError;
}

Expected<std::unique_ptr<Model>> load_model_file(const std::string& path) {
  auto t = load_tensors(path);
  if (!t) return t.error();
  return load_model(std::move(*t), path);
}

void AdapterOptions::add(CLI::App& app, bool with_state) {
  app.add_option("--lora", lora,
                 "LoRA adapters (.lora.safetensors from `wkv train --tune lora`) folded into the "
                 "weights at load");
  if (with_state)
    app.add_option("--state", state,
                   "tuned initial state (.state.safetensors from `wkv train --tune state`): every "
                   "new sequence starts from it");
}

Expected<TensorMap> load_tensors_with_lora(const std::string& path, const std::string& lora) {
  auto t = load_tensors(path);
  if (!t) return t.error();
  if (!lora.empty()) {
    std::map<std::string, std::string> meta;
    auto l = load_safetensors(lora, &meta);
    if (!l) return l.error();
    WKV_TRY_STATUS(apply_lora(*t, *l, meta, lora));
  }
  return t;
}

Expected<std::unique_ptr<Model>> load_model_file(const std::string& path, const AdapterOptions& a) {
  auto t = load_tensors_with_lora(path, a.lora);
  if (!t) return t.error();
  auto m = load_model(std::move(*t), path);
  if (!m || a.state.empty()) return m;
  auto st = load_safetensors(a.state);
  if (!st) return st.error();
  return with_initial_state(std::move(*m), *st, a.state);
}

Expected<std::vector<int32_t>> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    int32_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size())
      return Error{"bad token id '" + item + "' at item " + std::to_string(ids.size() + 1) +
                   " of '" + s + "' (expected comma-separated integers)"};
    ids.push_back(v);
    pos = end + 1;
  }
  return ids;
}

void TokenizerOptions::add(CLI::App& app) {
  app.add_option("--vocab", vocab, "World vocabulary file (rwkv_vocab_v20230424.txt)");
  app.add_option("--tokenizer-json", tokenizer_json,
                 "Hugging Face tokenizer.json (GPT-NeoX 20B_tokenizer.json for RWKV-4 Pile/Raven)");
  app.add_option("--tokenizer", tokenizer,
                 "tokenizer kind: world, neox or bytes (default: from the model's vocabulary)")
      ->check(CLI::IsMember({"world", "neox", "bytes"}));
}

namespace {

constexpr const char* kWorldFile = "rwkv_vocab_v20230424.txt";
constexpr const char* kNeoxFile = "20B_tokenizer.json";

// Looks for a tokenizer file beside the model, then in $WKV_VOCAB_DIR.
Expected<std::string> find_tokenizer_file(const char* file, const std::string& model_path,
                                          const char* option) {
  std::vector<std::string> tried;
  if (!model_path.empty()) {
    const auto slash = model_path.find_last_of('/');
    tried.push_back((slash == std::string::npos ? std::string(".") : model_path.substr(0, slash)) +
                    "/" + file);
  }
  if (const char* dir = std::getenv("WKV_VOCAB_DIR")) tried.push_back(std::string(dir) + "/" + file);
  for (const auto& p : tried)
    if (std::ifstream(p).good()) return p;
  std::string where;
  for (const auto& p : tried) where += (where.empty() ? "" : ", ") + p;
  return Error{std::string("this model needs the tokenizer file ") + file + "; pass " + option +
               " FILE or put it beside the model or in $WKV_VOCAB_DIR" +
               (where.empty() ? std::string() : " (looked for " + where + ")") +
               ". It ships with the official RWKV releases (BlinkDL/ChatRWKV, the `rwkv` pip "
               "package, RWKV-LM)"};
}

// The vocabulary embedded in a GGUF model (tokenizer.ggml.*, llama.cpp's "rwkv" model): 256
// single-byte tokens in byte order are the byte tokenizer; anything else is a World tokenizer
// over the normal tokens (control `<s>` and unused `[PADn]` entries left out, as the official
// vocabulary has them not). Nothing when the file is no GGUF or has no vocabulary.
Expected<std::unique_ptr<Tokenizer>> gguf_tokenizer(const std::string& model_path) {
  std::unique_ptr<Tokenizer> none;
  if (model_path.empty()) return none;
  char magic[4] = {};
  if (!std::ifstream(model_path, std::ios::binary).read(magic, 4) || std::string(magic, 4) != "GGUF")
    return none;
  auto f = read_gguf(model_path);
  if (!f) return f.error();
  auto v = gguf_vocab(*f, model_path);
  if (!v) return v.error();
  if (!v->has_value()) return none;
  const GgufVocab& voc = **v;
  bool bytes = voc.tokens.size() == 256;
  for (size_t i = 0; bytes && i < 256; ++i) bytes = voc.tokens[i] == std::string(1, static_cast<char>(i));
  if (bytes) return make_byte_tokenizer();
  static const char* hex = "0123456789abcdef";
  std::string text;
  for (size_t i = 1; i < voc.tokens.size(); ++i) {
    if (voc.types[i] == 3 || voc.types[i] == 5 || voc.tokens[i].empty()) continue;
    text += std::to_string(i) + " b'";
    for (char c : voc.tokens[i]) {
      const auto u = static_cast<unsigned char>(c);
      (text += "\\x") += hex[u >> 4];
      text += hex[u & 15];
    }
    text += "' " + std::to_string(voc.tokens[i].size()) + "\n";
  }
  return parse_world_tokenizer(text, model_path + " (embedded vocabulary)");
}

}  // namespace

Expected<std::unique_ptr<Tokenizer>> make_tokenizer(const TokenizerOptions& o, int model_vocab,
                                                    const std::string& model_path) {
  const int given = !o.vocab.empty() + !o.tokenizer_json.empty();
  if (given > 1 || (given == 1 && o.tokenizer == "bytes"))
    return Error{"choose one tokenizer: --vocab, --tokenizer-json and --tokenizer bytes exclude "
                 "each other"};
  if (o.tokenizer == "world" && !o.tokenizer_json.empty())
    return Error{"--tokenizer world takes --vocab, not --tokenizer-json"};
  if (o.tokenizer == "neox" && !o.vocab.empty())
    return Error{"--tokenizer neox takes --tokenizer-json, not --vocab"};
  if (!o.vocab.empty()) return load_world_tokenizer(o.vocab);
  if (!o.tokenizer_json.empty()) return load_bpe_tokenizer(o.tokenizer_json);
  std::string kind = o.tokenizer;
  if (kind.empty()) {  // a GGUF that carries its vocabulary needs nothing else
    auto g = gguf_tokenizer(model_path);
    if (!g) return g.error();
    if (*g) return std::move(*g);
  }
  if (kind.empty()) {  // from the model: the embedding size tells which vocabulary it was trained on
    if (model_vocab == 256) kind = "bytes";
    else if (model_vocab == 65536) kind = "world";
    else if (model_vocab == 50277) kind = "neox";
    else if (model_vocab == 0)
      return Error{"no tokenizer: pass --vocab FILE (World, rwkv_vocab_v20230424.txt), "
                   "--tokenizer-json FILE (20B_tokenizer.json) or --tokenizer bytes"};
    else
      return Error{"cannot tell the tokenizer from a vocabulary of " + std::to_string(model_vocab) +
                   " tokens: pass --vocab, --tokenizer-json or --tokenizer"};
  }
  if (kind == "bytes") return make_byte_tokenizer();
  if (kind == "world") {
    auto f = find_tokenizer_file(kWorldFile, model_path, "--vocab");
    if (!f) return f.error();
    return load_world_tokenizer(*f);
  }
  auto f = find_tokenizer_file(kNeoxFile, model_path, "--tokenizer-json");
  if (!f) return f.error();
  return load_bpe_tokenizer(*f);
}

Expected<std::unique_ptr<Tokenizer>> make_model_tokenizer(const TokenizerOptions& o,
                                                          const Model& model,
                                                          const std::string& model_path) {
  const int V = model.hparams().vocab_size;
  auto tok = make_tokenizer(o, V, model_path);
  if (!tok) return tok.error();
  if ((*tok)->vocab_size() > V)
    return Error{"the tokenizer has " + std::to_string((*tok)->vocab_size()) +
                 " ids but the model only " + std::to_string(V) +
                 ": wrong --vocab/--tokenizer for this model?"};
  return tok;
}

namespace {
std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}
}  // namespace

RegisterCommand::RegisterCommand(const char* name, const char* help, CommandFn fn) {
  auto& r = registry();
  auto at = std::lower_bound(r.begin(), r.end(), std::string_view(name),
                             [](const Command& c, std::string_view n) { return c.name < n; });
  r.insert(at, Command{name, help, fn});
}

const std::vector<Command>& commands() { return registry(); }

}  // namespace wkv::cli
