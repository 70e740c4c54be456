#include "cli.hpp"

#include <charconv>
#include <iostream>

#include "formats/formats.hpp"

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
  app.add_option("--tokenizer", tokenizer, "tokenizer kind: world (needs --vocab) or bytes")
      ->check(CLI::IsMember({"world", "bytes"}));
}

Expected<std::unique_ptr<Tokenizer>> make_tokenizer(const TokenizerOptions& o, int model_vocab) {
  if (o.tokenizer == "bytes") {
    if (!o.vocab.empty()) return Error{"--tokenizer bytes and --vocab exclude each other"};
    return make_byte_tokenizer();
  }
  if (!o.vocab.empty()) return load_world_tokenizer(o.vocab);
  if (o.tokenizer.empty() && model_vocab == 256) return make_byte_tokenizer();
  return Error{"no tokenizer: pass --vocab FILE (the World vocabulary rwkv_vocab_v20230424.txt, "
               "shipped with the official RWKV releases) or --tokenizer bytes"};
}

}  // namespace wkv::cli
