// wkv tokenize / detokenize: text <-> token ids with the World or byte tokenizer.
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli.hpp"

namespace wkv::cli {

namespace {
// Without a model nothing makes the choice clear: a file or --tokenizer bytes must be named.
Expected<std::unique_ptr<Tokenizer>> explicit_tokenizer(const TokenizerOptions& o) {
  if (o.tokenizer == "world" || o.tokenizer == "neox") {
    if (o.vocab.empty() && o.tokenizer_json.empty())
      return Error{"--tokenizer " + o.tokenizer + " needs its file: --vocab FILE (World) or "
                   "--tokenizer-json FILE (GPT-NeoX 20B)"};
  }
  return make_tokenizer(o, 0);
}
}  // namespace

int cmd_tokenize(int argc, char** argv) {
  CLI::App app{"Encode text (--text, or standard input) and print a JSON array of ids.",
               "wkv tokenize"};
  TokenizerOptions to;
  to.add(app);
  std::string text;
  auto* text_opt = app.add_option("--text", text, "text to encode (default: standard input)");
  return run(app, argc, argv, [&] {
    auto tok = explicit_tokenizer(to);
    if (!tok) return fail(tok.error());
    if (!*text_opt) text.assign(std::istreambuf_iterator<char>(std::cin), {});
    std::vector<int32_t> ids = (*tok)->encode(text);
    std::cout << nlohmann::json(ids).dump() << "\n";
    return 0;
  });
}

int cmd_detokenize(int argc, char** argv) {
  CLI::App app{"Decode token ids and write the bytes to standard output.", "wkv detokenize"};
  TokenizerOptions to;
  to.add(app);
  std::string ids_text;
  app.add_option("--ids", ids_text, "comma-separated token ids, e.g. 33155,40213")->required();
  return run(app, argc, argv, [&] {
    auto tok = explicit_tokenizer(to);
    if (!tok) return fail(tok.error());
    auto ids = parse_ids(ids_text);
    if (!ids) {
      std::cerr << "wkv detokenize: error: " << ids.error().message << "\n" << app.help();
      return kExitUsage;
    }
    auto bytes = (*tok)->decode_bytes(*ids);
    if (!bytes) return fail(bytes.error());
    std::cout.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    std::cout.flush();
    return 0;
  });
}

WKV_COMMAND("tokenize", "text -> JSON array of token ids", cmd_tokenize);
WKV_COMMAND("detokenize", "token ids -> bytes on stdout", cmd_detokenize);

}  // namespace wkv::cli
