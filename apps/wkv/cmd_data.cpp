// wkv data --input FILE... -o PREFIX: text / JSONL documents -> official binidx (.bin + .idx),
// token 0 after every document, as RWKV-LM make_data.py writes them.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "train/binidx.hpp"
#include "train/data.hpp"

namespace wkv::cli {

int cmd_data(int argc, char** argv) {
  CLI::App app{"Convert text or JSONL ({\"text\": ...}) documents to binidx (.bin + .idx).",
               "wkv data"};
  std::vector<std::string> inputs;
  std::string prefix;
  TokenizerOptions tok;
  uint64_t ctx = 512;
  app.add_option("-i,--input", inputs, "text files (one document each) or .jsonl files")
      ->required();
  app.add_option("-o,--output", prefix, "output prefix: writes PREFIX.bin and PREFIX.idx")
      ->required();
  tok.add(app);
  app.add_option("--ctx", ctx, "ctx_len for the reported magic_prime")
      ->check(CLI::Range(1, 1 << 24));
  return run(app, argc, argv, [&] {
    auto tk = make_tokenizer(tok, 0);
    if (!tk) return fail(tk.error());
    std::vector<std::vector<int32_t>> docs;
    uint64_t tokens = 0;
    for (const auto& path : inputs) {
      auto d = train::read_documents(path);
      if (!d) return fail(d.error());
      for (const auto& text : *d) {
        docs.push_back((*tk)->encode(text));
        tokens += docs.back().size() + 1;
      }
    }
    Status st = train::write_binidx(prefix, docs);
    if (!st) return fail(st.error());
    nlohmann::json j = {{"documents", docs.size()},
                        {"tokens", tokens},
                        {"tokenizer", (*tk)->name()},
                        {"bin", prefix + ".bin"},
                        {"idx", prefix + ".idx"},
                        {"ctx_len", ctx},
                        {"magic_prime", train::magic_prime(tokens, ctx)},
                        {"my_exit_tokens", tokens}};
    std::cout << j.dump() << "\n";
    return 0;
  });
}

WKV_COMMAND("data", "convert text/JSONL documents to binidx (.bin + .idx) for training", cmd_data);

}  // namespace wkv::cli
