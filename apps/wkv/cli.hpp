// Shared plumbing for the subcommands: argument parsing with one-line errors (exit 2),
// error reporting (exit 1), model and tokenizer loading.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "model/model.hpp"
#include "tokenizer/tokenizer.hpp"

namespace wkv::cli {

constexpr int kExitError = 1;  // bad data, I/O
constexpr int kExitUsage = 2;  // wrong or missing argument

// Parses argv into `app`; on --help prints help (exit 0); on a bad argument prints one line and
// the usage to stderr (exit 2). Otherwise runs `body`.
int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

int fail(const Error& e);  // prints "wkv: error: ..." to stderr, returns kExitError

Expected<std::unique_ptr<Model>> load_model_file(const std::string& path);

// Fine-tuning results applied at load (model/adapters.hpp): --lora FILE folds LoRA adapters into
// the weights, --state FILE makes every new sequence start from a tuned initial WKV state.
struct AdapterOptions {
  std::string lora;   // --lora FILE (from `wkv train --tune lora`)
  std::string state;  // --state FILE (from `wkv train --tune state`)
  void add(CLI::App& app, bool with_state = true);
};
Expected<std::unique_ptr<Model>> load_model_file(const std::string& path, const AdapterOptions& a);
// The checkpoint's tensors with the --lora adapters folded in (what `wkv merge` writes).
Expected<TensorMap> load_tensors_with_lora(const std::string& path, const std::string& lora);

// "1,2,3" -> ids; error names the bad item.
Expected<std::vector<int32_t>> parse_ids(const std::string& s);

struct TokenizerOptions {
  std::string vocab;           // --vocab FILE (World)
  std::string tokenizer_json;  // --tokenizer-json FILE (Hugging Face BPE, GPT-NeoX 20B)
  std::string tokenizer;       // --tokenizer world|neox|bytes
  void add(CLI::App& app);
};
// An explicit file or kind first; else the kind the model's vocabulary size makes clear
// (256 -> bytes, 65536 -> World, 50277 -> GPT-NeoX 20B), its file found beside the model or in
// $WKV_VOCAB_DIR. model_vocab 0 means no model (wkv tokenize): something must be named.
Expected<std::unique_ptr<Tokenizer>> make_tokenizer(const TokenizerOptions& o, int model_vocab,
                                                    const std::string& model_path = "");
// make_tokenizer for a loaded model, refusing a tokenizer with ids the model does not have
// (they would index past its embedding).
Expected<std::unique_ptr<Tokenizer>> make_model_tokenizer(const TokenizerOptions& o,
                                                          const Model& model,
                                                          const std::string& model_path);

// The subcommands. Each cmd_*.cpp registers its own with WKV_COMMAND at static-init time, so
// adding one is adding one file (apps/wkv/CMakeLists.txt globs cmd_*.cpp).
using CommandFn = int (*)(int argc, char** argv);
struct Command {
  const char* name;
  const char* help;  // one line for `wkv --help`
  CommandFn fn;
};
const std::vector<Command>& commands();  // sorted by name
struct RegisterCommand {
  RegisterCommand(const char* name, const char* help, CommandFn fn);
};
#define WKV_COMMAND(name, help, fn) \
  static const ::wkv::cli::RegisterCommand wkv_register_##fn{name, help, fn}

}  // namespace wkv::cli
